// Shared by the browser test and the browser benchmark.
export const CHROMIUM_PATH = process.env.CHROMIUM || '/usr/bin/chromium';
// Headless in a sandbox with no network: no background connections to refuse.
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// The value after `--name` on the command line, or `fallback`.
export function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

export async function step(name, fn) {
  const t0 = Date.now();
  console.log(`- ${name}`);
  try {
    await fn();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
  console.log(`  ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
