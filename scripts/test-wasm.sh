#!/usr/bin/env bash
# The runtime's doctest suite compiled to WebAssembly and run under Node (ctest).
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/wasm-lib.sh"
build_wasm
say "wasm tests (ctest under Node)"
# One at a time: some test cases share a temp file name (test-tmp/bad.idx), and
# under Node each case is a slower process, so parallel runs race on it.
ctest --test-dir "$ROOT/build/wasm" --output-on-failure -j 1
