#pragma once
// nn.BatchNorm1d and nn.BatchNorm2d, with PyTorch's semantics and state_dict names
// ("weight", "bias", "running_mean", "running_var", "num_batches_tracked").
//
// Per channel c, over the batch (and the pixels, for 2d):
//   training: y = (x - mean_B) / sqrt(var_B + eps) · weight + bias, with the batch's
//             mean and biased variance; then running_mean and running_var move
//             by `momentum` towards mean_B and the UNBIASED variance, and
//             num_batches_tracked += 1. momentum std::nullopt is PyTorch's
//             momentum=None: the cumulative average, 1 / num_batches_tracked.
//   eval:     the same with running_mean and running_var.
// Without track_running_stats there are no buffers and the batch's statistics are
// used in eval too; without affine there is no weight or bias. The sums are
// accumulated in double, as PyTorch's CPU kernels do.
#include <optional>
#include <vector>

#include "module.hpp"

namespace sgdx {

class BatchNorm : public Module {
public:
    Parameter weight;  // (C), ones; only with affine
    Parameter bias;    // (C), zeros; only with affine
    Buffer running_mean;         // (C), zeros; only with track_running_stats
    Buffer running_var;          // (C), ones
    Buffer num_batches_tracked;  // I64, shape []

    // x: (B, C, S...) -> y: (B, C, S...), S the pixels (2d) or the length (1d), if any
    void forward(const float* x, size_t batch, float* y) override;
    // The gradient of the forward just made: through the batch's statistics (the
    // standard batch-norm gradient) when it used them, else the affine map's.
    //   weight.grad += Σ dy·x̂, bias.grad += Σ dy, dx (if not null)
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;

    std::string describe() const override;
    // Batch statistics (training, or no running ones kept) mix the batch's samples.
    bool separable_by_sample() const override { return !is_training() && track_; }

    size_t num_features() const { return channels_; }
    double eps() const { return eps_; }
    double momentum() const { return momentum_; }  // not used when cumulative()
    bool cumulative() const { return cumulative_; }
    bool affine() const { return affine_; }
    bool track_running_stats() const { return track_; }

protected:
    BatchNorm(size_t num_features, double eps, std::optional<double> momentum, bool affine, bool track_running_stats);
    // The sample's shape after the channels: () or (L) for 1d, (H, W) for 2d.
    Shape configure_channels(const Shape& input, bool two_d);  // core::infer_norm

private:
    size_t channels_;
    double eps_, momentum_;  // doubles, as PyTorch's
    bool cumulative_, affine_, track_;
    size_t spatial_ = 1;  // values per channel per sample
    // Per channel, from the last forward: the statistics it used (the batch's or the
    // running ones), as mean and 1/sqrt(var + eps), and whether they were the batch's.
    std::vector<double> mean_, invstd_;
    bool batch_stats_ = true;
    // Per channel scratch for backward's sums.
    std::vector<double> sum_dy_, sum_dy_xhat_;
};

// nn.BatchNorm1d: a sample is (C) or (C, L).
class BatchNorm1d : public BatchNorm {
public:
    explicit BatchNorm1d(size_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                         bool affine = true,
                         bool track_running_stats = true);
    std::string type_name() const override { return "BatchNorm1d"; }

protected:
    Shape configure(const Shape& input) override { return configure_channels(input, false); }
};

// nn.BatchNorm2d: a sample is (C, H, W), PyTorch's NCHW layout.
class BatchNorm2d : public BatchNorm {
public:
    explicit BatchNorm2d(size_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                         bool affine = true,
                         bool track_running_stats = true);
    std::string type_name() const override { return "BatchNorm2d"; }

protected:
    Shape configure(const Shape& input) override { return configure_channels(input, true); }
};

}  // namespace sgdx
