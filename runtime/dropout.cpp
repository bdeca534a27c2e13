#include "dropout.hpp"

#include <cstdio>
#include <cstring>

#include "error.hpp"

namespace sgdx {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// SplitMix64's finaliser: every input bit moves every output bit.
inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace

Dropout::Dropout(double p, uint64_t seed) : p_(p), seed_(seed) {
    if (!(p >= 0 && p <= 1)) throw Error("Dropout: probability p must be between 0 and 1, got " + std::to_string(p));
    register_counter("seed", seed_);
    register_counter("calls", calls_);
}

std::string Dropout::describe() const {
    char buf[48];
    std::snprintf(buf, sizeof buf, "Dropout(p=%g)", p_);
    std::string s = buf;
    if (!input_shape().empty()) s += " " + shape_text(input_shape()) + " -> " + shape_text(output_shape());
    return s;
}

void Dropout::forward(const float* x, size_t batch, float* y) {
    const size_t n = batch * in_features();
    masked_ = is_training() && p_ > 0;
    if (!is_training()) {
        std::memcpy(y, x, n * sizeof(float));
        return;
    }
    const uint64_t call = calls_++;
    if (!masked_) {  // p = 0: the identity, but a training forward all the same
        std::memcpy(y, x, n * sizeof(float));
        return;
    }
    if (mask_.size() < n) mask_.resize(n);
    // Value i is kept when the top 53 bits of its hash, as a number in [0, 1), are >= p:
    // probability 1 - p (never for p = 1).
    const float scale = p_ < 1 ? float(1.0 / (1.0 - p_)) : 0.f;
    const uint64_t key = mix64(seed_ ^ mix64(call + kGolden));
    for (size_t i = 0; i < n; ++i) {
        const double u = double(mix64(key + (i + 1) * kGolden) >> 11) * 0x1p-53;
        mask_[i] = u >= p_ ? scale : 0.f;
        y[i] = x[i] * mask_[i];
    }
}

void Dropout::backward(const float*, const float* dy, size_t batch, float* dx) {
    if (!dx) return;
    const size_t n = batch * in_features();
    if (!masked_) {
        std::memcpy(dx, dy, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * mask_[i];
}

}  // namespace sgdx
