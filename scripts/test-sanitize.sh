#!/usr/bin/env bash
# CI part of ./run test: (1) the whole native test suite (doctest + CLI) built with
# AddressSanitizer + UndefinedBehaviorSanitizer in build/sanitize and run by ctest;
# (2) each libFuzzer target for a short fixed time from its committed corpus.
#   SGDX_CI_FUZZ_SECONDS (default 20) sets (2)'s time per target; 0 skips it.
source "$(dirname "$0")/lib.sh"
ensure_native_deps

SAN_BUILD="$ROOT/build/sanitize"
if [ ! -f "$SAN_BUILD/build.ninja" ]; then
  say "configuring (build/sanitize: ASan + UBSan)"
  # RelWithDebInfo: optimised enough for the real-MNIST training tests, with line numbers in reports
  cmake -S "$ROOT" -B "$SAN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSGDX_SANITIZE=ON >/dev/null
fi
say "building (build/sanitize)"
cmake --build "$SAN_BUILD" -j "$JOBS" --target sgdx_tests sgdx

say "native tests under ASan + UBSan (ctest)"
# Every finding stops the test with a non-zero exit (also -fno-sanitize-recover=all).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:check_initialization_order=1:detect_stack_use_after_return=1:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$SAN_BUILD" --output-on-failure -j "$JOBS"

secs=${SGDX_CI_FUZZ_SECONDS:-20}
if [ "$secs" -gt 0 ]; then
  # the fuzz targets take their own sanitizer options
  ASAN_OPTIONS= UBSAN_OPTIONS= "$ROOT/scripts/fuzz.sh" "$secs"
fi
