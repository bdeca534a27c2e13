#!/usr/bin/env bash
# CI part of ./run test: (1) the whole native build and test suite (doctest, the C
# API, the CLI scripts) with AddressSanitizer + UndefinedBehaviorSanitizer in
# build/sanitize, run by ctest; (2) each libFuzzer target for a short fixed time
# from its committed corpus. build/sanitize is clang-14's, shared with scripts/fuzz.sh.
#   SGDX_CI_FUZZ_SECONDS (default 20) sets (2)'s time per target; 0 skips it.
source "$(dirname "$0")/lib.sh"
ensure_native_deps
"$ROOT/scripts/fuzz.sh" --configure
SAN_BUILD="$ROOT/build/sanitize"
say "building (build/sanitize: ASan + UBSan)"
cmake --build "$SAN_BUILD" -j "$JOBS"
say "built (${SECONDS}s so far)"

say "native tests under ASan + UBSan (ctest)"
# Any report ends the test with a non-zero exit (the code is also built with
# -fno-sanitize-recover=all); leaks count.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  ctest --test-dir "$SAN_BUILD" --output-on-failure -j "$JOBS" \
    -E '^(portable_older_cpus|checkpoint_kill_resume_(mlp|cnn)|pytorch_training)$'
# Left out: portable_older_cpus runs the binaries under qemu-x86_64, where ASan's
# shadow memory gets committed (19 GB of this 24 GB machine within 30 s); the plain
# build's ctest runs it. The networks' kill-and-resume runs and the PyTorch training
# comparison take 1-2 minutes each under ASan and run code the sanitized CLI and
# unit tests already cover (cnn/mlp training, checkpoints, resume): the plain
# build's ctest runs them.
say "sanitized tests passed (${SECONDS}s so far)"

secs=${SGDX_CI_FUZZ_SECONDS:-20}
if [ "$secs" -gt 0 ]; then "$ROOT/scripts/fuzz.sh" "$secs"; fi
say "test-sanitize done in ${SECONDS}s"
