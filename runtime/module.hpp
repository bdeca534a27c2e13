#pragma once
// nn.Module: a tree of named parameters with train/eval mode. Forward and
// backward are explicit (no autograd tape): a module's backward accumulates into
// its parameters' grad from the input it saw and the gradient of its output.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

namespace sgdx {

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
    // x: (B, in), dy: (B, out) -> grads += d(loss)/d(parameters)
    virtual void backward(const float* x, const float* dy, size_t batch) = 0;
    // The same on uint8 inputs x = scale * x_u8 (image batches). The default
    // converts into a buffer kept by the module; Linear reads the bytes directly.
    virtual void forward(const uint8_t* x, float scale, size_t batch, float* y);
    virtual void backward(const uint8_t* x, float scale, const float* dy, size_t batch);

    virtual size_t in_features() const = 0;
    virtual size_t out_features() const = 0;

    // Allocating convenience for tests and prediction: x: (B, in) -> (B, out).
    xt::xtensor<float, 2> operator()(const xt::xtensor<float, 2>& x);

    // Names as in PyTorch's state_dict: "lin.weight", "lin.bias".
    std::vector<std::pair<std::string, Parameter*>> named_parameters();
    std::vector<Parameter*> parameters();
    void zero_grad();

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

protected:
    void register_parameter(const std::string& name, Parameter& p);
    void register_module(const std::string& name, Module& m);

private:
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Parameter*>>& out);
    std::vector<std::pair<std::string, Parameter*>> params_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
    std::vector<float> converted_;  // for the default uint8 path
    const float* convert(const uint8_t* x, float scale, size_t batch);
};

}  // namespace sgdx
