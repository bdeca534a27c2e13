#pragma once
// optim.SGD with PyTorch's update rule (momentum, dampening, weight decay, Nesterov).
#include <vector>

#include "module.hpp"

namespace sgdx {

struct SgdOptions {
    float lr = 0.5f;  // the tutorial's
    float momentum = 0.f;
    float dampening = 0.f;
    float weight_decay = 0.f;
    bool nesterov = false;
};

// Throws sgdx::Error naming the option if a value is negative, NaN or out of range.
void validate(const SgdOptions& options);

class SGD {
public:
    SGD(std::vector<Parameter*> params, SgdOptions options);

    void step();       // p -= lr * (update from p.grad); allocates nothing
    void zero_grad();  // p.grad = 0

    const SgdOptions& options() const { return options_; }
    void set_lr(float lr);

    // Optimiser state, for checkpoints: one momentum buffer per parameter
    // (empty without momentum) and whether the buffers hold a value yet.
    std::vector<xt::xarray<float>>& momentum_buffers() { return buffers_; }
    bool& has_momentum() { return has_momentum_; }

private:
    std::vector<Parameter*> params_;
    SgdOptions options_;
    std::vector<xt::xarray<float>> buffers_;
    bool has_momentum_ = false;
};

}  // namespace sgdx
