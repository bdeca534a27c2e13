#!/usr/bin/env bash
# The browser demo's tests: the server's path rules (node --test), then the page in
# headless Chromium (Debian's, driven by playwright-core). Screenshots go to
# build/wasm/web-test/.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/wasm-lib.sh"
ensure_apt chromium
build_wasm sgdx_site
[ -x "$ROOT/build/native/sgdx" ] || build_native   # the CLI writes the model the page loads
say "web tests: server path rules"
node --test "$ROOT/web/tests/server.test.mjs"
say "web tests: the page in headless Chromium"
timeout 480 node "$ROOT/web/tests/browser.mjs" --site "$SITE_DIR" --sgdx "$ROOT/build/native/sgdx" --out "$WASM_BUILD/web-test"
