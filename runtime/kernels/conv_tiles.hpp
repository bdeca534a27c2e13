#pragma once
// KernelSet::conv_forward_cl and conv_weight_grad_cl for the SIMD sets, written
// once over gemm_tiles.hpp's vector adaptor V: direct convolutions on
// channels-last planes, with no patch matrix, for the small channel counts of
// MNIST networks. The output channels lie along the vector lanes.
//
// Both work on one sample at a time through a zero-padded channels-last copy of
// it, (H + 2 pad, W + 2 pad, in), so that every window lies inside. Along one row
// of the copy the values a window reads for its kernel row ki are contiguous:
// tap (kj, ci) sits at kj·in + ci from the window's corner, so the reduction over
// a kernel row is one run of t = 0 .. k·in - 1.
//
// Forward: a tile of RR output rows by RC output columns by NV vectors of output
// channels stays in registers over the whole reduction (k rows of k·in steps):
// per step, NV weight vectors (packed, zero-padded to whole vectors) and one
// broadcast input value per pixel, RR·RC·NV multiply-adds. The bias starts the
// sums.
// Weight gradient: a tile of KI kernel rows by T consecutive steps t by NV
// vectors (and PX pixel phases when that is few) stays in registers over a
// sample's output pixels: per pixel NV vectors of dy and one broadcast input per
// (ki, t), KI·T·NV multiply-adds.
// Internal linkage and no std:: templates, like gemm_tiles.hpp.
#include <cstddef>
#include <cstring>

#include "class_blocks.hpp"
#include "conv_reference.hpp"
#include "gemm_tiles.hpp"
#include "kernels.hpp"
#include "relu_tiles.hpp"

// A tile's parts inlined into the tile: passed to a call, its accumulators would
// live in memory.
#define SGDX_TILE_PART inline __attribute__((always_inline))
#define SGDX_TILE_PART_LAMBDA __attribute__((always_inline))

namespace sgdx::kernels {
namespace {

template <class V>
struct ConvTiles {
    using vec = typename V::type;
    static constexpr size_t W = V::W;
    // Accumulators a tile keeps: 28 of AVX-512's 32 registers, 12 of 16 elsewhere.
    static constexpr size_t kAcc = V::W >= 16 ? 28 : 2 * V::kRows;
    // c1_tile's: with 28, GCC spilled them (tutorial CNN conv1, AVX-512, batch 64:
    // 60 µs; 14-16 accumulators 34-37 µs, 8 41 µs).
    static constexpr size_t kAccOne = kAcc < 16 ? kAcc : 16;
    static constexpr size_t kMaxCols = 16, kMaxRows = 4, kMaxNV = 2;
    static constexpr size_t kGroupFloats = size_t(48) << 10;

    struct Buffers {
        PackBuffer weights, padded, dy, grad;
    };
    static Buffers& buffers() {
        SGDX_GEMM_PER_THREAD Buffers b;
        return b;
    }
    // Floats each kernel takes of the buffers for shape s (0: none); the kernels ask
    // for exactly these, reserve() for the most of the three.
    struct Sizes {
        size_t weights, padded, dy, grad;
    };
    // (Not inlined: in the kernels they changed GCC's inlining of the tiles, and the
    // tutorial CNN's step took 4% longer.)
    __attribute__((noinline)) static Sizes forward_sizes(const ConvShape& s);
    __attribute__((noinline)) static Sizes input_grad_sizes(const ConvShape& s);
    __attribute__((noinline)) static Sizes weight_grad_sizes(const ConvShape& s);
    // This thread's buffers sized for the three kernels on shape s (s.n: the most
    // samples a call takes), so that no such call allocates.
    static void reserve(const ConvShape& s, Sizes weight_grad) {
        const Sizes f = forward_sizes(s), d = input_grad_sizes(s), g = weight_grad;
        const auto most = [](size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); };
        Buffers& buf = buffers();
        buf.weights.get(most(f.weights, d.weights, g.weights));
        buf.padded.get(most(f.padded, d.padded, g.padded));
        buf.dy.get(most(f.dy, d.dy, g.dy));
        buf.grad.get(most(f.grad, d.grad, g.grad));
    }
    static void reserve(const ConvShape& s) { reserve(s, weight_grad_sizes(s)); }

    // The padded copy's geometry.
    struct Padded {
        size_t wp, row;  // columns, floats per row
        size_t size;     // floats, + W of slack read past the end by no tile
    };
    static Padded padded_geometry(const ConvShape& s) {
        const size_t hp = s.h + 2 * s.pad, wp = s.w + 2 * s.pad;
        return {wp, wp * s.cin, hp * wp * s.cin + W};
    }

    // Sample x: (h, w, cin) -> its padded copy. The border (and slack) is zeroed once
    // per call (zero_border), the inside overwritten per sample.
    static void pad_sample(const float* x, float* p, const ConvShape& s, const Padded& g) {
        const size_t line = s.w * s.cin;
        for (size_t i = 0; i < s.h; ++i) copy(p + (i + s.pad) * g.row + s.pad * s.cin, x + i * line, line);
    }

    // n floats in vectors: these rows are short (28 to 448 floats) and many (a few
    // thousand per CNN step); against a memcpy call per row, the tutorial CNN's step
    // 1-4% faster (AVX-512, 400-411 µs against 414-418; LeNet 2,449-2,469 against
    // 2,492-2,511).
    // A ragged end as one more vector over the row's last W floats (some copied
    // twice, the same values): the first layers' 28- and 32-float rows took 12 and
    // 16 scalar copies each.
    static void copy(float* dst, const float* src, size_t n) {
        size_t i = 0;
        for (; i + W <= n; i += W) V::store(dst + i, V::load(src + i));
        if (i == n) return;
        if (n >= W) V::store(dst + n - W, V::load(src + n - W));
        else
            for (; i < n; ++i) dst[i] = src[i];
    }

    // ---------------------------------------------------------------- forward

    struct Fwd {
        const float* xp;  // the padded sample, at output (0, 0)'s window
        size_t row;       // floats per padded row
        size_t cs;        // floats between neighbouring output columns' windows: stride·cin
        size_t rs;        // floats between neighbouring output rows' windows: stride·row
        size_t kr, kc;    // window rows; steps per window row, k·cin
        size_t chan;      // steps per window column (cin)
        // Window row r of output row o reads plane row o·sr + r + r0, inside if in
        // [0, vh); likewise columns (0 there: padding).
        long r0, c0;
        size_t sr, sc, vh, vw;
        const float* w;   // packed weights of the block: (kr, kc, NV·W)
        const float* b;   // bias of the block, NV·W
        float* y;         // output (0, 0)
        size_t ycs, yrs;  // floats between neighbouring output columns, rows
        size_t cout, co0;  // channels of an output pixel, the block's first
    };

    // The fused ReLU (ConvShape::relu, relu_mask) runs as relu_tiles.hpp's loops over
    // each sample's outputs (or input gradient) right after its tiles, while they are
    // in L1: inside the tiles' store it lengthened the accumulators' live ranges, and
    // V8 spilled them (the page's convolutions 2-4x slower).

    // Every accumulator of a tile starts at its channel's bias.
    template <size_t RR, size_t RC, size_t NV>
    static SGDX_TILE_PART void start_tile(const Fwd& f, vec (&acc)[RR][RC][NV]) {
        SGDX_UNROLL
        for (size_t v = 0; v < NV; ++v) {
            const vec bv = V::load(f.b + v * W);
            SGDX_UNROLL
            for (size_t q = 0; q < RR; ++q)
                SGDX_UNROLL
                for (size_t c = 0; c < RC; ++c) acc[q][c][v] = bv;
        }
    }

    // One step of a tile's reduction: NV vectors of weights at wt times each pixel
    // (q, c)'s input value in(q, c), broadcast.
    template <size_t RR, size_t RC, size_t NV, class In>
    static SGDX_TILE_PART void tile_step(vec (&acc)[RR][RC][NV], const float* wt, In in) {
        vec wv[NV];
        SGDX_UNROLL
        for (size_t v = 0; v < NV; ++v) wv[v] = V::load(wt + v * W);
        SGDX_UNROLL
        for (size_t q = 0; q < RR; ++q)
            SGDX_UNROLL
            for (size_t c = 0; c < RC; ++c) {
                const vec a = V::splat(in(q, c));
                SGDX_UNROLL
                for (size_t v = 0; v < NV; ++v) acc[q][c][v] = V::fma(a, wv[v], acc[q][c][v]);
            }
    }

    // The tile's outputs into y: whole vectors, the last channels through a copy.
    template <size_t RR, size_t RC, size_t NV>
    static SGDX_TILE_PART void store_tile(const Fwd& f, vec (&acc)[RR][RC][NV], size_t oi, size_t oj) {
        const size_t left = f.cout - f.co0;  // channels from co0 on
        // Unrolled: indexed by a loop counter, the accumulators would live in memory.
        SGDX_UNROLL
        for (size_t q = 0; q < RR; ++q)
            SGDX_UNROLL
            for (size_t c = 0; c < RC; ++c) {
                float* dst = f.y + (oi + q) * f.yrs + (oj + c) * f.ycs + f.co0;
                SGDX_UNROLL
                for (size_t v = 0; v < NV; ++v) {
                    if (left >= (v + 1) * W) {
                        V::store(dst + v * W, acc[q][c][v]);
                    } else if (left > v * W) {
                        float tmp[W];
                        V::store(tmp, acc[q][c][v]);
                        for (size_t j = 0; j < left - v * W; ++j) dst[v * W + j] = tmp[j];
                    }
                }
            }
    }

    // CS: f.cs known at compile time (0: read at run time).
    template <size_t RR, size_t RC, size_t NV, size_t CS = 0>
    __attribute__((noinline)) static void fwd_tile(const Fwd& f, size_t oi, size_t oj) {
        vec acc[RR][RC][NV];
        start_tile<RR, RC, NV>(f, acc);
        // The window rows and columns that some pixel of the tile reads inside the
        // plane; the rest read the zero padding only, and add nothing.
        const long rlo = -f.r0 - long((oi + RR - 1) * f.sr), rhi = long(f.vh) - f.r0 - long(oi * f.sr);
        const long clo = -f.c0 - long((oj + RC - 1) * f.sc), chi = long(f.vw) - f.c0 - long(oj * f.sc);
        const size_t k0 = rlo > 0 ? size_t(rlo) : 0, k1 = rhi < long(f.kr) ? size_t(rhi > 0 ? rhi : 0) : f.kr;
        const size_t cols = f.kc / f.chan;
        const size_t t0 = (clo > 0 ? size_t(clo) : 0) * f.chan;
        const size_t t1 = (chi < long(cols) ? size_t(chi > 0 ? chi : 0) : cols) * f.chan;
        for (size_t ki = k0; ki < k1; ++ki) {
            const float* xr = f.xp + oi * f.rs + ki * f.row + oj * f.cs;
            const float* wt = f.w + (ki * f.kc + t0) * NV * W;
            const size_t cs = CS ? CS : f.cs;
            for (size_t t = t0; t < t1; ++t, wt += NV * W)
                tile_step(acc, wt, [&](size_t q, size_t c) { return xr[q * f.rs + c * cs + t]; });
        }
        store_tile<RR, RC, NV>(f, acc, oi, oj);
    }

    // ------------------------------------------------ one input channel
    //
    // A first layer's windows read one channel, so fwd_tile's step t is a tap kj
    // and its pixels' inputs sit stride floats apart: with the stride a runtime
    // value each of the RR·RC pixels took an index register, and the accumulators
    // were spilled and reloaded every kernel row (the tutorial CNN's conv1 at 25%
    // of the peak). Here the stride S is a template parameter (1 or 2, the first
    // layers of LeNet and the tutorial CNN): the pixels of a tile row are fixed
    // offsets from one pointer per row. Same sums in the same order as fwd_tile.
    template <size_t RR, size_t RC, size_t NV, size_t S>
    __attribute__((noinline)) static void c1_tile(const Fwd& f, size_t oi, size_t oj) {
        vec acc[RR][RC][NV];
        start_tile<RR, RC, NV>(f, acc);
        const size_t K = f.kr;
        const float* wt = f.w;
        for (size_t ki = 0; ki < K; ++ki) {
            const float* row = f.xp + (oi * S + ki) * f.row + oj * S;
            for (size_t kj = 0; kj < K; ++kj, wt += NV * W) {
                const float* xr[RR];
                SGDX_UNROLL
                for (size_t q = 0; q < RR; ++q) xr[q] = row + q * S * f.row + kj;
                tile_step(acc, wt, [&](size_t q, size_t c) { return xr[q][c * S]; });
            }
        }
        store_tile<RR, RC, NV>(f, acc, oi, oj);
    }

    // Which tile a grid runs, chosen once per grid (a fwd_cols holding every kind
    // grew too large for V8 to keep the accumulators in registers).
    enum Kind : int { kGeneral, kStride16, kStride32, kOneChannelS1, kOneChannelS2 };
    // c1_tile where the adaptor asks for it (V::kOneChannelTile): on x86 it took the
    // tutorial CNN's conv1 from 45-48 to 34-41 µs (AVX-512) and 148 to 130 (SSE2);
    // V8 ran it 2.4x slower than fwd_tile (140 -> 339 µs).
    template <class U>
    static constexpr auto one_channel_tile(int) -> decltype(U::kOneChannelTile) { return U::kOneChannelTile; }
    template <class U>
    static constexpr bool one_channel_tile(long) { return false; }
    static Kind kind_of(const Fwd& f, bool one_channel) {
        one_channel = one_channel && one_channel_tile<V>(0);
        if (one_channel && f.sr == 1) return kOneChannelS1;
        if (one_channel && f.sr == 2) return kOneChannelS2;
        return f.cs == 16 ? kStride16 : f.cs == 32 ? kStride32 : kGeneral;
    }

    // The accumulators a kind's tiles may hold (fewer tiles compiled for c1_tile).
    static constexpr size_t budget(int kind) {
        return kind == kOneChannelS1 || kind == kOneChannelS2 ? kAccOne : kAcc;
    }

    template <int K, size_t NV, size_t RR, size_t RC>
    static void fwd_cols(const Fwd& f, size_t oi, size_t oj, size_t rc) {
        if constexpr (RC > 1)
            if (rc < RC) return fwd_cols<K, NV, RR, RC - 1>(f, oi, oj, rc);
        if constexpr (RR * RC * NV <= budget(K)) {
            if constexpr (K == kOneChannelS1) c1_tile<RR, RC, NV, 1>(f, oi, oj);
            else if constexpr (K == kOneChannelS2) c1_tile<RR, RC, NV, 2>(f, oi, oj);
            else if constexpr (K == kStride16) fwd_tile<RR, RC, NV, 16>(f, oi, oj);
            else if constexpr (K == kStride32) fwd_tile<RR, RC, NV, 32>(f, oi, oj);
            else fwd_tile<RR, RC, NV>(f, oi, oj);
        }
    }
    template <int K, size_t NV, size_t RR>
    static void fwd_rows(const Fwd& f, size_t oi, size_t oj, size_t rr, size_t rc) {
        if constexpr (RR > 1)
            if (rr < RR) return fwd_rows<K, NV, RR - 1>(f, oi, oj, rr, rc);
        constexpr size_t cols = budget(K) / (RR * NV) < kMaxCols ? budget(K) / (RR * NV) : kMaxCols;
        if constexpr (cols > 0) fwd_cols<K, NV, RR, cols>(f, oi, oj, rc);
    }

    // Same contract as KernelSet::conv_forward_cl.
    static void conv_forward_cl(const float* x, const float* w, const float* b, float* y, const ConvShape& s) {
        const size_t K = s.k, kc = K * s.cin, vectors = (s.cout + W - 1) / W;
        Buffers& buf = buffers();
        const Sizes sizes = forward_sizes(s);
        // Weights (cout, cin, k, k) -> per block of NV vectors: (k, k·cin, NV·W), zero
        // beyond cout; the bias after them, padded to whole vectors.
        float* wp = buf.weights.get(sizes.weights);
        float* bp = wp + K * kc * vectors * W;
        for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
            const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV, lanes = nv * W;
            float* blk = wp + K * kc * v0 * W;
            for (size_t ki = 0; ki < K; ++ki)
                for (size_t kj = 0; kj < K; ++kj)
                    for (size_t ci = 0; ci < s.cin; ++ci)
                        for (size_t l = 0; l < lanes; ++l) {
                            const size_t co = v0 * W + l;
                            blk[(ki * kc + kj * s.cin + ci) * lanes + l] =
                                co < s.cout ? w[((co * s.cin + ci) * K + ki) * K + kj] : 0.f;
                        }
        }
        for (size_t co = 0; co < vectors * W; ++co) bp[co] = co < s.cout ? b[co] : 0.f;
        const Padded g = padded_geometry(s);
        float* xp = buf.padded.get(sizes.padded);
        for (size_t i = 0; i < g.size; ++i) xp[i] = 0.f;
        Fwd f{xp,      g.row,   s.stride * s.cin, s.stride * g.row, K,       kc,      s.cin,   -long(s.pad),
              -long(s.pad), s.stride, s.stride, s.h, s.w, nullptr, nullptr, nullptr, s.cout, s.ow * s.cout, s.cout, 0};
        const Kind kind = kind_of(f, s.cin == 1);
        for (size_t n = 0; n < s.n; ++n) {
            pad_sample(x + n * s.h * s.w * s.cin, xp, s, g);
            f.y = y + n * s.oh * s.ow * s.cout;
            for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
                const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV;
                f.w = wp + K * kc * v0 * W;
                f.b = bp + v0 * W;
                f.co0 = v0 * W;
                fwd_grid(f, s.oh, s.ow, nv, kind);
            }
            if (s.relu) ReluTiles<V>::forward(f.y, f.y, s.oh * s.ow * s.cout);
        }
    }

    // Every output of an oh x ow grid in tiles: whole rows where they fit (the
    // fewest, most even column chunks), then as many rows as the accumulators allow.
    static void fwd_grid(const Fwd& f, size_t oh, size_t ow, size_t nv, Kind kind) {
        if constexpr (one_channel_tile<V>(0)) {  // else never chosen, and not compiled
            if (kind == kOneChannelS1) return fwd_grid_of<kOneChannelS1>(f, oh, ow, nv);
            if (kind == kOneChannelS2) return fwd_grid_of<kOneChannelS2>(f, oh, ow, nv);
        }
        switch (kind) {
            case kStride16: return fwd_grid_of<kStride16>(f, oh, ow, nv);
            case kStride32: return fwd_grid_of<kStride32>(f, oh, ow, nv);
            default: return fwd_grid_of<kGeneral>(f, oh, ow, nv);
        }
    }
    template <int K>
    static void fwd_grid_of(const Fwd& f, size_t oh, size_t ow, size_t nv) {
        const size_t pixels = budget(K) / nv, most = pixels < kMaxCols ? pixels : kMaxCols;
        const size_t chunks = (ow + most - 1) / most, rc = (ow + chunks - 1) / chunks;
        size_t rr = pixels / rc;
        if (rr > kMaxRows) rr = kMaxRows;
        for (size_t oi = 0; oi < oh; oi += rr) {
            const size_t rows = oh - oi < rr ? oh - oi : rr;
            for (size_t oj = 0; oj < ow; oj += rc) {
                const size_t cols = ow - oj < rc ? ow - oj : rc;
                if (nv == 1) fwd_rows<K, 1, kMaxRows>(f, oi, oj, rows, cols);
                else fwd_rows<K, 2, kMaxRows>(f, oi, oj, rows, cols);
            }
        }
    }

    // ---------------------------------------------------------- input gradient
    //
    // Input pixels of one phase (i mod stride, j mod stride) take the same taps:
    // i + pad = oi·stride + ki gives ki = ki0, ki0 + stride, ... with ki0 = (i + pad)
    // mod stride, from output rows oi = m + base - u (i = m·stride + phase, u the
    // tap's index). So each phase is a dense stride-1 convolution of dy (channels-last,
    // zero-padded) with its few taps, input channels along the lanes, written to every
    // stride-th pixel of dx: the forward's tiles, no col2im and nothing scattered.
    // (Stride 1 is one phase: the forward of dy with the kernel turned round.)

    // One axis of a phase: taps ki0 + stride·u for u < nu, window rows from m + lo.
    struct Phase {
        size_t ki0, nu, count;  // first tap, taps, input rows of the phase
        long lo;                // the window's first dy row for m = 0 (dy row m + lo)
    };
    static Phase phase_of(size_t ph, size_t K, size_t stride, size_t pad, size_t in) {
        Phase p{(ph + pad) % stride, 0, in > ph ? (in - ph + stride - 1) / stride : 0, 0};
        p.nu = p.ki0 < K ? (K - p.ki0 + stride - 1) / stride : 0;
        p.lo = long((ph + pad) / stride) - long(p.nu) + 1;
        return p;
    }

    // Same contract as KernelSet::conv_input_grad_cl.
    // The padding dy needs on each side for every phase's windows to lie inside.
    struct DyPadding {
        long top, left;
        size_t hp, wp;  // padded rows and columns
    };
    __attribute__((noinline)) static DyPadding dy_padding(const ConvShape& s) {
        const size_t K = s.k, S = s.stride;
        long top = 0, bottom = long(s.oh), left = 0, right = long(s.ow);
        for (size_t ph = 0; ph < S; ++ph) {
            const Phase pi = phase_of(ph, K, S, s.pad, s.h), pj = phase_of(ph, K, S, s.pad, s.w);
            if (pi.nu && pi.count) {
                if (-pi.lo > top) top = -pi.lo;
                if (long(pi.count) + pi.lo + long(pi.nu) - 1 > bottom) bottom = long(pi.count) + pi.lo + long(pi.nu) - 1;
            }
            if (pj.nu && pj.count) {
                if (-pj.lo > left) left = -pj.lo;
                if (long(pj.count) + pj.lo + long(pj.nu) - 1 > right) right = long(pj.count) + pj.lo + long(pj.nu) - 1;
            }
        }
        return {top, left, size_t(top + bottom), size_t(left + right)};
    }

    static void conv_input_grad_cl(const float* dy, const float* wt, float* dx, const ConvShape& s) {
        const size_t K = s.k, S = s.stride, vectors = (s.cin + W - 1) / W, lanes = vectors * W;
        Buffers& buf = buffers();
        const Sizes sizes = input_grad_sizes(s);
        const DyPadding pad = dy_padding(s);
        const long top = pad.top, left = pad.left;
        const size_t hp = pad.hp, row = pad.wp * s.cout;
        // Per phase (pi, pj) and block of NV vectors of input channels, the weights
        // (nu_i, nu_j·cout, NV·W) in window order (a later dy row is an earlier tap);
        // wt is (cout, k, k, cin).
        const size_t per_phase = K * K * s.cout * lanes;  // room for the most taps
        float* wp_all = buf.weights.get(sizes.weights);
        float* zero = wp_all + S * S * per_phase;
        for (size_t l = 0; l < lanes; ++l) zero[l] = 0.f;
        for (size_t a = 0; a < S; ++a)
            for (size_t b = 0; b < S; ++b) {
                const Phase pi = phase_of(a, K, S, s.pad, s.h), pj = phase_of(b, K, S, s.pad, s.w);
                const size_t kc = pj.nu * s.cout;
                for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
                    const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV, bl = nv * W;
                    float* blk = wp_all + (a * S + b) * per_phase + pi.nu * kc * v0 * W;
                    for (size_t r = 0; r < pi.nu; ++r)
                        for (size_t c = 0; c < pj.nu; ++c) {
                            const size_t ki = pi.ki0 + S * (pi.nu - 1 - r), kj = pj.ki0 + S * (pj.nu - 1 - c);
                            for (size_t co = 0; co < s.cout; ++co)
                                for (size_t l = 0; l < bl; ++l) {
                                    const size_t ci = v0 * W + l;
                                    blk[(r * kc + c * s.cout + co) * bl + l] =
                                        ci < s.cin ? wt[((co * K + ki) * K + kj) * s.cin + ci] : 0.f;
                                }
                        }
                }
            }
        float* dyp = buf.padded.get(sizes.padded);
        for (size_t i = 0; i < hp * row + W; ++i) dyp[i] = 0.f;
        const size_t line = s.ow * s.cout;
        for (size_t n = 0; n < s.n; ++n) {
            const float* dys = dy + n * s.oh * line;
            for (size_t i = 0; i < s.oh; ++i)
                copy(dyp + (size_t(top) + i) * row + size_t(left) * s.cout, dys + i * line, line);
            float* dxs = dx + n * s.h * s.w * s.cin;
            for (size_t a = 0; a < S && a < s.h; ++a)
                for (size_t b = 0; b < S && b < s.w; ++b) {
                    const Phase pi = phase_of(a, K, S, s.pad, s.h), pj = phase_of(b, K, S, s.pad, s.w);
                    float* y = dxs + (a * s.w + b) * s.cin;
                    if (!pi.nu || !pj.nu) {  // no tap reaches these pixels (stride > k)
                        for (size_t m = 0; m < pi.count; ++m)
                            for (size_t l = 0; l < pj.count; ++l)
                                for (size_t ci = 0; ci < s.cin; ++ci) y[(m * S * s.w + l * S) * s.cin + ci] = 0.f;
                        continue;
                    }
                    Fwd f{dyp + size_t(top + pi.lo) * row + size_t(left + pj.lo) * s.cout,
                          row,
                          s.cout,
                          row,
                          pi.nu,
                          pj.nu * s.cout,
                          s.cout,
                          pi.lo,
                          pj.lo,
                          1,
                          1,
                          s.oh,
                          s.ow,
                          nullptr,
                          zero,
                          y,
                          S * s.cin,
                          S * s.w * s.cin,
                          s.cin,
                          0};
                    for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
                        const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV;
                        f.w = wp_all + (a * S + b) * per_phase + pi.nu * f.kc * v0 * W;
                        f.co0 = v0 * W;
                        fwd_grid(f, pi.count, pj.count, nv, kind_of(f, false));
                    }
                }
            if (s.relu_mask) ReluTiles<V>::backward(s.relu_mask + n * s.h * s.w * s.cin, dxs, dxs, s.h * s.w * s.cin);
        }
    }

    // -------------------------------------------------------- weight gradient

    struct Dw {
        const float* xp;  // the group's padded samples, ss floats apart
        const float* dy;  // the group's dy, (samples, oh, ow, ld)
        size_t ld;        // floats per output pixel in dy
        size_t row, cs, rs, oh, ow, ss, samples;
        float* g;   // the block's gradient tile rows: (KI rows of kc steps, NV·W)
        float* gb;  // the block's bias gradient, NV·W, or null
        size_t kc;
    };

    // Kernel rows [ki0, ki0 + KI), steps [t0, t0 + T) of each, NV vectors of output
    // channels, summed over the group's output pixels in PX interleaved phases; with
    // DB the bias gradient too, in one running sum per lane.
    template <size_t KI, size_t T, size_t NV, size_t PX, bool DB>
    __attribute__((noinline)) static void dw_tile(const Dw& d, size_t ki0, size_t t0) {
        vec acc[PX][KI][T][NV], bacc[NV];
        SGDX_UNROLL
        for (size_t v = 0; v < NV; ++v) bacc[v] = DB ? V::load(d.gb + v * W) : V::zero();
        SGDX_UNROLL
        for (size_t p = 0; p < PX; ++p)
            SGDX_UNROLL
            for (size_t r = 0; r < KI; ++r)
                SGDX_UNROLL
                for (size_t t = 0; t < T; ++t)
                    SGDX_UNROLL
                    for (size_t v = 0; v < NV; ++v) acc[p][r][t][v] = p ? V::zero() : V::load(d.g + ((ki0 + r) * d.kc + t0 + t) * NV * W + v * W);
        const size_t pixels = d.samples * d.oh * d.ow;
        size_t pix = 0, oi = 0, oj = 0;
        const float* xb = d.xp + ki0 * d.row + t0;  // the window row of output row oi
        // In registers, not re-read from d every pixel (the loads' addresses hung on
        // them: the tutorial CNN's conv2 weight gradient at 58% of the peak).
        const size_t cs = d.cs, rs = d.rs, ow = d.ow, oh = d.oh, row = d.row;
        // Signed: with a stride the last window row can end past the sample (oh·rs >
        // ss), and an unsigned step back wraps the pointer (UBSan: core/conv's test).
        const ptrdiff_t next_sample = ptrdiff_t(d.ss) - ptrdiff_t(d.oh * d.rs);
        const float* g = d.dy;
        const size_t ld = d.ld;
        // Inlined by force: GCC made it a call for SSE2 and AVX2, its accumulators in
        // memory (their weight gradients at 5-13% of the peak).
        auto step = [&](auto phase) SGDX_TILE_PART_LAMBDA {
            constexpr size_t p = decltype(phase)::value;
            const float* xr = xb + oj * cs;
            vec gv[NV];
            SGDX_UNROLL
            for (size_t v = 0; v < NV; ++v) gv[v] = V::load(g + v * W);
            if constexpr (DB)
                SGDX_UNROLL
                for (size_t v = 0; v < NV; ++v) bacc[v] = V::add(bacc[v], gv[v]);
            SGDX_UNROLL
            for (size_t r = 0; r < KI; ++r)
                SGDX_UNROLL
                for (size_t t = 0; t < T; ++t) {
                    const vec a = V::splat(xr[r * row + t]);
                    SGDX_UNROLL
                    for (size_t v = 0; v < NV; ++v) acc[p][r][t][v] = V::fma(a, gv[v], acc[p][r][t][v]);
                }
            ++pix;
            g += ld;
            if (++oj == ow) {
                oj = 0;
                xb += rs;
                if (++oi == oh) oi = 0, xb += next_sample;  // the next sample
            }
        };
        for (; pix + PX <= pixels;) {
            step(std::integral_constant<size_t, 0>{});
            if constexpr (PX > 1) step(std::integral_constant<size_t, 1>{});
        }
        if (pix < pixels) step(std::integral_constant<size_t, 0>{});
        SGDX_UNROLL
        for (size_t r = 0; r < KI; ++r)
            SGDX_UNROLL
            for (size_t t = 0; t < T; ++t)
                SGDX_UNROLL
                for (size_t v = 0; v < NV; ++v) {
                    vec sum = acc[0][r][t][v];
                    SGDX_UNROLL
                    for (size_t p = 1; p < PX; ++p) sum = V::add(sum, acc[p][r][t][v]);
                    V::store(d.g + ((ki0 + r) * d.kc + t0 + t) * NV * W + v * W, sum);
                }
        if constexpr (DB)
            SGDX_UNROLL
            for (size_t v = 0; v < NV; ++v) V::store(d.gb + v * W, bacc[v]);
    }

    // The first tile of a block takes the bias gradient along.
    template <size_t KI, size_t T, size_t NV, size_t PX>
    static void dw_tile_any(const Dw& d, size_t ki0, size_t t0) {
        if (d.gb && ki0 == 0 && t0 == 0) dw_tile<KI, T, NV, PX, true>(d, ki0, t0);
        else dw_tile<KI, T, NV, PX, false>(d, ki0, t0);
    }

    // The tile for a block of NV vectors: with few steps per kernel row (one input
    // channel) all K rows at once, and two pixel phases if that is still few.
    template <size_t NV>
    static void dw_block(const Dw& d, size_t K) {
        constexpr size_t kT = kAcc / NV;
        if (d.kc * K * NV <= kAcc / 2 && d.kc <= 5 && K <= 5) {
            with_block_size<5>(K, [&](auto ki) {
                with_block_size<5>(d.kc, [&](auto t) {
                    constexpr size_t KI = decltype(ki)::value, T = decltype(t)::value;
                    if constexpr (2 * KI * T * NV <= kAcc) dw_tile_any<KI, T, NV, 2>(d, 0, 0);
                });
            });
            return;
        }
        if (d.kc * K * NV <= kAcc + kAcc / 6 && d.kc <= 5 && K <= 5) {  // 5 x 5 on AVX-512: 25
            with_block_size<5>(K, [&](auto ki) {
                with_block_size<5>(d.kc, [&](auto t) {
                    constexpr size_t KI = decltype(ki)::value, T = decltype(t)::value;
                    if constexpr (KI * T * NV <= kAcc + kAcc / 6) dw_tile_any<KI, T, NV, 1>(d, 0, 0);
                });
            });
            return;
        }
        // Equal blocks of at most kT steps along each kernel row.
        for (size_t ki = 0; ki < K; ++ki)
            for_each_class_block<kT>(d.kc, [&](auto t, size_t t0) { dw_tile_any<1, decltype(t)::value, NV, 1>(d, ki, t0); });
    }

    // The gradient in tile order (per block of kMaxNV vectors of output channels,
    // (k, k·cin, NV·W)) added into PyTorch's (cout, cin, k, k).
    static void add_grad_blocks(const float* gp, float* dw, const ConvShape& s) {
        const size_t K = s.k, kc = K * s.cin, vectors = (s.cout + W - 1) / W;
        for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
            const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV, bl = nv * W;
            const float* blk = gp + K * kc * v0 * W;
            for (size_t l = 0; l < bl && v0 * W + l < s.cout; ++l) {
                const size_t co = v0 * W + l;
                for (size_t ci = 0; ci < s.cin; ++ci)
                    for (size_t ki = 0; ki < K; ++ki)
                        for (size_t kj = 0; kj < K; ++kj)
                            dw[((co * s.cin + ci) * K + ki) * K + kj] += blk[(ki * kc + kj * s.cin + ci) * bl + l];
            }
        }
    }

    // Same contract as KernelSet::conv_weight_grad_cl.
    static void conv_weight_grad_cl(const float* x, const float* dy, float* dw, float* db, const ConvShape& s) {
        const size_t K = s.k, kc = K * s.cin, vectors = (s.cout + W - 1) / W, lanes = vectors * W;
        Buffers& buf = buffers();
        // The gradient in tile order: per block of NV vectors, (k, k·cin, NV·W).
        // The bias gradient's sums after it.
        const Sizes sizes = weight_grad_sizes(s);
        float* gp = buf.grad.get(sizes.grad);
        for (size_t i = 0; i < K * kc * lanes + lanes; ++i) gp[i] = 0.f;
        const Padded g = padded_geometry(s);
        const size_t ss = g.size - W, group = weight_grad_group(s);
        float* xp = buf.padded.get(sizes.padded);
        for (size_t i = 0; i < group * ss + W; ++i) xp[i] = 0.f;
        const size_t pixels = s.oh * s.ow;
        // dy read as whole vectors: a copy padded to them unless cout fills them.
        const bool copy_dy = s.cout % W != 0;
        float* dyp = copy_dy ? buf.dy.get(sizes.dy) : nullptr;
        if (copy_dy)
            for (size_t i = 0; i < group * pixels * lanes; ++i) dyp[i] = 0.f;
        Dw d{xp, nullptr, copy_dy ? lanes : s.cout, g.row, s.stride * s.cin, s.stride * g.row, s.oh, s.ow, ss, 0,
             nullptr, nullptr, kc};
        for (size_t n0 = 0; n0 < s.n; n0 += group) {
            d.samples = s.n - n0 < group ? s.n - n0 : group;
            for (size_t j = 0; j < d.samples; ++j)
                pad_sample(x + (n0 + j) * s.h * s.w * s.cin, xp + j * ss, s, g);
            const float* dys = dy + n0 * pixels * s.cout;
            if (copy_dy)
                for (size_t p = 0; p < d.samples * pixels; ++p)
                    for (size_t co = 0; co < s.cout; ++co) dyp[p * lanes + co] = dys[p * s.cout + co];
            for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
                const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV;
                d.dy = (copy_dy ? dyp : dys) + v0 * W;
                d.g = gp + K * kc * v0 * W;
                d.gb = db ? gp + K * kc * lanes + v0 * W : nullptr;
                if (nv == 1) dw_block<1>(d, K);
                else dw_block<2>(d, K);
            }
        }
        add_grad_blocks(gp, dw, s);
        if (db)
            for (size_t co = 0; co < s.cout; ++co) db[co] += gp[K * kc * lanes + co];
    }

    // Samples per group of the weight gradient: their padded copies fill ~192 KB
    // (L2), each tile summed over a whole group's pixels.
    __attribute__((noinline)) static size_t weight_grad_group(const ConvShape& s) {
        const size_t ss = padded_geometry(s).size - W, group_max = ss < kGroupFloats ? kGroupFloats / ss : 1;
        return s.n < group_max ? s.n : group_max;
    }
};

template <class V>
typename ConvTiles<V>::Sizes ConvTiles<V>::forward_sizes(const ConvShape& s) {
    const size_t vectors = (s.cout + W - 1) / W;
    return {s.k * s.k * s.cin * vectors * W + vectors * W, padded_geometry(s).size, 0, 0};
}

template <class V>
typename ConvTiles<V>::Sizes ConvTiles<V>::input_grad_sizes(const ConvShape& s) {
    const size_t lanes = (s.cin + W - 1) / W * W;
    const DyPadding pad = dy_padding(s);
    return {s.stride * s.stride * (s.k * s.k * s.cout * lanes) + lanes, pad.hp * pad.wp * s.cout + W, 0, 0};
}

template <class V>
typename ConvTiles<V>::Sizes ConvTiles<V>::weight_grad_sizes(const ConvShape& s) {
    const size_t lanes = (s.cout + W - 1) / W * W, group = weight_grad_group(s);
    const size_t ss = padded_geometry(s).size - W;
    return {0, group * ss + W, s.cout % W != 0 ? group * s.oh * s.ow * lanes : 0, s.k * s.k * s.cin * lanes + lanes};
}

}  // namespace
}  // namespace sgdx::kernels
