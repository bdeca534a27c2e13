#!/usr/bin/env bash
# The CUDA backend's tests (called by ./run test): builds the 'cuda' preset with
# nvcc and runs its ctest. On a machine without a GPU (the header line says why)
# the device test cases are listed as skipped, each saying "skipped: no CUDA
# device (...)" in its output (ctest -V shows it); the no-GPU
# behaviour, input checks and the comparison harness still run. Without nvcc
# the CUDA build is skipped, saying why.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/cuda-lib.sh"
have_nvcc || exit 0
ensure_native_deps
build_cuda
say "cuda tests (ctest): $("$CUDA_BUILD/sgdx" --version | sed -n 's/^backends: //p')"
ctest --test-dir "$CUDA_BUILD" -R '^cuda/' --output-on-failure -j "$JOBS"
