#pragma once
// The Cortex-M4 kernel set: the loops the C API's layers (core/ops, for
// device/sgdx_c.cpp) compute with — on the device (no SIMD, 16 float
// registers, the DSP extension's SMLAD for int8) and, bit for bit, on a PC,
// since every output is summed in a fixed order and nothing calls libm. The scalar reference kernels (reference.cpp,
// conv_reference.hpp) define what they compute; device/tests/test_kernels_m4.cpp
// and tests/test_core_linear.cpp compare them on ragged shapes.
//
// Samples are channels-first, (c, h, w), as the C API stores its activations.
// No exceptions, no allocation.
#include <cstddef>
#include <cstdint>

namespace sgdx::kernels {
struct KernelSet;
}

namespace sgdx::kernels::m4 {

// The set as a KernelSet, named "cortex_m4": the layers (core/ops over
// core/linear) take their products from it. Its gemm and linear_forward are
// the products below; ReLU, SGD, scale_u8 the reference's; softmax_xent the one
// below. Null: linear_backward (the device sums a Linear's weight gradient a
// row at a time, core::linear_sgd_rows, through gemm) and the channels-last,
// uint8 and convolution kernels (the device keeps channels-first floats).
const KernelSet& kernel_set();

// ---- float products ----
// y: (n) += Σ_i a[i * a_stride] · x_i, x_i = x + i * x_stride: (n), i in order
void axpy_rows(float* y, const float* a, size_t a_stride, const float* x, size_t x_stride, size_t m, size_t n);
// out: (M, N) at row stride ldo, out[i][j] = Σ_k a_i[k] · b_j[k] (+ out[i][j] if
// accumulate); a_i = a + i * lda, b_j = b + j * ldb: (K)
void dot_rows(float* out, size_t ldo, const float* a, size_t lda, const float* b, size_t ldb, size_t M, size_t N,
              size_t K, bool accumulate);

// The KernelSet contract's gemm (kernels.hpp) over the two above, each output
// summed over k in order: !trans_b is axpy_rows per row of c, trans_b (not
// trans_a) dot_rows; both transposed, a plain loop (no layer asks for it).
void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* a, size_t lda, const float* b,
          size_t ldb, float* c, size_t ldc, bool accumulate);
// x: (B, D), w: (C, D), b: (C) -> y: (B, C) = x · wᵀ (dot_rows), then + b
void linear_forward(const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C);

// ---- softmax and cross-entropy without libm ----
float exp_portable(float x);
float log_portable(float x);
// The reference softmax_xent (KernelSet::softmax_xent's contract) over the two above.
double softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale, size_t B,
                    size_t C, size_t* correct);

// ---- int8 ----
// a = Σ q0[k]·x[k], b = Σ q1[k]·x[k] in int32 (exact for n <= 65,536)
void dot2_i8_u8(const int8_t* q0, const int8_t* q1, const uint8_t* x, size_t n, int32_t& a, int32_t& b);
// q: (rows, R) int8 with per-row scales qscale, in: (P, R) uint8 at in_scale ->
// y: (rows, P), y[c][p] = (q_c · in_p) · qscale[c] · in_scale + bias[c]
void rows_i8(const int8_t* q, const float* qscale, const float* bias, size_t rows, size_t R, const uint8_t* in,
             size_t P, float in_scale, float* y);
// x: (n) >= 0 -> q: (n) uint8 with x ≈ q · scale; returns scale = max / 255 (1 if max is 0 or not finite)
float quantize_input(const float* x, size_t n, uint8_t* q);
// Weights (set-up, not per image): w: (n) -> q: (n) int8 with w ≈ q · scale,
// scale = max / 127 (1 if that is not > 0), rounded half away from zero; a NaN
// w becomes 0 (callers refuse NaN rows first, see max_abs).
void quantize_row(const float* w, size_t n, float max, int8_t* q, float* scale);
// max |w|, or NaN if any w is NaN (fmax would skip it, and the int8 conversion
// of NaN is undefined: the fuzzer found a NaN weight row doing just that).
float max_abs(const float* w, size_t n);

}  // namespace sgdx::kernels::m4
