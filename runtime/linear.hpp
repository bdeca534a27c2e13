#pragma once
// nn.Linear: y = x · weightᵀ + bias, with PyTorch's default initialisation.
// A PyTorch-facing shell: its products are core/linear's (the C API's too);
// here are its parameters and the thread split.
#include "module.hpp"
#include "rng.hpp"

namespace sgdx {

class Linear : public Module {
public:
    // weight and bias uniform in ±1/sqrt(in), as torch.nn.Linear.reset_parameters.
    // Without bias (bias=False) the bias stays 0 and is no parameter.
    Linear(size_t in, size_t out, Rng& rng, bool with_bias = true);

    Parameter weight;  // (out, in)
    Parameter bias;    // (out)

    // x: (B, in), weight: (out, in), bias: (out) -> y: (B, out)
    void forward(const float* x, size_t batch, float* y) override;
    // x: (B, in), dy: (B, out) -> weight.grad += dyᵀ·x, bias.grad += Σ_b dy,
    //                             dx: (B, in) = dy · weight (if not null)
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;
    // x_u8: (B, in) with x = scale * x_u8; the fused kernels read the bytes once.
    void forward(const uint8_t* x, float scale, size_t batch, float* y) override;
    void backward(const uint8_t* x, float scale, const float* dy, size_t batch) override;

    void reserve(size_t max_batch, bool byte_inputs = false) override;

    std::string type_name() const override { return "Linear"; }
    std::string describe() const override;
    std::unique_ptr<Module> clone() const override;

protected:
    // Any input shape of `in` values, taken as flattened.
    Shape configure(const Shape& input) override;

private:
    template <class T, class Forward>
    void forward_split(const T* x, size_t batch, float* y, Forward kernel);
    template <class T, class Backward>
    void backward_split(const T* x, const float* dy, size_t batch, Backward kernel);

    size_t in_, out_;
    // Per part of a split forward / backward, its output features' columns of y / dy;
    // sized by reserve() (or on first use) and kept.
    std::vector<std::vector<float>> partial_dy_, partial_y_;
};

// Whether a product of this size is worth splitting over the thread pool.
size_t parts_for(size_t batch, size_t in, size_t out);

}  // namespace sgdx
