#pragma once
// nn.Conv2d (square kernel, equal stride and zero padding on both axes), with
// PyTorch's default initialisation. Between channels-last layers of a Sequential,
// computed by the kernel set's direct convolutions where it has them (no patch
// matrix); otherwise as im2col + the kernels' gemm, a chunk of samples at a time
// so a chunk's patch matrix stays in cache. Whole samples split over the thread pool.
#include <vector>

#include "kernels/kernels.hpp"
#include "module.hpp"
#include "rng.hpp"

namespace sgdx {

class Conv2d : public Module {
public:
    // weight and bias uniform in ±1/sqrt(in_channels · kernel²), as
    // torch.nn.Conv2d.reset_parameters.
    // Without bias (bias=False) the bias stays 0 and is no parameter.
    Conv2d(size_t in_channels, size_t out_channels, size_t kernel, size_t stride, size_t padding, Rng& rng,
           bool with_bias = true);

    Parameter weight;  // (out, in, kernel, kernel)
    Parameter bias;    // (out)

    // x: (B, in, H, W), weight: (out, in, k, k), bias: (out) -> y: (B, out, OH, OW)
    //   OH = (H + 2 padding - k) / stride + 1, likewise OW
    void forward(const float* x, size_t batch, float* y) override;
    // x: (B, in, H, W), dy: (B, out, OH, OW) -> weight.grad += Σ dy ⊗ patches,
    //   bias.grad += Σ dy, dx: (B, in, H, W) (if not null)
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;

    void reserve(size_t max_batch, bool byte_inputs = false) override;

    std::string type_name() const override { return "Conv2d"; }
    std::string describe() const override;
    std::unique_ptr<Module> clone() const override;

protected:
    Shape configure(const Shape& input) override;

private:
    friend class Sequential;
    size_t cin_, cout_, k_, stride_, pad_;
    size_t h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;

    // Set by a Sequential between convolutions (never for a layer on its own):
    // the input / output is channels-last, (B, H, W, C), the output being the
    // gemm's (pixels, channels) as it comes out, with no transpose.
    bool in_cl_ = false, out_cl_ = false;
    // Set by a Sequential for conv -> ReLU -> ..., which then skips the ReLU:
    // relu_out_ clamps this conv's output, relu_in_ (a conv right after the ReLU)
    // masks its input gradient as the ReLU's backward would, its input being the
    // ReLU's output. In the direct kernels (ConvShape::relu, relu_mask), else a pass
    // of the kernel set's relu over the part.
    bool relu_out_ = false, relu_in_ = false;
    // A channels-last input with several channels builds patches in (ki, kj, ci)
    // order: one contiguous copy of k·in values per kernel row. With one channel
    // both orders are the same bytes, and the plain path's tricks apply.
    bool cl_patches() const { return in_cl_ && cin_ > 1; }
    // Where the kernel set has them, a conv whose input and output are channels-last
    // (one input channel is either layout) runs the direct kernels: no patch matrix.
    bool direct(const kernels::KernelSet& k) const {
        return k.conv_forward_cl && k.conv_weight_grad_cl && (in_cl_ || cin_ == 1) && out_cl_;
    }
    // Whether backward computes the input gradient with conv_input_grad_cl (no
    // dcols, no col2im): for a channels-last input, in the direct path at any stride,
    // in the patch-matrix path from stride 2 (Conv2d::backward says why); reserve()
    // sizes dcols only where it is not.
    bool input_grad_by_phase(const kernels::KernelSet& k) const {
        if (!k.conv_input_grad_cl) return false;
        return direct(k) ? in_cl_ : cl_patches() && stride_ > 1;
    }
    kernels::ConvShape conv_shape(size_t n) const { return {n, h_, w_, cin_, oh_, ow_, cout_, k_, stride_, pad_}; }
    // The same with the fused ReLU; x: the part's input (the mask for its dx).
    kernels::ConvShape fused_shape(size_t n, const float* x) const {
        kernels::ConvShape s = conv_shape(n);
        s.relu = relu_out_;
        s.relu_mask = relu_in_ ? x : nullptr;
        return s;
    }
    std::vector<size_t> torch_column_;  // patch column (ki, kj, ci) -> PyTorch's (ci, ki, kj)
    std::vector<float> weight_cl_;      // weight with its columns in (ki, kj, ci) order
    // The weight in the patch matrix's column order (permuted into weight_cl_ if needed).
    const float* patch_weight();

    size_t patch() const { return cin_ * k_ * k_; }  // one row of the patch matrix
    size_t pixels() const { return oh_ * ow_; }     // output pixels per channel
    size_t chunk_samples() const;
    // One zero-padded sample, (in, H + 2 padding, W + 2 padding + 1).
    size_t padded_size() const;
    // samples n of x: (n, in, H, W) -> cols: (n·OH·OW, in·k·k), one row per output
    // pixel; padded: padded_size() floats of scratch
    void im2col(const float* x, size_t n, float* cols, float* padded) const;
    // cols: (n·OH·OW, in·k·k) -> dx: (n, in, H, W) = the sum of every patch's values
    void col2im(const float* cols, size_t n, float* dx, float* padded) const;

    // What one part of the pool works in; sized by reserve() (or on first use) and kept.
    struct Scratch {
        std::vector<float> cols, pixels_by_channel, dcols, dw, db, dwt, padded, channel_sums;
    };
    std::vector<Scratch> scratch_;
    // The patches of the last training forward, and the input they came from.
    std::vector<float> saved_cols_;
    const float* saved_for_ = nullptr;
    size_t saved_batch_ = 0;
    Scratch& scratch(size_t part, size_t n);
    void part_grads(size_t part, float*& dw, float*& db);
    void sum_part_grads(size_t parts);
    void backward_direct(const kernels::KernelSet& k, const float* x, const float* dy, size_t batch, float* dx);
    size_t parts_for(size_t batch) const;
};

}  // namespace sgdx
