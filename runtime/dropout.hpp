#pragma once
// nn.Dropout: in training, each value is zeroed with probability p and the others
// are scaled by 1/(1 - p), so the expectation is unchanged; in eval, the identity.
// p = 0 is the identity and p = 1 gives zeros (x·0), as in PyTorch.
//
// The masks are not drawn from a generator that a run would have to carry: the
// mask of the k-th training forward (k = 0, 1, ...) is a hash of (seed, k, the
// value's index in the batch), so the same seed and count give the same mask on
// every platform. The seed and the count are the module's counters ("seed",
// "calls"): checkpoints save them, so a resumed run drops what the uninterrupted
// one would have. (PyTorch draws from its global generator: the masks differ from
// PyTorch's, the distribution is the same.)
#include <cstdint>
#include <vector>

#include "module.hpp"

namespace sgdx {

class Dropout : public Module {
public:
    // p in [0, 1]; seed: the model's seed.
    explicit Dropout(double p = 0.5, uint64_t seed = 0);

    // x: (B, n) -> y: (B, n) = x · mask, mask 0 or 1/(1-p) (training), or y = x (eval)
    void forward(const float* x, size_t batch, float* y) override;
    // dy: (B, n) -> dx: (B, n) = dy · the last forward's mask (no parameters)
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;

    void reserve(size_t max_batch, bool byte_inputs = false) override {
        Module::reserve(max_batch, byte_inputs);
        grow_to(mask_, max_batch * in_features());
    }
    std::string type_name() const override { return "Dropout"; }
    std::string describe() const override;
    // In training each forward draws one mask over the whole batch.
    bool separable_by_sample() const override { return !is_training(); }

    double p() const { return p_; }
    uint64_t seed() const { return seed_; }
    uint64_t calls() const { return calls_; }  // training forwards so far

protected:
    Shape configure(const Shape& input) override { return input; }

private:
    double p_;
    uint64_t seed_, calls_ = 0;
    std::vector<float> mask_;  // the last training forward's, grown on the first batch of a size
    bool masked_ = false;      // the last forward applied mask_
};

}  // namespace sgdx
