#include "pooling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend.hpp"
#include "error.hpp"
#include "kernels/reference.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Shape Pool2d::configure(const Shape& input) {
    if (input.size() != 3)
        throw Error(type_name() + ": wants a sample of shape [channels, height, width], got " + shape_text(input));
    size_t oh, ow;
    output_size(input[1], input[2], oh, ow);  // may throw: the layer keeps its last shape
    c_ = input[0], h_ = input[1], w_ = input[2], oh_ = oh, ow_ = ow;
    channel_acc_.resize(c_);
    return {c_, oh_, ow_};
}

StridedPool2d::StridedPool2d(size_t kernel, size_t stride) : kernel_(kernel), stride_(stride ? stride : kernel) {
    if (kernel == 0) throw Error("pooling: kernel size must be >= 1");
}

void StridedPool2d::output_size(size_t h, size_t w, size_t& oh, size_t& ow) const {
    if (h < kernel_ || w < kernel_)
        throw Error(type_name() + ": a " + std::to_string(h) + "x" + std::to_string(w) + " plane is smaller than the " +
                    std::to_string(kernel_) + "x" + std::to_string(kernel_) + " window");
    oh = (h - kernel_) / stride_ + 1;
    ow = (w - kernel_) / stride_ + 1;
}

std::string StridedPool2d::describe() const {
    return type_name() + "(" + std::to_string(kernel_) + ", stride " + std::to_string(stride_) + ") " +
           shape_text(input_shape()) + " -> " + shape_text(output_shape());
}

// Whole samples per part of the pool (no scratch: the max pool kernels keep
// none). Every output is computed as without the split: the same values for any
// thread count.
namespace {
template <class Fn>
void split_batch(size_t batch, size_t sample_values, Fn&& fn) {
    const size_t min_samples = (size_t(32) << 10) / (sample_values ? sample_values : 1) + 1;
    const size_t parts = thread_pool().parts_for(batch, min_samples);
    thread_pool().run(parts, [&](size_t p) { fn(batch * p / parts, batch * (p + 1) / parts); });
}
}  // namespace

// The offset in the plane of a window's first maximum: NaN wins and stays, as in
// PyTorch's kernel ((v > max) || isnan(v)); the kernel sets' rule, one channel.
namespace {
inline size_t first_max(const float* xp, size_t w, size_t h0, size_t w0, size_t kernel) {
    const size_t first = h0 * w + w0;
    return first + kernels::ref::maxpool_first_max(xp + first, kernel, 1, w);
}
}  // namespace

// x: (B, C, H, W) -> y: (B, C, OH, OW) (or both channels-last, cl_). The value
// alone (v > m ? v : m is one maxss), with NaN tracked beside it; first_max's
// index is for backward only.
void MaxPool2d::forward(const float* x, size_t batch, float* y) {
    split_batch(batch, c_ * h_ * w_, [&](size_t b0, size_t b1) { forward_samples(x, b0, b1, y); });
}

void MaxPool2d::forward_samples(const float* x, size_t b0, size_t b1, float* y) const {
    if (cl_) {
        active_kernels().maxpool_forward_cl(x + b0 * h_ * w_ * c_, y + b0 * oh_ * ow_ * c_, shape_cl(b1 - b0));
        return;
    }
    for (size_t p = b0 * c_; p < b1 * c_; ++p) {
        const float* xp = x + p * h_ * w_;
        float* yp = y + p * oh_ * ow_;
        for (size_t oi = 0; oi < oh_; ++oi)
            for (size_t oj = 0; oj < ow_; ++oj) {
                const float* win = xp + oi * stride_ * w_ + oj * stride_;
                float m = win[0];
                bool nan = false;
                for (size_t i = 0; i < kernel_; ++i)
                    for (size_t j = 0; j < kernel_; ++j) {
                        const float v = win[i * w_ + j];
                        m = v > m ? v : m;
                        nan = nan | (v != v);
                    }
                yp[oi * ow_ + oj] = nan ? std::numeric_limits<float>::quiet_NaN() : m;
            }
    }
}

// x: (B, C, H, W), dy: (B, C, OH, OW) -> dx: (B, C, H, W)
void MaxPool2d::backward(const float* x, const float* dy, size_t batch, float* dx) {
    if (!dx) return;
    split_batch(batch, c_ * h_ * w_, [&](size_t b0, size_t b1) {
        if (cl_) {
            const size_t in = b0 * h_ * w_ * c_;
            active_kernels().maxpool_backward_cl(x + in, dy + b0 * oh_ * ow_ * c_, dx + in, shape_cl(b1 - b0));
            return;
        }
        std::fill(dx + b0 * c_ * h_ * w_, dx + b1 * c_ * h_ * w_, 0.f);
        for (size_t p = b0 * c_; p < b1 * c_; ++p) {
            const float* xp = x + p * h_ * w_;
            float* dxp = dx + p * h_ * w_;
            const float* dyp = dy + p * oh_ * ow_;
            for (size_t oi = 0; oi < oh_; ++oi)
                for (size_t oj = 0; oj < ow_; ++oj)
                    dxp[first_max(xp, w_, oi * stride_, oj * stride_, kernel_)] += dyp[oi * ow_ + oj];
        }
    });
}

void Pool2d::average_forward(const float* x, size_t batch, float* y) const {
    if (cl_) {
        // each channel summed in the same order as below
        float* sum = channel_acc_.data();
        for (size_t b = 0; b < batch; ++b)
            for (size_t oi = 0; oi < oh_; ++oi)
                for (size_t oj = 0; oj < ow_; ++oj) {
                    const Window win = window(oi, oj);
                    std::fill(sum, sum + c_, 0.f);
                    for (size_t i = win.h0; i < win.h1; ++i)
                        for (size_t j = win.w0; j < win.w1; ++j) {
                            const float* v = x + ((b * h_ + i) * w_ + j) * c_;
                            for (size_t c = 0; c < c_; ++c) sum[c] += v[c];
                        }
                    const float area = float((win.h1 - win.h0) * (win.w1 - win.w0));
                    float* yp = y + ((b * oh_ + oi) * ow_ + oj) * c_;
                    for (size_t c = 0; c < c_; ++c) yp[c] = sum[c] / area;
                }
        return;
    }
    for (size_t p = 0; p < batch * c_; ++p) {
        const float* xp = x + p * h_ * w_;
        float* yp = y + p * oh_ * ow_;
        for (size_t oi = 0; oi < oh_; ++oi)
            for (size_t oj = 0; oj < ow_; ++oj) {
                const Window win = window(oi, oj);
                float sum = 0.f;
                for (size_t i = win.h0; i < win.h1; ++i)
                    for (size_t j = win.w0; j < win.w1; ++j) sum += xp[i * w_ + j];
                yp[oi * ow_ + oj] = sum / float((win.h1 - win.h0) * (win.w1 - win.w0));
            }
    }
}

void Pool2d::average_backward(const float* dy, size_t batch, float* dx) const {
    std::fill(dx, dx + batch * c_ * h_ * w_, 0.f);
    if (cl_) {
        float* g = channel_acc_.data();
        for (size_t b = 0; b < batch; ++b)
            for (size_t oi = 0; oi < oh_; ++oi)
                for (size_t oj = 0; oj < ow_; ++oj) {
                    const Window win = window(oi, oj);
                    const float area = float((win.h1 - win.h0) * (win.w1 - win.w0));
                    const float* dyp = dy + ((b * oh_ + oi) * ow_ + oj) * c_;
                    for (size_t c = 0; c < c_; ++c) g[c] = dyp[c] / area;
                    for (size_t i = win.h0; i < win.h1; ++i)
                        for (size_t j = win.w0; j < win.w1; ++j) {
                            float* d = dx + ((b * h_ + i) * w_ + j) * c_;
                            for (size_t c = 0; c < c_; ++c) d[c] += g[c];
                        }
                }
        return;
    }
    for (size_t p = 0; p < batch * c_; ++p) {
        float* dxp = dx + p * h_ * w_;
        const float* dyp = dy + p * oh_ * ow_;
        for (size_t oi = 0; oi < oh_; ++oi)
            for (size_t oj = 0; oj < ow_; ++oj) {
                const Window win = window(oi, oj);
                const float g = dyp[oi * ow_ + oj] / float((win.h1 - win.h0) * (win.w1 - win.w0));
                for (size_t i = win.h0; i < win.h1; ++i)
                    for (size_t j = win.w0; j < win.w1; ++j) dxp[i * w_ + j] += g;
            }
    }
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(size_t out_h, size_t out_w) : out_h_(out_h), out_w_(out_w) {
    if (out_h == 0 || out_w == 0) throw Error("AdaptiveAvgPool2d: output size must be >= 1");
}

}  // namespace sgdx
