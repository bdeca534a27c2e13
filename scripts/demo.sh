#!/usr/bin/env bash
# ./run demo [--port P] [--host H]: builds what is missing, then serves the
# in-browser training demo (default http://127.0.0.1:8080/; Ctrl-C stops).
source "$(dirname "$0")/lib.sh"
case "${1:-}" in -h|--help) usage_of "$0"; exit 0 ;; esac
source "$ROOT/scripts/wasm-lib.sh"
build_wasm sgdx_site
exec node "$ROOT/web/server.mjs" --root "$SITE_DIR" "$@"
