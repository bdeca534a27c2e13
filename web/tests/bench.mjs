// Browser benchmark: trains EPOCHS epochs (50,000 images, batch 64) in the demo
// page in headless Chromium and prints ms/epoch, with the wasm heap and the page's
// JS heap after each epoch (they must stay flat).
//   node web/tests/bench.mjs [--epochs 5] [--plain-js-epochs 4] [--json out.json]
//                            [--tfjs build/bench-tfjs/node_modules] [--tfjs-epochs 4]
//                            [--cnn-epochs 3] [--tfjs-cnn-images 1280] [--lenet-epochs 1]
// Then trains the plain-JS baseline (plain_js_baseline.mjs) in the same page, and
// TensorFlow.js model.fit (tfjs_baseline.mjs) in the same browser if --tfjs is given.
// Then the tutorial CNN: its epochs in the page (with its threads, and with one) and
// in the worker alone, and tfjs's; then the LeNet-like CNN's with both.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ISOLATION_HEADERS, createServer } from '../server.mjs';
import { CHROMIUM_ARGS, CHROMIUM_PATH, arg, check } from './common.mjs';
import { trainPlainJs } from './plain_js_baseline.mjs';
import { tfjsCnnEpoch, tfjsEpochs } from './tfjs_baseline.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SITE = arg('--site', path.join(ROOT, 'build', 'wasm', 'site'));
const EPOCHS = Number(arg('--epochs', '5'));
const JSON_OUT = arg('--json', '');
const PLAIN_JS_EPOCHS = Number(arg('--plain-js-epochs', '4'));
const TFJS_DIR = arg('--tfjs', '');
const TFJS_EPOCHS = Number(arg('--tfjs-epochs', '4'));
const CNN_EPOCHS = Number(arg('--cnn-epochs', '3'));
const TFJS_CNN_IMAGES = Number(arg('--tfjs-cnn-images', '1280'));
const LENET_EPOCHS = Number(arg('--lenet-epochs', '1'));

// The first epoch warms the engine's tiers up; steady state is the rest (all of a
// one-epoch run).
const afterWarmup = (xs) => (xs.length > 1 ? xs.slice(1) : xs);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Trains `epochs` epochs in worker.js from a blank page, cross-origin isolated as
// the demo's page is (so with the same threads); resolves to the worker's training
// ms per epoch.
async function bareWorkerEpochs(browser, epochs, model = { architecture: 'logistic', lr: 0.5, momentum: 0 }) {
  const page = await browser.newPage();
  await page.route('**/bare-worker.html', (route) => route.fulfill({
    contentType: 'text/html', headers: ISOLATION_HEADERS, body: '<!doctype html><title>worker</title>' }));
  await page.goto(`http://127.0.0.1:${server.address().port}/bare-worker.html`);
  const ms = await page.evaluate(([n, model]) => new Promise((resolve, reject) => {
    const worker = new Worker('worker.js', { type: 'module' });
    const out = [];
    out.threads = 0;
    let seconds = 0;
    const fail = (why) => { worker.terminate(); reject(new Error(`the worker alone: ${why}`)); };
    const timer = setTimeout(() => fail('no result after 600 s'), 600000);
    worker.onerror = (e) => fail(e.message || 'the worker failed to start');
    worker.onmessage = ({ data: m }) => {
      if (m.type === 'error') fail(m.message);
      const start = () => worker.postMessage({ type: 'start', lr: model.lr, momentum: model.momentum, batchSize: 64,
                                               epochs: n, seed: 0, fresh: true });
      if (m.type === 'ready') {
        out.threads = m.threads;
        if (model.architecture === 'logistic') start();
        else worker.postMessage({ type: 'setModel', architecture: model.architecture, seed: 0 });
      }
      if (m.type === 'model' && m.info.architecture === model.architecture && model.architecture !== 'logistic') start();
      if (m.type !== 'progress') return;
      seconds += m.seconds;
      if (!m.epochEnd) return;
      out.push(seconds * 1000);
      seconds = 0;
      if (out.length === n) { clearTimeout(timer); worker.terminate(); resolve({ ms: out, threads: out.threads }); }
    };
    worker.postMessage({ type: 'init' });
  }), [epochs, model]);
  await page.close();
  ms.ms.threads = ms.threads;
  return ms.ms;
}

// The demo page at `query` (e.g. '?threads=1'): picks `model`, trains `epochs`
// epochs with its defaults; resolves to {threads, rows: [{epoch, computeMs,
// wallMs, testAcc}]}.
async function pageEpochs(browser, query, model, epochs) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${server.address().port}/${query}`);
  await page.waitForSelector('#start:not([disabled])', { timeout: 60000 });
  const threads = Number(await page.evaluate(() => document.body.dataset.threads));
  await pickModel(page, model);
  const rows = await trainEpochs(page, epochs);
  await page.close();
  return { threads, rows };
}

async function pickModel(page, model) {
  await page.selectOption('#model', model);
  await page.waitForFunction((m) => document.getElementById('model').value === m && !document.getElementById('start').disabled &&
    /pretrained/.test(document.getElementById('status').textContent), model);
}

// Presses Start for `epochs` epochs and reads each epoch's row of the table.
async function trainEpochs(page, epochs) {
  await page.fill('#epochs', String(epochs));
  await page.click('#start');
  const rows = [];
  for (let e = 1; e <= epochs; e++) {
    const sel = `#epoch-table tr[data-epoch="${e}"]`;
    await page.waitForSelector(`${sel}[data-compute-ms] td:nth-child(5):not(:empty)`, { timeout: 300000 });
    rows.push({ epoch: e, computeMs: Number(await page.getAttribute(sel, 'data-compute-ms')),
                wallMs: Number(await page.getAttribute(sel, 'data-wall-ms')),
                testAcc: Number(await page.textContent(`${sel} td:nth-child(5)`)) });
  }
  return rows;
}

const server = createServer(SITE);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, '--js-flags=--expose-gc', '--enable-precise-memory-info'],
});
const errors = [];
try {
  // The worker alone is measured before and after the page, and the two runs'
  // epochs pooled: this machine runs fast or slow for seconds at a time, and one
  // run of each in turn measured the page 2.6x the worker one time and 1.0x when
  // the page's panels were hidden or not in another (the page's drawing is not what
  // costs: hiding it changed nothing).
  const bareBefore = await bareWorkerEpochs(browser, EPOCHS);
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForSelector('#start:not([disabled])', { timeout: 60000 });
  const kernels = /kernels ([^\s,.]+)/.exec(await page.textContent('#status'))[1];
  const pageThreads = Number(await page.evaluate(() => document.body.dataset.threads));
  await page.fill('#epochs', String(EPOCHS));
  await page.fill('#batch', '64');
  await page.fill('#lr', '0.5');
  await page.click('#start');
  const rows = [];
  for (let e = 1; e <= EPOCHS; e++) {
    const sel = `#epoch-table tr[data-epoch="${e}"]`;
    await page.waitForSelector(`${sel}[data-wasm-bytes][data-compute-ms] td:nth-child(5):not(:empty)`, { timeout: 120000 });
    const jsHeap = await page.evaluate(() => { window.gc(); return performance.memory.usedJSHeapSize; });
    rows.push({
      epoch: e,
      computeMs: Number(await page.getAttribute(sel, 'data-compute-ms')),
      wallMs: Number(await page.getAttribute(sel, 'data-wall-ms')),
      wasmBytes: Number(await page.getAttribute(sel, 'data-wasm-bytes')),
      jsHeap,
      testAcc: Number(await page.textContent(`${sel} td:nth-child(5)`)),
    });
  }
  for (const r of rows) {
    console.log(`browser epoch ${r.epoch}: ${r.computeMs.toFixed(1)} ms training (${r.wallMs.toFixed(1)} ms wall with ` +
                `validation and page updates), test acc ${r.testAcc}, wasm heap ${(r.wasmBytes / 2 ** 20).toFixed(1)} MiB, ` +
                `page JS heap ${(r.jsHeap / 2 ** 20).toFixed(2)} MiB`);
  }
  const steady = afterWarmup(rows);
  const result = {
    kernels,
    pageThreads,
    computeMs: median(steady.map((r) => r.computeMs)),
    // No best for the wall: one epoch's wall alone swings both ways when the page
    // is late to hear of an epoch's end and then hears of the next one early.
    wallMs: median(steady.map((r) => r.wallMs)),
    // The least disturbed epoch: on a shared machine slowdowns come from outside
    // and only ever add time, so the best epoch is the steadiest comparison.
    bestComputeMs: Math.min(...steady.map((r) => r.computeMs)),
    wasmGrowthBytes: rows[rows.length - 1].wasmBytes - rows[0].wasmBytes,
    jsHeapGrowthBytes: rows[rows.length - 1].jsHeap - steady[0].jsHeap,
    epochs: rows,
  };
  console.log(`browser (${kernels}): median ${result.computeMs.toFixed(1)} ms/epoch training, ` +
              `${result.wallMs.toFixed(1)} ms/epoch wall; wasm heap growth over ${EPOCHS} epochs ` +
              `${result.wasmGrowthBytes} bytes, page JS heap growth ${(result.jsHeapGrowthBytes / 1024).toFixed(0)} KiB`);
  // The plain-JS baseline in the same page once the wasm training is done (the
  // page is idle then): same data, model and batch size.
  if (PLAIN_JS_EPOCHS > 0) {
    const plain = await page.evaluate(trainPlainJs, { epochs: PLAIN_JS_EPOCHS });
    result.plainJsMs = median(afterWarmup(plain.epochMs));
    result.plainJsValidAcc = plain.validAcc;
    console.log(`plain JS loop, same page: ${plain.epochMs.map((m) => m.toFixed(0)).join(', ')} ms per epoch ` +
                `(median after the first ${result.plainJsMs.toFixed(0)} ms), validation accuracy ${plain.validAcc.toFixed(4)}`);
    // lr 0.5 makes the accuracy swing by a few points from epoch to epoch (sgdx's too).
    check(plain.validAcc > 0.8, 'the plain-JS baseline learns (validation accuracy > 0.8)');
  }
  if (TFJS_DIR) {
    const tfjs = await tfjsEpochs(browser, `http://127.0.0.1:${server.address().port}`, TFJS_DIR, TFJS_EPOCHS);
    result.tfjsMs = median(afterWarmup(tfjs.epochMs));
    result.tfjsBackend = tfjs.backend;
    console.log(`TensorFlow.js 4.22 model.fit (${tfjs.backend} backend), same browser: ` +
                `${tfjs.epochMs.map((m) => m.toFixed(0)).join(', ')} ms per epoch, validation accuracy ${tfjs.validAcc.toFixed(4)}`);
    check(tfjs.backend === 'wasm', `tfjs ran on its wasm backend (got ${tfjs.backend})`);
    check(tfjs.validAcc > 0.8, 'the tfjs baseline learns (validation accuracy > 0.8)');
  }
  // The same worker with no page around it (no charts, no DOM): what the page's
  // drawing costs the training on this machine.
  const bare = await bareWorkerEpochs(browser, EPOCHS);
  const bareSteady = [...afterWarmup(bareBefore), ...afterWarmup(bare)];
  result.bareWorkerMs = median(bareSteady);
  result.bestBareWorkerMs = Math.min(...bareSteady);
  console.log(`the worker alone (no page): median ${result.bareWorkerMs.toFixed(1)} ms/epoch training, ` +
              `best ${result.bestBareWorkerMs.toFixed(1)}`);
  // The tutorial CNN (lr 0.1, momentum 0.9, batch 64): in the page (its threads),
  // the worker alone, and the page with one thread (?threads=1: the single-thread
  // build a page without cross-origin isolation runs).
  const logRows = (what, rows) => {
    for (const r of rows) {
      console.log(`browser ${what} epoch ${r.epoch}: ${r.computeMs.toFixed(0)} ms training (${r.wallMs.toFixed(0)} ms wall), ` +
                  `test acc ${r.testAcc}`);
    }
  };
  if (CNN_EPOCHS > 0) {
    await pickModel(page, 'cnn');
    const cnnRows = await trainEpochs(page, CNN_EPOCHS);
    logRows(`CNN (${pageThreads} threads)`, cnnRows);
    const steadyCnn = afterWarmup(cnnRows);
    result.cnnComputeMs = median(steadyCnn.map((r) => r.computeMs));
    result.cnnWallMs = median(steadyCnn.map((r) => r.wallMs));
    result.cnnEpochs = cnnRows;
    const bareCnn = await bareWorkerEpochs(browser, CNN_EPOCHS, { architecture: 'cnn', lr: 0.1, momentum: 0.9 });
    result.cnnBareWorkerMs = median(afterWarmup(bareCnn));
    console.log(`the worker alone, CNN (${bareCnn.threads} threads): ${bareCnn.map((m) => m.toFixed(0)).join(', ')} ms per epoch`);
    const one = await pageEpochs(browser, '?threads=1', 'cnn', CNN_EPOCHS);
    check(one.threads === 1, `?threads=1 gives the page 1 thread (got ${one.threads})`);
    logRows('CNN (1 thread)', one.rows);
    result.cnnComputeMs1 = median(afterWarmup(one.rows).map((r) => r.computeMs));
    result.cnnWallMs1 = median(afterWarmup(one.rows).map((r) => r.wallMs));
    result.cnnEpochs1 = one.rows;
    // The same with the SIMD128 kernels (?relaxed=0) where the page runs the
    // relaxed-SIMD ones: what relaxed SIMD's fused multiply-add gains.
    if (kernels !== 'wasm_simd128') {
      for (const [query, key] of [['?relaxed=0', 'cnnPlain'], ['?threads=1&relaxed=0', 'cnnPlain1']]) {
        const r = await pageEpochs(browser, query, 'cnn', CNN_EPOCHS);
        logRows(`CNN, wasm_simd128 (${r.threads} thread${r.threads > 1 ? 's' : ''})`, r.rows);
        result[`${key}ComputeMs`] = median(afterWarmup(r.rows).map((x) => x.computeMs));
        result[`${key}WallMs`] = median(afterWarmup(r.rows).map((x) => x.wallMs));
        result[`${key}Epochs`] = r.rows;
      }
    }
    if (TFJS_DIR) {
      const t = await tfjsCnnEpoch(browser, `http://127.0.0.1:${server.address().port}`, TFJS_DIR, TFJS_CNN_IMAGES);
      result.cnnTfjsMs = t.epochMs;
      result.cnnTfjsBackend = t.backend;
      result.cnnTfjsWasmError = t.wasmError;
      console.log(`TensorFlow.js 4.22 CNN model.fit: ${t.backend} backend, ${t.images} images timed, ` +
                  `${t.epochMs.toFixed(0)} ms per 50,000-image epoch${t.wasmError ? ` (wasm backend: "${t.wasmError}")` : ''}`);
    }
  }
  // The LeNet-like CNN (its defaults: lr 0.05, momentum 0.9), with the page's
  // threads and with one; one epoch is ~10 s, so every epoch counts.
  if (LENET_EPOCHS > 0) {
    const lenetRuns = [['', 'lenet'], ['?threads=1', 'lenet1']];
    if (kernels !== 'wasm_simd128') lenetRuns.push(['?relaxed=0', 'lenetPlain'], ['?threads=1&relaxed=0', 'lenetPlain1']);
    for (const [query, key] of lenetRuns) {
      const r = await pageEpochs(browser, query, 'lenet', LENET_EPOCHS);
      logRows(`LeNet${/relaxed=0/.test(query) ? ', wasm_simd128' : ''} (${r.threads} thread${r.threads > 1 ? 's' : ''})`, r.rows);
      result[`${key}ComputeMs`] = median(r.rows.map((x) => x.computeMs));
      result[`${key}WallMs`] = median(r.rows.map((x) => x.wallMs));
      result[`${key}Threads`] = r.threads;
      result[`${key}Epochs`] = r.rows;
    }
  }
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(result, null, 2));
  check(errors.length === 0, `no console errors (${errors.join(' | ')})`);
  check(result.wasmGrowthBytes === 0, 'the wasm heap does not grow across epochs');
  // The page keeps per-batch chart points (~80 per epoch), so allow a little.
  check(result.jsHeapGrowthBytes < 2 * 2 ** 20, 'the page JS heap stays flat across epochs (< 2 MiB growth)');
} finally {
  await browser.close();
  server.close();
}
