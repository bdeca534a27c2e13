#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "helpers.hpp"
#include "runtime/error.hpp"
#include "runtime/linear.hpp"
#include "runtime/optim.hpp"

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
