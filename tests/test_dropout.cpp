#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "alloc_counter.hpp"
#include "helpers.hpp"
#include "runtime/dropout.hpp"
#include "runtime/error.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

// x: values away from 0 (so a dropped value is told from a kept one).
std::vector<float> nonzero(Rng& rng, size_t n) {
    std::vector<float> x = random_floats(rng, n, 0.5f, 2.f);
    for (size_t i = 0; i < n; i += 2) x[i] = -x[i];
    return x;
}

std::vector<bool> kept(const std::vector<float>& y) {
    std::vector<bool> k(y.size());
    for (size_t i = 0; i < y.size(); ++i) k[i] = y[i] != 0.f;
    return k;
}

}  // namespace

TEST_CASE("Dropout: the identity in eval mode, counting no forward") {
    Dropout d(0.5, 7);
    d.build({3, 4});
    CHECK(d.type_name() == "Dropout");
    CHECK(d.describe() == "Dropout(p=0.5) [3, 4] -> [3, 4]");
    CHECK(d.named_parameters().empty());
    CHECK(d.named_buffers().empty());  // nothing in the state_dict, as PyTorch's
    d.eval();
    Rng rng(1);
    std::vector<float> x = nonzero(rng, 5 * 12), y(x.size()), dx(x.size());
    x[3] = std::numeric_limits<float>::quiet_NaN();
    d.forward(x.data(), 5, y.data());
    CHECK(std::memcmp(x.data(), y.data(), x.size() * 4) == 0);
    d.backward(x.data(), y.data(), 5, dx.data());
    CHECK(std::memcmp(x.data(), dx.data(), x.size() * 4) == 0);
    CHECK(d.calls() == 0);
    CHECK_THROWS_WITH_AS(Dropout(1.5), doctest::Contains("between 0 and 1"), Error);
    CHECK_THROWS_AS(Dropout(-0.1), Error);
    CHECK_THROWS_AS(Dropout(std::nan("")), Error);
}

TEST_CASE("Dropout in training: about 1 - p kept, scaled by 1/(1 - p), the expectation unchanged") {
    const size_t n = 200000;
    for (double p : {0.1, 0.5, 0.8}) {
        CAPTURE(p);
        Dropout d(p, 11);
        d.build({1000});
        Rng rng(2);
        std::vector<float> x = nonzero(rng, n), y(n);
        d.forward(x.data(), n / 1000, y.data());
        CHECK(d.calls() == 1);
        const float scale = float(1.0 / (1.0 - p));
        size_t count = 0;
        double sum_x = 0, sum_y = 0;
        for (size_t i = 0; i < n; ++i) {
            if (y[i] != 0.f) {
                ++count;
                REQUIRE(y[i] == x[i] * scale);  // exactly PyTorch's x · (1/(1-p))
            }
            sum_x += std::fabs(x[i]);
            sum_y += std::fabs(y[i]);
        }
        // Binomial(n, 1-p): 6 standard deviations. The seed is fixed, so this cannot
        // flake; a wrong p (or a mask of poor bits) is far outside.
        const double sd = std::sqrt(n * p * (1 - p));
        CHECK(std::fabs(double(count) - n * (1 - p)) < 6 * sd);
        // E[|y|] = E[|x|]: within 6 sd of the kept fraction's error, relative.
        CHECK(std::fabs(sum_y / sum_x - 1) < 6 * sd / (n * (1 - p)) * 2);
        // The dropped ones are spread out, not a block: each half holds its share.
        size_t first_half = 0;
        for (size_t i = 0; i < n / 2; ++i) first_half += y[i] != 0.f;
        CHECK(std::fabs(double(first_half) - n / 2 * (1 - p)) < 6 * std::sqrt(n / 2 * p * (1 - p)));
    }
}

TEST_CASE("Dropout masks: the same seed and count give the same mask, another count or seed another one") {
    const size_t B = 16, n = 64;
    Rng rng(3);
    std::vector<float> x = nonzero(rng, B * n);
    auto masks = [&](uint64_t seed, int calls) {
        Dropout d(0.5, seed);
        d.build({n});
        std::vector<std::vector<bool>> out;
        std::vector<float> y(x.size());
        for (int i = 0; i < calls; ++i) {
            d.forward(x.data(), B, y.data());
            out.push_back(kept(y));
        }
        return out;
    };
    auto a = masks(5, 3), b = masks(5, 3), c = masks(6, 1);
    CHECK(a == b);
    CHECK(a[0] != a[1]);
    CHECK(a[1] != a[2]);
    CHECK(a[0] != c[0]);
    // An eval forward between two training ones changes nothing that follows.
    Dropout d(0.5, 5);
    d.build({n});
    std::vector<float> y(x.size());
    d.forward(x.data(), B, y.data());
    d.eval();
    d.forward(x.data(), B, y.data());
    d.train();
    d.forward(x.data(), B, y.data());
    CHECK(kept(y) == a[1]);
}

TEST_CASE("Dropout backward applies the forward's mask, and allocates nothing after the first batch of a size") {
    const size_t B = 8, n = 50;
    Dropout d(0.3, 9);
    d.build({n});
    Rng rng(4);
    std::vector<float> x = nonzero(rng, B * n), dy = nonzero(rng, B * n), y(B * n), dx(B * n);
    d.forward(x.data(), B, y.data());
    d.backward(x.data(), dy.data(), B, dx.data());
    const float scale = float(1.0 / 0.7);
    for (size_t i = 0; i < B * n; ++i) {
        CAPTURE(i);
        CHECK(dx[i] == (y[i] != 0.f ? dy[i] * scale : 0.f));
    }
    d.backward(x.data(), dy.data(), B, nullptr);  // no dx wanted: nothing to do
    const size_t before = g_allocations.load();
    for (int i = 0; i < 3; ++i) {
        d.forward(x.data(), B, y.data());
        d.backward(x.data(), dy.data(), B, dx.data());
    }
    CHECK(g_allocations.load() - before == 0);
}

TEST_CASE("Dropout with p = 0 is the identity and with p = 1 gives zeros, as PyTorch's") {
    Rng rng(5);
    std::vector<float> x = nonzero(rng, 40), y(40), dx(40);
    Dropout none(0.0, 1);
    none.build({10});
    none.forward(x.data(), 4, y.data());
    CHECK(y == x);
    none.backward(x.data(), x.data(), 4, dx.data());
    CHECK(dx == x);
    Dropout all(1.0, 1);
    all.build({10});
    all.forward(x.data(), 4, y.data());
    for (float v : y) CHECK(v == 0.f);
    all.backward(x.data(), x.data(), 4, dx.data());
    for (float v : dx) CHECK(v == 0.f);
    CHECK(all.calls() == 1);
}

TEST_CASE("Dropout's seed and count are its counters, and a module restored from them draws the same masks") {
    Dropout a(0.5, 21);
    a.build({30});
    auto counters = a.named_counters();
    REQUIRE(counters.size() == 2);
    CHECK(counters[0].first == "seed");
    CHECK(counters[1].first == "calls");
    Rng rng(6);
    std::vector<float> x = nonzero(rng, 4 * 30), y(x.size()), z(x.size());
    a.forward(x.data(), 4, y.data());
    a.forward(x.data(), 4, y.data());
    CHECK(*counters[1].second == 2);
    Dropout b(0.5, 99);  // another seed: the counters say which
    b.build({30});
    auto cb = b.named_counters();
    for (size_t i = 0; i < 2; ++i) *cb[i].second = *counters[i].second;
    a.forward(x.data(), 4, y.data());
    b.forward(x.data(), 4, z.data());
    CHECK(y == z);
}
