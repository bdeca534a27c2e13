// TensorFlow.js `model.fit` on the same model and data, in the same browser and run
// as the demo, for the "50x faster than tfjs" goal: a Dense(784 -> 10,
// softmax) model, SGD lr 0.5, batch 64, shuffled, 50,000 training images scaled to
// [0, 1], on tfjs's WebAssembly backend (SIMD, one thread: the page is not
// cross-origin isolated). tfjs is installed by scripts/bench-web.sh into
// build/bench-tfjs, outside the project's dependencies.
import fs from 'node:fs';
import path from 'node:path';

const FILES = {
  'tf.min.js': '@tensorflow/tfjs/dist/tf.min.js',
  'tf-backend-wasm.min.js': '@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js',
  'tfjs-backend-wasm.wasm': '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm': '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm': '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm',
};

// Trains `epochs` epochs with tfjs in a blank page served beside the demo (so it
// can fetch the demo's gzipped MNIST); resolves to {epochMs, backend, validAcc}.
export async function tfjsEpochs(browser, origin, modulesDir, epochs) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.route('**/tfjs-bench/**', (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop();
    if (name === 'index.html') {
      return route.fulfill({ contentType: 'text/html',
        body: '<!doctype html><title>tfjs</title><script src="tf.min.js"></script><script src="tf-backend-wasm.min.js"></script>' });
    }
    if (!FILES[name]) return route.fulfill({ status: 404, body: 'not here' });
    return route.fulfill({ body: fs.readFileSync(path.join(modulesDir, FILES[name])),
                           contentType: name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript' });
  });
  await page.goto(`${origin}/tfjs-bench/index.html`);
  const result = await page.evaluate(async (n) => {
    const gunzip = async (url) => {
      const resp = await fetch(url);
      if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
      return new Uint8Array(await new Response(resp.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
    };
    const [images, labels] = await Promise.all([gunzip('/data/train-images-idx3-ubyte.gz'),
                                                gunzip('/data/train-labels-idx1-ubyte.gz')]);
    const N = 50000, D = 784, C = 10;
    const x = new Float32Array(N * D);
    for (let i = 0; i < N * D; i++) x[i] = images[16 + i] / 255;
    const y = new Float32Array(N * C);
    for (let i = 0; i < N; i++) y[i * C + labels[8 + i]] = 1;
    const vx = new Float32Array(10000 * D);
    for (let i = 0; i < vx.length; i++) vx[i] = images[16 + N * D + i] / 255;
    tf.wasm.setWasmPaths('/tfjs-bench/');
    await tf.setBackend('wasm');
    await tf.ready();
    const model = tf.sequential({ layers: [tf.layers.dense({ units: C, inputShape: [D], activation: 'softmax' })] });
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
    const xs = tf.tensor2d(x, [N, D]), ys = tf.tensor2d(y, [N, C]);
    const epochMs = [];
    let t0 = performance.now();
    await model.fit(xs, ys, {
      // fit's default yielding (an animation frame every ~125 ms) is kept: it is how
      // a page runs model.fit, as the demo yields between its slices. Without it
      // (yieldEvery: 'never', the page frozen) an epoch measured ~3,100-3,200 ms here.
      batchSize: 64, epochs: n, shuffle: true, verbose: 0,
      callbacks: { onEpochEnd: () => { const t = performance.now(); epochMs.push(t - t0); t0 = t; } },
    });
    const guess = model.predict(tf.tensor2d(vx, [10000, D])).argMax(1).dataSync();
    let hits = 0;
    for (let i = 0; i < 10000; i++) hits += guess[i] === labels[8 + N + i];
    return { epochMs, backend: tf.getBackend(), validAcc: hits / 10000 };
  }, epochs);
  await page.close();
  if (errors.length) throw new Error(`tfjs page: ${errors.join(' | ')}`);
  return result;
}
