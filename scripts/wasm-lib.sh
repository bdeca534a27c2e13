# Helpers for the WebAssembly scripts (sourced after scripts/lib.sh).

# clang-19 and lld-19 build the relaxed-SIMD kernel module (web/relaxed): Emscripten
# 3.1.6's own clang 14 cannot emit the final relaxed-SIMD opcodes.
WASM_PACKAGES=(cmake ninja-build emscripten nodejs gzip xtensor-dev xtl-dev libxsimd-dev doctest-dev clang-19 lld-19)
# emcc's JS optimizer needs Debian's node-acorn, which Node does not find by itself.
export NODE_PATH=/usr/share/nodejs

# The build folder: build/wasm, or $SGDX_WASM_BUILD (a second checkout's or
# person's own, so that two builds on one machine do not meet).
WASM_BUILD=${SGDX_WASM_BUILD:-$ROOT/build/wasm}

# build_wasm [TARGET...]: configures the build folder once, then builds (incremental).
build_wasm() {
  ensure_apt "${WASM_PACKAGES[@]}"
  ensure_npm
  if [ ! -f "$WASM_BUILD/build.ninja" ]; then
    say "configuring (${WASM_BUILD#"$ROOT"/}, Emscripten)"
    (cd "$ROOT" && cmake --preset wasm -B "$WASM_BUILD") >/dev/null
  fi
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake_build "${WASM_BUILD#"$ROOT"/}" "$WASM_BUILD" -j "$JOBS" "${targets[@]}"
}

# The demo's files: build/wasm/site (sgdx_web.js/.wasm and the threaded
# sgdx_web_mt.*, the page, gzipped MNIST).
SITE_DIR="$WASM_BUILD/site"
