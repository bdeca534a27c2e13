#pragma once
// The optimisers, with PyTorch's update rules: optim.SGD (momentum, dampening,
// weight decay, Nesterov), optim.Adam and optim.AdamW (bias correction, betas,
// eps, weight decay; no amsgrad). Each is an Optimizer, the interface the
// training loop (train.hpp) and checkpoints (checkpoint.hpp) use.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "module.hpp"
#include "thread_pool.hpp"

namespace sgdx {

// One kind of per-parameter state, for checkpoints: buffers[i] belongs to the
// optimiser's parameter i and has its shape. A checkpoint stores it as the tensors
// "optimizer.<name>.<parameter name>".
struct OptimizerStateTensors {
    std::string name;  // "momentum", "exp_avg", "exp_avg_sq"
    std::vector<xt::xarray<float>>* buffers;
};

class Optimizer {
public:
    explicit Optimizer(std::vector<Parameter*> params) : params_(std::move(params)) {}
    virtual ~Optimizer() = default;

    virtual const char* name() const = 0;  // "SGD", "Adam", "AdamW" (PyTorch's class names)
    void step();       // updates every parameter from its grad; allocates nothing
    void zero_grad();  // p.grad = 0
    // step() then zero_grad(), each slice's gradient cleared right after its update
    // (in cache, in the same pool job): a training step's pair in one pass.
    void step_and_zero_grad();
    virtual float lr() const = 0;
    virtual void set_lr(float lr) = 0;  // validates it; the optimiser is unchanged if it throws
    // The momentum term a schedule may cycle (OneCycleLR): SGD's momentum, Adam's
    // beta1. False, and nothing changes, if the optimiser has none (SGD without
    // momentum keeps no buffers to start using).
    virtual bool set_momentum(double) { return false; }
    // A state (a state_tensors() name) the optimiser does not keep now but can take on
    // at set-up: SGD without momentum takes "momentum" buffers, as set_momentum gives
    // it when a schedule cycles momentum, so a checkpoint of such a run resumes.
    virtual bool can_adopt_state(const std::string&) const { return false; }
    virtual void adopt_state(const std::string&) {}

    // The state a checkpoint must hold to continue bit for bit: per-parameter
    // tensors (none when the optimiser keeps none, e.g. SGD without momentum) and
    // counters (metadata key, value). set_counter throws sgdx::Error on a key it
    // does not know.
    virtual std::vector<OptimizerStateTensors> state_tensors() = 0;
    virtual std::vector<std::pair<std::string, uint64_t>> counters() const = 0;
    virtual void set_counter(const std::string& key, uint64_t value) = 0;

    const std::vector<Parameter*>& parameters() const { return params_; }

protected:
    std::vector<Parameter*> params_;

    // fn(i, lo, hi) over values [lo, hi) of parameter i, every value once, in one
    // job of the thread pool: a parameter of kSliceValues or more is cut into one
    // slice per thread (at multiples of 16 values: whole cache lines, and the SIMD
    // kernels' scalar tails only at the end, so the bits do not depend on the cut),
    // the rest go to part 0. Part p always takes the same slices, as the layers'
    // parts take the same output features (Linear's backward): with the pool's
    // threads keeping their parts, each core keeps its slice of the weights, their
    // gradients and the optimiser's state in its own cache instead of moving them
    // across every step (the MLP's 784x128 layer: 400 KB each).
    template <class Fn>
    void for_each_slice(Fn&& fn);
    static constexpr size_t kSliceValues = size_t(32) << 10;

    // A step in three parts, so that step() and step_and_zero_grad() share them:
    // what is computed once per step, the update of values [lo, hi) of parameter i
    // (on any thread, slices never overlap), and what follows the whole update.
    virtual void begin_step() {}
    virtual void update(size_t i, size_t lo, size_t hi) = 0;
    virtual void end_step() {}

private:
    void clear_grad(size_t i, size_t lo, size_t hi);  // values [lo, hi) of parameter i's gradient = 0
};

template <class Fn>
void Optimizer::for_each_slice(Fn&& fn) {
    size_t largest = 0;
    for (Parameter* p : params_) largest = std::max(largest, size_t(p->value.size()));
    const size_t parts = largest < kSliceValues ? 1 : thread_pool().parts_for(largest, kSliceValues / 2);
    thread_pool().run(parts, [&](size_t part) {
        for (size_t i = 0; i < params_.size(); ++i) {
            const size_t n = params_[i]->value.size();
            if (n < kSliceValues || parts == 1) {
                if (part == 0) fn(i, size_t(0), n);
                continue;
            }
            const size_t lines = (n + 15) / 16;
            const size_t lo = std::min(n, lines * part / parts * 16), hi = std::min(n, lines * (part + 1) / parts * 16);
            if (lo < hi) fn(i, lo, hi);
        }
    });
}

struct SgdOptions {
    float lr = 0.5f;  // the tutorial's
    float momentum = 0.f;
    float dampening = 0.f;
    float weight_decay = 0.f;
    bool nesterov = false;
};

// Throws sgdx::Error naming the option if a value is negative, NaN or out of range.
void validate(const SgdOptions& options);

class SGD : public Optimizer {
public:
    SGD(std::vector<Parameter*> params, SgdOptions options);

    const char* name() const override { return "SGD"; }

    const SgdOptions& options() const { return options_; }
    float lr() const override { return options_.lr; }
    void set_lr(float lr) override;
    // Gives a momentum-free SGD its buffers first (zeros, at set-up: a schedule
    // sets the momentum before the first step), as PyTorch's OneCycleLR gives an
    // SGD(momentum=0) its max_momentum.
    bool set_momentum(double momentum) override;
    bool can_adopt_state(const std::string& name) const override { return name == "momentum" && buffers_.empty(); }
    void adopt_state(const std::string& name) override;

    // Optimiser state, for checkpoints: one momentum buffer per parameter
    // (empty without momentum) and whether the buffers hold a value yet.
    std::vector<xt::xarray<float>>& momentum_buffers() { return buffers_; }
    bool& has_momentum() { return has_momentum_; }

    // "momentum" (with momentum only); the counter "has_momentum" (0 or 1).
    std::vector<OptimizerStateTensors> state_tensors() override;
    std::vector<std::pair<std::string, uint64_t>> counters() const override;
    void set_counter(const std::string& key, uint64_t value) override;

private:
    void update(size_t i, size_t lo, size_t hi) override;  // p -= lr * (update from p.grad)
    void end_step() override;
    SgdOptions options_;
    std::vector<xt::xarray<float>> buffers_;
    bool has_momentum_ = false;
};

// PyTorch's defaults: Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0);
// AdamW's weight_decay defaults to 1e-2 (see adamw_options()).
// betas and eps are doubles, as PyTorch's Python numbers are: 1 - beta1 and the
// bias corrections 1 - beta^t then come out as PyTorch's do.
struct AdamOptions {
    float lr = 1e-3f;
    double beta1 = 0.9, beta2 = 0.999;
    double eps = 1e-8;
    float weight_decay = 0.f;
};

// AdamOptions with AdamW's default weight decay, 1e-2.
AdamOptions adamw_options();

// Throws sgdx::Error naming the option ("Adam beta1 = 1: ...") if a value is out of range.
void validate(const AdamOptions& options, const char* optimiser = "Adam");

// optim.Adam (decoupled = false: weight_decay adds wd * p to the gradient) and
// optim.AdamW (decoupled = true: p is first multiplied by 1 - lr * wd). Per step t
// (from 1), for each value:
//   g = grad (+ wd * p for Adam);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// evaluated in float as PyTorch's CPU tensors do, the bias corrections in double.
// The state (exp_avg, exp_avg_sq) is allocated here: step() allocates nothing.
class Adam : public Optimizer {
public:
    explicit Adam(std::vector<Parameter*> params, AdamOptions options = {});

    const char* name() const override { return decoupled() ? "AdamW" : "Adam"; }

    const AdamOptions& options() const { return options_; }
    float lr() const override { return options_.lr; }
    void set_lr(float lr) override;
    bool set_momentum(double beta1) override;

    uint64_t steps() const { return steps_; }  // PyTorch's state["step"]
    std::vector<xt::xarray<float>>& exp_avg() { return exp_avg_; }
    std::vector<xt::xarray<float>>& exp_avg_sq() { return exp_avg_sq_; }

    // "exp_avg" and "exp_avg_sq"; the counter "optimizer.step".
    std::vector<OptimizerStateTensors> state_tensors() override;
    std::vector<std::pair<std::string, uint64_t>> counters() const override;
    void set_counter(const std::string& key, uint64_t value) override;

protected:
    Adam(std::vector<Parameter*> params, AdamOptions options, bool decoupled);
    bool decoupled() const { return decoupled_; }

private:
    AdamOptions options_;
    bool decoupled_ = false;
    uint64_t steps_ = 0;
    void begin_step() override;
    void update(size_t i, size_t lo, size_t hi) override;
    // This step's scalars, as PyTorch rounds them (begin_step).
    struct StepScalars {
        float step_size_neg, bc2_sqrt, beta1, beta2, one_minus_b1, one_minus_b2, eps, weight_decay, decay;
        bool couple, decouple;
    } k_{};
    std::vector<xt::xarray<float>> exp_avg_, exp_avg_sq_;
};

class AdamW : public Adam {
public:
    explicit AdamW(std::vector<Parameter*> params, AdamOptions options = adamw_options())
        : Adam(std::move(params), options, true) {}
};

// "sgd", "adam", "adamw": the names the CLI and the page choose an optimiser by.
const std::vector<std::string>& optimizer_names();
// The optimiser of that name over params: SGD with `sgd`, Adam or AdamW with
// `adam`. Throws sgdx::Error for another name or options out of range.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Parameter*> params,
                                          const SgdOptions& sgd, const AdamOptions& adam);

}  // namespace sgdx
