#!/usr/bin/env bash
# The runtime's doctest suite compiled to WebAssembly and run under Node (ctest).
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/wasm-lib.sh"
build_wasm
say "wasm tests (ctest under Node)"
ctest --test-dir "$WASM_BUILD" --output-on-failure -j "$JOBS"
