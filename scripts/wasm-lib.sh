# Helpers for the WebAssembly scripts (sourced after scripts/lib.sh).

WASM_PACKAGES=(cmake ninja-build emscripten nodejs gzip xtensor-dev xtl-dev libxsimd-dev doctest-dev)
# emcc's JS optimizer needs Debian's node-acorn, which Node does not find by itself.
export NODE_PATH=/usr/share/nodejs

# build_wasm [TARGET...]: configures build/wasm once, then builds (incremental).
build_wasm() {
  ensure_apt "${WASM_PACKAGES[@]}"
  ensure_npm
  if [ ! -f "$ROOT/build/wasm/build.ninja" ]; then
    say "configuring (build/wasm, Emscripten)"
    (cd "$ROOT" && cmake --preset wasm) >/dev/null
  fi
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake_build build/wasm "$ROOT/build/wasm" -j "$JOBS" "${targets[@]}"
}

# The demo's files: build/wasm/site (sgdx_web.js/.wasm, the page, gzipped MNIST).
SITE_DIR="$ROOT/build/wasm/site"
