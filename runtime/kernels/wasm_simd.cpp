// WebAssembly SIMD128 versions of the kernels (xsimd 8.1 has no wasm backend).
// Compiled only in the Emscripten build, with -msimd128; the blocking follows
// xsimd_kernels.hpp: several independent accumulators per loop so the engine can
// overlap the multiply-adds (wasm SIMD has no fused multiply-add without relaxed
// SIMD, which the engines here reject).
#include <wasm_simd128.h>

#include "class_blocks.hpp"
#include "kernels.hpp"

namespace sgdx::kernels {
namespace {

using v128 = v128_t;
constexpr size_t W = 4;  // floats per vector

inline v128 load(const float* p) { return wasm_v128_load(p); }
inline void store(float* p, v128 v) { wasm_v128_store(p, v); }
inline v128 madd(v128 a, v128 b, v128 acc) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }
inline float hsum(v128 v) {
    // (a+c, b+d, ...) then the two halves: the same pairing on every call.
    v128 s = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
    s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
    return wasm_f32x4_extract_lane(s, 0);
}

// 0x4B000000 is 2^23 as a float: OR-ing a byte v into its mantissa gives exactly
// 2^23 + v, and subtracting 2^23 leaves float(v). (Written with
// f32x4.convert_i32x4, clang 14 proves the lanes unsigned and scalarises the
// conversion, 16 extract/convert/replace steps per vector.)
void scale_u8(const uint8_t* x, float scale, float* y, size_t n) {
    const v128 s = wasm_f32x4_splat(scale);
    const v128 two23_bits = wasm_i32x4_splat(0x4B000000);
    const v128 two23 = wasm_f32x4_splat(8388608.f);
    auto to_float = [&](v128 u32) { return wasm_f32x4_sub(wasm_v128_or(u32, two23_bits), two23); };
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v128 bytes = wasm_v128_load(x + i);
        v128 lo16 = wasm_u16x8_extend_low_u8x16(bytes), hi16 = wasm_u16x8_extend_high_u8x16(bytes);
        store(y + i, wasm_f32x4_mul(to_float(wasm_u32x4_extend_low_u16x8(lo16)), s));
        store(y + i + 4, wasm_f32x4_mul(to_float(wasm_u32x4_extend_high_u16x8(lo16)), s));
        store(y + i + 8, wasm_f32x4_mul(to_float(wasm_u32x4_extend_low_u16x8(hi16)), s));
        store(y + i + 12, wasm_f32x4_mul(to_float(wasm_u32x4_extend_high_u16x8(hi16)), s));
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

// Softmax + cross-entropy is B·C exponentials against B·C·D multiply-adds in the
// linear layer (1/784 of the work for MNIST): the scalar reference is kept here.
double softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale,
                    size_t B, size_t C, size_t* correct) {
    return reference().softmax_xent(logits, target, dlogits, grad_scale, B, C, correct);
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
            store(buf + i, bv);
            g = nesterov ? madd(vm, bv, g) : bv;
        }
        store(p + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(vlr, g)));
    }
    if (i < n)
        reference().sgd_update(p + i, grad + i, buf ? buf + i : nullptr, n - i, lr, momentum,
                               dampening, weight_decay, nesterov, first);
}

}  // namespace

const KernelSet& wasm_simd128() {
    static const KernelSet set{"wasm_simd128", scale_u8, linear_forward, linear_backward,
                               softmax_xent, sgd_update};
    return set;
}

}  // namespace sgdx::kernels
