#pragma once
// KernelSet::maxpool_forward_cl and maxpool_backward_cl for the SIMD sets, written
// once over gemm_tiles.hpp's vector adaptor V, which has for them
//
//   static type max_nan(type v, type m);  // v where v > m or v is NaN, else m: PyTorch's
//                                         // (v > max) || isnan(v), so a NaN wins and stays
//   static void first_max(type v, type& m, type& arg, type tap);
//                                         // where v > m, or v is NaN and m is not:
//                                         // m = v, arg = tap (the first maximum, a NaN once)
//   static type where_eq(type g, type arg, type tap);  // g where arg == tap, else 0
//
// A window's channels in whole vectors (the tap index tracked as a float vector
// beside the maximum, so no integer vectors are needed), the channels past the last
// whole vector one at a time (the reference's loop); each channel sees its window's taps in the
// reference's row order: the same results, bit for bit. At V's full width: with the
// 4 lanes of GCC's vector extensions (the first version) LeNet's first pool (64 x 24
// x 24 x 16, least of 200 calls) took 88-90 us forward, 170-172 backward on AVX-512;
// here 48-50 and 100-101 (AVX2 67 / 124-126 -> 45 / 120; SSE2 86 / 181 -> 74 / 167-171).
// Internal linkage, like gemm_tiles.hpp.
#include <cstddef>
#include <type_traits>

#include "kernels.hpp"
#include "reference.hpp"

namespace sgdx::kernels {
namespace {

template <class V>
struct PoolTiles {
    using vec = typename V::type;
    static constexpr size_t W = V::W;

    // fn(nb, c0) per block of channels from c0, nb an integral_constant: the block's
    // vectors, kBlock while they last, then the 1-3 whole vectors left as one block.
    // Independent chains of selects side by side, and one pass over the window's taps
    // for all of them (one vector at a time, LeNet's first pool: SSE2 1.6-1.9x
    // slower; AVX2's 16 channels as two passes of one vector 1.2-1.4x).
    static constexpr size_t kBlock = 4;
    template <class Fn>
    static size_t for_vector_blocks(size_t c, Fn&& fn) {
        size_t c0 = 0;
        for (; c0 + kBlock * W <= c; c0 += kBlock * W) fn(std::integral_constant<size_t, kBlock>{}, c0);
        switch ((c - c0) / W) {
            case 3: fn(std::integral_constant<size_t, 3>{}, c0); return c0 + 3 * W;
            case 2: fn(std::integral_constant<size_t, 2>{}, c0); return c0 + 2 * W;
            case 1: fn(std::integral_constant<size_t, 1>{}, c0); return c0 + W;
            default: return c0;  // the first channel past the whole vectors
        }
    }

    // Same contract as KernelSet::maxpool_forward_cl.
    static void forward(const float* x, float* y, const PoolShape& s) {
        const size_t row = s.w * s.c, pixel = s.c;
        for (size_t b = 0; b < s.n; ++b)
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj) {
                    const float* win = x + ((b * s.h + oi * s.stride) * s.w + oj * s.stride) * s.c;
                    float* out = y + ((b * s.oh + oi) * s.ow + oj) * s.c;
                    const size_t tail = for_vector_blocks(s.c, [&](auto nb, size_t c0) {
                        constexpr size_t NB = decltype(nb)::value;
                        vec m[NB];
                        for (size_t q = 0; q < NB; ++q) m[q] = V::load(win + c0 + q * W);
                        for (size_t i = 0; i < s.k; ++i)
                            for (size_t j = 0; j < s.k; ++j) {
                                if (!(i + j)) continue;
                                const float* p = win + i * row + j * pixel + c0;
                                for (size_t q = 0; q < NB; ++q) m[q] = V::max_nan(V::load(p + q * W), m[q]);
                            }
                        for (size_t q = 0; q < NB; ++q) V::store(out + c0 + q * W, m[q]);
                    });
                    for (size_t c = tail; c < s.c; ++c) out[c] = win[c + ref::maxpool_first_max(win + c, s.k, pixel, row)];
                }
    }

    // Same contract as KernelSet::maxpool_backward_cl.
    static void backward(const float* x, const float* dy, float* dx, const PoolShape& s) {
        const size_t row = s.w * s.c, pixel = s.c;
        // Windows that do not overlap write each pixel of theirs once (the gradient at
        // the first maximum, 0 elsewhere); where they also tile the plane (LeNet's 2x2
        // every 2) nothing else needs zeroing. Overlapping windows add.
        const bool disjoint = s.stride >= s.k;
        const bool tiled = s.stride == s.k && s.oh * s.k == s.h && s.ow * s.k == s.w;
        if (!tiled)
            for (size_t i = 0; i < s.n * s.h * s.w * s.c; ++i) dx[i] = 0.f;
        for (size_t b = 0; b < s.n; ++b)
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj) {
                    const size_t first = ((b * s.h + oi * s.stride) * s.w + oj * s.stride) * s.c;
                    const float* win = x + first;
                    const float* g = dy + ((b * s.oh + oi) * s.ow + oj) * s.c;
                    float* d = dx + first;
                    const size_t tail = for_vector_blocks(s.c, [&](auto nb, size_t c0) {
                        constexpr size_t NB = decltype(nb)::value;
                        vec m[NB], arg[NB];
                        for (size_t q = 0; q < NB; ++q) m[q] = V::load(win + c0 + q * W), arg[q] = V::zero();
                        for (size_t i = 0; i < s.k; ++i)
                            for (size_t j = 0; j < s.k; ++j) {
                                if (!(i + j)) continue;
                                const float* p = win + i * row + j * pixel + c0;
                                const vec tap = V::splat(float(i * s.k + j));
                                for (size_t q = 0; q < NB; ++q) V::first_max(V::load(p + q * W), m[q], arg[q], tap);
                            }
                        if (disjoint) {
                            for (size_t i = 0; i < s.k; ++i)
                                for (size_t j = 0; j < s.k; ++j) {
                                    float* dp = d + i * row + j * pixel + c0;
                                    const vec tap = V::splat(float(i * s.k + j));
                                    for (size_t q = 0; q < NB; ++q)
                                        V::store(dp + q * W, V::where_eq(V::load(g + c0 + q * W), arg[q], tap));
                                }
                            return;
                        }
                        for (size_t q = 0; q < NB; ++q) {
                            float taps[W];
                            V::store(taps, arg[q]);
                            for (size_t l = 0; l < W; ++l) {
                                const size_t t = size_t(taps[l]), c = c0 + q * W + l;
                                d[(t / s.k) * row + (t % s.k) * pixel + c] += g[c];
                            }
                        }
                    });
                    for (size_t c = tail; c < s.c; ++c) {
                        if (disjoint)
                            for (size_t i = 0; i < s.k; ++i)
                                for (size_t j = 0; j < s.k; ++j) d[i * row + j * pixel + c] = 0.f;
                        d[c + ref::maxpool_first_max(win + c, s.k, pixel, row)] += g[c];
                    }
                }
    }
};

}  // namespace
}  // namespace sgdx::kernels
