#include "conv2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend.hpp"
#include "core/plan.hpp"
#include "error.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Conv2d::Conv2d(size_t in_channels, size_t out_channels, size_t kernel, size_t stride, size_t padding, Rng& rng,
               bool with_bias)
    : cin_(in_channels), cout_(out_channels), k_(kernel), stride_(stride), pad_(padding) {
    if (!in_channels || !out_channels || !kernel || !stride)
        throw Error("Conv2d: channels, kernel size and stride must be >= 1");
    for (size_t v : {in_channels, out_channels, kernel, stride, padding})  // core/conv's geometry is 32-bit
        if (v > UINT32_MAX) throw Error("Conv2d: channels, kernel size, stride and padding must be below 2^32");
    weight.value = xt::xarray<float>::from_shape({cout_, cin_, k_, k_});
    bias.value = xt::zeros<float>({cout_});
    init_layer(rng, cout_, patch(), weight.value.data(), with_bias ? bias.value.data() : nullptr);  // runtime/rng.hpp
    weight.grad = xt::zeros<float>({cout_, cin_, k_, k_});
    bias.grad = xt::zeros<float>({cout_});
    register_parameter("weight", weight);
    if (with_bias) register_parameter("bias", bias);  // else a zero no optimiser sees, as bias=False
}

Shape Conv2d::configure(const Shape& input) {
    // Checked before any member changes: a failed build leaves the layer as it was.
    const Shape out = inferred_shape(describe(), input, [&](auto& in, auto& o, auto& why) {
        return core::infer_conv({cin_, cout_, k_, k_, stride_, pad_}, in, o, why);
    });
    g_ = {uint32_t(cin_), uint32_t(input[1]), uint32_t(input[2]), uint32_t(cout_), uint32_t(k_), uint32_t(k_),
          uint32_t(stride_), uint32_t(pad_), uint32_t(out[1]), uint32_t(out[2])};
    // Sized here so that a Sequential's channels-last path allocates nothing per step.
    weight_cl_.resize(cout_ * patch());
    return out;
}

std::unique_ptr<Module> Conv2d::clone() const {
    Rng rng;  // initial values a replica overwrites
    return std::make_unique<Conv2d>(cin_, cout_, k_, stride_, pad_, rng, own_parameter_count() == 2);
}

std::string Conv2d::describe() const {
    std::string s = "Conv2d(" + std::to_string(cin_) + ", " + std::to_string(cout_) + ", kernel " +
                    std::to_string(k_) + ", stride " + std::to_string(stride_) + ", padding " + std::to_string(pad_) + ")";
    if (g_.h) s += " " + shape_text(input_shape()) + " -> " + shape_text(output_shape());
    return s;
}

// A chunk's patch matrix is ~128 KiB: it is written, then read by the gemm while
// it is still in L2.
size_t Conv2d::chunk_samples() const {
    const size_t per_sample = pixels() * patch();
    return std::max<size_t>(1, (size_t(32) << 10) / per_sample);
}

size_t Conv2d::parts_for(size_t batch) const {
    // Whole samples per part, each with its own patches and weight-gradient buffer,
    // summed in part order (the same results for a given thread count). The pool's
    // workers stay hot through a step, so a part pays from ~256K multiply-adds
    // (~5-10 µs): every layer of the tutorial CNN and LeNet splits at batch 64.
    const size_t per_sample = pixels() * patch() * cout_;
    return thread_pool().parts_for(batch, (size_t(1) << 18) / (per_sample ? per_sample : 1) + 1);
}

core::ConvScratch Conv2d::buffers(const kernels::KernelSet& k, size_t part, size_t n, bool backward, bool dx) {
    Scratch& s = scratch_[part];
    const core::ConvScratchSizes need = core::conv_scratch_sizes(k, g_, form_, n, backward, dx);
    grow_to(s.cols, need.cols);
    grow_to(s.pixels_by_channel, need.by_pixel);
    grow_to(s.channel_sums, need.channel_sums);
    grow_to(s.dwt, need.dwt);
    grow_to(s.padded, need.padded);
    grow_to(s.dcols, need.dcols);
    return {s.cols.data(), s.pixels_by_channel.data(), s.padded.data(), s.dcols.data(), s.dwt.data(),
            s.channel_sums.data()};
}

// Every part's scratch as the paths below take it, for any batch up to max_batch:
// whole parts (the direct kernels, and the patches of a training forward) or
// chunks of them (the patch-matrix path).
void Conv2d::reserve(size_t max_batch, bool byte_inputs) {
    Module::reserve(max_batch, byte_inputs);
    const auto& k = active_kernels();
    const size_t parts = parts_for(max_batch), D = patch(), P = pixels();
    const size_t part = largest_part(max_batch, [&](size_t n) { return parts_for(n); });
    const bool direct = core::conv_direct(k, g_, form_);
    if (scratch_.size() < parts) scratch_.resize(parts);
    for (size_t p = 0; p < parts; ++p) {
        if (p > 0) grow_to(scratch_[p].dw, cout_ * D), grow_to(scratch_[p].db, cout_);
        buffers(k, p, direct ? part : std::min(part, chunk_samples()), true, true);
    }
    if (!direct) grow_to(saved_cols_, max_batch * P * D);
    kernels::ScratchNeeds needs;
    needs.gemm = true;
    const kernels::ConvShape shape = core::conv_shape(g_, form_, part, nullptr);
    if (k.conv_forward_cl) needs.conv = &shape;
    reserve_kernel_scratch(needs);
}

// x: (B, in, H, W) -> y: (B, out, OH, OW) (either channels-last in a Sequential)
void Conv2d::forward(const float* x, size_t batch, float* y) {
    const auto& k = active_kernels();
    const size_t parts = parts_for(batch), P = pixels(), D = patch();
    if (scratch_.size() < parts) scratch_.resize(parts);
    const bool direct = core::conv_direct(k, g_, form_);
    // Training by patches keeps the whole batch's patches for backward (~2 MB for
    // the tutorial CNN's conv2 at batch 64): reading them back from cache is
    // cheaper than building them again. The direct kernels save nothing.
    saved_for_ = is_training() && !direct ? x : nullptr;
    if (saved_for_) {
        saved_batch_ = batch;
        if (saved_cols_.size() < batch * P * D) saved_cols_.resize(batch * P * D);
    }
    const float* wt = direct ? nullptr : patch_weight();
    thread_pool().run(parts, [&](size_t part) {
        const size_t b0 = batch * part / parts, n = batch * (part + 1) / parts - b0;
        const float* xs = x + b0 * in_features();
        float* ys = y + b0 * out_features();
        if (direct) return core::conv_forward_direct(k, g_, form_, xs, n, weight.value.data(), bias.value.data(), ys);
        const size_t chunk = chunk_samples();
        float* saved = saved_for_ ? saved_cols_.data() + b0 * P * D : nullptr;
        core::conv_forward_rows(k, g_, form_, xs, n, chunk, wt, bias.value.data(), ys, saved,
                                buffers(k, part, std::min(n, chunk), false, false));
    });
}

// Part 0 of a backward adds into the gradients; the others into their own
// buffers, cleared here and summed in part order by sum_part_grads (the same
// results for a given thread count).
void Conv2d::part_grads(size_t part, float*& dw, float*& db) {
    dw = weight.grad.data();
    db = bias.grad.data();
    if (part == 0) return;
    Scratch& s = scratch_[part];
    s.dw.assign(cout_ * patch(), 0.f);
    s.db.assign(cout_, 0.f);
    dw = s.dw.data();
    db = s.db.data();
}

void Conv2d::sum_part_grads(size_t parts) {
    float* dw = weight.grad.data();
    float* db = bias.grad.data();
    for (size_t part = 1; part < parts; ++part) {
        for (size_t i = 0; i < cout_ * patch(); ++i) dw[i] += scratch_[part].dw[i];
        for (size_t c = 0; c < cout_; ++c) db[c] += scratch_[part].db[c];
    }
}

// x: (B, in, H, W), dy: (B, out, OH, OW) -> weight.grad, bias.grad, dx: (B, in, H, W)
void Conv2d::backward(const float* x, const float* dy, size_t batch, float* dx) {
    const auto& k = active_kernels();
    const size_t parts = parts_for(batch), P = pixels(), D = patch();
    if (scratch_.size() < parts) scratch_.resize(parts);
    const bool direct = core::conv_direct(k, g_, form_);
    const bool saved = !direct && saved_for_ == x && saved_batch_ == batch;
    const float* wt = dx ? patch_weight() : nullptr;  // for dx alone
    thread_pool().run(parts, [&](size_t part) {
        float *dw, *db;
        part_grads(part, dw, db);
        const size_t b0 = batch * part / parts, n = batch * (part + 1) / parts - b0;
        const float* xs = x + b0 * in_features();
        const float* gy = dy + b0 * out_features();
        float* dxs = dx ? dx + b0 * in_features() : nullptr;
        if (direct)
            return core::conv_backward_direct(k, g_, form_, xs, gy, dxs, n, wt, dw, db, buffers(k, part, n, true, dx));
        const size_t chunk = chunk_samples();
        core::conv_backward_rows(k, g_, form_, xs, gy, dxs, n, chunk, wt, saved ? saved_cols_.data() + b0 * P * D : nullptr,
                                 dw, db, buffers(k, part, std::min(n, chunk), true, dx));
    });
    sum_part_grads(parts);
}

}  // namespace sgdx
