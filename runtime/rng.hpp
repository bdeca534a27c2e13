#pragma once
// PCG32 (O'Neill): small, fast, and bit-identical on every platform and standard
// library, so a seed gives the same weights and data order natively, in wasm and
// on the device. std::uniform_*_distribution differs between libstdc++ and libc++.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/setup.hpp"

namespace sgdx {

class Rng {
public:
    explicit Rng(uint64_t seed = 0, uint64_t stream = 0x5eed) { reseed(seed, stream); }

    void reseed(uint64_t seed, uint64_t stream = 0x5eed) {
        state_ = 0;
        inc_ = (stream << 1u) | 1u;
        next_u32();
        state_ += seed;
        next_u32();
    }

    uint32_t next_u32() {
        uint64_t old = state_;
        state_ = old * 6364136223846793005ULL + inc_;
        uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
        uint32_t rot = static_cast<uint32_t>(old >> 59u);
        return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
    }

    // Uniform in [0, 1) with 24 random bits: exact in float.
    float uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

    // n values uniform in [-bound, bound), in order.
    void fill_uniform(float* p, size_t n, float bound) {
        for (size_t i = 0; i < n; ++i) p[i] = uniform(-bound, bound);
    }

    // Uniform integer in [0, n) without modulo bias (Lemire's method).
    uint32_t below(uint32_t n) {
        uint64_t m = uint64_t(next_u32()) * n;
        uint32_t low = static_cast<uint32_t>(m);
        if (low < n) {
            uint32_t threshold = (0u - n) % n;
            while (low < threshold) {
                m = uint64_t(next_u32()) * n;
                low = static_cast<uint32_t>(m);
            }
        }
        return static_cast<uint32_t>(m >> 32);
    }

    // The whole state, for checkpoints.
    uint64_t state() const { return state_; }
    uint64_t increment() const { return inc_; }
    void restore(uint64_t state, uint64_t inc) { state_ = state; inc_ = inc; }

private:
    uint64_t state_ = 0, inc_ = 1;
};

// PyTorch's default initialisation of a Linear or Conv2d, as sgdx draws it: every
// value of the weight, then of the bias (if it has one), uniform in +-init_bound
// (kaiming_uniform with a = sqrt(5) and the bias's rule give the same bound), from
// one Rng in layer order. The one definition for the runtime's layers and core/net
// (the C API, the firmware), so a seed gives them the same weights.
inline float init_bound(size_t fan_in) { return 1.0f / std::sqrt(float(fan_in)); }

// weight: `rows` rows of fan_in values, row r drawn into row_at(r) and then handed
// to drawn(r) (core/net quantises an int8-only model's rows as they come); bias:
// `rows` values, or null for bias=False (it draws nothing then).
SGDX_SETUP_BEGIN  // the device draws once, at model creation: compiled for size there
template <class RowAt, class Drawn>
void init_layer(Rng& rng, size_t rows, size_t fan_in, float* bias, RowAt&& row_at, Drawn&& drawn) {
    const float bound = init_bound(fan_in);
    for (size_t r = 0; r < rows; ++r) {
        rng.fill_uniform(row_at(r), fan_in, bound);
        drawn(r);
    }
    if (bias) rng.fill_uniform(bias, rows, bound);
}
SGDX_SETUP_END

// The same into a whole (rows, fan_in) weight.
inline void init_layer(Rng& rng, size_t rows, size_t fan_in, float* weight, float* bias) {
    init_layer(rng, rows, fan_in, bias, [&](size_t r) { return weight + r * fan_in; }, [](size_t) {});
}

}  // namespace sgdx
