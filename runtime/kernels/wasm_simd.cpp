// WebAssembly SIMD128 versions of the kernels (xsimd 8.1 has no wasm backend).
// Compiled only in the Emscripten build, with -msimd128; the blocking follows
// xsimd_kernels.hpp: several independent accumulators per loop so the engine can
// overlap the multiply-adds (SIMD128 has no fused multiply-add).
//
// Compiled a second time with SGDX_WASM_RELAXED (web/relaxed/CMakeLists.txt:
// clang-19, -mrelaxed-simd, a freestanding module of its own, since Emscripten
// 3.1.6's clang 14 cannot emit the final relaxed-SIMD opcodes): madd is then
// relaxed SIMD's f32x4.relaxed_madd (fused where the engine fuses it) and the
// file exports gemm and the direct convolution's forward and input gradient as
// plain C functions instead of the KernelSet; web/relaxed/relaxed_kernels.cpp calls
// them from the page's runtime.
#include <wasm_simd128.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "class_blocks.hpp"
#include "conv_tiles.hpp"
#include "gemm_tiles.hpp"
#include "kernels.hpp"
#include "pool_tiles.hpp"
#include "relu_tiles.hpp"
#include "softmax_tiles.hpp"

namespace sgdx::kernels {
namespace {

using v128 = v128_t;
constexpr size_t W = 4;  // floats per vector

inline v128 load(const float* p) { return wasm_v128_load(p); }
inline void store(float* p, v128 v) { wasm_v128_store(p, v); }
#if defined(SGDX_WASM_RELAXED)
inline v128 madd(v128 a, v128 b, v128 acc) { return wasm_f32x4_relaxed_madd(a, b, acc); }
#else
inline v128 madd(v128 a, v128 b, v128 acc) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }
#endif
inline float hsum(v128 v) {
    // (a+c, b+d, ...) then the two halves: the same pairing on every call.
    v128 s = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(s, 0);
}

// Lanes holding bytes (0..255) as u32 -> floats. 0x4B000000 is 2^23 as a float:
// OR-ing a byte v into its mantissa gives exactly 2^23 + v, and subtracting 2^23
// leaves float(v). (Written with f32x4.convert_i32x4, clang 14 proves the lanes
// unsigned and scalarises the conversion, 16 extract/convert/replace steps per vector.)
inline v128 bytes_to_float(v128 u32) {
    return wasm_f32x4_sub(wasm_v128_or(u32, wasm_i32x4_splat(0x4B000000)), wasm_f32x4_splat(8388608.f));
}

void scale_u8(const uint8_t* x, float scale, float* y, size_t n) {
    const v128 s = wasm_f32x4_splat(scale);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128 bytes = wasm_v128_load(x + i);
        v128 lo16 = wasm_u16x8_extend_low_u8x16(bytes), hi16 = wasm_u16x8_extend_high_u8x16(bytes);
        store(y + i, wasm_f32x4_mul(bytes_to_float(wasm_u32x4_extend_low_u16x8(lo16)), s));
        store(y + i + 4, wasm_f32x4_mul(bytes_to_float(wasm_u32x4_extend_high_u16x8(lo16)), s));
        store(y + i + 8, wasm_f32x4_mul(bytes_to_float(wasm_u32x4_extend_low_u16x8(hi16)), s));
        store(y + i + 12, wasm_f32x4_mul(bytes_to_float(wasm_u32x4_extend_high_u16x8(hi16)), s));
    }
    for (; i < n; ++i) y[i] = float(x[i]) * scale;
}

// Two rows of x against K rows of w: 2K independent accumulators, and each w
// vector loaded serves both rows.
template <size_t K>
void forward_block(const float* x0, const float* x1, const float* w, const float* b, float* y0,
                   float* y1, size_t D) {
    v128 a0[K], a1[K];
    for (size_t j = 0; j < K; ++j) a0[j] = a1[j] = wasm_f32x4_splat(0.f);
    size_t k = 0;
    for (; k + W <= D; k += W) {
        v128 v0 = load(x0 + k), v1 = load(x1 + k);
        for (size_t j = 0; j < K; ++j) {
            v128 wv = load(w + j * D + k);
            a0[j] = madd(v0, wv, a0[j]);
            a1[j] = madd(v1, wv, a1[j]);
        }
    }
    for (size_t j = 0; j < K; ++j) {
        float s0 = hsum(a0[j]), s1 = hsum(a1[j]);
        for (size_t t = k; t < D; ++t) {
            s0 += x0[t] * w[j * D + t];
            s1 += x1[t] * w[j * D + t];
        }
        y0[j] = s0 + b[j];
        if (y1 != y0) y1[j] = s1 + b[j];
    }
}

template <size_t K>
void forward_rows(const float* x, const float* w, const float* b, float* y, size_t B, size_t D,
                  size_t C, size_t c0) {
    size_t i = 0;
    for (; i + 2 <= B; i += 2)
        forward_block<K>(x + i * D, x + (i + 1) * D, w + c0 * D, b + c0, y + i * C + c0,
                         y + (i + 1) * C + c0, D);
    if (i < B)  // odd last row: run it as both rows, keep one result
        forward_block<K>(x + i * D, x + i * D, w + c0 * D, b + c0, y + i * C + c0, y + i * C + c0, D);
}

// x: (B, D), w: (C, D), b: (C) -> y: (B, C). The C outputs go in equal blocks of
// at most 5 (10 -> 5 + 5): 10 accumulators + 2 inputs + 1 weight fit the 16
// registers an engine typically gives SIMD values on x86.
void linear_forward(const float* x, const float* w, const float* b, float* y, size_t B, size_t D,
                    size_t C) {
    for_each_class_block<5>(C, [&](auto K, size_t c0) { forward_rows<decltype(K)::value>(x, w, b, y, B, D, C, c0); });
}

// dw[j, :] += Σ over R rows of dy[i, j] * x[i, :]. Streams along the rows of x
// and dw (contiguous, L1-resident: a dw row is 3 KB for MNIST) with the R
// factors of a class held as vectors. Measured in Chromium 156 against the
// column-strip form (K class accumulators per 4-column strip, as the xsimd
// kernels do): ~25% faster here, where the engine's register allocation and
// strided loads cost more than on native x86.
template <size_t R>
void backward_rows(const float* x, const float* dy, float* dw, size_t D, size_t C) {
    for (size_t j = 0; j < C; ++j) {
        v128 g[R];
        for (size_t r = 0; r < R; ++r) g[r] = wasm_f32x4_splat(dy[r * C + j]);
        float* out = dw + j * D;
        size_t k = 0;
        for (; k + W <= D; k += W) {
            v128 acc = load(out + k);
            for (size_t r = 0; r < R; ++r) acc = madd(g[r], load(x + r * D + k), acc);
            store(out + k, acc);
        }
        for (; k < D; ++k) {
            float s = out[k];
            for (size_t r = 0; r < R; ++r) s += dy[r * C + j] * x[r * D + k];
            out[k] = s;
        }
    }
}

// x: (B, D), dy: (B, C) -> dw: (C, D) += dyᵀ·x, db: (C) += Σ dy. Rows in groups
// of 8, then 4, then 1.
void linear_backward(const float* x, const float* dy, float* dw, float* db, size_t B, size_t D,
                     size_t C) {
    size_t i = 0;
    for (; i + 8 <= B; i += 8) backward_rows<8>(x + i * D, dy + i * C, dw, D, C);
    for (; i + 4 <= B; i += 4) backward_rows<4>(x + i * D, dy + i * C, dw, D, C);
    for (; i < B; ++i) backward_rows<1>(x + i * D, dy + i * C, dw, D, C);
    if (db)
        for (size_t r = 0; r < B; ++r)
            for (size_t c = 0; c < C; ++c) db[c] += dy[r * C + c];
}

// exp of 4 floats (Cephes' expf polynomial, within ~2 ulp): x = n·ln2 + r with
// |r| <= ln2/2, exp(r) by a degree-7 polynomial, times 2^n built in the exponent
// bits. Inputs are clamped to [-87.3, 88.376] (results in the normal range; above
// 88.376 2^n would overflow the exponent); NaN stays NaN (min/max keep it,
// pmin/pmax would not). softmax_xent_tiled turns results below e^-60 into 0.
inline v128 exp4(v128 x) {
    x = wasm_f32x4_min(wasm_f32x4_splat(88.3762626647949f), wasm_f32x4_max(wasm_f32x4_splat(-87.3f), x));
    const v128 n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
    v128 r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
    v128 p = wasm_f32x4_splat(1.9875691500e-4f);
    p = madd(p, r, wasm_f32x4_splat(1.3981999507e-3f));
    p = madd(p, r, wasm_f32x4_splat(8.3334519073e-3f));
    p = madd(p, r, wasm_f32x4_splat(4.1665795894e-2f));
    p = madd(p, r, wasm_f32x4_splat(1.6666665459e-1f));
    p = madd(p, r, wasm_f32x4_splat(5.0000001201e-1f));
    const v128 y = wasm_f32x4_add(madd(p, wasm_f32x4_mul(r, r), r), wasm_f32x4_splat(1.f));
    const v128 two_n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
    return wasm_f32x4_mul(y, two_n);
}

double softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale,
                    size_t B, size_t C, size_t* correct) {
    return softmax_xent_tiled<256>(logits, target, dlogits, grad_scale, B, C, correct, [](float* e, size_t n) {
        size_t i = 0;
        for (; i + W <= n; i += W) store(e + i, exp4(load(e + i)));
        if (i < n) {  // the ragged end through a padded vector
            alignas(16) float last[W] = {0.f, 0.f, 0.f, 0.f};
            std::copy(e + i, e + n, last);
            store(last, exp4(load(last)));
            std::copy(last, last + (n - i), e + i);
        }
    });
}

void sgd_update(float* p, const float* grad, float* buf, size_t n, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first) {
    const v128 vlr = wasm_f32x4_splat(lr), vwd = wasm_f32x4_splat(weight_decay),
               vm = wasm_f32x4_splat(momentum), vdamp = wasm_f32x4_splat(1.f - dampening);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        v128 pv = load(p + i);
        v128 g = madd(vwd, pv, load(grad + i));
        if (momentum != 0.f) {
            v128 bv = first ? g : madd(vm, load(buf + i), wasm_f32x4_mul(vdamp, g));
            // below kTinyMomentum: 0 (kernels.hpp); lt is false for NaN, which stays
            bv = wasm_v128_andnot(bv, wasm_f32x4_lt(wasm_f32x4_abs(bv), wasm_f32x4_splat(kTinyMomentum)));
            store(buf + i, bv);
            g = nesterov ? madd(vm, bv, g) : bv;
        }
        store(p + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(vlr, g)));
    }
    if (i < n) {
        reference().sgd_update(p + i, grad + i, buf ? buf + i : nullptr, n - i, lr, momentum,
                               dampening, weight_decay, nesterov, first);
        flush_tiny_momentum(buf, i, n, momentum);
    }
}

// ---- fused uint8 kernels: the loader's bytes straight in, zero chunks skipped ----
// Rows of MNIST-like images are mostly zeros: 72% of an MNIST image's 4-pixel
// chunks are all zero, and a zero chunk adds nothing to a dot product or to a
// weight gradient. So the fused kernels first list a row's nonzero chunks
// (branch-free, 16 bytes per step) and then run over the list only. The result
// equals the dense sum up to summation order, except that 0·inf and 0·NaN terms
// (which would make the dense sum NaN) are skipped.
//
// The weights are repacked per call so that a chunk's C weight vectors lie side
// by side ((D/4, C, 4) instead of (C, D)): each weight load is then one base
// register plus an immediate offset, where C separate row pointers would not fit
// an engine's general registers. Repacking costs C·D/4 vector copies per call
// against B·(nonzero chunks)·C multiply-adds.

constexpr size_t kSegment = 256;  // chunks listed at a time (an index buffer on the stack)

// kFrontLanes[m]: the positions of m's set bits, packed to the front, times 4 (bytes per chunk).
struct FrontLanes {
    alignas(16) uint32_t lanes[16][4];
    constexpr FrontLanes() : lanes{} {
        for (uint32_t m = 0; m < 16; ++m) {
            uint32_t n = 0;
            for (uint32_t bit = 0; bit < 4; ++bit)
                if (m & (1u << bit)) lanes[m][n++] = bit * 4;
        }
    }
};
constexpr FrontLanes kFrontLanes;

// Byte offsets from x of the 4-byte chunks in [0, n) (n a multiple of 4) that are
// not all zero. offsets needs room for n/4 entries: a whole vector is stored at
// offsets + count, and count <= k/4, so its last lane is below n/4.
inline size_t nonzero_chunks_u8(const uint8_t* x, size_t n, uint32_t* offsets) {
    const v128 zero = wasm_i32x4_splat(0);
    size_t count = 0, k = 0;
    for (; k + 16 <= n; k += 16) {
        const uint32_t mask = wasm_i32x4_bitmask(wasm_i32x4_ne(wasm_v128_load(x + k), zero));
        store(reinterpret_cast<float*>(offsets + count),
              wasm_i32x4_add(wasm_i32x4_splat(int32_t(k)), wasm_v128_load(kFrontLanes.lanes[mask])));
        count += size_t(__builtin_popcount(mask));
    }
    for (; k < n; k += 4) {
        offsets[count] = uint32_t(k);
        count += (x[k] | x[k + 1] | x[k + 2] | x[k + 3]) != 0;
    }
    return count;
}

// 4 bytes -> 4 floats (unscaled).
inline v128 chunk_to_float(const uint8_t* p) {
    return bytes_to_float(wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(p))));
}

// Scratch for the packed weights and gradient: sized by reserve_scratch (or
// grown on the first call of a shape), then reused (no allocation per training step). One per thread where
// there are threads (wasm-ld refuses thread_local without the atomics feature).
#if defined(__EMSCRIPTEN_PTHREADS__)
#define SGDX_PER_THREAD thread_local
#else
#define SGDX_PER_THREAD static
#endif
// For (C, D) weights: D / W whole chunks per row (the ragged tail stays in w).
std::vector<v128>& packed_scratch(size_t D, size_t C) {
    SGDX_PER_THREAD std::vector<v128> scratch;
    if (scratch.size() < D / W * C) scratch.resize(D / W * C);
    return scratch;
}

// w: (C, D) -> wp: (D/4, C) vectors, chunk-major.
void pack_weights(const float* w, v128* wp, size_t chunks, size_t D, size_t C) {
    for (size_t c = 0; c < C; ++c)
        for (size_t q = 0; q < chunks; ++q) wp[q * C + c] = load(w + c * D + q * W);
}

// dot[j] += Σ over the listed chunks of x · w[j], for K classes.
template <size_t K>
void forward_chunks_u8(const uint8_t* x, const v128* wp, size_t C, const uint32_t* offsets, size_t count,
                       float* dot) {
    v128 a[K];
    for (size_t j = 0; j < K; ++j) a[j] = wasm_f32x4_splat(0.f);
    for (size_t i = 0; i < count; ++i) {
        const size_t k = offsets[i];
        const v128 xv = chunk_to_float(x + k);
        const v128* wk = wp + (k / W) * C;
        for (size_t j = 0; j < K; ++j) a[j] = madd(xv, wk[j], a[j]);
    }
    for (size_t j = 0; j < K; ++j) dot[j] += hsum(a[j]);
}

// x_u8: (B, D), w: (C, D), b: (C) -> y: (B, C) = scale * x_u8 · wᵀ + b
// y's row holds the unscaled dot products until the row is done.
void linear_forward_u8(const uint8_t* x, float scale, const float* w, const float* b, float* y, size_t B,
                       size_t D, size_t C) {
    const size_t vec_end = D - D % W, chunks = vec_end / W;
    v128* wp = packed_scratch(D, C).data();
    pack_weights(w, wp, chunks, D, C);
    uint32_t offsets[kSegment];
    for (size_t r = 0; r < B; ++r) {
        const uint8_t* xr = x + r * D;
        float* yr = y + r * C;
        std::fill(yr, yr + C, 0.f);
        for (size_t s = 0; s < vec_end; s += kSegment * W) {
            const size_t count = nonzero_chunks_u8(xr + s, std::min(kSegment * W, vec_end - s), offsets);
            for_each_class_block<10>(C, [&](auto K, size_t c0) {
                forward_chunks_u8<decltype(K)::value>(xr + s, wp + (s / W) * C + c0, C, offsets, count, yr + c0);
            });
        }
        for (size_t c = 0; c < C; ++c) {
            float dot = yr[c];
            for (size_t k = vec_end; k < D; ++k) dot += float(xr[k]) * w[c * D + k];
            yr[c] = scale * dot + b[c];
        }
    }
}

template <size_t K>
void backward_chunks_u8(const uint8_t* x, const float* g_row, float scale, v128* dwp, size_t C,
                        const uint32_t* offsets, size_t count) {
    v128 g[K];
    for (size_t j = 0; j < K; ++j) g[j] = wasm_f32x4_splat(scale * g_row[j]);
    for (size_t i = 0; i < count; ++i) {
        const size_t k = offsets[i];
        const v128 xv = chunk_to_float(x + k);
        v128* dk = dwp + (k / W) * C;
        for (size_t j = 0; j < K; ++j) dk[j] = madd(g[j], xv, dk[j]);
    }
}

// x_u8: (B, D), dy: (B, C) -> dw: (C, D) += scale * dyᵀ · x_u8, db: (C) += Σ_b dy.
// The gradient accumulates in the packed layout and is added to dw at the end.
void linear_backward_u8(const uint8_t* x, float scale, const float* dy, float* dw, float* db, size_t B,
                        size_t D, size_t C) {
    const size_t vec_end = D - D % W, chunks = vec_end / W;
    v128* dwp = packed_scratch(D, C).data();
    std::fill(dwp, dwp + chunks * C, wasm_f32x4_splat(0.f));
    uint32_t offsets[kSegment];
    for (size_t r = 0; r < B; ++r) {
        const uint8_t* xr = x + r * D;
        const float* gr = dy + r * C;
        for (size_t s = 0; s < vec_end; s += kSegment * W) {
            const size_t count = nonzero_chunks_u8(xr + s, std::min(kSegment * W, vec_end - s), offsets);
            for_each_class_block<10>(C, [&](auto K, size_t c0) {
                backward_chunks_u8<decltype(K)::value>(xr + s, gr + c0, scale, dwp + (s / W) * C + c0, C, offsets,
                                                       count);
            });
        }
        for (size_t c = 0; c < C; ++c)
            for (size_t k = vec_end; k < D; ++k) dw[c * D + k] += scale * gr[c] * float(xr[k]);
    }
    for (size_t c = 0; c < C; ++c)
        for (size_t q = 0; q < chunks; ++q) store(dw + c * D + q * W, wasm_f32x4_add(load(dw + c * D + q * W), dwp[q * C + c]));
    if (db)
        for (size_t r = 0; r < B; ++r)
            for (size_t c = 0; c < C; ++c) db[c] += dy[r * C + c];
}

// gemm_tiles.hpp's vector adaptor: 4 rows of two vectors (8 accumulators; the
// engine maps them onto x86's 16 vector registers with the loads and broadcasts).
struct WasmVec {
    using type = v128;
    static constexpr size_t W = 4;
    static constexpr size_t kRows = 4;
    static type zero() { return wasm_f32x4_splat(0.f); }
    static type splat(float x) { return wasm_f32x4_splat(x); }
    static type load(const float* p) { return wasm_v128_load(p); }
    static void store(float* p, type v) { wasm_v128_store(p, v); }
    static type fma(type a, type b, type c) { return madd(a, b, c); }
    static type add(type a, type b) { return wasm_f32x4_add(a, b); }
    // relu_tiles.hpp's
    static type relu(type v) { return wasm_v128_andnot(v, wasm_f32x4_lt(v, zero())); }
    static type zero_where_le0(type v, type m) { return wasm_v128_andnot(v, wasm_f32x4_le(m, zero())); }
    // pool_tiles.hpp's
    static type max_nan(type v, type m) {
        return wasm_v128_bitselect(v, m, wasm_v128_or(wasm_f32x4_gt(v, m), wasm_f32x4_ne(v, v)));
    }
    static void first_max(type v, type& m, type& arg, type tap) {
        const v128 take = wasm_v128_or(wasm_f32x4_gt(v, m), wasm_v128_andnot(wasm_f32x4_ne(v, v), wasm_f32x4_ne(m, m)));
        m = wasm_v128_bitselect(v, m, take);
        arg = wasm_v128_bitselect(tap, arg, take);
    }
    static type where_eq(type g, type arg, type tap) { return wasm_v128_and(g, wasm_f32x4_eq(arg, tap)); }
};


// KernelSet::conv_weight_grad_cl for SIMD128. conv_tiles.hpp's tile walks a group's
// pixels with one counter for samples, rows and columns, which V8 turned into
// more scalar work than the multiply-adds it feeds (LeNet conv2 4,913 us, 33% of
// the peak). Here a tile of T steps of one kernel row (t = kj·in + ci) by NV
// vectors of output channels walks samples, rows and columns as nested loops over
// pointers (here 1,685 us, 92%): per output pixel NV vectors of dy and T broadcast loads of the padded
// input (v128.load32_splat), T·NV multiply-adds. The bias gradient is summed
// apart. The padded copies and the dy copy (for cout not a multiple of 4) are
// conv_tiles.hpp's.
struct WasmConvDw {
    using Tiles = ConvTiles<WasmVec>;
    struct Group {
        const float* xp;  // the group's padded samples, ss floats apart, at kernel row ki and step t0
        const float* dy;  // the group's dy at the block's first channel, ld floats per pixel
        size_t ld, samples, ss, oh, ow, rs, cs;
    };

    template <size_t T, size_t NV>
    static void tile(const Group& g, float* acc_out) {
        v128 acc[T][NV];
        for (size_t t = 0; t < T; ++t)
            for (size_t v = 0; v < NV; ++v) acc[t][v] = load(acc_out + (t * NV + v) * W);
        const float* dyp = g.dy;
        for (size_t n = 0; n < g.samples; ++n) {
            const float* xs = g.xp + n * g.ss;
            for (size_t oi = 0; oi < g.oh; ++oi, xs += g.rs) {
                const float* xr = xs;
                for (size_t oj = 0; oj < g.ow; ++oj, xr += g.cs, dyp += g.ld) {
                    v128 gv[NV];
                    for (size_t v = 0; v < NV; ++v) gv[v] = load(dyp + v * W);
                    for (size_t t = 0; t < T; ++t) {
                        const v128 a = wasm_v128_load32_splat(xr + t);
                        for (size_t v = 0; v < NV; ++v) acc[t][v] = madd(a, gv[v], acc[t][v]);
                    }
                }
            }
        }
        for (size_t t = 0; t < T; ++t)
            for (size_t v = 0; v < NV; ++v) store(acc_out + (t * NV + v) * W, acc[t][v]);
    }

    // Groups of samples whose padded copies and dy fill about L1 (32 KB): every
    // tile walks a group's pixels, NV vectors of dy and T inputs each.
    static size_t group_of(const ConvShape& s) {
        constexpr size_t kL1Floats = 8192;
        const size_t lanes = (s.cout + W - 1) / W * W;
        const size_t per_sample = Tiles::padded_geometry(s).size - W + s.oh * s.ow * lanes;
        const size_t group_max = per_sample < kL1Floats ? kL1Floats / per_sample : 1;
        return s.n < group_max ? s.n : group_max;
    }
    // The floats it takes of conv_tiles.hpp's buffers (ConvTiles::Sizes).
    static Tiles::Sizes weight_grad_sizes(const ConvShape& s) {
        const size_t lanes = (s.cout + W - 1) / W * W, group = group_of(s), ss = Tiles::padded_geometry(s).size - W;
        return {0, group * ss + W, s.cout % W != 0 ? group * s.oh * s.ow * lanes : 0, s.k * s.k * s.cin * lanes + lanes};
    }

    // Same contract as KernelSet::conv_weight_grad_cl.
    static void conv_weight_grad_cl(const float* x, const float* dy, float* dw, float* db, const ConvShape& s) {
        // T = 4: 8 accumulators, 2 dy vectors and a broadcast fit V8's 15 registers
        // (T = 5 spilled: LeNet conv2 3,397 against 1,685 us).
        constexpr size_t kMaxT = 4, kMaxNV = Tiles::kMaxNV;
        const size_t K = s.k, kc = K * s.cin, vectors = (s.cout + W - 1) / W, lanes = vectors * W;
        Tiles::Buffers& buf = Tiles::buffers();
        const Tiles::Sizes sizes = weight_grad_sizes(s);
        // The gradient in tile order: per block of NV vectors, (k, k·cin, NV·W).
        float* gp = buf.grad.get(sizes.grad);
        float* sums = gp + K * kc * lanes;  // the bias gradient's
        std::fill(gp, gp + K * kc * lanes + lanes, 0.f);
        const Tiles::Padded pg = Tiles::padded_geometry(s);
        const size_t ss = pg.size - W, pixels = s.oh * s.ow, group = group_of(s);
        float* xp = buf.padded.get(sizes.padded);
        std::fill(xp, xp + group * ss + W, 0.f);
        const bool copy_dy = s.cout % W != 0;
        float* dyp = copy_dy ? buf.dy.get(sizes.dy) : nullptr;
        if (copy_dy) std::fill(dyp, dyp + group * pixels * lanes, 0.f);
        Group g{nullptr, nullptr, copy_dy ? lanes : s.cout, 0, ss, s.oh, s.ow, s.stride * pg.row, s.stride * s.cin};
        for (size_t n0 = 0; n0 < s.n; n0 += group) {
            g.samples = s.n - n0 < group ? s.n - n0 : group;
            for (size_t j = 0; j < g.samples; ++j) Tiles::pad_sample(x + (n0 + j) * s.h * s.w * s.cin, xp + j * ss, s, pg);
            const float* dys = dy + n0 * pixels * s.cout;
            if (copy_dy)
                for (size_t p = 0; p < g.samples * pixels; ++p)
                    std::copy(dys + p * s.cout, dys + (p + 1) * s.cout, dyp + p * lanes);
            for (size_t v0 = 0; v0 < vectors; v0 += kMaxNV) {
                const size_t nv = vectors - v0 < kMaxNV ? vectors - v0 : kMaxNV;
                g.dy = (copy_dy ? dyp : dys) + v0 * W;
                float* blk = gp + K * kc * v0 * W;
                for (size_t ki = 0; ki < K; ++ki)
                    for_each_class_block<kMaxT>(kc, [&](auto t, size_t t0) {
                        constexpr size_t T = decltype(t)::value;
                        g.xp = xp + ki * pg.row + t0;
                        float* out = blk + (ki * kc + t0) * nv * W;
                        if (nv == 2) tile<T, 2>(g, out);
                        else tile<T, 1>(g, out);
                    });
            }
            if (db)  // Σ dy per channel, pixel by pixel from 0 (the reference's order), then into db
                for (size_t v = 0; v < vectors; ++v) {
                    const float* src = (copy_dy ? dyp : dys) + v * W;
                    v128 sum = load(sums + v * W);
                    for (size_t p = 0; p < g.samples * pixels; ++p) sum = wasm_f32x4_add(sum, load(src + p * g.ld));
                    store(sums + v * W, sum);
                }
        }
        Tiles::add_grad_blocks(gp, dw, s);  // into PyTorch's (cout, cin, k, k)
        if (db)
            for (size_t co = 0; co < s.cout; ++co) db[co] += sums[co];
    }
};

}  // namespace

#if defined(SGDX_WASM_RELAXED)
// The relaxed module's exports: the kernels where the fused multiply-add measured
// faster in Chromium (web/README.md), with the KernelSet's contracts; bools as int
// so that the JS between the two modules passes plain numbers.
#define SGDX_RELAXED_EXPORT(name) extern "C" __attribute__((export_name(#name), visibility("default")))
SGDX_RELAXED_EXPORT(gemm)
void relaxed_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, const float* a, size_t lda, const float* b,
                  size_t ldb, float* c, size_t ldc, int accumulate) {
    GemmTiles<WasmVec>::gemm(trans_a != 0, trans_b != 0, M, N, K, a, lda, b, ldb, c, ldc, accumulate != 0);
}
SGDX_RELAXED_EXPORT(conv_input_grad_cl)
void relaxed_conv_input_grad_cl(const float* dy, const float* wt, float* dx, const ConvShape* s) {
    ConvTiles<WasmVec>::conv_input_grad_cl(dy, wt, dx, *s);
}
SGDX_RELAXED_EXPORT(conv_forward_cl)
void relaxed_conv_forward_cl(const float* x, const float* w, const float* b, float* y, const ConvShape* s) {
    ConvTiles<WasmVec>::conv_forward_cl(x, w, b, y, *s);
}
// KernelSet::reserve_scratch for the kernels above: this module's own buffers.
SGDX_RELAXED_EXPORT(reserve_scratch)
void relaxed_reserve_scratch(int gemm, const ConvShape* s) {
    if (gemm) GemmTiles<WasmVec>::reserve();
    if (s) ConvTiles<WasmVec>::reserve(*s);
}
// sizeof(ConvShape) as this compiler lays it out: the loader refuses the module
// when it differs from the runtime's (the two builds of kernels.hpp disagree).
SGDX_RELAXED_EXPORT(conv_shape_size) size_t relaxed_conv_shape_size() { return sizeof(ConvShape); }
#else

// The probe for fma_peak_gflops (probe.cpp): 12 independent multiply-add chains,
// the way the kernels' blocks run them (a multiply and an add, no FMA).
double fma_probe_wasm_simd128(size_t iterations, double* flops) {
    v128 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = wasm_f32x4_splat(float(j) * 1e-3f);
    const v128 a = wasm_f32x4_splat(0.999f), b = wasm_f32x4_splat(1e-4f);
    for (size_t i = 0; i < iterations; ++i)
        for (int j = 0; j < 12; ++j) acc[j] = madd(acc[j], a, b);
    *flops = double(iterations) * 12 * W * 2;
    double s = 0;
    for (int j = 0; j < 12; ++j) s += hsum(acc[j]);
    return s;
}

// The gemm panel, the convolutions' buffers (the weight gradient's are
// WasmConvDw's sizes) and the linear kernels' packed weights.
void reserve_scratch(const ScratchNeeds& needs) {
    if (needs.gemm) GemmTiles<WasmVec>::reserve();
    if (needs.conv) ConvTiles<WasmVec>::reserve(*needs.conv, WasmConvDw::weight_grad_sizes(*needs.conv));
    if (needs.linear_in) packed_scratch(needs.linear_in, needs.linear_out);
}

const KernelSet& wasm_simd128() {
    static const KernelSet set{"wasm_simd128", scale_u8,   linear_forward,    linear_backward,
                               softmax_xent,   sgd_update, linear_forward_u8, linear_backward_u8,
                               GemmTiles<WasmVec>::gemm, ReluTiles<WasmVec>::forward, ReluTiles<WasmVec>::backward,
                               ConvTiles<WasmVec>::conv_input_grad_cl, ConvTiles<WasmVec>::conv_forward_cl,
                               WasmConvDw::conv_weight_grad_cl, PoolTiles<WasmVec>::forward,
                               PoolTiles<WasmVec>::backward, reserve_scratch};
    return set;
}

#endif

}  // namespace sgdx::kernels
