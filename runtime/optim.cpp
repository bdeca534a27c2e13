#include "optim.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "backend.hpp"
#include "error.hpp"

namespace sgdx {

namespace {
void require(bool ok, const char* optimiser, const char* name, double value, const char* rule) {
    if (!ok)
    {
        char shown[32];  // as written (%g), not std::to_string's "-1.000000"
        std::snprintf(shown, sizeof shown, "%g", value);
        throw Error(std::string(optimiser) + " " + name + " = " + shown + ": " + rule);
    }
}

void require(bool ok, const char* name, float value, const char* rule) { require(ok, "SGD", name, value, rule); }

uint64_t checked_flag(const std::string& key, uint64_t value) {
    if (value > 1) throw Error("optimizer counter '" + key + "' must be 0 or 1, not " + std::to_string(value));
    return value;
}
}  // namespace

void Optimizer::step() {
    begin_step();
    for_each_slice([&](size_t i, size_t lo, size_t hi) { update(i, lo, hi); });
    end_step();
}

void Optimizer::step_and_zero_grad() {
    begin_step();
    for_each_slice([&](size_t i, size_t lo, size_t hi) {
        update(i, lo, hi);
        clear_grad(i, lo, hi);
    });
    end_step();
}

void Optimizer::zero_grad() {
    for_each_slice([&](size_t i, size_t lo, size_t hi) { clear_grad(i, lo, hi); });
}

void Optimizer::clear_grad(size_t i, size_t lo, size_t hi) {
    float* g = params_[i]->grad.data();
    std::fill(g + lo, g + hi, 0.f);
}

// ---- SGD -------------------------------------------------------------------------

void validate(const SgdOptions& o) {
    require(std::isfinite(o.lr) && o.lr >= 0.f, "lr", o.lr, "must be a finite number >= 0");
    require(std::isfinite(o.momentum) && o.momentum >= 0.f && o.momentum < 1.f, "momentum",
            o.momentum, "must be in [0, 1)");
    require(std::isfinite(o.dampening) && o.dampening >= 0.f && o.dampening <= 1.f, "dampening",
            o.dampening, "must be in [0, 1]");
    require(std::isfinite(o.weight_decay) && o.weight_decay >= 0.f, "weight_decay",
            o.weight_decay, "must be a finite number >= 0");
    if (o.nesterov && (o.momentum <= 0.f || o.dampening != 0.f))
        throw Error("SGD nesterov needs momentum > 0 and dampening = 0");
}

SGD::SGD(std::vector<Parameter*> params, SgdOptions options)
    : Optimizer(std::move(params)), options_(options) {
    validate(options_);
    if (options_.momentum != 0.f)
        for (Parameter* p : params_) buffers_.push_back(xt::zeros_like(p->value));
}

void SGD::set_lr(float lr) {
    SgdOptions o = options_;
    o.lr = lr;
    validate(o);
    options_ = o;
}

bool SGD::set_momentum(double momentum) {
    SgdOptions o = options_;
    o.momentum = float(momentum);
    validate(o);
    if (buffers_.empty()) adopt_state("momentum");
    options_ = o;
    return true;
}

void SGD::adopt_state(const std::string& name) {
    if (!can_adopt_state(name)) return;
    for (Parameter* p : params_) buffers_.push_back(xt::zeros_like(p->value));
}

void SGD::update(size_t i, size_t lo, size_t hi) {
    Parameter& p = *params_[i];
    float* buf = buffers_.empty() ? nullptr : buffers_[i].data() + lo;
    active_kernels().sgd_update(p.value.data() + lo, p.grad.data() + lo, buf, hi - lo, options_.lr, options_.momentum,
                                options_.dampening, options_.weight_decay, options_.nesterov, !has_momentum_);
}

void SGD::end_step() {
    if (!buffers_.empty()) has_momentum_ = true;
}

std::vector<OptimizerStateTensors> SGD::state_tensors() {
    if (buffers_.empty()) return {};
    return {{"momentum", &buffers_}};
}

// "has_momentum" is the key checkpoints have always used for it.
std::vector<std::pair<std::string, uint64_t>> SGD::counters() const { return {{"has_momentum", has_momentum_ ? 1 : 0}}; }

void SGD::set_counter(const std::string& key, uint64_t value) {
    if (key != "has_momentum") throw Error("SGD keeps no counter '" + key + "'");
    has_momentum_ = checked_flag(key, value) == 1;
}

// ---- Adam and AdamW --------------------------------------------------------------

AdamOptions adamw_options() {
    AdamOptions o;
    o.weight_decay = 1e-2f;
    return o;
}

void validate(const AdamOptions& o, const char* optimiser) {
    require(std::isfinite(o.lr) && o.lr >= 0.f, optimiser, "lr", o.lr, "must be a finite number >= 0");
    require(std::isfinite(o.beta1) && o.beta1 >= 0.f && o.beta1 < 1.f, optimiser, "beta1", o.beta1, "must be in [0, 1)");
    require(std::isfinite(o.beta2) && o.beta2 >= 0.f && o.beta2 < 1.f, optimiser, "beta2", o.beta2, "must be in [0, 1)");
    require(std::isfinite(o.eps) && o.eps >= 0.f, optimiser, "eps", o.eps, "must be a finite number >= 0");
    require(std::isfinite(o.weight_decay) && o.weight_decay >= 0.f, optimiser, "weight_decay", o.weight_decay,
            "must be a finite number >= 0");
}

Adam::Adam(std::vector<Parameter*> params, AdamOptions options) : Adam(std::move(params), options, false) {}

Adam::Adam(std::vector<Parameter*> params, AdamOptions options, bool decoupled)
    : Optimizer(std::move(params)), options_(options), decoupled_(decoupled) {
    validate(options_, name());
    for (Parameter* p : params_) {
        exp_avg_.push_back(xt::zeros_like(p->value));
        exp_avg_sq_.push_back(xt::zeros_like(p->value));
    }
}

void Adam::set_lr(float lr) {
    AdamOptions o = options_;
    o.lr = lr;
    validate(o, name());
    options_ = o;
}

bool Adam::set_momentum(double beta1) {
    AdamOptions o = options_;
    o.beta1 = beta1;
    validate(o, name());
    options_ = o;
    return true;
}

// PyTorch's _single_tensor_adam / _single_tensor_adamw on CPU float tensors, one
// operation at a time: each tensor operation rounds to float, its Python scalars
// (the bias corrections, the step size, 1 - lr * wd) are doubles cast to float
// where they meet a tensor.
void Adam::begin_step() {
    ++steps_;
    const double lr = options_.lr, b1 = options_.beta1, b2 = options_.beta2, wd = options_.weight_decay;
    const double bias_correction1 = 1 - std::pow(b1, double(steps_));
    const double bias_correction2 = 1 - std::pow(b2, double(steps_));
    k_.step_size_neg = float(-(lr / bias_correction1));  // addcdiv_'s value
    k_.bc2_sqrt = float(std::sqrt(bias_correction2));
    k_.beta1 = float(b1), k_.beta2 = float(b2);
    k_.one_minus_b1 = float(1 - b1), k_.one_minus_b2 = float(1 - b2);  // add_'s alpha, addcmul_'s value
    k_.eps = float(options_.eps), k_.weight_decay = options_.weight_decay;
    k_.decay = float(1 - lr * wd);  // AdamW: param.mul_(1 - lr * weight_decay)
    k_.couple = !decoupled_ && k_.weight_decay != 0.f, k_.decouple = decoupled_ && k_.weight_decay != 0.f;
}

void Adam::update(size_t i, size_t lo, size_t hi) {
    Parameter& p = *params_[i];
    float* w = p.value.data();
    const float* grad = p.grad.data();
    float* m = exp_avg_[i].data();
    float* v = exp_avg_sq_[i].data();
    const StepScalars k = k_;
    for (size_t j = lo; j < hi; ++j) {
        if (k.decouple) w[j] = w[j] * k.decay;
        float g = grad[j];
        if (k.couple) g = g + k.weight_decay * w[j];  // grad.add(param, alpha=weight_decay)
        m[j] = m[j] * k.beta1;                        // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        m[j] = m[j] + k.one_minus_b1 * g;
        v[j] = v[j] * k.beta2;  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        v[j] = v[j] + k.one_minus_b2 * g * g;
        const float denom = std::sqrt(v[j]) / k.bc2_sqrt + k.eps;  // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        w[j] = w[j] + k.step_size_neg * m[j] / denom;              // param.addcdiv_(exp_avg, denom, value=-step_size)
    }
}

std::vector<OptimizerStateTensors> Adam::state_tensors() { return {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}}; }

std::vector<std::pair<std::string, uint64_t>> Adam::counters() const { return {{"optimizer.step", steps_}}; }

void Adam::set_counter(const std::string& key, uint64_t value) {
    if (key != "optimizer.step") throw Error(std::string(name()) + " keeps no counter '" + key + "'");
    steps_ = value;
}

// ---- by name ------------------------------------------------------------------------

const std::vector<std::string>& optimizer_names() {
    static const std::vector<std::string> names{"sgd", "adam", "adamw"};
    return names;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Parameter*> params,
                                          const SgdOptions& sgd, const AdamOptions& adam) {
    if (name == "sgd") return std::make_unique<SGD>(std::move(params), sgd);
    if (name == "adam") return std::make_unique<Adam>(std::move(params), adam);
    if (name == "adamw") return std::make_unique<AdamW>(std::move(params), adam);
    throw Error("optimizer must be sgd, adam or adamw, not '" + name.substr(0, 20) + "'");
}

}  // namespace sgdx
