#!/usr/bin/env bash
# ./run bench cuda: ms per epoch of fit on the CPU and the GPU (batch 64 and
# 8192) and sgemm GFLOP/s of an 8192^3 product, sgdx's forward vs cuBLAS alone.
# Without a GPU only the CPU column is filled. Options go to sgdx_cuda_bench
# (--batches 64,8192 --epochs 3 --gemm 8192 --gemm-reps 10 --threads 1 --data DIR).
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/cuda-lib.sh"
have_nvcc || exit 0
ensure_native_deps
build_cuda
say "cuda benchmark"
"$CUDA_BUILD/native/cuda/sgdx_cuda_bench" --data "$MNIST_DIR" "$@"
