// The Cortex-M4 kernel set: the loops the C API's layers (core/ops) train and
// run its networks with, on the device and, bit for bit, on a PC. See
// cortex_m4.hpp for what each computes; device/tests/test_kernels_m4.cpp and
// tests/test_core_linear.cpp (the set's gemm and linear_forward) hold them to
// the scalar reference.
#include "cortex_m4.hpp"

#include <cmath>
#include <cstring>
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#include "kernels.hpp"
#include "reference.hpp"
#include "softmax_reference.hpp"

namespace sgdx::kernels::m4 {

// ---- exp and log without libm ---------------------------------------------------
// newlib's expf/logf and glibc's round differently, so a step on the device and
// the same step on a PC would drift apart; these are plain float arithmetic
// (Cephes' polynomials, ~1 ulp) and give the same bits everywhere.

float exp_portable(float x) {
    if (x != x) return x;
    if (x > 88.7228317f) return INFINITY;
    if (x < -103.972084f) return 0.f;
    const int k = int(x * 1.44269504f + (x >= 0.f ? 0.5f : -0.5f));  // round(x / ln 2)
    const float kf = float(k);
    float r = x - kf * 0.693359375f;  // ln 2 in two parts: r = x - k ln 2, exactly
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.f;
    // y * 2^k in two factors, each a normal float, so results near 0 round once.
    const int k1 = k / 2, k2 = k - k1;
    const uint32_t b1 = uint32_t(k1 + 127) << 23, b2 = uint32_t(k2 + 127) << 23;
    float f1, f2;
    std::memcpy(&f1, &b1, 4);
    std::memcpy(&f2, &b2, 4);
    return y * f1 * f2;
}

float log_portable(float x) {
    if (x != x) return x;
    if (x < 0.f) return NAN;
    if (x == 0.f) return -INFINITY;
    if (x == INFINITY) return x;
    int e = 0;
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if (u < 0x00800000u) {  // subnormal: scale into the normal range first
        x *= 8388608.f;
        e = -23;
        std::memcpy(&u, &x, 4);
    }
    e += int((u >> 23) & 0xffu) - 126;
    u = (u & 0x007fffffu) | 0x3f000000u;  // mantissa in [0.5, 1)
    float m;
    std::memcpy(&m, &u, 4);
    if (m < 0.707106781f) {
        e -= 1;
        m = m + m - 1.f;
    } else {
        m = m - 1.f;
    }
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    const float ef = float(e);
    y += -2.12194440e-4f * ef;
    y += -0.5f * z;
    return m + y + 0.693359375f * ef;
}

// The reference softmax_xent kernel's arithmetic, with the functions above.
double softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale, size_t B,
                    size_t C, size_t* correct) {
    return sgdx::kernels::softmax_xent_with(exp_portable, log_portable, logits, target, dlogits, grad_scale, B, C,
                                            correct);
}

// The layers' products, as two loops a Cortex-M4 runs well (no SIMD, 16 float
// registers): both walk memory in order and keep partial sums in registers.
// Each output is summed in a fixed order, so the host computes the same bits.
// They replace the reference gemm here (3-4 instead of 10-15 instructions per
// multiply-add on the M4); the tests hold every model's steps to the runtime's.

// y: (n) += Σ_i a[i * a_stride] · x_i, x_i = x + i * x_stride: (n), i in order
void axpy_rows(float* y, const float* a, size_t a_stride, const float* x, size_t x_stride, size_t m, size_t n) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const float a0 = a[i * a_stride], a1 = a[(i + 1) * a_stride];
        const float a2 = a[(i + 2) * a_stride], a3 = a[(i + 3) * a_stride];
        const float* x0 = x + i * x_stride;
        const float *x1 = x0 + x_stride, *x2 = x1 + x_stride, *x3 = x2 + x_stride;
        for (size_t p = 0; p < n; ++p) y[p] = (((y[p] + a0 * x0[p]) + a1 * x1[p]) + a2 * x2[p]) + a3 * x3[p];
    }
    for (; i < m; ++i) {
        const float a0 = a[i * a_stride];
        const float* x0 = x + i * x_stride;
        for (size_t p = 0; p < n; ++p) y[p] += a0 * x0[p];
    }
}

// out: (M, N) at row stride ldo, out[i][j] = Σ_k a_i[k] · b_j[k] (+ out[i][j] if
// accumulate); a_i = a + i * lda, b_j = b + j * ldb: (K). Two rows by two
// columns at a time share their loads.
void dot_rows(float* out, size_t ldo, const float* a, size_t lda, const float* b, size_t ldb, size_t M, size_t N,
              size_t K, bool accumulate) {
    for (size_t i = 0; i < M; i += 2) {
        const bool two_i = i + 1 < M;
        const float* a0 = a + i * lda;
        const float* a1 = two_i ? a0 + lda : a0;
        for (size_t j = 0; j < N; j += 2) {
            const bool two_j = j + 1 < N;
            const float* b0 = b + j * ldb;
            const float* b1 = two_j ? b0 + ldb : b0;
            float s00 = 0.f, s01 = 0.f, s10 = 0.f, s11 = 0.f;
            for (size_t k = 0; k < K; ++k) {
                const float x0 = a0[k], x1 = a1[k], y0 = b0[k], y1 = b1[k];
                s00 += x0 * y0, s01 += x0 * y1, s10 += x1 * y0, s11 += x1 * y1;
            }
            float* o = out + i * ldo + j;
            o[0] = accumulate ? o[0] + s00 : s00;
            if (two_j) o[1] = accumulate ? o[1] + s01 : s01;
            if (two_i) {
                o[ldo] = accumulate ? o[ldo] + s10 : s10;
                if (two_j) o[ldo + 1] = accumulate ? o[ldo + 1] + s11 : s11;
            }
        }
    }
}

void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* a, size_t lda, const float* b,
          size_t ldb, float* c, size_t ldc, bool accumulate) {
    if (!trans_b) {  // row i of c += Σ_k op(a)[i][k] · row k of b
        if (!accumulate && ldc == N) std::memset(c, 0, M * N * sizeof(float));  // one call, not M
        for (size_t i = 0; i < M; ++i) {
            float* ci = c + i * ldc;
            if (!accumulate && ldc != N) std::memset(ci, 0, N * sizeof(float));
            if (trans_a) axpy_rows(ci, a + i, lda, b, ldb, K, N);
            else axpy_rows(ci, a + i * lda, 1, b, ldb, K, N);
        }
        return;
    }
    if (!trans_a) return dot_rows(c, ldc, a, lda, b, ldb, M, N, K, accumulate);
    for (size_t i = 0; i < M; ++i)
        for (size_t j = 0; j < N; ++j) {
            float s = 0.f;
            for (size_t k = 0; k < K; ++k) s += a[k * lda + i] * b[j * ldb + k];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
        }
}

void linear_forward(const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C) {
    dot_rows(y, C, x, D, w, D, B, C, D, false);
    for (size_t s = 0; s < B; ++s)
        for (size_t c = 0; c < C; ++c) y[s * C + c] += b[c];
}

namespace {
constexpr KernelSet kSet{"cortex_m4", ref::scale_u8, linear_forward, nullptr, softmax_xent, ref::sgd_update,
                         nullptr, nullptr, gemm, ref::relu_forward, ref::relu_backward};
}  // namespace

const KernelSet& kernel_set() { return kSet; }

// ---- int8 inference ---------------------------------------------------------------

// Two rows against one input: a = Σ q0[k]·x[k], b = Σ q1[k]·x[k] in int32 (no
// overflow: n <= 65,536). With the DSP extension (Cortex-M4) each 4-byte
// word is loaded and widened once for both rows, and four products take two
// SMLADs (two 16x16 multiply-adds each).
// Inlined into rows_i8 (its loop is the int8 path's whole cost; a call per pair
// of rows cost the CNN 2% more instructions per image).
static inline __attribute__((always_inline)) void dot2(const int8_t* q0, const int8_t* q1, const uint8_t* x,
                                                       size_t n, int32_t& a, int32_t& b) {
    a = b = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; n >= 4; n -= 4, q0 += 4, q1 += 4, x += 4) {
        uint32_t p, w0, w1;
        std::memcpy(&p, x, 4);  // LDR: the M4 loads unaligned words
        std::memcpy(&w0, q0, 4);
        std::memcpy(&w1, q1, 4);
        // Bytes 0 and 2, then 1 and 3, widened to 16-bit lanes.
        const uint32_t p02 = __uxtb16(p), p13 = __uxtb16(p >> 8 | p << 24);
        a = __smlad(__sxtb16(w0), p02, a);
        a = __smlad(__sxtb16(w0 >> 8 | w0 << 24), p13, a);
        b = __smlad(__sxtb16(w1), p02, b);
        b = __smlad(__sxtb16(w1 >> 8 | w1 << 24), p13, b);
    }
#endif
    for (; n; --n, ++x) {
        a += int32_t(*q0++) * int32_t(*x);
        b += int32_t(*q1++) * int32_t(*x);
    }
}

void dot2_i8_u8(const int8_t* q0, const int8_t* q1, const uint8_t* x, size_t n, int32_t& a, int32_t& b) {
    dot2(q0, q1, x, n, a, b);
}

void rows_i8(const int8_t* q, const float* qscale, const float* bias, size_t rows, size_t R, const uint8_t* in,
             size_t P, float in_scale, float* y) {
    for (size_t p = 0; p < P; ++p, in += R)
        for (size_t c = 0; c < rows; c += 2) {
            const size_t d = c + 1 < rows ? c + 1 : c;  // an odd last row pairs with itself
            int32_t acc[2];
            dot2(q + c * R, q + d * R, in, R, acc[0], acc[1]);
            y[c * P + p] = float(acc[0]) * (qscale[c] * in_scale) + bias[c];
            y[d * P + p] = float(acc[1]) * (qscale[d] * in_scale) + bias[d];
        }
}

// x: (n) >= 0 -> q: (n) uint8 with x ≈ q · scale, scale = max / 255 (returned).
float quantize_input(const float* x, size_t n, uint8_t* q) {
    float max = 0.f;
    for (size_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;  // NaN and negatives read as 0
    if (!(max > 0.f) || !std::isfinite(max)) {
        std::memset(q, 0, n);
        return 1.f;
    }
    const float inv = 255.f / max;
    for (size_t i = 0; i < n; ++i) {
        const float v = x[i] > 0.f ? x[i] * inv + 0.5f : 0.f;
        q[i] = uint8_t(v < 255.f ? v : 255.f);
    }
    return max / 255.f;
}

// Set-up code: compiled for size on the device, like the C API's set-up.
#if defined(__arm__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("Os")
#endif
void quantize_row(const float* w, size_t n, float max, int8_t* q, float* scale) {
    *scale = max / 127.f;
    if (!(*scale > 0.f)) *scale = 1.f;  // all zeros, or a max so small that max/127 rounds to 0
    for (size_t k = 0; k < n; ++k) {
        float v = w[k] / *scale;
        v = v > 127.f ? 127.f : v < -127.f ? -127.f : v;
        q[k] = v == v ? int8_t(v >= 0.f ? v + 0.5f : v - 0.5f) : int8_t(0);
    }
}

float max_abs(const float* w, size_t n) {
    float max = 0.f;
    bool nan = false;
    for (size_t k = 0; k < n; ++k) {
        nan |= w[k] != w[k];
        max = std::fmax(max, std::fabs(w[k]));
    }
    return nan ? NAN : max;
}
#if defined(__arm__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

}  // namespace sgdx::kernels::m4
