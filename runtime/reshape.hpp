#pragma once
// Reshaping layers: the values stay as they are (row-major), only the shape of a
// sample changes. View is the tutorial's Lambda(lambda x: x.view(-1, 1, 28, 28))
// for a batch of flat images; Flatten (nn.Flatten, or x.view(x.size(0), -1)) is
// its inverse, and Unflatten (nn.Unflatten(1, shape)) a View by PyTorch's name.
#include "module.hpp"

namespace sgdx {

class View : public Module {
public:
    // The shape of one sample after the view, e.g. {1, 28, 28}; 0 stands for
    // "whatever is left", as -1 does in x.view.
    explicit View(Shape shape) : target_(std::move(shape)) {}

    // x: (B, n) -> y: (B, n), a copy
    void forward(const float* x, size_t batch, float* y) override;
    // dy: (B, n) -> dx: (B, n), a copy
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;
    // Bytes become floats here: the first layer of a CNN.
    void forward(const uint8_t* x, float scale, size_t batch, float* y) override;
    void backward(const uint8_t*, float, const float*, size_t) override {}

    std::string type_name() const override { return "View"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<View>(target_); }
    core::LayoutRole layout_role() const override { return core::LayoutRole::kView; }
    void set_layout(const core::LayerLayout& l) override { cl_in_ = l.in_cl; }

protected:
    Shape configure(const Shape& input) override;
    Shape target_;

private:
    // Set by a Sequential's layout pass when a convolution's channels-last (H, W, C) output
    // reaches this view: forward puts it in PyTorch's (C, H, W) order (a Linear
    // after it sees PyTorch's features), backward turns the gradient back.
    bool cl_in_ = false;
    void transpose(const float* x, size_t batch, float* y, bool to_cl) const;
};

class Flatten : public View {
public:
    Flatten() : View({0}) {}
    std::string type_name() const override { return "Flatten"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<Flatten>(); }
};

// nn.Unflatten(1, (C, H, W)): a flat sample becomes (C, H, W). The work is View's
// (a Sequential treats it as a View after a convolution too).
class Unflatten : public View {
public:
    explicit Unflatten(Shape shape) : View(std::move(shape)) {}
    std::string type_name() const override { return "Unflatten"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<Unflatten>(target_); }
};

}  // namespace sgdx
