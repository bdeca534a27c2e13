#include "linear.hpp"

#include <algorithm>
#include <cmath>

#include "backend.hpp"
#include "core/linear.hpp"
#include "error.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Linear::Linear(size_t in, size_t out, Rng& rng, bool with_bias) : in_(in), out_(out) {
    weight.value = xt::xarray<float>::from_shape({out, in});
    bias.value = xt::zeros<float>({out});
    init_layer(rng, out, in, weight.value.data(), with_bias ? bias.value.data() : nullptr);  // PyTorch's rule, runtime/rng.hpp
    weight.grad = xt::zeros<float>({out, in});
    bias.grad = xt::zeros<float>({out});
    register_parameter("weight", weight);
    if (with_bias) register_parameter("bias", bias);  // else a zero no optimiser sees, as bias=False
    build({in});
}

Shape Linear::configure(const Shape& input) {
    return inferred_shape(describe(), input, [&](auto& in, auto& out, auto& why) {
        return core::infer_linear(in_, out_, in, out, why);
    });
}

std::unique_ptr<Module> Linear::clone() const {
    Rng rng;  // initial values a replica overwrites
    return std::make_unique<Linear>(in_, out_, rng, own_parameter_count() == 2);
}

std::string Linear::describe() const {
    return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + ")";
}

size_t parts_for(size_t batch, size_t in, size_t out) {
    // Rows are independent and a worker stays hot through a step: a part pays from
    // ~1M multiply-adds (~20 µs of SIMD work). At least 8 rows a part. A layer of
    // fewer than 16 outputs (the logistic model's 10) streams its input for a few
    // multiply-adds a byte and is not split: there a second thread never paid
    // (batch 1024: 11.4 ms an epoch on 1 thread, 12.0 on 2).
    if (batch * in * out < (size_t(2) << 20) || out < 16) return 1;
    return thread_pool().parts_for(batch, 8);
}

namespace {
// The backward splits the output features: each part sums its own rows of the
// weight gradient over the whole batch, so nothing is added up afterwards and every
// value is summed as on one thread. (Split over the batch, it needed a partial
// gradient per part, in·out values cleared and summed serially: the MLP's 784x128
// layer at batch 64 was 1.2-1.4x slower on 2 threads.) At least 16 features a part.
size_t feature_parts(size_t batch, size_t in, size_t out) {
    if (batch * in * out < (size_t(2) << 20)) return 1;
    return thread_pool().parts_for(out, 16);
}
}  // namespace

// Split as the backward is, by output features: part p reads only its rows of the
// weight, the rows its backward writes the gradient of and the optimiser updates
// (Optimizer::for_each_slice), all on the same core step after step. (Split by
// rows of the batch each core read the whole weight, half of it just written by
// the other core: the MLP's 784x128 forward took 44-49 µs on 2 threads against
// 36 alone.) Each part's (B, features) output goes through its own buffer into y.
template <class T, class Forward>
void Linear::forward_split(const T* x, size_t batch, float* y, Forward kernel) {
    const float* w = weight.value.data();
    const float* b = bias.value.data();
    const size_t parts = feature_parts(batch, in_, out_);
    if (parts == 1) return kernel(x, w, b, y, batch, out_);
    if (partial_y_.size() < parts) partial_y_.resize(parts);
    thread_pool().run(parts, [&](size_t p) {
        const size_t c0 = out_ * p / parts, c1 = out_ * (p + 1) / parts, n = c1 - c0;
        auto& t = partial_y_[p];
        if (t.size() < batch * n) t.resize(batch * n);
        kernel(x, w + c0 * in_, b + c0, t.data(), batch, n);
        for (size_t r = 0; r < batch; ++r)
            for (size_t c = 0; c < n; ++c) y[r * out_ + c0 + c] = t[r * n + c];
    });
}

// Part p takes output features [c0, c1): dy's columns copied into its own (B, c1 - c0)
// buffer, the weight gradient's rows c0.. and the bias's entries c0.. its alone.
template <class T, class Backward>
void Linear::backward_split(const T* x, const float* dy, size_t batch, Backward kernel) {
    const size_t parts = feature_parts(batch, in_, out_);
    if (parts == 1) {
        kernel(x, dy, weight.grad.data(), bias.grad.data(), batch, out_);
        return;
    }
    if (partial_dy_.size() < parts) partial_dy_.resize(parts);
    thread_pool().run(parts, [&](size_t p) {
        const size_t c0 = out_ * p / parts, c1 = out_ * (p + 1) / parts, n = c1 - c0;
        auto& g = partial_dy_[p];
        if (g.size() < batch * n) g.resize(batch * n);
        for (size_t r = 0; r < batch; ++r)
            for (size_t c = 0; c < n; ++c) g[r * n + c] = dy[r * out_ + c0 + c];
        kernel(x, g.data(), weight.grad.data() + c0 * in_, bias.grad.data() + c0, batch, n);
    });
}

// The parts' buffers of forward_split and backward_split (the split is the same
// for every batch that splits at all), the dx gemm's and the uint8 kernels' scratch.
void Linear::reserve(size_t max_batch, bool byte_inputs) {
    const auto& k = active_kernels();
    if (byte_inputs && !k.linear_forward_u8) reserve_converted(max_batch);
    const size_t parts = feature_parts(max_batch, in_, out_);
    if (parts > 1) {
        partial_y_.resize(std::max(partial_y_.size(), parts));
        partial_dy_.resize(std::max(partial_dy_.size(), parts));
        for (size_t p = 0; p < parts; ++p) {
            const size_t n = out_ * (p + 1) / parts - out_ * p / parts;
            grow_to(partial_y_[p], max_batch * n);
            grow_to(partial_dy_[p], max_batch * n);
        }
    }
    kernels::ScratchNeeds needs;
    needs.gemm = true;
    if (byte_inputs) needs.linear_in = in_, needs.linear_out = out_;
    reserve_kernel_scratch(needs);
}

// x: (B, in), weight: (out, in), bias: (out) -> y: (B, out)
void Linear::forward(const float* x, size_t batch, float* y) {
    const auto& k = active_kernels();
    forward_split(x, batch, y, [&](const float* xs, const float* w, const float* b, float* ys, size_t rows, size_t out) {
        core::linear_forward(k, xs, w, b, ys, rows, in_, out);
    });
}

// x: (B, in), dy: (B, out) -> weight.grad += dyᵀ·x, bias.grad += Σ dy, dx = dy · weight
void Linear::backward(const float* x, const float* dy, size_t batch, float* dx) {
    const auto& k = active_kernels();
    backward_split(x, dy, batch, [&](const float* xs, const float* g, float* dw, float* db, size_t rows, size_t out) {
        core::linear_weight_grad(k, xs, g, dw, db, rows, in_, out);
    });
    if (!dx) return;
    // dy: (B, out), weight: (out, in) -> dx: (B, in), rows split over the pool
    const size_t parts = parts_for(batch, in_, out_);
    thread_pool().run(parts, [&](size_t p) {
        const size_t r0 = batch * p / parts, r1 = batch * (p + 1) / parts;
        core::linear_input_grad(k, dy + r0 * out_, weight.value.data(), dx + r0 * in_, r1 - r0, in_, out_);
    });
}

void Linear::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    const auto& k = active_kernels();
    if (!k.linear_forward_u8) return Module::forward(x, scale, batch, y);
    forward_split(x, batch, y, [&](const uint8_t* xs, const float* w, const float* b, float* ys, size_t rows, size_t out) {
        core::linear_forward_u8(k, xs, scale, w, b, ys, rows, in_, out);
    });
}

void Linear::backward(const uint8_t* x, float scale, const float* dy, size_t batch) {
    const auto& k = active_kernels();
    if (!k.linear_backward_u8) return Module::backward(x, scale, dy, batch);
    backward_split(x, dy, batch, [&](const uint8_t* xs, const float* g, float* dw, float* db, size_t rows, size_t out) {
        core::linear_weight_grad_u8(k, xs, scale, g, dw, db, rows, in_, out);
    });
}

}  // namespace sgdx
