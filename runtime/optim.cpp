#include "optim.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "backend.hpp"
#include "error.hpp"

namespace sgdx {

namespace {
void require(bool ok, const char* name, float value, const char* rule) {
    if (!ok)
    {
        char shown[32];  // as written (%g), not std::to_string's "-1.000000"
        std::snprintf(shown, sizeof shown, "%g", double(value));
        throw Error(std::string("SGD ") + name + " = " + shown + ": " + rule);
    }
}
}  // namespace

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
    : params_(std::move(params)), options_(options) {
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

void SGD::step() {
    const auto& k = active_kernels();
    for (size_t i = 0; i < params_.size(); ++i) {
        Parameter& p = *params_[i];
        float* buf = buffers_.empty() ? nullptr : buffers_[i].data();
        k.sgd_update(p.value.data(), p.grad.data(), buf, p.value.size(), options_.lr,
                     options_.momentum, options_.dampening, options_.weight_decay,
                     options_.nesterov, !has_momentum_);
    }
    if (!buffers_.empty()) has_momentum_ = true;
}

void SGD::zero_grad() {
    for (Parameter* p : params_) std::fill(p->grad.begin(), p->grad.end(), 0.f);
}

}  // namespace sgdx
