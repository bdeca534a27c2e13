#pragma once
// xsimd versions of the kernels, written once over the architecture A and
// compiled in one translation unit per instruction set (arch_*.cpp) with that
// unit's -m flags. Everything here has internal linkage (anonymous namespace) and
// calls no std:: inline templates, so the linker cannot merge an AVX-512 copy of a
// helper into the code that runs on an SSE2-only CPU.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <immintrin.h>
#include <xsimd/xsimd.hpp>

#include "class_blocks.hpp"
#include "conv_reference.hpp"
#include "conv_tiles.hpp"
#include "gemm_tiles.hpp"
#include "kernels.hpp"
#include "pool_tiles.hpp"
#include "relu_tiles.hpp"
#include "softmax_tiles.hpp"

namespace sgdx::kernels {
namespace {

// gemm_tiles.hpp's vector adaptor: 6 rows of two vectors (12 accumulators of 16
// registers), 12 rows with AVX-512's 32 registers.
template <class A>
struct XsimdVec {
    using type = xsimd::batch<float, A>;
    static constexpr size_t W = type::size;
    static constexpr size_t kRows = W >= 16 ? 12 : 6;
    static type zero() { return type(0.f); }
    static type splat(float x) { return type(x); }
    static type load(const float* p) { return type::load_unaligned(p); }
    static void store(float* p, type v) { v.store_unaligned(p); }
    static type fma(type a, type b, type c) { return xsimd::fma(a, b, c); }
    static type add(type a, type b) { return a + b; }
    static constexpr bool kOneChannelTile = true;  // conv_tiles.hpp's c1_tile pays here
    // relu_tiles.hpp's
    static type relu(type v) { return xsimd::select(v < zero(), zero(), v); }
    static type zero_where_le0(type v, type m) { return xsimd::select(m <= zero(), zero(), v); }
    // pool_tiles.hpp's
    // (xsimd's != is an ordered compare on AVX: NaN != NaN is false there, so isnan)
    static type max_nan(type v, type m) { return xsimd::select((v > m) | xsimd::isnan(v), v, m); }
    static void first_max(type v, type& m, type& arg, type tap) {
        const auto take = (v > m) | (xsimd::isnan(v) & !xsimd::isnan(m));
        m = xsimd::select(take, v, m);
        arg = xsimd::select(take, tap, arg);
    }
    static type where_eq(type g, type arg, type tap) { return xsimd::select(arg == tap, g, zero()); }
};

template <class A>
struct XsimdKernels {
    using vf = xsimd::batch<float, A>;
    static constexpr size_t W = vf::size;

    // W uint8 values -> W floats. xsimd 8.1 converts uint8 loads element by
    // element, so this one step uses the instruction set's widening loads.
    static vf load_u8(const uint8_t* p) {
        if constexpr (std::is_base_of<xsimd::avx512f, A>::value) {
            return vf(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
        } else if constexpr (std::is_base_of<xsimd::avx2, A>::value) {
            return vf(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
        } else {
            int32_t four;
            __builtin_memcpy(&four, p, 4);
            __m128i zero = _mm_setzero_si128();
            __m128i v = _mm_unpacklo_epi16(
                _mm_unpacklo_epi8(_mm_cvtsi32_si128(four), zero), zero);
            return vf(_mm_cvtepi32_ps(v));
        }
    }

    static void scale_u8(const uint8_t* x, float scale, float* y, size_t n) {
        const vf s(scale);
        size_t i = 0;
        for (; i + W <= n; i += W) (load_u8(x + i) * s).store_unaligned(y + i);
        for (; i < n; ++i) y[i] = float(x[i]) * scale;
    }

    static vf load_x(const float* p) { return vf::load_unaligned(p); }
    static vf load_x(const uint8_t* p) { return load_u8(p); }

    // Rows of x per forward block and column strips per backward pass: with 32
    // registers (AVX-512) twice as many, so each loaded w or x vector feeds more FMAs
    // (the loops are bound by loads, not by the FMA units).
    static constexpr size_t kRows = W >= 16 ? 4 : 2;
    static constexpr size_t kStrips = W >= 16 ? 2 : 1;

    // R rows of x against K rows of w: R·K independent accumulators.
    // x: (R, D) at row stride D -> y: (R, C) columns [c0, c0 + K) = scale * x · wᵀ + b
    template <class T, size_t R, size_t K>
    static void forward_block(const T* x, float scale, const float* w, const float* b, float* y,
                              size_t D, size_t C) {
        vf acc[R][K];
        for (size_t r = 0; r < R; ++r)
            for (size_t j = 0; j < K; ++j) acc[r][j] = vf(0.f);
        size_t k = 0;
        for (; k + W <= D; k += W) {
            vf xv[R];
            for (size_t r = 0; r < R; ++r) xv[r] = load_x(x + r * D + k);
            for (size_t j = 0; j < K; ++j) {
                vf wv = vf::load_unaligned(w + j * D + k);
                for (size_t r = 0; r < R; ++r) acc[r][j] = xsimd::fma(xv[r], wv, acc[r][j]);
            }
        }
        for (size_t r = 0; r < R; ++r)
            for (size_t j = 0; j < K; ++j) {
                float sum = xsimd::hadd(acc[r][j]);
                for (size_t t = k; t < D; ++t) sum += float(x[r * D + t]) * w[j * D + t];
                y[r * C + j] = scale * sum + b[j];
            }
    }

    template <class T, size_t K>
    static void forward_rows(const T* x, float scale, const float* w, const float* b, float* y,
                             size_t B, size_t D, size_t C, size_t c0) {
        size_t i = 0;
        for (; i + kRows <= B; i += kRows)
            forward_block<T, kRows, K>(x + i * D, scale, w + c0 * D, b + c0, y + i * C + c0, D, C);
        for (; i < B; ++i)
            forward_block<T, 1, K>(x + i * D, scale, w + c0 * D, b + c0, y + i * C + c0, D, C);
    }

    static constexpr size_t kForwardMaxK = 6;

    // The C outputs in equal blocks of at most kForwardMaxK (10 -> 5 + 5).
    template <class T>
    static void forward(const T* x, float scale, const float* w, const float* b, float* y,
                        size_t B, size_t D, size_t C) {
        for_each_class_block<kForwardMaxK>(C, [&](auto k, size_t c0) {
            forward_rows<T, decltype(k)::value>(x, scale, w, b, y, B, D, C, c0);
        });
    }

    // S adjacent W-wide column strips of dw for K classes: per row, S x vectors
    // loaded once and K broadcast dy values -> S·K FMAs.
    template <class T, size_t S, size_t K>
    static void backward_strips(const T* x, float scale, const float* dy, float* dw, size_t B,
                                size_t D, size_t C, size_t c0, size_t k) {
        vf acc[S][K];
        for (size_t s = 0; s < S; ++s)
            for (size_t j = 0; j < K; ++j) acc[s][j] = vf(0.f);
        for (size_t i = 0; i < B; ++i) {
            vf xv[S];
            for (size_t s = 0; s < S; ++s) xv[s] = load_x(x + i * D + k + s * W);
            const float* g = dy + i * C + c0;
            for (size_t j = 0; j < K; ++j) {
                vf gj(g[j]);
                for (size_t s = 0; s < S; ++s) acc[s][j] = xsimd::fma(gj, xv[s], acc[s][j]);
            }
        }
        const vf vscale(scale);
        for (size_t s = 0; s < S; ++s)
            for (size_t j = 0; j < K; ++j) {
                float* out = dw + (c0 + j) * D + k + s * W;
                xsimd::fma(vscale, acc[s][j], vf::load_unaligned(out)).store_unaligned(out);
            }
    }

    template <class T, size_t K>
    static void backward_block(const T* x, float scale, const float* dy, float* dw, size_t B,
                               size_t D, size_t C, size_t c0) {
        size_t k = 0;
        for (; k + kStrips * W <= D; k += kStrips * W)
            backward_strips<T, kStrips, K>(x, scale, dy, dw, B, D, C, c0, k);
        for (; k + W <= D; k += W) backward_strips<T, 1, K>(x, scale, dy, dw, B, D, C, c0, k);
        for (; k < D; ++k)
            for (size_t j = 0; j < K; ++j) {
                float sum = 0.f;
                for (size_t i = 0; i < B; ++i) sum += dy[i * C + c0 + j] * float(x[i * D + k]);
                dw[(c0 + j) * D + k] += scale * sum;
            }
    }

    static constexpr size_t kBackwardMaxK = 10;

    template <class T>
    static void backward(const T* x, float scale, const float* dy, float* dw, float* db,
                         size_t B, size_t D, size_t C) {
        for_each_class_block<kBackwardMaxK>(C, [&](auto k, size_t c0) {
            backward_block<T, decltype(k)::value>(x, scale, dy, dw, B, D, C, c0);
        });
        if (db)
            for (size_t i = 0; i < B; ++i)
                for (size_t c = 0; c < C; ++c) db[c] += dy[i * C + c];
    }

    static void linear_forward(const float* x, const float* w, const float* b, float* y, size_t B,
                               size_t D, size_t C) {
        forward(x, 1.f, w, b, y, B, D, C);
    }
    static void linear_backward(const float* x, const float* dy, float* dw, float* db, size_t B,
                                size_t D, size_t C) {
        backward(x, 1.f, dy, dw, db, B, D, C);
    }

    static double softmax_xent(const float* logits, const int32_t* target, float* dlogits,
                               float grad_scale, size_t B, size_t C, size_t* correct) {
        return softmax_xent_tiled<1024>(logits, target, dlogits, grad_scale, B, C, correct, [](float* e, size_t n) {
            size_t i = 0;
            for (; i + W <= n; i += W) xsimd::exp(vf::load_aligned(e + i)).store_aligned(e + i);
            for (; i < n; ++i) e[i] = std::exp(e[i]);
        });
    }

    static void sgd_update(float* p, const float* grad, float* buf, size_t n, float lr,
                           float momentum, float dampening, float weight_decay, bool nesterov,
                           bool first) {
        const vf vlr(lr), vwd(weight_decay), vm(momentum), vdamp(1.f - dampening);
        size_t i = 0;
        if (momentum == 0.f) {
            for (; i + W <= n; i += W) {
                vf pv = vf::load_unaligned(p + i);
                vf g = xsimd::fma(vwd, pv, vf::load_unaligned(grad + i));
                xsimd::fnma(vlr, g, pv).store_unaligned(p + i);
            }
        } else {
            for (; i + W <= n; i += W) {
                vf pv = vf::load_unaligned(p + i);
                vf g = xsimd::fma(vwd, pv, vf::load_unaligned(grad + i));
                vf bv = first ? g : xsimd::fma(vm, vf::load_unaligned(buf + i), vdamp * g);
                bv = xsimd::select(xsimd::abs(bv) < vf(kTinyMomentum), vf(0.f), bv);  // kernels.hpp
                bv.store_unaligned(buf + i);
                vf step = nesterov ? xsimd::fma(vm, bv, g) : bv;
                xsimd::fnma(vlr, step, pv).store_unaligned(p + i);
            }
        }
        if (i < n) {
            reference().sgd_update(p + i, grad + i, buf ? buf + i : nullptr, n - i, lr, momentum,
                                   dampening, weight_decay, nesterov, first);
            flush_tiny_momentum(buf, i, n, momentum);
        }
    }

    // 12 independent FMA chains over registers only: the FMA units' ceiling.
    static double fma_probe(size_t iterations) {
        vf acc[12];
        for (size_t j = 0; j < 12; ++j) acc[j] = vf(float(j) * 1e-3f);
        const vf a(0.999f), b(1e-4f);
        for (size_t i = 0; i < iterations; ++i)
            for (size_t j = 0; j < 12; ++j) acc[j] = xsimd::fma(acc[j], a, b);
        vf sum(0.f);
        for (size_t j = 0; j < 12; ++j) sum += acc[j];
        return double(xsimd::hadd(sum));  // consumed, so the loop is kept
    }
    static constexpr size_t kProbeFlopsPerIteration = 12 * W * 2;

    // The gemm panel and the convolutions' buffers; the linear kernels keep none.
    static void reserve_scratch(const ScratchNeeds& needs) {
        if (needs.gemm) GemmTiles<XsimdVec<A>>::reserve();
        if (needs.conv) ConvTiles<XsimdVec<A>>::reserve(*needs.conv);
    }

    static KernelSet make(const char* name) {
        return KernelSet{name,         scale_u8,   linear_forward,      linear_backward,
                         softmax_xent, sgd_update, forward<uint8_t>, backward<uint8_t>,
                         GemmTiles<XsimdVec<A>>::gemm, ReluTiles<XsimdVec<A>>::forward, ReluTiles<XsimdVec<A>>::backward,
                         ConvTiles<XsimdVec<A>>::conv_input_grad_cl, ConvTiles<XsimdVec<A>>::conv_forward_cl,
                         ConvTiles<XsimdVec<A>>::conv_weight_grad_cl, PoolTiles<XsimdVec<A>>::forward,
                         PoolTiles<XsimdVec<A>>::backward, reserve_scratch};
    }
};

}  // namespace
}  // namespace sgdx::kernels
