// Runs sgdx_relaxed_bench (per-kernel times, relaxed SIMD against SIMD128) in
// headless Chromium and prints its output:
//   node web/relaxed/bench_chromium.mjs --dir build/wasm/web
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from '../server.mjs';
import { CHROMIUM_ARGS, CHROMIUM_PATH, arg } from '../tests/common.mjs';

const DIR = path.resolve(arg('--dir', 'build/wasm/web'));
fs.writeFileSync(path.join(DIR, 'relaxed-bench.html'),
  '<!doctype html><title>relaxed bench</title><script src="sgdx_relaxed_bench.js"></script>\n');
const server = createServer(DIR);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  let lines = 0;
  const done = new Promise((resolve) => page.on('console', (m) => {
    if (!/ us /.test(m.text()) && !/no relaxed SIMD/.test(m.text())) return;
    console.log(m.text());
    if (++lines >= 14 || /no relaxed SIMD/.test(m.text())) resolve();
  }));
  await page.goto(`http://127.0.0.1:${server.address().port}/relaxed-bench.html`);
  await Promise.race([done, new Promise((r) => setTimeout(r, 300000))]);
} finally {
  await browser.close();
  server.close();
}
