#include "conv2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend.hpp"
#include "core/plan.hpp"
#include "error.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Conv2d::Conv2d(size_t in_channels, size_t out_channels, size_t kernel, size_t stride, size_t padding, Rng& rng,
               bool with_bias)
    : cin_(in_channels), cout_(out_channels), k_(kernel), stride_(stride), pad_(padding) {
    if (!in_channels || !out_channels || !kernel || !stride)
        throw Error("Conv2d: channels, kernel size and stride must be >= 1");
    weight.value = xt::xarray<float>::from_shape({cout_, cin_, k_, k_});
    bias.value = xt::zeros<float>({cout_});
    init_layer(rng, cout_, patch(), weight.value.data(), with_bias ? bias.value.data() : nullptr);  // runtime/rng.hpp
    weight.grad = xt::zeros<float>({cout_, cin_, k_, k_});
    bias.grad = xt::zeros<float>({cout_});
    register_parameter("weight", weight);
    if (with_bias) register_parameter("bias", bias);  // else a zero no optimiser sees, as bias=False
}

Shape Conv2d::configure(const Shape& input) {
    if (input.size() != 3 || input[0] != cin_)
        throw Error(describe() + ": wants a sample of shape [" + std::to_string(cin_) + ", height, width], got " +
                    shape_text(input));
    // Checked before any member changes: a failed build leaves the layer as it was.
    const size_t h = input[1], w = input[2];
    uint32_t oh, ow;  // core/plan's rule, the C API's
    if (!core::window_output_size(h, w, k_, k_, stride_, pad_, oh, ow))
        throw Error(describe() + ": a " + std::to_string(h) + "x" + std::to_string(w) + " input is " +
                    (h + 2 * pad_ < k_ || w + 2 * pad_ < k_ ? "smaller than the kernel" : "too large"));
    h_ = h, w_ = w, oh_ = oh, ow_ = ow;
    // Sized here so that a Sequential's channels-last path allocates nothing per step.
    torch_column_.resize(patch());
    for (size_t ki = 0; ki < k_; ++ki)
        for (size_t kj = 0; kj < k_; ++kj)
            for (size_t ci = 0; ci < cin_; ++ci) torch_column_[(ki * k_ + kj) * cin_ + ci] = (ci * k_ + ki) * k_ + kj;
    weight_cl_.resize(cout_ * patch());
    return {cout_, oh_, ow_};
}

std::unique_ptr<Module> Conv2d::clone() const {
    Rng rng;  // initial values a replica overwrites
    return std::make_unique<Conv2d>(cin_, cout_, k_, stride_, pad_, rng, own_parameter_count() == 2);
}

std::string Conv2d::describe() const {
    std::string s = "Conv2d(" + std::to_string(cin_) + ", " + std::to_string(cout_) + ", kernel " +
                    std::to_string(k_) + ", stride " + std::to_string(stride_) + ", padding " + std::to_string(pad_) + ")";
    if (h_) s += " " + shape_text(input_shape()) + " -> " + shape_text(output_shape());
    return s;
}

// A chunk's patch matrix is ~128 KiB: it is written, then read by the gemm while
// it is still in L2.
size_t Conv2d::chunk_samples() const {
    const size_t per_sample = pixels() * patch();
    return std::max<size_t>(1, (size_t(32) << 10) / per_sample);
}

size_t Conv2d::parts_for(size_t batch) const {
    // Whole samples per part, each with its own patches and weight-gradient buffer,
    // summed in part order (the same results for a given thread count). The pool's
    // workers stay hot through a step, so a part pays from ~256K multiply-adds
    // (~5-10 µs): every layer of the tutorial CNN and LeNet splits at batch 64.
    const size_t per_sample = pixels() * patch() * cout_;
    return thread_pool().parts_for(batch, (size_t(1) << 18) / (per_sample ? per_sample : 1) + 1);
}

Conv2d::Scratch& Conv2d::scratch(size_t part, size_t n) {
    Scratch& s = scratch_[part];
    const size_t rows = n * pixels();
    grow_to(s.cols, rows * patch());
    grow_to(s.pixels_by_channel, rows * cout_);
    grow_to(s.padded, padded_size());
    grow_to(s.channel_sums, cout_);
    return s;
}

// Every part's scratch as the paths below take it, for any batch up to max_batch:
// whole parts (the direct kernels, and the patches of a training forward) or
// chunks of them (the patch-matrix path).
void Conv2d::reserve(size_t max_batch, bool byte_inputs) {
    Module::reserve(max_batch, byte_inputs);
    const auto& k = active_kernels();
    const size_t parts = parts_for(max_batch), D = patch(), P = pixels();
    const size_t part = largest_part(max_batch, [&](size_t n) { return parts_for(n); });
    const size_t chunk = std::min(part, chunk_samples());
    const bool dcols = !input_grad_by_phase(k);  // the input gradient through gemm + col2im
    if (scratch_.size() < parts) scratch_.resize(parts);
    for (size_t p = 0; p < parts; ++p) {
        Scratch& s = scratch_[p];
        if (p > 0) grow_to(s.dw, cout_ * D), grow_to(s.db, cout_);
        if (direct(k)) {
            if (dcols) grow_to(s.dcols, part * P * D), grow_to(s.padded, padded_size());
            continue;
        }
        scratch(p, chunk);
        grow_to(s.dwt, D * cout_);
        if (dcols) grow_to(s.dcols, chunk * P * D);
    }
    if (!direct(k)) grow_to(saved_cols_, max_batch * P * D);
    kernels::ScratchNeeds needs;
    needs.gemm = true;
    const kernels::ConvShape shape = conv_shape(part);
    if (k.conv_forward_cl) needs.conv = &shape;
    reserve_kernel_scratch(needs);
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
void patches(float* x, float* cols, float* padded, size_t n, size_t cin, size_t h, size_t w, size_t oh, size_t ow,
             size_t k_rt, size_t stride, size_t pad) {
    const size_t K = KT ? KT : k_rt, D = cin * K * K, hp = h + 2 * pad, wp = w + 2 * pad + 1;
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
// columns (ki, kj, ci).
template <bool Scatter>
void patches_cl(float* x, float* cols, float* padded, size_t n, size_t cin, size_t h, size_t w, size_t oh, size_t ow,
                size_t K, size_t stride, size_t pad) {
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

template <bool Scatter>
void patches_any(size_t k, float* x, float* cols, float* padded, size_t n, size_t cin, size_t h, size_t w, size_t oh,
                 size_t ow, size_t stride, size_t pad) {
    if (k == 3) patches<3, Scatter>(x, cols, padded, n, cin, h, w, oh, ow, k, stride, pad);
    else if (k == 5) patches<5, Scatter>(x, cols, padded, n, cin, h, w, oh, ow, k, stride, pad);
    else patches<0, Scatter>(x, cols, padded, n, cin, h, w, oh, ow, k, stride, pad);
}

}  // namespace

size_t Conv2d::padded_size() const { return cin_ * (h_ + 2 * pad_) * (w_ + 2 * pad_ + 1); }

// padded_size() covers the channels-last copy too: in·(H + 2 pad)·(W + 2 pad) is less.
void Conv2d::im2col(const float* x, size_t n, float* cols, float* padded) const {
    if (cl_patches())
        return patches_cl<false>(const_cast<float*>(x), cols, padded, n, cin_, h_, w_, oh_, ow_, k_, stride_, pad_);
    patches_any<false>(k_, const_cast<float*>(x), cols, padded, n, cin_, h_, w_, oh_, ow_, stride_, pad_);
}

void Conv2d::col2im(const float* cols, size_t n, float* dx, float* padded) const {
    if (cl_patches())
        return patches_cl<true>(dx, const_cast<float*>(cols), padded, n, cin_, h_, w_, oh_, ow_, k_, stride_, pad_);
    patches_any<true>(k_, dx, const_cast<float*>(cols), padded, n, cin_, h_, w_, oh_, ow_, stride_, pad_);
}

// Permuted at every forward and backward (cout·D values, small next to the
// gemm), so a weight changed in between is never stale.
const float* Conv2d::patch_weight() {
    const float* w = weight.value.data();
    if (!cl_patches()) return w;
    const size_t D = patch();
    for (size_t c = 0; c < cout_; ++c)
        for (size_t d = 0; d < D; ++d) weight_cl_[c * D + d] = w[c * D + torch_column_[d]];
    return weight_cl_.data();
}

// x: (B, in, H, W) -> y: (B, out, OH, OW) (either channels-last in a Sequential)
void Conv2d::forward(const float* x, size_t batch, float* y) {
    const auto& k = active_kernels();
    if (direct(k)) {
        // Whole samples per part, channels-last in and out: nothing saved for backward.
        saved_for_ = nullptr;
        const size_t parts = parts_for(batch);
        thread_pool().run(parts, [&](size_t part) {
            const size_t b0 = batch * part / parts, b1 = batch * (part + 1) / parts;
            k.conv_forward_cl(x + b0 * in_features(), weight.value.data(), bias.value.data(),
                              y + b0 * out_features(), fused_shape(b1 - b0, nullptr));
        });
        return;
    }
    const float* wt = patch_weight();
    const size_t parts = parts_for(batch), chunk = chunk_samples(), P = pixels(), D = patch();
    if (scratch_.size() < parts) scratch_.resize(parts);
    // Training keeps the whole batch's patches for backward (~2 MB for the tutorial
    // CNN's conv2 at batch 64): reading them back from cache is cheaper than
    // building them again.
    saved_for_ = is_training() ? x : nullptr;
    if (saved_for_) {
        saved_batch_ = batch;
        if (saved_cols_.size() < batch * P * D) saved_cols_.resize(batch * P * D);
    }
    thread_pool().run(parts, [&](size_t part) {
        const size_t end = batch * (part + 1) / parts;
        for (size_t b0 = batch * part / parts; b0 < end; b0 += chunk) {
            const size_t n = std::min(chunk, end - b0);
            Scratch& s = scratch(part, n);
            float* cols = saved_for_ ? saved_cols_.data() + b0 * P * D : s.cols.data();
            im2col(x + b0 * in_features(), n, cols, s.padded.data());
            // cols: (n·P, D) · weightᵀ (D, out) -> (n·P, out): channels-last already
            float* t = out_cl_ ? y + b0 * P * cout_ : s.pixels_by_channel.data();
            k.gemm(false, true, n * P, cout_, D, cols, D, wt, D, t, cout_, false);
            if (out_cl_) {
                const float* bv = bias.value.data();
                for (size_t r = 0; r < n * P; ++r)
                    for (size_t c = 0; c < cout_; ++c) t[r * cout_ + c] += bv[c];
            } else {
                // (n, P, out) -> y: (n, out, P), plus the bias
                for (size_t b = 0; b < n; ++b)
                    for (size_t c = 0; c < cout_; ++c) {
                        float* yc = y + ((b0 + b) * cout_ + c) * P;
                        const float bc = bias.value(c);
                        for (size_t p = 0; p < P; ++p) yc[p] = t[(b * P + p) * cout_ + c] + bc;
                    }
            }
            if (relu_out_) k.relu_forward(y + b0 * out_features(), y + b0 * out_features(), n * out_features());
        }
    });
}

// Part 0 of a backward adds into the gradients; the others into their own
// buffers, cleared here and summed in part order by sum_part_grads (the same
// results for a given thread count).
void Conv2d::part_grads(size_t part, float*& dw, float*& db) {
    dw = weight.grad.data();
    db = bias.grad.data();
    if (part == 0) return;
    Scratch& s = scratch_[part];
    s.dw.assign(cout_ * patch(), 0.f);
    s.db.assign(cout_, 0.f);
    dw = s.dw.data();
    db = s.db.data();
}

void Conv2d::sum_part_grads(size_t parts) {
    float* dw = weight.grad.data();
    float* db = bias.grad.data();
    for (size_t part = 1; part < parts; ++part) {
        for (size_t i = 0; i < cout_ * patch(); ++i) dw[i] += scratch_[part].dw[i];
        for (size_t c = 0; c < cout_; ++c) db[c] += scratch_[part].db[c];
    }
}

// x: (B, in, H, W), dy: (B, out, OH, OW) -> weight.grad, bias.grad, dx: (B, in, H, W)
void Conv2d::backward(const float* x, const float* dy, size_t batch, float* dx) {
    const auto& k = active_kernels();
    if (direct(k)) return backward_direct(k, x, dy, batch, dx);
    const float* wt = dx ? patch_weight() : nullptr;
    const size_t parts = parts_for(batch), chunk = chunk_samples(), P = pixels(), D = patch();
    if (scratch_.size() < parts) scratch_.resize(parts);
    const bool saved = saved_for_ == x && saved_batch_ == batch;
    // The weight gradient's gemm puts the longer of out and the patch length along
    // the vector lanes: (D, out) and transposed at the end when the patch is the
    // shorter (conv1 of the tutorial CNN: 9 values per patch, 16 channels), or when
    // out fills whole vectors on every set (4, 8 or 16 lanes).
    const bool by_pixel = D < cout_ || cout_ % 16 == 0;
    // Channels-last patches give the gradient in (ki, kj, ci) column order: it is
    // summed in dwt too and added into PyTorch's order at the end.
    const bool via_dwt = by_pixel || cl_patches();
    // A channels-last input's gradient computed directly where the kernel set can
    // (wt is then weight_cl_, (out, k, k, in), its layout), for strides from 2: each
    // input pixel gathers its few taps with no patch matrix and no col2im (tutorial
    // CNN, batch 64, AVX-512, least of 40: conv2 161 vs 195 µs, conv3 43 vs 51). With
    // stride 1 most of a small plane's pixels sit at a border, where the direct
    // kernel runs one pixel at a time: LeNet's conv2 took 1190 µs against 870-970,
    // so stride 1 keeps gemm + col2im (input_grad_by_phase, conv2d.hpp).
    const bool direct_dx = input_grad_by_phase(k);
    thread_pool().run(parts, [&](size_t part) {
        Scratch& s0 = scratch_[part];
        float *dw, *db;
        part_grads(part, dw, db);
        if (via_dwt) s0.dwt.assign(D * cout_, 0.f);
        const size_t end = batch * (part + 1) / parts;
        for (size_t b0 = batch * part / parts; b0 < end; b0 += chunk) {
            const size_t n = std::min(chunk, end - b0);
            Scratch& s = scratch(part, n);
            // dy: (n, out, P) -> g: (n, P, out); bias.grad += Σ dy. A channels-last
            // dy is g already; its sums are taken in the same order.
            const float* g = s.pixels_by_channel.data();
            if (out_cl_) {
                // Row by row, every channel's sum at once (vectorised over channels).
                g = dy + b0 * P * cout_;
                float* sum = s.channel_sums.data();
                for (size_t b = 0; b < n; ++b) {
                    std::fill(sum, sum + cout_, 0.f);
                    for (size_t p = 0; p < P; ++p) {
                        const float* gp = g + (b * P + p) * cout_;
                        for (size_t c = 0; c < cout_; ++c) sum[c] += gp[c];
                    }
                    for (size_t c = 0; c < cout_; ++c) db[c] += sum[c];
                }
            } else {
                float* t = s.pixels_by_channel.data();
                for (size_t b = 0; b < n; ++b)
                    for (size_t c = 0; c < cout_; ++c) {
                        const float* dyc = dy + ((b0 + b) * cout_ + c) * P;
                        float sum = 0.f;
                        for (size_t p = 0; p < P; ++p) {
                            t[(b * P + p) * cout_ + c] = dyc[p];
                            sum += dyc[p];
                        }
                        db[c] += sum;
                    }
            }
            const float* cols = s.cols.data();
            if (saved) cols = saved_cols_.data() + b0 * P * D;
            else im2col(x + b0 * in_features(), n, s.cols.data(), s.padded.data());
            if (by_pixel) {
                // colsᵀ (D, n·P) · g (n·P, out) -> dwt (D, out) +=
                k.gemm(true, false, D, cout_, n * P, cols, D, g, cout_, s0.dwt.data(), cout_, true);
            } else {
                // gᵀ (out, n·P) · cols (n·P, D) -> weight.grad (out, D) +=
                k.gemm(true, false, cout_, D, n * P, g, cout_, cols, D, via_dwt ? s0.dwt.data() : dw, D, true);
            }
            if (dx && direct_dx) {
                // channels-last dx straight from g (n, OH, OW, out): no patch matrix, no col2im
                k.conv_input_grad_cl(g, wt, dx + b0 * in_features(), fused_shape(n, x + b0 * in_features()));
            } else if (dx) {
                // g (n·P, out) · weight (out, D) -> dcols (n·P, D) -> dx
                grow_to(s.dcols, n * P * D);
                k.gemm(false, false, n * P, D, cout_, g, cout_, wt, D, s.dcols.data(), D, false);
                float* d = dx + b0 * in_features();
                col2im(s.dcols.data(), n, d, s.padded.data());
                if (relu_in_) k.relu_backward(x + b0 * in_features(), d, d, n * in_features());
            }
        }
        if (via_dwt) {
            const bool cl = cl_patches();
            for (size_t c = 0; c < cout_; ++c)
                for (size_t d = 0; d < D; ++d)
                    dw[c * D + (cl ? torch_column_[d] : d)] += by_pixel ? s0.dwt[d * cout_ + c] : s0.dwt[c * D + d];
        }
    });
    sum_part_grads(parts);
}

// The direct kernels, whole samples per part: the weight gradient from x and dy
// as they are, the input gradient by conv_input_grad_cl (each input phase a dense
// convolution of dy; for a channels-last input), else through gemm + col2im.
void Conv2d::backward_direct(const kernels::KernelSet& k, const float* x, const float* dy, size_t batch, float* dx) {
    const size_t parts = parts_for(batch), D = patch();
    if (scratch_.size() < parts) scratch_.resize(parts);
    const bool phase_dx = dx && input_grad_by_phase(k);
    const float* wt = dx ? patch_weight() : nullptr;  // (out, k, k, in) when in is channels-last
    thread_pool().run(parts, [&](size_t part) {
        Scratch& s = scratch_[part];
        float *dw, *db;
        part_grads(part, dw, db);
        const size_t b0 = batch * part / parts, n = batch * (part + 1) / parts - b0;
        const float* xs = x + b0 * in_features();
        const float* g = dy + b0 * out_features();
        k.conv_weight_grad_cl(xs, g, dw, db, conv_shape(n));
        if (!dx) return;
        float* d = dx + b0 * in_features();
        if (phase_dx) {
            k.conv_input_grad_cl(g, wt, d, fused_shape(n, xs));
        } else {
            // g (n·P, out) · weight (out, D) -> dcols (n·P, D) -> dx
            grow_to(s.dcols, n * pixels() * D);
            grow_to(s.padded, padded_size());
            k.gemm(false, false, n * pixels(), D, cout_, g, cout_, wt, D, s.dcols.data(), D, false);
            col2im(s.dcols.data(), n, d, s.padded.data());
            if (relu_in_) k.relu_backward(xs, d, d, n * in_features());
        }
    });
    sum_part_grads(parts);
}

}  // namespace sgdx
