#pragma once
// nn.Conv2d (square kernel, equal stride and zero padding on both axes), with
// PyTorch's default initialisation. Its math is core/conv's by-position strategy
// (the C API's op runs the same file's per-image one): between channels-last
// layers of a Sequential the kernel set's direct convolutions where it has them
// (no patch matrix); otherwise patches + the kernels' gemm, a chunk of samples at
// a time so a chunk's patch matrix stays in cache. Here: the layer's PyTorch
// face, its buffers and the split of whole samples over the thread pool.
#include <vector>

#include "core/conv.hpp"
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
    core::LayoutRole layout_role() const override { return core::LayoutRole::kConv; }
    void set_layout(const core::LayerLayout& l) override {
        form_ = {l.in_cl, l.out_cl, l.relu_out, l.relu_in};
    }

protected:
    Shape configure(const Shape& input) override;

private:
    size_t cin_, cout_, k_, stride_, pad_;
    core::ConvGeometry g_{};  // its sample's, once built (g_.h == 0 before)

    // Set by a Sequential's layout pass (core/layout; never for a layer on its
    // own): channels-last input / output between convolutions, the output being
    // the gemm's (pixels, channels) as it comes out, with no transpose; and
    // conv -> ReLU -> ..., which then skips the ReLU: relu_out clamps this conv's
    // output, relu_in (a conv right after the ReLU) masks its input gradient as
    // the ReLU's backward would.
    core::ConvForm form_;

    std::vector<float> weight_cl_;  // the weight in the patch matrix's column order (cl patches)
    const float* patch_weight() {  // permuted at every pass: a changed weight is never stale
        return core::weight_in_patch_order(g_, form_, weight.value.data(), weight_cl_.data());
    }
    size_t patch() const { return cin_ * k_ * k_; }  // one row of the patch matrix
    size_t pixels() const { return g_.positions(); }  // output pixels per channel
    size_t chunk_samples() const;

    // What one part of the pool works in; sized by reserve() (or on first use) and kept.
    struct Scratch {
        std::vector<float> cols, pixels_by_channel, dcols, dw, db, dwt, padded, channel_sums;
    };
    std::vector<Scratch> scratch_;
    // The patches of the last training forward, and the input they came from.
    std::vector<float> saved_cols_;
    const float* saved_for_ = nullptr;
    size_t saved_batch_ = 0;
    // Part `part`'s buffers for chunks of up to n samples (rows of the patch path,
    // whole samples of the direct one), for a forward or a backward (with dx or
    // not), grown if reserve() did not size them.
    core::ConvScratch buffers(const kernels::KernelSet& k, size_t part, size_t n, bool backward, bool dx);
    void part_grads(size_t part, float*& dw, float*& db);
    void sum_part_grads(size_t parts);
    size_t parts_for(size_t batch) const;
};

}  // namespace sgdx
