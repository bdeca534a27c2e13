#include <doctest/doctest.h>

#include "helpers.hpp"
#include "runtime/error.hpp"
#include "runtime/backend.hpp"
#include "runtime/linear.hpp"
#include "runtime/loss.hpp"
#include "runtime/thread_pool.hpp"

using namespace sgdx;
using namespace sgdx::test;

TEST_CASE("Linear has PyTorch's names, shapes and default initialisation") {
    Rng rng(7);
    Linear lin(784, 10, rng);
    auto named = lin.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "weight");
    CHECK(named[1].first == "bias");
    CHECK(lin.weight.value.shape() == std::vector<size_t>{10, 784});
    CHECK(lin.bias.value.shape() == std::vector<size_t>{10});
    const float bound = 1.f / 28.f;
    float lo = 1, hi = -1;
    double mean = 0;
    for (float w : lin.weight.value) lo = std::min(lo, w), hi = std::max(hi, w), mean += w;
    mean /= double(lin.weight.value.size());
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    CHECK(hi - lo > 1.9f * bound);  // spread over the whole range, not a constant
    CHECK(std::fabs(mean) < 0.05 * bound);
    for (float b : lin.bias.value) CHECK(std::fabs(b) <= bound);
    // same seed, same weights
    Rng rng2(7);
    Linear again(784, 10, rng2);
    CHECK(again.weight.value == lin.weight.value);
}

TEST_CASE("Linear forward is x · weightᵀ + bias") {
    Rng rng(8);
    Linear lin(5, 3, rng);
    xt::xtensor<float, 2> x = {{1, 2, 3, 4, 5}, {0, -1, 0.5f, 0, 2}};
    auto y = lin(x);
    for (size_t i = 0; i < 2; ++i)
        for (size_t c = 0; c < 3; ++c) {
            float want = lin.bias.value(c);
            for (size_t k = 0; k < 5; ++k) want += x(i, k) * lin.weight.value(c, k);
            CHECK(y(i, c) == doctest::Approx(want).epsilon(1e-6));
        }
    xt::xtensor<float, 2> wrong = xt::zeros<float>({size_t(2), size_t(4)});
    CHECK_THROWS_WITH_AS(lin(wrong), doctest::Contains("4 features per row, the model expects 5"), sgdx::Error);
}

// Central differences in double-checked float: loss(w + h) - loss(w - h) / 2h.
TEST_CASE("gradients of Linear + cross_entropy match finite differences") {
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        set_kernels(*k);
        Rng rng(9);
        const size_t B = 5, D = 7, C = 4;
        Linear lin(D, C, rng);
        xt::xtensor<float, 2> x = xt::xtensor<float, 2>::from_shape({B, D});
        for (float& v : x) v = rng.uniform(-1, 1);
        xt::xtensor<int32_t, 1> t = {0, 3, 1, 1, 2};

        auto loss_at = [&] { return double(cross_entropy(lin(x), t)); };
        xt::xtensor<float, 2> dlogits;
        lin.zero_grad();
        cross_entropy(lin(x), t, dlogits);
        lin.backward(x.data(), dlogits.data(), B);

        const float h = 1e-2f;
        for (Parameter* p : lin.parameters())
            for (size_t i = 0; i < p->value.size(); ++i) {
                float saved = p->value.data()[i];
                p->value.data()[i] = saved + h;
                double up = loss_at();
                p->value.data()[i] = saved - h;
                double down = loss_at();
                p->value.data()[i] = saved;
                double numeric = (up - down) / (2.0 * h);
                CHECK(p->grad.data()[i] == doctest::Approx(numeric).epsilon(2e-3).scale(1.0));
            }
    }
    set_kernels(kernels::best());
}

TEST_CASE("split over threads, forward and backward equal the single-thread result") {
    Rng rng(10);
    const size_t B = 2500, D = 784, C = 40;  // big enough to be split, 2 parts of 20 output features
    Linear lin(D, C, rng);
    auto x = random_floats(rng, B * D, 0, 1);
    auto dy = random_floats(rng, B * C);
    std::vector<float> y1(B * C), y2(B * C);
    set_num_threads(1);
    lin.forward(x.data(), B, y1.data());
    lin.zero_grad();
    lin.backward(x.data(), dy.data(), B);
    xt::xarray<float> gw1 = lin.weight.grad, gb1 = lin.bias.grad;
    set_num_threads(3);
    REQUIRE(parts_for(B, D, C) > 1);
    lin.forward(x.data(), B, y2.data());
    lin.zero_grad();
    lin.backward(x.data(), dy.data(), B);
    set_num_threads(1);
    CHECK(y1 == y2);  // split by output features, each a dot product of its own: bit-identical
    // the backward splits the output features: each gradient value summed as on one thread
    CHECK(lin.weight.grad == gw1);
    CHECK(lin.bias.grad == gb1);
}

TEST_CASE("uint8 inputs: fused kernels, and the conversion fallback for sets without them") {
    Rng rng(12);
    const size_t B = 9, D = 37, C = 10;
    auto x = random_bytes(rng, B * D);
    auto dy = random_floats(rng, B * C);
    std::vector<float> xf(B * D);
    for (size_t i = 0; i < B * D; ++i) xf[i] = float(x[i]) / 255.f;

    kernels::KernelSet unfused = kernels::best();  // a set without the optional entries
    unfused.linear_forward_u8 = nullptr;
    unfused.linear_backward_u8 = nullptr;
    for (const kernels::KernelSet* k : {&kernels::best(), static_cast<const kernels::KernelSet*>(&unfused)}) {
        set_kernels(*k);
        Rng init(3);
        Linear lin(D, C, init);
        std::vector<float> y_u8(B * C), y_f(B * C);
        lin.forward(x.data(), 1.f / 255.f, B, y_u8.data());
        lin.forward(xf.data(), B, y_f.data());
        CHECK(max_rel_error(y_u8.data(), y_f.data(), B * C) < 1e-5);
        lin.backward(x.data(), 1.f / 255.f, dy.data(), B);
        xt::xarray<float> g_u8 = lin.weight.grad;
        lin.zero_grad();
        lin.backward(xf.data(), dy.data(), B);
        CHECK(max_rel_error(g_u8.data(), lin.weight.grad.data(), g_u8.size()) < 1e-5);
    }
    set_kernels(kernels::best());
}
