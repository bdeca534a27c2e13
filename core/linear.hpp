#pragma once
// nn.Linear's forward and backward, written once over a kernel set: the
// runtime's Linear (runtime/linear: PyTorch's parameters, its thread parts,
// each part calling these) and the C API's op (core/ops, with the Cortex-M4
// set, kernels::m4::kernel_set()). The products are the set's; what is here
// is which products a Linear is.
//
// Two ways to apply the weight gradient: stored (linear_weight_grad, then an
// optimiser: the runtime) or fused row by row into an SGD step
// (linear_sgd_rows: the device, whose RAM holds one row's gradient, not the
// whole (C, D) of it).
//
// No allocation, no exceptions (core/).
#include <cstddef>
#include <cstdint>

namespace sgdx::kernels {
struct KernelSet;
}

namespace sgdx::core {

// PyTorch's SGD (no dampening, weight decay or Nesterov) as a fused backward applies it.
struct SgdStep {
    float lr, momentum;
    bool first;  // the first step since creation or load: the momentum starts as the gradient
};

// step on n values: p -= lr · g, through the momentum v (or none, v null)
void sgd_step(const kernels::KernelSet& k, const SgdStep& step, float* p, const float* g, float* v, size_t n);

// x: (n, D), w: (C, D), b: (C) -> y: (n, C) = x · wᵀ + b
void linear_forward(const kernels::KernelSet& k, const float* x, const float* w, const float* b, float* y, size_t n,
                    size_t D, size_t C);
// x_u8: (n, D) with x = scale · x_u8, the rest as above (the set must have
// uint8 kernels: the caller converts the bytes where it has none)
void linear_forward_u8(const kernels::KernelSet& k, const uint8_t* x, float scale, const float* w, const float* b,
                       float* y, size_t n, size_t D, size_t C);

// dy: (n, C), w: (C, D) -> dx: (n, D) = dy · w
void linear_input_grad(const kernels::KernelSet& k, const float* dy, const float* w, float* dx, size_t n, size_t D,
                       size_t C);

// x: (n, D), dy: (n, C) -> dw: (C, D) += dyᵀ · x, db: (C) += Σ_n dy
// (the set's linear_backward: not the Cortex-M4 set's, which has none and sums
// a row at a time, linear_sgd_rows)
void linear_weight_grad(const kernels::KernelSet& k, const float* x, const float* dy, float* dw, float* db, size_t n,
                        size_t D, size_t C);
void linear_weight_grad_u8(const kernels::KernelSet& k, const uint8_t* x, float scale, const float* dy, float* dw,
                           float* db, size_t n, size_t D, size_t C);

// The same gradient a row at a time, each row j of w (and b[j]) stepped by `step`
// as soon as it is summed (vw, vb: momentum, or null): row: (D) scratch. Call
// linear_input_grad first if dx is wanted: it reads the weights before the step.
void linear_sgd_rows(const kernels::KernelSet& k, const float* x, const float* dy, float* w, float* b, float* vw,
                     float* vb, float* row, size_t n, size_t D, size_t C, const SgdStep& step);

}  // namespace sgdx::core
