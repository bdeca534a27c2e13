#pragma once
// The scalar reference kernels by name (reference() is the same functions as a
// KernelSet). Calling these directly, instead of through the table, links only
// the ones used: the Cortex-M4 firmware needs four of them.
#include <cstddef>
#include <cstdint>

namespace sgdx::kernels {
struct PoolShape;
}

namespace sgdx::kernels::ref {

// Contracts as in KernelSet (kernels.hpp).
void scale_u8(const uint8_t* x, float scale, float* y, size_t n);
void sgd_update(float* p, const float* grad, float* buf, size_t n, float lr, float momentum, float dampening,
                float weight_decay, bool nesterov, bool first);
void relu_forward(const float* x, float* y, size_t n);
void relu_backward(const float* x, const float* dy, float* dx, size_t n);
// One channel's k x k window at win (pixel / row: floats between neighbouring
// pixels / rows): the offset of its first maximum, a NaN winning once.
size_t maxpool_first_max(const float* win, size_t k, size_t pixel, size_t row);
void maxpool_forward_cl(const float* x, float* y, const PoolShape& s);
void maxpool_backward_cl(const float* x, const float* dy, float* dx, const PoolShape& s);

}  // namespace sgdx::kernels::ref
