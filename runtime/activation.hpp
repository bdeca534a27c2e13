#pragma once
// nn.ReLU: y = max(x, 0), elementwise on a sample of any shape (NaN stays NaN).
#include "module.hpp"

namespace sgdx {

class ReLU : public Module {
public:
    // x: (B, n) -> y: (B, n)
    void forward(const float* x, size_t batch, float* y) override;
    // x: (B, n), dy: (B, n) -> dx = 0 where x <= 0, else dy (no parameters)
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;

    std::string type_name() const override { return "ReLU"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<ReLU>(); }
    core::LayoutRole layout_role() const override { return core::LayoutRole::kRelu; }

protected:
    Shape configure(const Shape& input) override { return input; }
};

}  // namespace sgdx
