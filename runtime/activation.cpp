#include "activation.hpp"

#include "backend.hpp"

namespace sgdx {

// Kernels, not plain loops: GCC keeps the backward's select as a branch on the
// sign, mispredicted half the time (9% of a CNN epoch).
void ReLU::forward(const float* x, size_t batch, float* y) {
    active_kernels().relu_forward(x, y, batch * in_features());
}

void ReLU::backward(const float* x, const float* dy, size_t batch, float* dx) {
    if (dx) active_kernels().relu_backward(x, dy, dx, batch * in_features());
}

}  // namespace sgdx
