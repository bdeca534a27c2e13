# Helpers for the CUDA scripts (test-cuda.sh, bench-cuda.sh, gpu-check.sh); sourced after lib.sh.
NVCC=/usr/local/cuda/bin/nvcc
CUDA_BUILD="$ROOT/build/cuda"
CUDA_TARGETS=(sgdx sgdx_cuda_tests sgdx_cuda_bench)

# have_nvcc: true if the CUDA compiler is installed; otherwise says why the CUDA build is skipped.
have_nvcc() {
  [ -x "$NVCC" ] && return 0
  say "CUDA build skipped: $NVCC not found (CUDA 13 is needed to build the GPU backend; see shared/TOOLCHAIN.md)"
  return 1
}

# build_cuda: configures the 'cuda' preset once, then builds only what the CUDA
# checks run (not the CPU test suite: build/native has it). Prints the time taken.
build_cuda() {
  local start=$SECONDS
  # A build folder configured from another checkout (e.g. carried to a GPU
  # machine) cannot be reused by cmake: start it afresh.
  if [ -f "$CUDA_BUILD/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$CUDA_BUILD/CMakeCache.txt"; then
    say "build/cuda was configured elsewhere: reconfiguring"
    rm -rf "$CUDA_BUILD"
  fi
  if [ ! -f "$CUDA_BUILD/build.ninja" ]; then
    say "configuring (build/cuda)"
    (cd "$ROOT" && cmake --preset cuda) >/dev/null
  fi
  cmake_build "build/cuda: ${CUDA_TARGETS[*]}" "$CUDA_BUILD" -j "$JOBS" --target "${CUDA_TARGETS[@]}"
  say "cuda build: $((SECONDS - start)) s"
}
