#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "helpers.hpp"
#include "runtime/error.hpp"
#include "runtime/linear.hpp"
#include "runtime/optim.hpp"
#include "runtime/thread_pool.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {
void fill_grads(Module& m, Rng& rng) {
    for (Parameter* p : m.parameters())
        for (float& g : p->grad) g = rng.uniform(-1, 1);
}
}  // namespace

TEST_CASE("SGD.step equals the manual update and the parameters() loop") {
    // The tutorial: weights -= weights.grad * lr; then for p in parameters(): p -= p.grad * lr; then opt.step().
    Rng init(1), g1(2), g2(2), g3(2);
    Linear manual(6, 3, init);
    Rng init2(1), init3(1);
    Linear looped(6, 3, init2), stepped(6, 3, init3);
    SGD opt(stepped.parameters(), {0.5f});
    for (int step = 0; step < 3; ++step) {
        fill_grads(manual, g1);
        fill_grads(looped, g2);
        fill_grads(stepped, g3);
        manual.weight.value -= manual.weight.grad * 0.5f;
        manual.bias.value -= manual.bias.grad * 0.5f;
        for (Parameter* p : looped.parameters()) p->value -= p->grad * 0.5f;
        looped.zero_grad();
        opt.step();
        opt.zero_grad();
    }
    CHECK(xt::allclose(manual.weight.value, stepped.weight.value, 1e-6, 1e-7));
    CHECK(xt::allclose(looped.weight.value, stepped.weight.value, 1e-6, 1e-7));
    CHECK(xt::allclose(manual.bias.value, stepped.bias.value, 1e-6, 1e-7));
    for (float g : stepped.weight.grad) CHECK(g == 0.f);
}

TEST_CASE("SGD with momentum, dampening, weight decay and Nesterov follows PyTorch's rule") {
    struct Case { SgdOptions o; };
    SgdOptions cases[4];
    cases[0].lr = 0.1f, cases[0].momentum = 0.9f;
    cases[1].lr = 0.1f, cases[1].momentum = 0.9f, cases[1].dampening = 0.5f, cases[1].weight_decay = 0.01f;
    cases[2].lr = 0.05f, cases[2].momentum = 0.5f, cases[2].nesterov = true, cases[2].weight_decay = 0.1f;
    cases[3].lr = 0.2f, cases[3].weight_decay = 0.3f;
    for (const SgdOptions& o : cases) {
        Rng init(5), grads(6);
        Linear lin(4, 2, init);
        SGD opt(lin.parameters(), o);
        // the same rule, written out in double for one parameter tensor
        std::vector<double> p(lin.weight.value.begin(), lin.weight.value.end()), buf(p.size());
        for (int step = 0; step < 4; ++step) {
            fill_grads(lin, grads);
            for (size_t i = 0; i < p.size(); ++i) {
                double g = lin.weight.grad.data()[i] + o.weight_decay * p[i];
                if (o.momentum != 0) {
                    buf[i] = step == 0 ? g : o.momentum * buf[i] + (1 - o.dampening) * g;
                    g = o.nesterov ? g + o.momentum * buf[i] : buf[i];
                }
                p[i] -= o.lr * g;
            }
            opt.step();
        }
        for (size_t i = 0; i < p.size(); ++i) CHECK(lin.weight.value.data()[i] == doctest::Approx(p[i]).epsilon(1e-5));
    }
}

TEST_CASE("SGD rejects nonsense hyper-parameters, naming them") {
    Rng rng(1);
    Linear lin(2, 2, rng);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    SgdOptions o;
    o.lr = -0.1f;
    CHECK_THROWS_WITH_AS(SGD(lin.parameters(), o), doctest::Contains("SGD lr = -0.1"), Error);
    o.lr = nan;
    CHECK_THROWS_WITH_AS(SGD(lin.parameters(), o), doctest::Contains("SGD lr"), Error);
    o.lr = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(SGD(lin.parameters(), o), Error);
    o = {};
    o.momentum = 1.5f;
    CHECK_THROWS_WITH_AS(SGD(lin.parameters(), o), doctest::Contains("momentum"), Error);
    o = {};
    o.weight_decay = -1;
    CHECK_THROWS_WITH_AS(SGD(lin.parameters(), o), doctest::Contains("weight_decay"), Error);
    o = {};
    o.nesterov = true;
    CHECK_THROWS_WITH_AS(SGD(lin.parameters(), o), doctest::Contains("nesterov"), Error);
    SGD ok(lin.parameters(), {});
    CHECK_THROWS_AS(ok.set_lr(nan), Error);
    CHECK(ok.options().lr == 0.5f);  // unchanged by the rejected value
}

namespace {
// PyTorch's Adam / AdamW (torch/optim/adam.py, adamw.py: _single_tensor_adam[w]),
// written out in double for every value of every parameter.
struct AdamReference {
    double beta1, beta2, eps, weight_decay;
    bool decoupled;
    std::vector<std::vector<double>> p, m, v;
    int t = 0;

    AdamReference(Module& model, const AdamOptions& o, bool decoupled_)
        : beta1(o.beta1), beta2(o.beta2), eps(o.eps), weight_decay(o.weight_decay), decoupled(decoupled_) {
        for (Parameter* q : model.parameters()) {
            p.emplace_back(q->value.begin(), q->value.end());
            m.emplace_back(p.back().size(), 0.0);
            v.emplace_back(p.back().size(), 0.0);
        }
    }
    void step(Module& model, double lr) {
        ++t;
        const double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
        auto params = model.parameters();
        for (size_t k = 0; k < p.size(); ++k)
            for (size_t i = 0; i < p[k].size(); ++i) {
                double& w = p[k][i];
                double g = params[k]->grad.data()[i];
                if (decoupled) w *= 1 - lr * weight_decay;  // param.mul_(1 - lr * weight_decay)
                else g += weight_decay * w;                 // grad.add(param, alpha=weight_decay)
                m[k][i] = beta1 * m[k][i] + (1 - beta1) * g;
                v[k][i] = beta2 * v[k][i] + (1 - beta2) * g * g;
                w -= lr / bc1 * m[k][i] / (std::sqrt(v[k][i]) / std::sqrt(bc2) + eps);
            }
    }
    // max |p - ours| / (1e-3 + |p|) over every value
    double error(Module& model) const {
        double worst = 0;
        auto params = model.parameters();
        for (size_t k = 0; k < p.size(); ++k)
            for (size_t i = 0; i < p[k].size(); ++i) {
                const double e = std::fabs(double(params[k]->value.data()[i]) - p[k][i]) / (1e-3 + std::fabs(p[k][i]));
                if (!(e <= worst)) worst = e;
            }
        return worst;
    }
};
}  // namespace

TEST_CASE("Adam and AdamW follow PyTorch's update: bias correction, betas, eps, both weight decays, lr changes") {
    struct Case {
        const char* what;
        bool decoupled;
        AdamOptions o;
    };
    AdamOptions custom;
    custom.lr = 0.01f, custom.beta1 = 0.8, custom.beta2 = 0.99, custom.eps = 1e-6, custom.weight_decay = 0.05f;
    AdamOptions adam_wd;
    adam_wd.weight_decay = 0.1f;
    const Case cases[] = {{"Adam, PyTorch's defaults", false, AdamOptions{}},
                          {"Adam, weight decay added to the gradient", false, adam_wd},
                          {"Adam, other betas, eps and decay", false, custom},
                          {"AdamW, PyTorch's defaults (wd 1e-2)", true, adamw_options()},
                          {"AdamW, decoupled weight decay 0.1", true, adam_wd},
                          {"AdamW, other betas, eps and decay", true, custom}};
    for (const Case& c : cases) {
        CAPTURE(c.what);
        Rng init(5), grads(6);
        Linear lin(7, 3, init);  // 21 + 3 values: odd lengths
        std::unique_ptr<Adam> opt = c.decoupled ? std::make_unique<AdamW>(lin.parameters(), c.o)
                                                : std::make_unique<Adam>(lin.parameters(), c.o);
        CHECK(std::string(opt->name()) == (c.decoupled ? "AdamW" : "Adam"));
        AdamReference ref(lin, c.o, c.decoupled);
        double lr = c.o.lr;
        for (int step = 1; step <= 12; ++step) {
            CAPTURE(step);
            if (step == 5) lr = c.o.lr * 0.3;  // as StepLR does between epochs
            if (step == 9) lr = c.o.lr * 2;
            opt->set_lr(float(lr));
            lr = double(float(lr));  // what the optimiser holds
            fill_grads(lin, grads);
            ref.step(lin, lr);
            opt->step();
            opt->zero_grad();
            CHECK(opt->steps() == uint64_t(step));
            CHECK(ref.error(lin) < 2e-6);
        }
        for (float g : lin.weight.grad) CHECK(g == 0.f);
    }
}

TEST_CASE("Adam's first step moves every value by about lr against its gradient's sign, AdamW's defaults decay") {
    Rng init(3), grads(4);
    Linear lin(5, 4, init);
    const auto before = lin.weight.value;
    Adam adam(lin.parameters());
    CHECK(adam.options().lr == 1e-3f);
    CHECK(adam.options().beta1 == 0.9);
    CHECK(adam.options().beta2 == 0.999);
    CHECK(adam.options().eps == 1e-8);
    CHECK(adam.options().weight_decay == 0.f);
    CHECK(adamw_options().weight_decay == 1e-2f);
    fill_grads(lin, grads);
    adam.step();
    for (size_t i = 0; i < before.size(); ++i) {
        const float g = lin.weight.grad.data()[i];
        const double moved = double(lin.weight.value.data()[i]) - double(before.data()[i]);
        CHECK(moved == doctest::Approx(g > 0 ? -1e-3 : 1e-3).epsilon(1e-3).scale(0));
    }
    // AdamW with a zero gradient only decays: p *= 1 - lr * wd
    Rng init2(3);
    Linear still(5, 4, init2);
    AdamW adamw(still.parameters());
    adamw.step();
    for (size_t i = 0; i < before.size(); ++i)
        CHECK(still.weight.value.data()[i] == before.data()[i] * float(1 - double(1e-3f) * double(1e-2f)));
}

TEST_CASE("Adam's state goes through its checkpoint interface, and a restored copy steps identically") {
    Rng init(8), init_b(80), g1(9), g2(9);
    Linear a(6, 5, init), b(6, 5, init_b);
    AdamW oa(a.parameters(), adamw_options()), ob(b.parameters(), adamw_options());
    for (int i = 0; i < 3; ++i) {
        fill_grads(a, g1);
        oa.step();
    }
    // b takes a's parameters and optimiser state through the interface a checkpoint uses
    for (size_t k = 0; k < a.parameters().size(); ++k) b.parameters()[k]->value = a.parameters()[k]->value;
    auto sa = oa.state_tensors(), sb = ob.state_tensors();
    REQUIRE(sa.size() == 2);
    CHECK(sa[0].name == "exp_avg");
    CHECK(sa[1].name == "exp_avg_sq");
    for (size_t s = 0; s < sa.size(); ++s) *sb[s].buffers = *sa[s].buffers;
    for (const auto& [key, value] : oa.counters()) ob.set_counter(key, value);
    CHECK(ob.steps() == 3);
    CHECK_THROWS_AS(ob.set_counter("has_momentum", 1), Error);
    for (int i = 0; i < 3; ++i) fill_grads(b, g2);  // the same gradients a saw, skipped in b's stream
    for (int i = 0; i < 4; ++i) {
        fill_grads(a, g1);
        fill_grads(b, g2);
        oa.step();
        ob.step();
    }
    CHECK(a.weight.value == b.weight.value);
    CHECK(a.bias.value == b.bias.value);
}

TEST_CASE("Adam and AdamW reject nonsense hyper-parameters, naming them") {
    Rng rng(1);
    Linear lin(2, 2, rng);
    AdamOptions o;
    o.beta1 = 1.0;
    CHECK_THROWS_WITH_AS(Adam(lin.parameters(), o), doctest::Contains("Adam beta1 = 1: must be in [0, 1)"), Error);
    o = {};
    o.beta2 = -0.5;
    CHECK_THROWS_WITH_AS(AdamW(lin.parameters(), o), doctest::Contains("AdamW beta2 = -0.5"), Error);
    o = {};
    o.eps = -1;
    CHECK_THROWS_WITH_AS(Adam(lin.parameters(), o), doctest::Contains("Adam eps"), Error);
    o = {};
    o.weight_decay = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(Adam(lin.parameters(), o), doctest::Contains("Adam weight_decay"), Error);
    Adam ok(lin.parameters());
    CHECK_THROWS_AS(ok.set_lr(-1.f), Error);
    CHECK(ok.lr() == 1e-3f);
}

TEST_CASE("optimisers split large parameters over the threads: the same bits as on one thread") {
    // Linear(1000, 101): a weight of 101,000 values, cut into per-thread slices at
    // multiples of 16; its bias and the small layer go whole to part 0. SGD in every
    // variant and Adam/AdamW: three steps on 1 and on 2 threads agree bit for bit,
    // step() + zero_grad() and step_and_zero_grad() too, and every gradient is cleared.
    auto run = [](size_t threads, const std::string& which, bool fused) {
        set_num_threads(threads);
        Rng init(5), grads(6);
        Linear big(1000, 101, init), small(7, 3, init);
        std::vector<Parameter*> params = big.parameters();
        for (Parameter* p : small.parameters()) params.push_back(p);
        SgdOptions sgd{0.1f, 0.9f, 0.1f, 0.01f, false};
        if (which == "nesterov") sgd.dampening = 0.f, sgd.nesterov = true;
        AdamOptions adam;
        adam.weight_decay = 0.01f;
        std::unique_ptr<Optimizer> opt = which == "sgd" || which == "nesterov" ? make_optimizer("sgd", params, sgd, adam)
                                                                               : make_optimizer(which, params, sgd, adam);
        for (int step = 0; step < 3; ++step) {
            fill_grads(big, grads);
            fill_grads(small, grads);
            if (fused) {
                opt->step_and_zero_grad();
            } else {
                opt->step();
                opt->zero_grad();
            }
            for (Parameter* p : params)
                for (float g : p->grad) REQUIRE(g == 0.f);
        }
        std::vector<float> values;
        for (Parameter* p : params) values.insert(values.end(), p->value.begin(), p->value.end());
        set_num_threads(1);
        return values;
    };
    for (const char* which : {"sgd", "nesterov", "adam", "adamw"}) {
        CAPTURE(which);
        const auto one = run(1, which, false);
        for (const std::pair<size_t, bool> how : {std::pair<size_t, bool>{2, false}, {1, true}, {2, true}}) {
            const size_t threads = how.first;
            const bool fused = how.second;  // (a structured binding: clang 14 cannot CAPTURE it)
            CAPTURE(threads);
            CAPTURE(fused);
            const auto other = run(threads, which, fused);
            REQUIRE(one.size() == other.size());
            size_t differ = 0;
            for (size_t i = 0; i < one.size(); ++i) differ += std::memcmp(&one[i], &other[i], sizeof(float)) != 0;
            CHECK(differ == 0);
        }
    }
}
