// The demo server's path rules and headers (node --test web/tests/server.test.mjs).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createServer, resolveSafe } from '../server.mjs';

// A site folder with a file, a sub-folder, a link inside and links leading out.
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'sgdx-server-'));
const root = path.join(base, 'site');
const secret = path.join(base, 'secret.txt');
fs.mkdirSync(path.join(root, 'data'), { recursive: true });
fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>t</title>');
fs.writeFileSync(path.join(root, 'data', 'a.gz'), 'gz');
fs.writeFileSync(secret, 'secret');
fs.symlinkSync(path.join(root, 'data', 'a.gz'), path.join(root, 'inside-link.gz'));
fs.symlinkSync(secret, path.join(root, 'outside-link.txt'));
fs.symlinkSync(base, path.join(root, 'outside-dir'));

let server, port;
before(async () => {
  server = createServer(root);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  port = server.address().port;
});
after(() => { server.close(); fs.rmSync(base, { recursive: true, force: true }); });

// A raw request: the path goes out exactly as written (no client normalisation).
function get(rawPath, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves the site\'s own files', () => {
  assert.equal(resolveSafe(root, '/'), fs.realpathSync(path.join(root, 'index.html')));
  assert.equal(resolveSafe(root, '/data/a.gz?x=1'), fs.realpathSync(path.join(root, 'data', 'a.gz')));
  assert.equal(resolveSafe(root, '/inside-link.gz'), fs.realpathSync(path.join(root, 'data', 'a.gz')));
});

test('rejects paths that leave the folder or are malformed', () => {
  for (const p of ['/../secret.txt', '/data/../../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E/secret.txt',
                   '/data/%2e%2e/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt',
                   '/..%5csecret.txt', '//etc/passwd', '/%2fetc/passwd', secret, `/${secret}`,
                   '/outside-link.txt', '/outside-dir/secret.txt', '/index.html%00.png', '/%zz',
                   '/data/./a.gz', 'index.html', '/data', '/missing.js']) {
    assert.equal(resolveSafe(root, p), null, p);
  }
});

test('over HTTP: 404 for every escape, 200 with isolation and CSP headers for the page', async () => {
  for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/%2e%2e%2fsecret.txt', '/outside-link.txt',
                   '/outside-dir/secret.txt', '//etc/passwd']) {
    const r = await get(p);
    assert.equal(r.status, 404, p);
    assert.ok(!r.body.includes('secret'), p);
  }
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.match(page.headers['content-security-policy'], /script-src 'self' 'wasm-unsafe-eval'/);
  assert.doesNotMatch(page.headers['content-security-policy'], /'unsafe-inline'|'unsafe-eval'/);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  const gz = await get('/data/a.gz', 'HEAD');
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-length'], '2');
  assert.equal((await get('/', 'POST')).status, 405);
});
