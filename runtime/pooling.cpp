#include "pooling.hpp"

#include <cstdint>

#include "backend.hpp"
#include "core/plan.hpp"
#include "error.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Shape Pool2d::configure(const Shape& input) {
    const Shape out = inferred_shape(type_name(), input, [&](auto& in, auto& o, auto& why) { return infer(in, o, why); });
    // The rule has accepted the shape (else the layer is as it was): nothing below refuses.
    g_.c = uint32_t(input[0]), g_.h = uint32_t(input[1]), g_.w = uint32_t(input[2]);
    g_.oh = uint32_t(out[1]), g_.ow = uint32_t(out[2]);
    set_windows(g_);
    channel_acc_.resize(g_.c);
    return out;
}

StridedPool2d::StridedPool2d(bool max, size_t kernel, size_t stride)
    : Pool2d(max), kernel_(kernel), stride_(stride ? stride : kernel) {
    if (kernel == 0) throw Error("pooling: kernel size must be >= 1");
    if (kernel > UINT32_MAX || stride_ > UINT32_MAX) throw Error("pooling: kernel size or stride too large");
}

bool StridedPool2d::infer(const core::SampleShape& in, core::SampleShape& out, core::Text& why) const {
    return core::infer_pool(kernel_, kernel_, stride_, in, out, why);
}

void StridedPool2d::set_windows(core::PoolGeometry& g) const {
    g.kh = g.kw = uint32_t(kernel_), g.stride = uint32_t(stride_), g.adaptive = false;
}

std::string StridedPool2d::describe() const {
    return type_name() + "(" + std::to_string(kernel_) + ", stride " + std::to_string(stride_) + ") " +
           shape_text(input_shape()) + " -> " + shape_text(output_shape());
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(size_t out_h, size_t out_w) : Pool2d(false), out_h_(out_h), out_w_(out_w) {
    if (out_h == 0 || out_w == 0) throw Error("AdaptiveAvgPool2d: output size must be >= 1");
    if (out_h > UINT32_MAX || out_w > UINT32_MAX) throw Error("AdaptiveAvgPool2d: output size too large");
}

bool AdaptiveAvgPool2d::infer(const core::SampleShape& in, core::SampleShape& out, core::Text& why) const {
    return core::infer_adaptive_pool(out_h_, out_w_, in, out, why);
}

void AdaptiveAvgPool2d::set_windows(core::PoolGeometry& g) const { g.adaptive = true; }

// Whole samples per part of the pool: every output is computed as without the
// split, the same values for any thread count. The max pool only: the average's
// channels-last loops keep one running sum (channel_acc_), and its whole pass
// is a few µs (the tutorial CNN's AvgPool2d(4) over 10 channels of 4x4).
namespace {
template <class Fn>
void split_batch(size_t batch, size_t sample_values, bool split, Fn&& fn) {
    const size_t min_samples = (size_t(32) << 10) / (sample_values ? sample_values : 1) + 1;
    const size_t parts = split ? thread_pool().parts_for(batch, min_samples) : 1;
    if (parts == 1) return fn(size_t(0), batch);
    thread_pool().run(parts, [&](size_t p) { fn(batch * p / parts, batch * (p + 1) / parts); });
}
}  // namespace

// x: (B, C, H, W) -> y: (B, C, OH, OW), or both channels-last (cl_)
void Pool2d::forward(const float* x, size_t batch, float* y) {
    const auto& k = active_kernels();
    const size_t in = in_features(), out = out_features();
    split_batch(batch, in, g_.max, [&](size_t b0, size_t b1) {
        if (cl_) core::pool_forward_cl(k, g_, x + b0 * in, y + b0 * out, b1 - b0, channel_acc_.data());
        else core::pool_forward(g_, x + b0 * in, y + b0 * out, b1 - b0);
    });
}

// x: (B, C, H, W), dy: (B, C, OH, OW) -> dx: (B, C, H, W)
void Pool2d::backward(const float* x, const float* dy, size_t batch, float* dx) {
    if (!dx) return;
    const auto& k = active_kernels();
    const size_t in = in_features(), out = out_features();
    split_batch(batch, in, g_.max, [&](size_t b0, size_t b1) {
        if (cl_) core::pool_backward_cl(k, g_, x + b0 * in, dy + b0 * out, dx + b0 * in, b1 - b0, channel_acc_.data());
        else core::pool_backward(g_, x + b0 * in, dy + b0 * out, dx + b0 * in, b1 - b0);
    });
}

}  // namespace sgdx
