// nn.Conv2d, written once (core/conv.hpp): the device's per-image strategy and
// the host's by-position one.
#include "core/conv.hpp"

#include <cstring>

#include "runtime/kernels/kernels.hpp"

namespace sgdx::core {

// ---- Per image, by patch -----------------------------------------------------------
// Window positions in int32 (every side is at most 65,536): 64-bit arithmetic
// costs the M4 two instructions or more per operation.

void im2col(const ConvGeometry& g, const float* x, float* cols) {
    const size_t P = g.positions();
    for (uint32_t c = 0; c < g.cin; ++c)
        for (uint32_t ky = 0; ky < g.kh; ++ky)
            for (uint32_t kx = 0; kx < g.kw; ++kx) {
                float* r = cols + ((size_t(c) * g.kh + ky) * g.kw + kx) * P;
                for (uint32_t oy = 0; oy < g.oh; ++oy) {
                    const int32_t iy = int32_t(oy * g.stride + ky) - int32_t(g.pad);
                    for (uint32_t ox = 0; ox < g.ow; ++ox) {
                        const int32_t ix = int32_t(ox * g.stride + kx) - int32_t(g.pad);
                        const bool inside = iy >= 0 && iy < int32_t(g.h) && ix >= 0 && ix < int32_t(g.w);
                        *r++ = inside ? x[(size_t(c) * g.h + size_t(iy)) * g.w + size_t(ix)] : 0.f;
                    }
                }
            }
}

void col2im(const ConvGeometry& g, const float* cols, float* dx) {
    const size_t P = g.positions();
    std::memset(dx, 0, g.in_size() * sizeof(float));
    for (uint32_t c = 0; c < g.cin; ++c)
        for (uint32_t ky = 0; ky < g.kh; ++ky)
            for (uint32_t kx = 0; kx < g.kw; ++kx) {
                const float* r = cols + ((size_t(c) * g.kh + ky) * g.kw + kx) * P;
                for (uint32_t oy = 0; oy < g.oh; ++oy) {
                    const int32_t iy = int32_t(oy * g.stride + ky) - int32_t(g.pad);
                    for (uint32_t ox = 0; ox < g.ow; ++ox, ++r) {
                        const int32_t ix = int32_t(ox * g.stride + kx) - int32_t(g.pad);
                        if (iy >= 0 && iy < int32_t(g.h) && ix >= 0 && ix < int32_t(g.w))
                            dx[(size_t(c) * g.h + size_t(iy)) * g.w + size_t(ix)] += *r;
                    }
                }
            }
}

void im2row_u8(const ConvGeometry& g, const uint8_t* x, uint8_t* rows) {
    const size_t R = g.patch();
    for (uint32_t c = 0; c < g.cin; ++c)
        for (uint32_t ky = 0; ky < g.kh; ++ky)
            for (uint32_t kx = 0; kx < g.kw; ++kx) {
                uint8_t* col = rows + (size_t(c) * g.kh + ky) * g.kw + kx;
                for (uint32_t oy = 0; oy < g.oh; ++oy) {
                    const int32_t iy = int32_t(oy * g.stride + ky) - int32_t(g.pad);
                    for (uint32_t ox = 0; ox < g.ow; ++ox, col += R) {
                        const int32_t ix = int32_t(ox * g.stride + kx) - int32_t(g.pad);
                        *col = iy >= 0 && iy < int32_t(g.h) && ix >= 0 && ix < int32_t(g.w)
                                   ? x[(size_t(c) * g.h + size_t(iy)) * g.w + size_t(ix)]
                                   : 0;
                    }
                }
            }
}

void conv_forward_images(const kernels::KernelSet& k, const ConvGeometry& g, const float* weight, const float* bias,
                         const float* x, float* y, size_t n, float* cols) {
    const size_t P = g.positions(), R = g.patch();
    for (size_t i = 0; i < n; ++i) {
        float* yi = y + i * g.out_size();
        im2col(g, x + i * g.in_size(), cols);
        for (uint32_t c = 0; c < g.cout; ++c)
            for (size_t p = 0; p < P; ++p) yi[c * P + p] = bias[c];
        // yi: (cout, P) += weight (cout, patch) · cols (patch, P)
        k.gemm(false, false, g.cout, P, R, weight, R, cols, P, yi, P, true);
    }
}

void conv_backward_images(const kernels::KernelSet& k, const ConvGeometry& g, const float* weight, const float* x,
                          const float* dy, float* dx, size_t n, float* gweight, float* gbias, float* cols) {
    const size_t P = g.positions(), R = g.patch();
    for (size_t i = 0; i < n; ++i) {
        const float* gy = dy + i * g.out_size();
        im2col(g, x + i * g.in_size(), cols);
        // gweight: (cout, patch) += dy (cout, P) · colsᵀ
        k.gemm(false, true, g.cout, R, P, gy, P, cols, P, gweight, R, i > 0);
        for (uint32_t c = 0; c < g.cout; ++c) {
            float acc = 0.f;
            for (size_t p = 0; p < P; ++p) acc += gy[c * P + p];
            gbias[c] = i > 0 ? gbias[c] + acc : acc;
        }
        if (dx) {  // cols: (patch, P) = weightᵀ · dy, folded back into the image
            k.gemm(true, false, R, P, g.cout, weight, R, gy, P, cols, P, false);
            col2im(g, cols, dx + i * g.in_size());
        }
    }
}

// ---- By position ---------------------------------------------------------------------

bool conv_direct(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f) {
    return k.conv_forward_cl && k.conv_weight_grad_cl && (f.in_cl || g.cin == 1) && f.out_cl;
}

// For strides from 2 each input pixel gathers its few taps with no patch matrix
// and no col2im (tutorial CNN, batch 64, AVX-512, least of 40: conv2 161 vs 195
// µs, conv3 43 vs 51). With stride 1 most of a small plane's pixels sit at a
// border, where the direct kernel runs one pixel at a time: LeNet's conv2 took
// 1190 µs against 870-970, so stride 1 by patches keeps gemm + col2im.
bool conv_input_grad_by_phase(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f) {
    if (!k.conv_input_grad_cl) return false;
    return conv_direct(k, g, f) ? f.in_cl : f.cl_patches(g) && g.stride > 1;
}

kernels::ConvShape conv_shape(const ConvGeometry& g, const ConvForm& f, size_t n, const float* x) {
    kernels::ConvShape s{n, g.h, g.w, g.cin, g.oh, g.ow, g.cout, g.kh, g.stride, g.pad};
    s.relu = f.relu_out;
    s.relu_mask = f.relu_in ? x : nullptr;
    return s;
}

size_t padded_size(const ConvGeometry& g) { return size_t(g.cin) * (g.h + 2 * g.pad) * (g.w + 2 * g.pad + 1); }

const float* weight_in_patch_order(const ConvGeometry& g, const ConvForm& f, const float* weight, float* w_out) {
    if (!f.cl_patches(g)) return weight;
    const size_t K = g.kh, D = g.patch();
    for (size_t c = 0; c < g.cout; ++c)
        for (size_t ki = 0; ki < K; ++ki)
            for (size_t kj = 0; kj < K; ++kj)
                for (size_t ci = 0; ci < g.cin; ++ci)
                    w_out[c * D + (ki * K + kj) * g.cin + ci] = weight[c * D + (ci * K + ki) * K + kj];
    return w_out;
}

ConvScratchSizes conv_scratch_sizes(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, size_t n,
                                    bool backward, bool dx) {
    const size_t rows = n * g.positions(), D = g.patch();
    ConvScratchSizes s{};
    if (!conv_direct(k, g, f)) {
        s.cols = rows * D, s.by_pixel = rows * g.cout;
        if (backward) s.channel_sums = g.cout, s.dwt = D * g.cout;
    }
    s.padded = padded_size(g);
    if (dx && !conv_input_grad_by_phase(k, g, f)) s.dcols = rows * D;
    return s;
}

namespace {

// One sample at a time through a zero-padded copy of it, (in, H + 2 pad, W + 2 pad
// + 1): every window is then inside, and one row of the patch matrix per output
// pixel is in·k plain copies of k values. K is a template constant for the usual
// 3 and 5 so the copies unroll; for K = 3 a copy moves 4 values (one vector, the
// padded row's extra column keeping it inside), the 4th landing on the next patch
// value, which is written after it (so not on the call's last row, whose next one
// may be another thread's). Scatter (col2im) adds the rows into the padded copy
// instead and then copies its inside out.
// n floats; a memcpy call costs more than these short rows (7 to 28 values).
inline void copy_row(float* dst, const float* src, size_t n) {
    size_t j = 0;
    for (; j + 4 <= n; j += 4) std::memcpy(dst + j, src + j, 4 * sizeof(float));
    for (; j < n; ++j) dst[j] = src[j];
}

template <size_t KT, bool Scatter>
void patches(float* x, float* cols, float* padded, size_t n, const ConvGeometry& g) {
    const size_t cin = g.cin, h = g.h, w = g.w, oh = g.oh, ow = g.ow, stride = g.stride, pad = g.pad;
    const size_t K = KT ? KT : g.kh, D = cin * K * K, hp = h + 2 * pad, wp = w + 2 * pad + 1;
    const size_t sample = cin * hp * wp;
    // Gathering, every sample overwrites the same inside of the copy: its zero
    // border (and extra column) is written once per call. Scattering adds into it.
    if (!Scatter) std::memset(padded, 0, sample * sizeof(float));
    for (size_t b = 0; b < n; ++b) {
        float* xb = x + b * cin * h * w;
        if (Scatter) std::memset(padded, 0, sample * sizeof(float));
        if (!Scatter)
            for (size_t ci = 0; ci < cin; ++ci)
                for (size_t i = 0; i < h; ++i)
                    copy_row(padded + (ci * hp + i + pad) * wp + pad, xb + (ci * h + i) * w, w);
        for (size_t oi = 0; oi < oh; ++oi)
            for (size_t oj = 0; oj < ow; ++oj) {
                float* row = cols + ((b * oh + oi) * ow + oj) * D;
                const float* src = padded + oi * stride * wp + oj * stride;
                const bool wide = !Scatter && KT == 3 && !(b + 1 == n && oi + 1 == oh && oj + 1 == ow);
                for (size_t ci = 0; ci < cin; ++ci)
                    for (size_t ki = 0; ki < K; ++ki) {
                        float* patch = row + (ci * K + ki) * K;
                        float* xs = const_cast<float*>(src) + (ci * hp + ki) * wp;
                        if (wide) {
                            std::memcpy(patch, xs, 4 * sizeof(float));
                        } else {
                            for (size_t kj = 0; kj < K; ++kj) {
                                if (Scatter) xs[kj] += patch[kj];
                                else patch[kj] = xs[kj];
                            }
                        }
                    }
            }
        if (Scatter)
            for (size_t ci = 0; ci < cin; ++ci)
                for (size_t i = 0; i < h; ++i)
                    copy_row(xb + (ci * h + i) * w, padded + (ci * hp + i + pad) * wp + pad, w);
    }
}

// The same on channels-last samples (n, H, W, in) through a zero-padded copy
// (H + 2 pad, W + 2 pad, in): a patch row is K spans of K·in contiguous values,
// columns (ki, kj, ci). padded_size() covers it: in·(H + 2 pad)·(W + 2 pad) is less.
template <bool Scatter>
void patches_cl(float* x, float* cols, float* padded, size_t n, const ConvGeometry& g) {
    const size_t cin = g.cin, h = g.h, w = g.w, oh = g.oh, ow = g.ow, stride = g.stride, pad = g.pad, K = g.kh;
    const size_t D = K * K * cin, wp = w + 2 * pad, span = K * cin, line = w * cin;
    const size_t sample = (h + 2 * pad) * wp * cin;
    if (!Scatter) std::memset(padded, 0, sample * sizeof(float));  // the border, once (see patches)
    for (size_t b = 0; b < n; ++b) {
        float* xb = x + b * h * line;
        if (Scatter) std::memset(padded, 0, sample * sizeof(float));
        if (!Scatter)
            for (size_t i = 0; i < h; ++i)
                copy_row(padded + ((i + pad) * wp + pad) * cin, xb + i * line, line);
        for (size_t oi = 0; oi < oh; ++oi)
            for (size_t oj = 0; oj < ow; ++oj) {
                float* row = cols + ((b * oh + oi) * ow + oj) * D;
                float* src = padded + (oi * stride * wp + oj * stride) * cin;
                for (size_t ki = 0; ki < K; ++ki) {
                    float* patch = row + ki * span;
                    float* xs = src + ki * wp * cin;
                    if (Scatter)
                        for (size_t j = 0; j < span; ++j) xs[j] += patch[j];
                    else
                        copy_row(patch, xs, span);
                }
            }
        if (Scatter)
            for (size_t i = 0; i < h; ++i)
                copy_row(xb + i * line, padded + ((i + pad) * wp + pad) * cin, line);
    }
}

// x: (n, in, H, W) (or channels-last) -> cols: (n·OH·OW, patch), one row per output pixel
template <bool Scatter>
void patch_rows(const ConvGeometry& g, const ConvForm& f, float* x, float* cols, float* padded, size_t n) {
    if (f.cl_patches(g)) return patches_cl<Scatter>(x, cols, padded, n, g);
    if (g.kh == 3) patches<3, Scatter>(x, cols, padded, n, g);
    else if (g.kh == 5) patches<5, Scatter>(x, cols, padded, n, g);
    else patches<0, Scatter>(x, cols, padded, n, g);
}

void im2rows(const ConvGeometry& g, const ConvForm& f, const float* x, size_t n, float* cols, float* padded) {
    patch_rows<false>(g, f, const_cast<float*>(x), cols, padded, n);
}

// cols: (n·OH·OW, patch) -> dx: (n, in, H, W) = the sum of every patch's values
void rows2im(const ConvGeometry& g, const ConvForm& f, const float* cols, size_t n, float* dx, float* padded) {
    patch_rows<true>(g, f, dx, const_cast<float*>(cols), padded, n);
}

// g (n·P, out) · wt (out, D) -> dcols (n·P, D) -> dx, masked by a fused ReLU's output x
void input_grad_by_patches(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                           const float* gy, const float* wt, float* dx, size_t n, const ConvScratch& s) {
    const size_t P = g.positions(), D = g.patch();
    k.gemm(false, false, n * P, D, g.cout, gy, g.cout, wt, D, s.dcols, D, false);
    rows2im(g, f, s.dcols, n, dx, s.padded);
    if (f.relu_in) k.relu_backward(x, dx, dx, n * g.in_size());
}

}  // namespace

void conv_forward_rows(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                       size_t n, size_t chunk, const float* wt, const float* bias, float* y, float* saved,
                       const ConvScratch& s) {
    const size_t P = g.positions(), D = g.patch(), C = g.cout;
    for (size_t b0 = 0; b0 < n; b0 += chunk) {
        const size_t m = n - b0 < chunk ? n - b0 : chunk;
        float* cols = saved ? saved + b0 * P * D : s.cols;
        im2rows(g, f, x + b0 * g.in_size(), m, cols, s.padded);
        // cols: (m·P, D) · weightᵀ (D, out) -> (m·P, out): channels-last already
        float* t = f.out_cl ? y + b0 * P * C : s.by_pixel;
        k.gemm(false, true, m * P, C, D, cols, D, wt, D, t, C, false);
        if (f.out_cl) {
            for (size_t r = 0; r < m * P; ++r)
                for (size_t c = 0; c < C; ++c) t[r * C + c] += bias[c];
        } else {
            // (m, P, out) -> y: (m, out, P), plus the bias
            for (size_t b = 0; b < m; ++b)
                for (size_t c = 0; c < C; ++c) {
                    float* yc = y + ((b0 + b) * C + c) * P;
                    const float bc = bias[c];
                    for (size_t p = 0; p < P; ++p) yc[p] = t[(b * P + p) * C + c] + bc;
                }
        }
        if (f.relu_out) k.relu_forward(y + b0 * g.out_size(), y + b0 * g.out_size(), m * g.out_size());
    }
}

void conv_backward_rows(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                        const float* dy, float* dx, size_t n, size_t chunk, const float* wt, const float* saved,
                        float* dw, float* db, const ConvScratch& s) {
    const size_t P = g.positions(), D = g.patch(), C = g.cout;
    // The weight gradient's gemm puts the longer of out and the patch length along
    // the vector lanes: (D, out) and transposed at the end when the patch is the
    // shorter (conv1 of the tutorial CNN: 9 values per patch, 16 channels), or when
    // out fills whole vectors on every set (4, 8 or 16 lanes).
    const bool by_pixel = D < C || C % 16 == 0;
    // Channels-last patches give the gradient in (ki, kj, ci) column order: it is
    // summed in dwt too and added into PyTorch's order at the end.
    const bool cl = f.cl_patches(g), via_dwt = by_pixel || cl;
    const bool phase_dx = conv_input_grad_by_phase(k, g, f);
    if (via_dwt) std::memset(s.dwt, 0, D * C * sizeof(float));
    for (size_t b0 = 0; b0 < n; b0 += chunk) {
        const size_t m = n - b0 < chunk ? n - b0 : chunk;
        // dy: (m, out, P) -> gy: (m, P, out); db += Σ dy. A channels-last dy is gy
        // already; its sums are taken in the same order.
        const float* gy = s.by_pixel;
        if (f.out_cl) {
            // Row by row, every channel's sum at once (vectorised over channels).
            gy = dy + b0 * P * C;
            float* sum = s.channel_sums;
            for (size_t b = 0; b < m; ++b) {
                for (size_t c = 0; c < C; ++c) sum[c] = 0.f;
                for (size_t p = 0; p < P; ++p) {
                    const float* gp = gy + (b * P + p) * C;
                    for (size_t c = 0; c < C; ++c) sum[c] += gp[c];
                }
                for (size_t c = 0; c < C; ++c) db[c] += sum[c];
            }
        } else {
            for (size_t b = 0; b < m; ++b)
                for (size_t c = 0; c < C; ++c) {
                    const float* dyc = dy + ((b0 + b) * C + c) * P;
                    float sum = 0.f;
                    for (size_t p = 0; p < P; ++p) {
                        s.by_pixel[(b * P + p) * C + c] = dyc[p];
                        sum += dyc[p];
                    }
                    db[c] += sum;
                }
        }
        const float* xs = x + b0 * g.in_size();
        const float* cols = saved ? saved + b0 * P * D : s.cols;
        if (!saved) im2rows(g, f, xs, m, s.cols, s.padded);
        if (by_pixel) {
            // colsᵀ (D, m·P) · gy (m·P, out) -> dwt (D, out) +=
            k.gemm(true, false, D, C, m * P, cols, D, gy, C, s.dwt, C, true);
        } else {
            // gyᵀ (out, m·P) · cols (m·P, D) -> dw (out, D) +=
            k.gemm(true, false, C, D, m * P, gy, C, cols, D, via_dwt ? s.dwt : dw, D, true);
        }
        if (dx && phase_dx) {
            // channels-last dx straight from gy (m, OH, OW, out): no patch matrix, no col2im
            k.conv_input_grad_cl(gy, wt, dx + b0 * g.in_size(), conv_shape(g, f, m, xs));
        } else if (dx) {
            input_grad_by_patches(k, g, f, xs, gy, wt, dx + b0 * g.in_size(), m, s);
        }
    }
    if (!via_dwt) return;
    // dwt (by_pixel: (D, out), else (out, D)) in patch column order -> dw in PyTorch's
    const size_t K = g.kh;
    auto add = [&](size_t c, size_t d, size_t torch_d) { dw[c * D + torch_d] += by_pixel ? s.dwt[d * C + c] : s.dwt[c * D + d]; };
    for (size_t c = 0; c < C; ++c) {
        if (!cl) {
            for (size_t d = 0; d < D; ++d) add(c, d, d);
            continue;
        }
        for (size_t ki = 0; ki < K; ++ki)
            for (size_t kj = 0; kj < K; ++kj)
                for (size_t ci = 0; ci < g.cin; ++ci) add(c, (ki * K + kj) * g.cin + ci, (ci * K + ki) * K + kj);
    }
}

void conv_forward_direct(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                         size_t n, const float* weight, const float* bias, float* y) {
    k.conv_forward_cl(x, weight, bias, y, conv_shape(g, f, n, nullptr));
}

void conv_backward_direct(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                          const float* dy, float* dx, size_t n, const float* wt, float* dw, float* db,
                          const ConvScratch& s) {
    k.conv_weight_grad_cl(x, dy, dw, db, conv_shape(g, ConvForm{}, n, nullptr));  // no ReLU of its own
    if (!dx) return;
    if (conv_input_grad_by_phase(k, g, f)) k.conv_input_grad_cl(dy, wt, dx, conv_shape(g, f, n, x));
    else input_grad_by_patches(k, g, f, x, dy, wt, dx, n, s);
}

}  // namespace sgdx::core
