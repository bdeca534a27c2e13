#include "linear.hpp"

#include <cmath>

#include "backend.hpp"
#include "error.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Linear::Linear(size_t in, size_t out, Rng& rng, bool with_bias) : in_(in), out_(out) {
    weight.value = xt::xarray<float>::from_shape({out, in});
    bias.value = xt::zeros<float>({out});
    const float bound = 1.0f / std::sqrt(float(in));
    for (float& w : weight.value) w = rng.uniform(-bound, bound);
    if (with_bias)
        for (float& b : bias.value) b = rng.uniform(-bound, bound);
    weight.grad = xt::zeros<float>({out, in});
    bias.grad = xt::zeros<float>({out});
    register_parameter("weight", weight);
    if (with_bias) register_parameter("bias", bias);  // else a zero no optimiser sees, as bias=False
    build({in});
}

Shape Linear::configure(const Shape& input) {
    if (shape_size(input) != in_)
        throw Error("Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + "): input shape " +
                    shape_text(input) + " has " + std::to_string(shape_size(input)) + " values, not " +
                    std::to_string(in_));
    return {out_};
}

std::string Linear::describe() const {
    return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + ")";
}

size_t parts_for(size_t batch, size_t in, size_t out) {
    // A split backward adds a partial gradient per part (in·out values to clear and
    // sum, serially), and a worker costs a wake-up. Measured: the MLP's 784x128
    // layer at batch 64 (6.4M multiply-adds) and the logistic model at batch 1024
    // (8M) were 10-30% slower on 2 threads (again with hot workers, 2026-12-07: MLP
    // 2 threads 1.2-1.4x slower than 1 when split from 1M); from ~16M multiply-adds
    // (~300 µs of SIMD work) a second thread pays. At least 8 rows a part.
    if (batch * in * out < (size_t(1) << 24)) return 1;
    return thread_pool().parts_for(batch, 8);
}

// Rows are independent: each part of the pool takes a slice of the batch.
template <class T, class Forward>
void Linear::forward_split(const T* x, size_t batch, float* y, Forward kernel) {
    const size_t parts = parts_for(batch, in_, out_);
    const float* w = weight.value.data();
    const float* b = bias.value.data();
    thread_pool().run(parts, [&](size_t p) {
        size_t r0 = batch * p / parts, r1 = batch * (p + 1) / parts;
        kernel(x + r0 * in_, w, b, y + r0 * out_, r1 - r0);
    });
}

// Each part sums its rows' weight gradient into its own buffer (part 0 straight
// into weight.grad), then the buffers are added: no two threads write one value.
template <class T, class Backward>
void Linear::backward_split(const T* x, const float* dy, size_t batch, Backward kernel) {
    const size_t parts = parts_for(batch, in_, out_);
    if (parts == 1) {
        kernel(x, dy, weight.grad.data(), bias.grad.data(), batch);
        return;
    }
    if (partial_grad_.size() < parts) partial_grad_.resize(parts);
    for (auto& buf : partial_grad_) buf.resize(in_ * out_);
    thread_pool().run(parts, [&](size_t p) {
        size_t r0 = batch * p / parts, r1 = batch * (p + 1) / parts;
        if (p == 0) {
            kernel(x, dy, weight.grad.data(), bias.grad.data(), r1);
        } else {
            std::fill(partial_grad_[p].begin(), partial_grad_[p].end(), 0.f);
            kernel(x + r0 * in_, dy + r0 * out_, partial_grad_[p].data(), nullptr, r1 - r0);
        }
    });
    float* g = weight.grad.data();
    for (size_t p = 1; p < parts; ++p)
        for (size_t i = 0; i < in_ * out_; ++i) g[i] += partial_grad_[p][i];
    // Bias gradient of the other parts' rows (part 0 added its own above).
    float* gb = bias.grad.data();
    for (size_t r = batch / parts; r < batch; ++r)
        for (size_t c = 0; c < out_; ++c) gb[c] += dy[r * out_ + c];
}

// x: (B, in), weight: (out, in), bias: (out) -> y: (B, out)
void Linear::forward(const float* x, size_t batch, float* y) {
    const auto& k = active_kernels();
    forward_split(x, batch, y, [&](const float* xs, const float* w, const float* b, float* ys, size_t rows) {
        k.linear_forward(xs, w, b, ys, rows, in_, out_);
    });
}

// x: (B, in), dy: (B, out) -> weight.grad += dyᵀ·x, bias.grad += Σ dy, dx = dy · weight
void Linear::backward(const float* x, const float* dy, size_t batch, float* dx) {
    const auto& k = active_kernels();
    backward_split(x, dy, batch, [&](const float* xs, const float* g, float* dw, float* db, size_t rows) {
        k.linear_backward(xs, g, dw, db, rows, in_, out_);
    });
    if (!dx) return;
    // dy: (B, out), weight: (out, in) -> dx: (B, in), rows split over the pool
    const size_t parts = parts_for(batch, in_, out_);
    thread_pool().run(parts, [&](size_t p) {
        const size_t r0 = batch * p / parts, r1 = batch * (p + 1) / parts;
        k.gemm(false, false, r1 - r0, in_, out_, dy + r0 * out_, out_, weight.value.data(), in_, dx + r0 * in_, in_, false);
    });
}

void Linear::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    const auto& k = active_kernels();
    if (!k.linear_forward_u8) return Module::forward(x, scale, batch, y);
    forward_split(x, batch, y, [&](const uint8_t* xs, const float* w, const float* b, float* ys, size_t rows) {
        k.linear_forward_u8(xs, scale, w, b, ys, rows, in_, out_);
    });
}

void Linear::backward(const uint8_t* x, float scale, const float* dy, size_t batch) {
    const auto& k = active_kernels();
    if (!k.linear_backward_u8) return Module::backward(x, scale, dy, batch);
    backward_split(x, dy, batch, [&](const uint8_t* xs, const float* g, float* dw, float* db, size_t rows) {
        k.linear_backward_u8(xs, scale, g, dw, db, rows, in_, out_);
    });
}

}  // namespace sgdx
