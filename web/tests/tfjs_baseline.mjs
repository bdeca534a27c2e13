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

// A blank page beside the demo (so it can fetch the demo's gzipped MNIST) with tfjs
// and its wasm backend loaded from build/bench-tfjs; page errors are collected.
async function openTfjsPage(browser, origin, modulesDir) {
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
  return { page, errors };
}

// Trains `epochs` epochs with tfjs in a blank page served beside the demo (so it
// can fetch the demo's gzipped MNIST); resolves to {epochMs, backend, validAcc}.
export async function tfjsEpochs(browser, origin, modulesDir, epochs) {
  const { page, errors } = await openTfjsPage(browser, origin, modulesDir);
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

// The tutorial CNN (Conv2d 1->16->16->10, 3x3 stride 2 padding 1, ReLUs, 4x4 average
// pooling; SGD lr 0.1 momentum 0.9, batch 64) with tfjs `model.fit` in the same
// browser. Its wasm backend cannot train it (no Conv2DBackpropFilter kernel): that
// is tried and its error kept; then the CPU backend (WebGL needs a GPU the headless
// browser lacks) trains `images` images, and the epoch is scaled to 50,000.
// Resolves to {epochMs, backend, wasmError, images}.
export async function tfjsCnnEpoch(browser, origin, modulesDir, images) {
  const { page, errors } = await openTfjsPage(browser, origin, modulesDir);
  const result = await page.evaluate(async (n) => {
    const gunzip = async (url) => {
      const resp = await fetch(url);
      return new Uint8Array(await new Response(resp.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
    };
    const [images, labels] = await Promise.all([gunzip('/data/train-images-idx3-ubyte.gz'),
                                                gunzip('/data/train-labels-idx1-ubyte.gz')]);
    const D = 784, C = 10;
    const x = new Float32Array(n * D);
    for (let i = 0; i < n * D; i++) x[i] = images[16 + i] / 255;
    const y = new Float32Array(n * C);
    for (let i = 0; i < n; i++) y[i * C + labels[8 + i]] = 1;
    const build = () => {
      const conv = (filters, extra = {}) => tf.layers.conv2d({ filters, kernelSize: 3, strides: 2, padding: 'same',
                                                               activation: 'relu', ...extra });
      const model = tf.sequential({ layers: [conv(16, { inputShape: [28, 28, 1] }), conv(16), conv(C),
        tf.layers.averagePooling2d({ poolSize: 4 }), tf.layers.flatten()] });
      model.compile({ optimizer: tf.train.momentum(0.1, 0.9), loss: tf.losses.softmaxCrossEntropy });
      return model;
    };
    const fit = async () => {
      const model = build();
      const xs = tf.tensor4d(x, [n, 28, 28, 1]), ys = tf.tensor2d(y, [n, C]);
      await model.fit(xs.slice(0, 128), ys.slice(0, 128), { batchSize: 64, epochs: 1, verbose: 0 });  // warm-up
      const t0 = performance.now();
      await model.fit(xs, ys, { batchSize: 64, epochs: 1, shuffle: true, verbose: 0 });
      return performance.now() - t0;
    };
    tf.wasm.setWasmPaths('/tfjs-bench/');
    let wasmError = '';
    try {
      await tf.setBackend('wasm');
      await tf.ready();
      const ms = await fit();
      return { epochMs: ms * 50000 / n, backend: 'wasm', wasmError, images: n };
    } catch (e) {
      wasmError = String(e.message || e);
    }
    await tf.setBackend('cpu');
    await tf.ready();
    const ms = await fit();
    return { epochMs: ms * 50000 / n, backend: 'cpu', wasmError, images: n };
  }, images);
  await page.close();
  if (errors.length) throw new Error(`tfjs CNN page: ${errors.join(' | ')}`);
  return result;
}
