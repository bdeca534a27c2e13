// The demo's web server: serves only the files under one folder (the built site),
// with cross-origin isolation (COOP/COEP) and a Content-Security-Policy that allows
// the page's own scripts and WebAssembly and nothing else.
//   node web/server.mjs [--port 8080] [--host 127.0.0.1] [--root build/wasm/site]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.gz': 'application/gzip',
  '.safetensors': 'application/octet-stream',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// Cross-origin isolation: lets a page use SharedArrayBuffer (wasm threads). The
// demo works without it too (its runtime is single-threaded).
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export const SECURITY_HEADERS = {
  'Content-Security-Policy': [
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "connect-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

// The file under `root` that the request path names, or null if the path is
// malformed or leaves the folder: '..' segments (also percent-encoded), encoded
// slashes or backslashes, NUL bytes, and symbolic links resolving outside `root`.
export function resolveSafe(root, requestPath) {
  const rawPath = requestPath.split('?')[0].split('#')[0];
  if (!rawPath.startsWith('/') || rawPath.startsWith('//')) return null;
  if (/%2f|%5c|%00/i.test(rawPath)) return null;
  let decoded;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').slice(1);
  if (segments.some((s) => s === '..' || s === '.')) return null;
  if (segments.slice(0, -1).some((s) => s === '')) return null;  // '//' inside
  const relative = segments.join('/') || 'index.html';
  const realRoot = fs.realpathSync(root);
  const candidate = path.join(realRoot, relative);
  let real;
  try {
    real = fs.realpathSync(candidate);
  } catch {
    return null;
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
  const stat = fs.statSync(real);
  if (stat.isDirectory()) {
    return segments[segments.length - 1] === '' || relative.endsWith('/')
      ? resolveSafe(root, `${rawPath.replace(/\/?$/, '/')}index.html`)
      : null;
  }
  return stat.isFile() ? real : null;
}

// isolate: false leaves out the COOP/COEP headers (the browser test checks the
// page also works that way).
export function createServer(root, { isolate = true } = {}) {
  const headers = isolate ? { ...ISOLATION_HEADERS, ...SECURITY_HEADERS } : SECURITY_HEADERS;
  return http.createServer((req, res) => {
    const reply = (status, text) => {
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return reply(405, 'method not allowed');
    }
    const file = resolveSafe(root, req.url || '/');
    if (!file) return reply(404, 'not found');
    const size = fs.statSync(file).size;
    res.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
      'Content-Length': size,
    });
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
}

function parseArgs(argv) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const opts = { port: 8080, host: '127.0.0.1', root: path.join(here, '..', 'build', 'wasm', 'site') };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '--port') opts.port = Number(value());
    else if (flag === '--host') opts.host = value();
    else if (flag === '--root') opts.root = value();
    else throw new Error(`unknown option '${argv[i]}' (options: --port N, --host ADDR, --root DIR)`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error('--port must be a whole number from 0 to 65535');
  }
  if (!fs.existsSync(path.join(opts.root, 'index.html'))) {
    throw new Error(`${opts.root}/index.html is missing: build the site first (./run demo does)`);
  }
  return opts;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`server: ${e.message}`);
    process.exit(2);
  }
  const server = createServer(opts.root);
  server.on('error', (e) => {
    console.error(`server: cannot listen on ${opts.host}:${opts.port}: ${e.message}`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    console.log(`sgdx demo: http://${opts.host}:${port}/  (serving ${opts.root}; Ctrl-C stops)`);
  });
}
