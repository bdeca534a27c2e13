// The "plain JavaScript Float32Array loop", run in the same browser as
// the wasm page so the two compare within one run: the tutorial's model (784 ->
// 10 logistic regression, cross-entropy, SGD lr 0.5, batch 64, shuffled) on the
// same MNIST files, written the way a careful JS programmer would (typed arrays,
// the images converted to floats once, no allocation per batch) but without
// SIMD or tricks such as skipping zero pixels.
//
// trainPlainJs is passed to page.evaluate, so it must not use anything from this
// module's scope.
export async function trainPlainJs({ epochs }) {
  async function gunzip(url) {
    const resp = await fetch(url);
    if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
    return new Uint8Array(await new Response(resp.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  }
  const bytes = (await gunzip('data/train-images-idx3-ubyte.gz')).subarray(16);
  const images = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) images[i] = bytes[i] / 255;
  const labels = (await gunzip('data/train-labels-idx1-ubyte.gz')).subarray(8);
  const N = 50000, NV = 10000, D = 784, C = 10, B = 64, LR = 0.5;
  const w = new Float32Array(C * D), b = new Float32Array(C);
  let seed = 12345;
  const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
  const bound = 1 / Math.sqrt(D);  // nn.Linear's default init range
  for (let i = 0; i < w.length; i++) w[i] = (2 * rand() - 1) * bound;
  for (let c = 0; c < C; c++) b[c] = (2 * rand() - 1) * bound;
  const order = new Int32Array(N).map((_, i) => i);
  const logits = new Float32Array(B * C), gw = new Float32Array(C * D), gb = new Float32Array(C);
  const epochMs = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const t0 = performance.now();
    for (let i = N - 1; i > 0; i--) {  // Fisher-Yates
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]; order[i] = order[j]; order[j] = t;
    }
    for (let start = 0; start < N; start += B) {
      const n = Math.min(B, N - start);
      gw.fill(0); gb.fill(0);
      for (let r = 0; r < n; r++) {
        let max = -Infinity;
        for (let c = 0; c < C; c++) {
          let s = b[c];
          for (let k = 0, xo = order[start + r] * D, wo = c * D; k < D; k++) s += images[xo + k] * w[wo + k];
          logits[r * C + c] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let c = 0; c < C; c++) sum += (logits[r * C + c] = Math.exp(logits[r * C + c] - max));
        const label = labels[order[start + r]];
        for (let c = 0; c < C; c++) {
          const g = (logits[r * C + c] / sum - (c === label ? 1 : 0)) / n;
          gb[c] += g;
          for (let k = 0, xo = order[start + r] * D, wo = c * D; k < D; k++) gw[wo + k] += g * images[xo + k];
        }
      }
      for (let i = 0; i < w.length; i++) w[i] -= LR * gw[i];
      for (let c = 0; c < C; c++) b[c] -= LR * gb[c];
    }
    epochMs.push(performance.now() - t0);
  }
  let correct = 0;  // the same 10,000 validation images the page holds out
  for (let i = N; i < N + NV; i++) {
    let best = 0, bestScore = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = b[c];
      for (let k = 0; k < D; k++) s += images[i * D + k] * w[c * D + k];
      if (s > bestScore) { bestScore = s; best = c; }
    }
    correct += best === labels[i];
  }
  return { epochMs, validAcc: correct / NV };
}
