#pragma once
// nn.Module: a tree of named parameters with train/eval mode. Forward and
// backward are explicit (no autograd tape): a module's backward accumulates into
// its parameters' grad from the input it saw and the gradient of its output, and
// returns the gradient of its input, so modules stack (Sequential).
//
// Buffers are flat and row-major: a batch of B samples of shape (C, H, W) is
// (B, C, H, W), PyTorch's layout. A module learns the shape of one input sample
// when it is built (a layer's constructor, or Sequential in order).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

namespace sgdx {

// One sample's shape, without the batch: {784}, or {channels, height, width}.
using Shape = std::vector<size_t>;
size_t shape_size(const Shape& shape);
std::string shape_text(const Shape& shape);  // "[1, 28, 28]"

struct Parameter {
    xt::xarray<float> value;  // PyTorch's layout: Linear.weight is (out, in)
    xt::xarray<float> grad;   // same shape, zeroed by zero_grad()
};

class Module {
public:
    Module() = default;
    Module(const Module&) = delete;  // parameters are referred to by address
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    // x: (B, in_features()) -> y: (B, out_features())
    virtual void forward(const float* x, size_t batch, float* y) = 0;
    // x: (B, in), dy: (B, out) -> grads += d(loss)/d(parameters), and
    // dx: (B, in) = d(loss)/dx unless dx is null (a first layer skips that work).
    // x is the input of the last forward.
    virtual void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) = 0;
    // The same on uint8 inputs x = scale * x_u8 (image batches). The default
    // converts into a buffer kept by the module; Linear reads the bytes directly.
    // No dx: pixels have no gradient.
    virtual void forward(const uint8_t* x, float scale, size_t batch, float* y);
    virtual void backward(const uint8_t* x, float scale, const float* dy, size_t batch);

    // Fixes the shape of one input sample and returns the output's. Throws
    // sgdx::Error naming the module if it cannot take that shape.
    Shape build(const Shape& input);
    const Shape& input_shape() const { return in_shape_; }
    const Shape& output_shape() const { return out_shape_; }
    size_t in_features() const { return shape_size(in_shape_); }
    size_t out_features() const { return shape_size(out_shape_); }
    // The class name PyTorch prints ("Conv2d"), and a description of the layer and
    // its shapes (a line per child for containers) for `sgdx train`'s summary.
    virtual std::string type_name() const = 0;
    virtual std::string describe() const;

    // Allocating convenience for tests and prediction: x: (B, in) -> (B, out).
    xt::xtensor<float, 2> operator()(const xt::xtensor<float, 2>& x);

    // Names as in PyTorch's state_dict: "lin.weight", "lin.bias".
    std::vector<std::pair<std::string, Parameter*>> named_parameters();
    std::vector<Parameter*> parameters();
    void zero_grad();

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // The direct children, in order, with their names.
    const std::vector<std::pair<std::string, Module*>>& children() const { return children_; }

protected:
    void register_parameter(const std::string& name, Parameter& p);
    void register_module(const std::string& name, Module& m);
    // The output shape for this input shape (build's work): a layer checks it and
    // keeps what its kernels need (e.g. height and width).
    virtual Shape configure(const Shape& input) = 0;

private:
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Parameter*>>& out);
    std::vector<std::pair<std::string, Parameter*>> params_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
    Shape in_shape_, out_shape_;
    std::vector<float> converted_;  // for the default uint8 path
    const float* convert(const uint8_t* x, float scale, size_t batch);
};

}  // namespace sgdx
