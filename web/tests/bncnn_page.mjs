// The BatchNorm CNN in the page as a person uses it: pick bncnn, press Start (its
// defaults: Adam, OneCycleLR, one epoch), read the test accuracy after the epoch and
// the epoch's times. Prints one JSON line; fails below --min-acc (default 0.99).
//   node web/tests/bncnn_page.mjs [--site build/wasm/site] [--min-acc 0.99] [--seed N]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from '../server.mjs';
import { CHROMIUM_ARGS, CHROMIUM_PATH, arg, check } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SITE = arg('--site', path.join(ROOT, 'build', 'wasm', 'site'));
const MIN_ACC = Number(arg('--min-acc', '0.99'));
const SEED = arg('--seed', null);  // the page's seed field (default: as the page has it, 0)

const server = createServer(SITE);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => !document.getElementById('start').disabled);
  await page.selectOption('#model', 'bncnn');
  await page.waitForFunction(() => document.getElementById('model').value === 'bncnn' &&
    !document.getElementById('start').disabled && /Adam/.test(document.getElementById('defaults-note').textContent));
  const epochs = Number(await page.inputValue('#epochs'));
  check(epochs === 1, `picking bncnn sets 1 epoch (got ${epochs})`);
  if (SEED !== null) await page.fill('#seed', SEED);
  const t0 = Date.now();
  await page.click('#start');
  await page.waitForSelector('#epoch-table tr[data-epoch="1"] td:nth-child(5):not(:empty)', { timeout: 1200000 });
  const acc = Number(await page.textContent('#epoch-table tr[data-epoch="1"] td:nth-child(5)'));
  const trainMs = Number(await page.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-compute-ms'));
  const wallMs = Number(await page.getAttribute('#epoch-table tr[data-epoch="1"]', 'data-wall-ms'));
  console.log(JSON.stringify({ model: 'bncnn', seed: Number(await page.inputValue('#seed')), test_accuracy: acc, train_ms: trainMs, wall_ms: wallMs,
                               seconds_to_result: (Date.now() - t0) / 1000 }));
  check(acc >= MIN_ACC, `bncnn's test accuracy after one epoch in the page ${acc} >= ${MIN_ACC}`);
} finally {
  await browser.close();
  server.close();
}
