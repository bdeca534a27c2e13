#pragma once
// The references for KernelSet::conv_input_grad_cl (plain loops, the sum over
// (ki, kj, co) in that order), conv_forward_cl and conv_weight_grad_cl. Header-only and outside reference(): the scalar set
// (and with it the Cortex-M4's C API and firmware) keeps the gemm + col2im path,
// unchanged; the SIMD sets are tested against this, and the wasm set uses it.
#include <cstddef>

#include "kernels.hpp"

namespace sgdx::kernels {
// Internal linkage: each instruction set's translation unit keeps its own copy
// (see xsimd_kernels.hpp), so no AVX-512 copy can stand in for an SSE2 one.
namespace {

// The output rows (or columns) [lo, hi) whose window covers input row i with
// some tap, and that tap for the first: i + pad = o * stride + k, 0 <= k < K.
inline void conv_taps(size_t i, size_t pad, size_t K, size_t stride, size_t out, size_t& lo, size_t& hi) {
    const size_t ip = i + pad;
    lo = ip + 1 > K ? (ip + 1 - K + stride - 1) / stride : 0;  // the least o with ip - o * stride < K
    hi = ip / stride + 1;                                      // past the largest o with o * stride <= ip
    if (hi > out) hi = out;
}

// Where input pixel (b, i, j) gathers from: output rows [oi0, oi1) and columns [oj0, oj1).
struct ConvPixel {
    size_t b, i, j, oi0, oi1, oj0, oj1;
};

// Calls fn(pixel, dx of the pixel: cin values) for every input pixel in order.
template <class Fn>
inline void for_each_input_pixel(float* dx, const ConvShape& s, Fn&& fn) {
    for (size_t b = 0; b < s.n; ++b)
        for (size_t i = 0; i < s.h; ++i) {
            ConvPixel p{b, i, 0, 0, 0, 0, 0};
            conv_taps(i, s.pad, s.k, s.stride, s.oh, p.oi0, p.oi1);
            for (size_t j = 0; j < s.w; ++j) {
                p.j = j;
                conv_taps(j, s.pad, s.k, s.stride, s.ow, p.oj0, p.oj1);
                fn(p, dx + ((b * s.h + i) * s.w + j) * s.cin);
            }
        }
}

// Channels [ci0, cin) of one input pixel, one at a time.
inline void conv_dx_pixel_scalar(const float* dy, const float* wt, float* d, const ConvShape& s, const ConvPixel& p,
                                 size_t ci0) {
    const size_t tap_stride = s.k * s.k * s.cin;  // wt: (cout, k, k, cin)
    for (size_t ci = ci0; ci < s.cin; ++ci) {
        float acc = 0.f;
        // ki = i + pad - oi * stride falls as oi rises: oi from high to low is ki ascending
        for (size_t oi = p.oi1; oi-- > p.oi0;)
            for (size_t oj = p.oj1; oj-- > p.oj0;) {
                const size_t ki = p.i + s.pad - oi * s.stride, kj = p.j + s.pad - oj * s.stride;
                const float* g = dy + ((p.b * s.oh + oi) * s.ow + oj) * s.cout;
                const float* wk = wt + (ki * s.k + kj) * s.cin + ci;
                for (size_t co = 0; co < s.cout; ++co) acc += g[co] * wk[co * tap_stride];
            }
        d[ci] = acc;
    }
}

// Same contract as KernelSet::conv_input_grad_cl.
inline void conv_input_grad_cl_reference(const float* dy, const float* wt, float* dx, const ConvShape& s) {
    for_each_input_pixel(dx, s, [&](const ConvPixel& p, float* d) { conv_dx_pixel_scalar(dy, wt, d, s, p, 0); });
    if (s.relu_mask)
        for (size_t i = 0; i < s.n * s.h * s.w * s.cin; ++i) dx[i] = s.relu_mask[i] <= 0.f ? 0.f : dx[i];
}

// Same contract as KernelSet::conv_forward_cl: per output value the bias, then the
// taps in (ki, kj, ci) order.
inline void conv_forward_cl_reference(const float* x, const float* w, const float* b, float* y, const ConvShape& s) {
    for (size_t n = 0; n < s.n; ++n)
        for (size_t oi = 0; oi < s.oh; ++oi)
            for (size_t oj = 0; oj < s.ow; ++oj)
                for (size_t co = 0; co < s.cout; ++co) {
                    float acc = b[co];
                    for (size_t ki = 0; ki < s.k; ++ki) {
                        const size_t i = oi * s.stride + ki;
                        if (i < s.pad || i - s.pad >= s.h) continue;
                        for (size_t kj = 0; kj < s.k; ++kj) {
                            const size_t j = oj * s.stride + kj;
                            if (j < s.pad || j - s.pad >= s.w) continue;
                            const float* xv = x + ((n * s.h + i - s.pad) * s.w + j - s.pad) * s.cin;
                            for (size_t ci = 0; ci < s.cin; ++ci)
                                acc += xv[ci] * w[((co * s.cin + ci) * s.k + ki) * s.k + kj];
                        }
                    }
                    y[((n * s.oh + oi) * s.ow + oj) * s.cout + co] = s.relu && acc < 0.f ? 0.f : acc;
                }
}

// Same contract as KernelSet::conv_weight_grad_cl: per weight (and bias) one sum
// over the samples' output pixels in order, then added.
inline void conv_weight_grad_cl_reference(const float* x, const float* dy, float* dw, float* db, const ConvShape& s) {
    for (size_t co = 0; co < s.cout; ++co)
        for (size_t ci = 0; ci < s.cin; ++ci)
            for (size_t ki = 0; ki < s.k; ++ki)
                for (size_t kj = 0; kj < s.k; ++kj) {
                    float acc = 0.f;
                    for (size_t n = 0; n < s.n; ++n)
                        for (size_t oi = 0; oi < s.oh; ++oi) {
                            const size_t i = oi * s.stride + ki;
                            if (i < s.pad || i - s.pad >= s.h) continue;
                            for (size_t oj = 0; oj < s.ow; ++oj) {
                                const size_t j = oj * s.stride + kj;
                                if (j < s.pad || j - s.pad >= s.w) continue;
                                acc += dy[((n * s.oh + oi) * s.ow + oj) * s.cout + co] *
                                       x[((n * s.h + i - s.pad) * s.w + j - s.pad) * s.cin + ci];
                            }
                        }
                    dw[((co * s.cin + ci) * s.k + ki) * s.k + kj] += acc;
                }
    if (db)
        for (size_t co = 0; co < s.cout; ++co) {
            float acc = 0.f;
            for (size_t p = 0; p < s.n * s.oh * s.ow; ++p) acc += dy[p * s.cout + co];
            db[co] += acc;
        }
}

}  // namespace
}  // namespace sgdx::kernels
