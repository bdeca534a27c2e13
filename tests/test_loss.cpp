#include <doctest/doctest.h>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "helpers.hpp"
#include "runtime/error.hpp"
#include "runtime/loss.hpp"

using namespace sgdx;

// The tutorial's hand-written version, before refactoring:
//   log_softmax(x) = x - x.exp().sum(-1).log().unsqueeze(-1);  nll = -input[range, target].mean()
static float tutorial_loss(const xt::xtensor<float, 2>& z, const xt::xtensor<int32_t, 1>& t) {
    xt::xtensor<float, 1> log_sum = xt::log(xt::eval(xt::sum(xt::exp(z), {1})));  // materialised: see TOOLCHAIN.md
    double total = 0;
    for (size_t i = 0; i < z.shape()[0]; ++i) total += double(z(i, size_t(t(i))) - log_sum(i));
    return float(-total / double(z.shape()[0]));
}

TEST_CASE("cross_entropy equals the tutorial's log_softmax + nll") {
    Rng rng(11);
    for (size_t B : {1, 3, 64}) {
        xt::xtensor<float, 2> z = xt::xtensor<float, 2>::from_shape({B, size_t(10)});
        for (float& v : z) v = rng.uniform(-3, 3);
        xt::xtensor<int32_t, 1> t = xt::xtensor<int32_t, 1>::from_shape({B});
        for (auto& v : t) v = int32_t(rng.below(10));
        CHECK(cross_entropy(z, t) == doctest::Approx(tutorial_loss(z, t)).epsilon(1e-5));
        xt::xtensor<float, 2> g;
        CHECK(cross_entropy(z, t, g) == doctest::Approx(tutorial_loss(z, t)).epsilon(1e-5));
        // gradient rows sum to 0 (softmax sums to 1, minus the one-hot)
        for (size_t i = 0; i < B; ++i) CHECK(std::fabs(double(xt::sum(xt::row(g, i))())) < 1e-6);
    }
}

TEST_CASE("cross_entropy is stable where the naive formula overflows") {
    xt::xtensor<float, 2> z = {{1000.f, 0.f, -1000.f}, {-500.f, -500.f, 500.f}};
    xt::xtensor<int32_t, 1> t = {0, 1};
    float loss = cross_entropy(z, t);
    CHECK(std::isfinite(loss));
    CHECK(loss == doctest::Approx(500.f));  // row 0 ~0, row 1 ~1000
    CHECK(!std::isfinite(tutorial_loss(z, t)));  // what the max subtraction is for
}

TEST_CASE("cross_entropy rejects bad targets and shapes") {
    xt::xtensor<float, 2> z = xt::zeros<float>({size_t(2), size_t(3)});
    xt::xtensor<int32_t, 1> bad = {0, 3};
    CHECK_THROWS_WITH_AS(cross_entropy(z, bad), doctest::Contains("target 3 at index 1 is outside [0, 3)"), Error);
    xt::xtensor<int32_t, 1> neg = {-1, 0};
    CHECK_THROWS_AS(cross_entropy(z, neg), Error);
    xt::xtensor<int32_t, 1> short_t = {0};
    CHECK_THROWS_WITH_AS(cross_entropy(z, short_t), doctest::Contains("2 rows of logits but 1 targets"), Error);
}

TEST_CASE("argmax: the first of equal largest values, as torch.argmax") {
    const float z[] = {0.5f, 2.f, -1.f, 2.f, 1.f};
    CHECK(argmax(z, 5) == 1);
    CHECK(argmax(z, 1) == 0);
    CHECK(argmax(z + 2, 3) == 1);
}

TEST_CASE("accuracy counts argmax hits") {
    xt::xtensor<float, 2> z = {{0.1f, 0.9f}, {0.8f, 0.2f}, {0.3f, 0.7f}, {0.6f, 0.4f}};
    xt::xtensor<int32_t, 1> t = {1, 0, 0, 0};
    CHECK(accuracy(z, t) == doctest::Approx(0.75));
}
