#pragma once
// F.cross_entropy: log-softmax and negative log-likelihood in one pass, stable
// by subtracting each row's max, mean over the batch.
#include <cstdint>
#include <xtensor/xtensor.hpp>

namespace sgdx {

// logits: (B, C), targets: (B) in [0, C) -> mean over rows of -log softmax(logits)[target]
float cross_entropy(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets);

// The same, and dlogits: (B, C) = d(mean loss)/d(logits) = (softmax - onehot) / B.
float cross_entropy(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets,
                    xt::xtensor<float, 2>& dlogits);

// The index of z's largest value, the first of equals (as torch.argmax).
size_t argmax(const float* z, size_t n);

// Fraction of rows whose argmax is the target.
float accuracy(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets);

// Throws sgdx::Error naming `what` if a target is outside [0, classes).
void check_targets(const int32_t* targets, size_t n, size_t classes, const char* what);

}  // namespace sgdx
