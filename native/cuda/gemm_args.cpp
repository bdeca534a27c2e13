#include "gemm_args.hpp"

#include <climits>
#include <string>

#include "runtime/error.hpp"

namespace sgdx::cuda {
namespace {

// cuBLAS takes int dimensions.
int to_int(size_t v, const char* what) {
    if (v > size_t(INT_MAX)) throw Error(std::string(what) + " = " + std::to_string(v) + " is too large for cuBLAS");
    return int(v);
}

}  // namespace

Gemm forward_gemm(const float* x, const float* w, float* y, size_t B, size_t D, size_t C) {
    const int b = to_int(B, "batch"), d = to_int(D, "features"), c = to_int(C, "classes");
    // wᵀ is stored D×C (ld D), used transposed; xᵀ is stored D×B (ld D); yᵀ is C×B (ld C).
    return {true, false, c, b, d, w, d, x, d, y, c};
}

Gemm weight_grad_gemm(const float* x, const float* dy, float* dw, size_t B, size_t D, size_t C) {
    const int b = to_int(B, "batch"), d = to_int(D, "features"), c = to_int(C, "classes");
    // xᵀ is stored D×B (ld D); dyᵀ is stored C×B (ld C), used transposed; dwᵀ is D×C (ld D).
    return {false, true, d, c, b, x, d, dy, c, dw, d};
}

void sgemm_reference(const Gemm& g, float alpha, float beta) {
    // op(A)(i, l) and op(B)(l, j) of column-major storage.
    auto a = [&](int i, int l) { return g.trans_a ? g.a[l + size_t(i) * g.lda] : g.a[i + size_t(l) * g.lda]; };
    auto b = [&](int l, int j) { return g.trans_b ? g.b[j + size_t(l) * g.ldb] : g.b[l + size_t(j) * g.ldb]; };
    for (int j = 0; j < g.n; ++j)
        for (int i = 0; i < g.m; ++i) {
            float acc = 0.f;
            for (int l = 0; l < g.k; ++l) acc += a(i, l) * b(l, j);
            float& out = g.c[i + size_t(j) * g.ldc];
            out = alpha * acc + (beta == 0.f ? 0.f : beta * out);
        }
}

}  // namespace sgdx::cuda
