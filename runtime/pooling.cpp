#include "pooling.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "error.hpp"
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

// Whole samples per part of the pool, each part with its own channel scratch
// (grown on the warm-up batch, so later steps allocate nothing). Every output is
// computed as without the split: the same values for any thread count.
namespace {
template <class Fn>
void split_batch(size_t batch, size_t sample_values, Fn&& fn) {
    const size_t min_samples = (size_t(32) << 10) / (sample_values ? sample_values : 1) + 1;
    const size_t parts = thread_pool().parts_for(batch, min_samples);
    thread_pool().run(parts, [&](size_t p) { fn(batch * p / parts, batch * (p + 1) / parts); });
}
}  // namespace

// The window's first maximum: NaN wins and stays, as in PyTorch's kernel
// ((v > max) || isnan(v)). A select, not a branch: which value wins is random.
namespace {
inline size_t first_max(const float* xp, size_t w, size_t h0, size_t w0, size_t kernel) {
    size_t arg = h0 * w + w0;
    float m = xp[arg];
    for (size_t i = h0; i < h0 + kernel; ++i)
        for (size_t j = w0; j < w0 + kernel; ++j) {
            const float v = xp[i * w + j];
            const bool take = v > m || (v != v && m == m);
            m = take ? v : m;
            arg = take ? i * w + j : arg;
        }
    return arg;
}

// Channels-last windows, up to 16 channels at a time as 4 vectors of 4 (GCC/clang
// vector extensions: SSE2 natively, SIMD128 in wasm) with the running maxima and
// the first maximum's tap in registers; the channels past the last whole vector
// one at a time. Each channel sees its window's taps in the same order as the
// planes' loops: the same results.
using f4 = float __attribute__((vector_size(16)));
using i4 = int32_t __attribute__((vector_size(16)));
constexpr size_t kLanes = 4, kBlockVectors = 4;
inline f4 load4(const float* p) {
    f4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store4(float* p, f4 v) { std::memcpy(p, &v, sizeof v); }
inline f4 select4(i4 mask, f4 a, f4 b) { return f4((mask & i4(a)) | (~mask & i4(b))); }

// fn(nv, c0) per block of channels from c0: nv an integral_constant, the vectors
// of the block (kBlockVectors, then 1), 0 for the ragged last channels one at a time.
template <class Fn>
void for_channel_blocks(size_t c, Fn&& fn) {
    size_t c0 = 0;
    for (; c0 + kBlockVectors * kLanes <= c; c0 += kBlockVectors * kLanes) fn(std::integral_constant<size_t, kBlockVectors>{}, c0);
    for (; c0 + kLanes <= c; c0 += kLanes) fn(std::integral_constant<size_t, 1>{}, c0);
    if (c0 < c) fn(std::integral_constant<size_t, 0>{}, c0);
}

// The maximum of a kernel x kernel window per channel (NaN wins and stays: (v > m)
// | isnan(v)). win: the window's first pixel, pixel / row: floats between
// neighbouring pixels / rows; NV vectors of channels, or (NV = 0) count channels.
template <size_t NV>
inline void window_max(const float* win, size_t kernel, size_t pixel, size_t row, size_t count, float* y) {
    if constexpr (NV == 0) {
        for (size_t c = 0; c < count; ++c) {
            float m = win[c];
            for (size_t i = 0; i < kernel; ++i)
                for (size_t j = 0; j < kernel; ++j) {
                    const float v = win[i * row + j * pixel + c];
                    m = ((v > m) | (v != v)) ? v : m;
                }
            y[c] = m;
        }
    } else {
        f4 m[NV];
        for (size_t q = 0; q < NV; ++q) m[q] = load4(win + q * kLanes);
        for (size_t i = 0; i < kernel; ++i)
            for (size_t j = 0; j < kernel; ++j) {
                const float* p = win + i * row + j * pixel;
                for (size_t q = 0; q < NV; ++q) {
                    const f4 v = load4(p + q * kLanes);
                    m[q] = select4((v > m[q]) | (v != v), v, m[q]);
                }
            }
        for (size_t q = 0; q < NV; ++q) store4(y + q * kLanes, m[q]);
    }
}

// Routes g to each channel's first maximum in the window (first_max's rule: NaN
// wins once). disjoint: no other window shares these pixels, so each is written
// (g or 0); else the gradient is added at the maximum only.
template <size_t NV>
inline void window_grad(const float* win, const float* g, float* d, size_t kernel, size_t pixel, size_t row,
                        size_t count, bool disjoint) {
    if constexpr (NV == 0) {
        for (size_t c = 0; c < count; ++c) {
            float m = win[c];
            size_t arg = 0;
            for (size_t i = 0; i < kernel; ++i)
                for (size_t j = 0; j < kernel; ++j) {
                    const size_t at = i * row + j * pixel;
                    const float v = win[at + c];
                    const bool take = (v > m) | ((v != v) & (m == m));
                    m = take ? v : m;
                    arg = take ? at : arg;
                }
            if (disjoint)
                for (size_t i = 0; i < kernel; ++i)
                    for (size_t j = 0; j < kernel; ++j) d[i * row + j * pixel + c] = 0.f;
            d[arg + c] += g[c];
        }
    } else {
        f4 m[NV];
        i4 arg[NV];
        for (size_t q = 0; q < NV; ++q) m[q] = load4(win + q * kLanes), arg[q] = i4{0, 0, 0, 0};
        for (size_t i = 0; i < kernel; ++i)
            for (size_t j = 0; j < kernel; ++j) {
                const float* p = win + i * row + j * pixel;
                const int32_t tap = int32_t(i * kernel + j);
                for (size_t q = 0; q < NV; ++q) {
                    const f4 v = load4(p + q * kLanes);
                    const i4 take = (v > m[q]) | ((v != v) & (m[q] == m[q]));
                    m[q] = select4(take, v, m[q]);
                    arg[q] = (take & tap) | (~take & arg[q]);
                }
            }
        if (disjoint) {
            for (size_t i = 0; i < kernel; ++i)
                for (size_t j = 0; j < kernel; ++j) {
                    float* dv = d + i * row + j * pixel;
                    const int32_t tap = int32_t(i * kernel + j);
                    for (size_t q = 0; q < NV; ++q)
                        store4(dv + q * kLanes, f4(i4(load4(g + q * kLanes)) & (arg[q] == tap)));
                }
            return;
        }
        for (size_t q = 0; q < NV; ++q)
            for (size_t l = 0; l < kLanes; ++l) {
                const size_t t = size_t(arg[q][l]), c = q * kLanes + l;
                d[(t / kernel) * row + (t % kernel) * pixel + c] += g[c];
            }
    }
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
        for (size_t b = b0; b < b1; ++b)
            for (size_t oi = 0; oi < oh_; ++oi)
                for (size_t oj = 0; oj < ow_; ++oj) {
                    const float* win = x + ((b * h_ + oi * stride_) * w_ + oj * stride_) * c_;
                    float* m = y + ((b * oh_ + oi) * ow_ + oj) * c_;
                    for_channel_blocks(c_, [&](auto nv, size_t c0) {
                        window_max<decltype(nv)::value>(win + c0, kernel_, c_, w_ * c_, c_ - c0, m + c0);
                    });
                }
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
        // Disjoint windows that tile the plane write every pixel of dx (below).
        const bool tiled = cl_ && stride_ == kernel_ && oh_ * kernel_ == h_ && ow_ * kernel_ == w_;
        if (!tiled) std::fill(dx + b0 * c_ * h_ * w_, dx + b1 * c_ * h_ * w_, 0.f);
        if (cl_) {
            // Windows that do not overlap (stride >= kernel, LeNet's 2x2 every 2) write
            // every pixel of theirs once: the gradient at the first maximum, 0 elsewhere
            // (pixels no window covers stay 0 from the fill).
            const bool disjoint = stride_ >= kernel_;
            for (size_t b = b0; b < b1; ++b) {
                const float* xb = x + b * h_ * w_ * c_;
                float* dxb = dx + b * h_ * w_ * c_;
                for (size_t oi = 0; oi < oh_; ++oi)
                    for (size_t oj = 0; oj < ow_; ++oj) {
                        const size_t first = (oi * stride_ * w_ + oj * stride_) * c_;
                        const float* g = dy + ((b * oh_ + oi) * ow_ + oj) * c_;
                        for_channel_blocks(c_, [&](auto nv, size_t c0) {
                            window_grad<decltype(nv)::value>(xb + first + c0, g + c0, dxb + first + c0, kernel_, c_,
                                                             w_ * c_, c_ - c0, disjoint);
                        });
                    }
            }
            return;
        }
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
