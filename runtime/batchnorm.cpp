#include "batchnorm.hpp"

#include <cmath>
#include <cstdio>

#include "error.hpp"

namespace sgdx {

BatchNorm::BatchNorm(size_t num_features, double eps, std::optional<double> momentum, bool affine,
                     bool track_running_stats)
    : channels_(num_features), eps_(eps), momentum_(momentum.value_or(0.0)), cumulative_(!momentum), affine_(affine),
      track_(track_running_stats),
      mean_(num_features), invstd_(num_features), sum_dy_(num_features), sum_dy_xhat_(num_features) {
    if (num_features == 0) throw Error("BatchNorm: num_features must be at least 1");
    if (!(eps > 0)) throw Error("BatchNorm: eps must be positive");
    if (affine) {
        weight.value = xt::ones<float>({num_features});
        bias.value = xt::zeros<float>({num_features});
        weight.grad = xt::zeros<float>({num_features});
        bias.grad = xt::zeros<float>({num_features});
        register_parameter("weight", weight);
        register_parameter("bias", bias);
    }
    if (track_running_stats) {
        running_mean.value = xt::zeros<float>({num_features});
        running_var.value = xt::ones<float>({num_features});
        num_batches_tracked.dtype = DType::I64;
        register_buffer("running_mean", running_mean);
        register_buffer("running_var", running_var);
        register_buffer("num_batches_tracked", num_batches_tracked);
    }
}

BatchNorm1d::BatchNorm1d(size_t num_features, double eps, std::optional<double> momentum, bool affine,
                         bool track_running_stats)
    : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {
    build({num_features});
}

BatchNorm2d::BatchNorm2d(size_t num_features, double eps, std::optional<double> momentum, bool affine,
                         bool track_running_stats)
    : BatchNorm(num_features, eps, momentum, affine, track_running_stats) {}

Shape BatchNorm::configure_channels(const Shape& input, bool two_d) {
    const Shape out = inferred_shape(type_name() + "(" + std::to_string(channels_) + ")", input,
                                     [&](auto& in, auto& o, auto& why) { return core::infer_norm(channels_, two_d, in, o, why); });
    spatial_ = shape_size(input) / channels_;
    return out;
}

std::string BatchNorm::describe() const {
    std::string s = type_name() + "(" + std::to_string(channels_);
    char buf[64];
    if (eps_ != 1e-5) std::snprintf(buf, sizeof buf, ", eps %g", eps_), s += buf;
    if (cumulative_) s += ", cumulative average";
    else if (momentum_ != 0.1) std::snprintf(buf, sizeof buf, ", momentum %g", momentum_), s += buf;
    if (!affine_) s += ", no affine";
    if (!track_) s += ", no running stats";
    s += ")";
    if (!input_shape().empty()) s += " " + shape_text(input_shape()) + " -> " + shape_text(output_shape());
    return s;
}

// Values of channel c in sample b: x[(b·C + c)·S + s], s < S.
void BatchNorm::forward(const float* x, size_t batch, float* y) {
    const size_t C = channels_, S = spatial_, n = batch * S;
    batch_stats_ = is_training() || !track_;
    if (batch_stats_) {
        if (n < 2)
            throw Error(type_name() + ": expected more than 1 value per channel when training, got " +
                        std::to_string(n) + " (a batch of " + std::to_string(batch) + ")");
        // Two passes, in double: the mean, then the sum of squared deviations.
        std::fill(mean_.begin(), mean_.end(), 0.0);
        std::fill(invstd_.begin(), invstd_.end(), 0.0);
        for (size_t b = 0; b < batch; ++b)
            for (size_t c = 0; c < C; ++c) {
                const float* xc = x + (b * C + c) * S;
                double sum = 0;
                for (size_t s = 0; s < S; ++s) sum += xc[s];
                mean_[c] += sum;
            }
        for (double& m : mean_) m /= double(n);
        for (size_t b = 0; b < batch; ++b)
            for (size_t c = 0; c < C; ++c) {
                const float* xc = x + (b * C + c) * S;
                const double m = mean_[c];
                double sum = 0;
                for (size_t s = 0; s < S; ++s) sum += (xc[s] - m) * (xc[s] - m);
                invstd_[c] += sum;  // the sum of squares, for now
            }
        const bool update = is_training() && track_;
        if (update) ++num_batches_tracked.count;  // first: momentum=None averages over it
        const double f = cumulative_ && update ? 1.0 / double(num_batches_tracked.count) : momentum_;
        for (size_t c = 0; c < C; ++c) {
            const double squares = invstd_[c];
            invstd_[c] = 1.0 / std::sqrt(squares / double(n) + eps_);
            if (update) {  // as PyTorch: in double, stored as float
                float& rm = running_mean.value(c);
                float& rv = running_var.value(c);
                rm = float(f * mean_[c] + (1 - f) * double(rm));
                rv = float(f * (squares / double(n - 1)) + (1 - f) * double(rv));
            }
        }
    } else {
        for (size_t c = 0; c < C; ++c) {
            mean_[c] = running_mean.value(c);
            invstd_[c] = 1.0 / std::sqrt(double(running_var.value(c)) + eps_);
        }
    }
    // y = x·alpha + beta per channel: alpha = invstd·weight, beta = bias - mean·alpha.
    for (size_t b = 0; b < batch; ++b)
        for (size_t c = 0; c < C; ++c) {
            const double alpha = invstd_[c] * (affine_ ? double(weight.value(c)) : 1.0);
            const double beta = (affine_ ? double(bias.value(c)) : 0.0) - mean_[c] * alpha;
            const float* xc = x + (b * C + c) * S;
            float* yc = y + (b * C + c) * S;
            for (size_t s = 0; s < S; ++s) yc[s] = float(xc[s] * alpha + beta);
        }
}

// With x̂ = (x - mean)·invstd and g = weight·invstd per channel:
//   batch statistics: dx = g · (dy - Σdy/n - x̂·Σ(dy·x̂)/n)
//   running ones:     dx = g · dy
void BatchNorm::backward(const float* x, const float* dy, size_t batch, float* dx) {
    const size_t C = channels_, S = spatial_, n = batch * S;
    std::fill(sum_dy_.begin(), sum_dy_.end(), 0.0);
    std::fill(sum_dy_xhat_.begin(), sum_dy_xhat_.end(), 0.0);
    for (size_t b = 0; b < batch; ++b)
        for (size_t c = 0; c < C; ++c) {
            const float* xc = x + (b * C + c) * S;
            const float* gc = dy + (b * C + c) * S;
            const double m = mean_[c];
            double sdy = 0, sdyx = 0;
            for (size_t s = 0; s < S; ++s) {
                sdy += gc[s];
                sdyx += gc[s] * (xc[s] - m);
            }
            sum_dy_[c] += sdy;
            sum_dy_xhat_[c] += sdyx * invstd_[c];
        }
    if (affine_)
        for (size_t c = 0; c < C; ++c) {
            weight.grad(c) += float(sum_dy_xhat_[c]);
            bias.grad(c) += float(sum_dy_[c]);
        }
    if (!dx) return;
    for (size_t b = 0; b < batch; ++b)
        for (size_t c = 0; c < C; ++c) {
            const float* xc = x + (b * C + c) * S;
            const float* gc = dy + (b * C + c) * S;
            float* dc = dx + (b * C + c) * S;
            const double g = invstd_[c] * (affine_ ? double(weight.value(c)) : 1.0);
            if (!batch_stats_) {
                for (size_t s = 0; s < S; ++s) dc[s] = float(g * gc[s]);
                continue;
            }
            // dx = g·dy - g·Σdy/n - (x - mean)·g·invstd·Σ(dy·x̂)/n
            const double k = g * invstd_[c] * sum_dy_xhat_[c] / double(n);
            const double shift = -g * sum_dy_[c] / double(n) + mean_[c] * k;
            for (size_t s = 0; s < S; ++s) dc[s] = float(g * gc[s] - k * xc[s] + shift);
        }
}

}  // namespace sgdx
