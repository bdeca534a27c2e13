// nn.Linear over a kernel set (core/linear.hpp).
#include "core/linear.hpp"

#include "runtime/kernels/kernels.hpp"

namespace sgdx::core {

void sgd_step(const kernels::KernelSet& k, const SgdStep& step, float* p, const float* g, float* v, size_t n) {
    k.sgd_update(p, g, v, n, step.lr, v ? step.momentum : 0.f, 0.f, 0.f, false, step.first);
}

void linear_forward(const kernels::KernelSet& k, const float* x, const float* w, const float* b, float* y, size_t n,
                    size_t D, size_t C) {
    k.linear_forward(x, w, b, y, n, D, C);
}

void linear_forward_u8(const kernels::KernelSet& k, const uint8_t* x, float scale, const float* w, const float* b,
                       float* y, size_t n, size_t D, size_t C) {
    k.linear_forward_u8(x, scale, w, b, y, n, D, C);
}

void linear_input_grad(const kernels::KernelSet& k, const float* dy, const float* w, float* dx, size_t n, size_t D,
                       size_t C) {
    k.gemm(false, false, n, D, C, dy, C, w, D, dx, D, false);
}

void linear_weight_grad(const kernels::KernelSet& k, const float* x, const float* dy, float* dw, float* db, size_t n,
                        size_t D, size_t C) {
    k.linear_backward(x, dy, dw, db, n, D, C);
}

void linear_weight_grad_u8(const kernels::KernelSet& k, const uint8_t* x, float scale, const float* dy, float* dw,
                           float* db, size_t n, size_t D, size_t C) {
    k.linear_backward_u8(x, scale, dy, dw, db, n, D, C);
}

void linear_sgd_rows(const kernels::KernelSet& k, const float* x, const float* dy, float* w, float* b, float* vw,
                     float* vb, float* row, size_t n, size_t D, size_t C, const SgdStep& step) {
    for (size_t j = 0; j < C; ++j) {
        // row: (1, D) = column j of dy, (n, 1), transposed · x (n, D)
        k.gemm(true, false, 1, D, n, dy + j, C, x, D, row, D, false);
        float gb = 0.f;
        for (size_t i = 0; i < n; ++i) gb += dy[i * C + j];
        sgd_step(k, step, w + j * D, row, vw ? vw + j * D : nullptr, D);
        sgd_step(k, step, b + j, &gb, vb ? vb + j : nullptr, 1);
    }
}

}  // namespace sgdx::core
