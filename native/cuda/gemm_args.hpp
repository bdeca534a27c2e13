#pragma once
// The row-major products of a training step as column-major BLAS sgemm calls
// (cuBLAS's convention). A row-major (r×c) array is, to column-major BLAS, its
// own transpose stored (c×r); each product is written for those transposes.
// Kept apart from the cuBLAS calls so a plain CPU sgemm can check the mapping
// on machines without a GPU (test_cuda.cpp).
#include <cstddef>

namespace sgdx::cuda {

// C (m×n) = alpha · op(A) · op(B) + beta · C, all column-major.
struct Gemm {
    bool trans_a, trans_b;
    int m, n, k;
    const float* a;
    int lda;
    const float* b;
    int ldb;
    float* c;
    int ldc;
};

// x: (B, D), w: (C, D) -> y: (B, C) (+)= x · wᵀ, as yᵀ (C×B) = (wᵀ)ᵀ · xᵀ.
Gemm forward_gemm(const float* x, const float* w, float* y, size_t B, size_t D, size_t C);

// x: (B, D), dy: (B, C) -> dw: (C, D) (+)= dyᵀ · x, as dwᵀ (D×C) = xᵀ · (dyᵀ)ᵀ.
Gemm weight_grad_gemm(const float* x, const float* dy, float* dw, size_t B, size_t D, size_t C);

// The BLAS definition, one loop per index: for checking the two above.
void sgemm_reference(const Gemm& g, float alpha, float beta);

}  // namespace sgdx::cuda
