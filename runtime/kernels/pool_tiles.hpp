#pragma once
// KernelSet::maxpool_forward_cl and maxpool_backward_cl for the SIMD sets: up to 16
// channels of a window at a time as 4 vectors of 4 lanes (GCC/clang vector
// extensions: SSE2 on x86, SIMD128 in wasm; LeNet's pools have 6 and 16 channels, so
// wider vectors would mostly be tails), the running maxima and the first maximum's
// tap in registers; the channels past the last whole vector one at a time. Each
// channel sees its window's taps in the reference's order: the same results.
// Internal linkage, like gemm_tiles.hpp.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels.hpp"

namespace sgdx::kernels {
namespace {

struct PoolTiles {
    using f4 = float __attribute__((vector_size(16)));
    using i4 = int32_t __attribute__((vector_size(16)));
    static constexpr size_t kLanes = 4, kBlockVectors = 4;

    static f4 load4(const float* p) {
        f4 v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
    static void store4(float* p, f4 v) { std::memcpy(p, &v, sizeof v); }
    static f4 select4(i4 mask, f4 a, f4 b) { return f4((mask & i4(a)) | (~mask & i4(b))); }

    // fn(nv, c0) per block of channels from c0: nv an integral_constant, the vectors
    // of the block (kBlockVectors, then 1), 0 for the ragged last channels one at a time.
    template <class Fn>
    static void for_channel_blocks(size_t c, Fn&& fn) {
        size_t c0 = 0;
        for (; c0 + kBlockVectors * kLanes <= c; c0 += kBlockVectors * kLanes)
            fn(std::integral_constant<size_t, kBlockVectors>{}, c0);
        for (; c0 + kLanes <= c; c0 += kLanes) fn(std::integral_constant<size_t, 1>{}, c0);
        if (c0 < c) fn(std::integral_constant<size_t, 0>{}, c0);
    }

    // The maximum of a kernel x kernel window per channel (NaN wins and stays: (v > m)
    // | isnan(v)). win: the window's first pixel, pixel / row: floats between
    // neighbouring pixels / rows; NV vectors of channels, or (NV = 0) count channels.
    template <size_t NV>
    static void window_max(const float* win, size_t kernel, size_t pixel, size_t row, size_t count, float* y) {
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

    // Routes g to each channel's first maximum in the window (NaN wins once).
    // disjoint: no other window shares these pixels, so each is written (g or 0);
    // else the gradient is added at the maximum only.
    template <size_t NV>
    static void window_grad(const float* win, const float* g, float* d, size_t kernel, size_t pixel, size_t row,
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

    // Same contract as KernelSet::maxpool_forward_cl.
    static void forward(const float* x, float* y, const PoolShape& s) {
        for (size_t b = 0; b < s.n; ++b)
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj) {
                    const float* win = x + ((b * s.h + oi * s.stride) * s.w + oj * s.stride) * s.c;
                    float* m = y + ((b * s.oh + oi) * s.ow + oj) * s.c;
                    for_channel_blocks(s.c, [&](auto nv, size_t c0) {
                        window_max<decltype(nv)::value>(win + c0, s.k, s.c, s.w * s.c, s.c - c0, m + c0);
                    });
                }
    }

    // Same contract as KernelSet::maxpool_backward_cl.
    static void backward(const float* x, const float* dy, float* dx, const PoolShape& s) {
        // Windows that tile the plane (LeNet's 2x2 every 2) write every pixel of
        // theirs once: the gradient at the first maximum, 0 elsewhere. Windows that
        // do not overlap but leave pixels out write theirs over a zeroed dx; windows
        // that overlap add to it.
        const bool disjoint = s.stride >= s.k;
        const bool tiled = s.stride == s.k && s.oh * s.k == s.h && s.ow * s.k == s.w;
        if (!tiled)
            for (size_t i = 0; i < s.n * s.h * s.w * s.c; ++i) dx[i] = 0.f;
        for (size_t b = 0; b < s.n; ++b) {
            const float* xb = x + b * s.h * s.w * s.c;
            float* dxb = dx + b * s.h * s.w * s.c;
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj) {
                    const size_t first = (oi * s.stride * s.w + oj * s.stride) * s.c;
                    const float* g = dy + ((b * s.oh + oi) * s.ow + oj) * s.c;
                    for_channel_blocks(s.c, [&](auto nv, size_t c0) {
                        window_grad<decltype(nv)::value>(xb + first + c0, g + c0, dxb + first + c0, s.k, s.c,
                                                         s.w * s.c, s.c - c0, disjoint);
                    });
                }
        }
    }
};

}  // namespace
}  // namespace sgdx::kernels
