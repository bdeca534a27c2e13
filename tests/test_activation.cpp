#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "helpers.hpp"
#include "runtime/activation.hpp"
#include "runtime/backend.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// Hand-picked values first (signs, zero, infinities, the smallest floats), then
// random ones: 3 samples of 339 values, so vector loops have ragged tails.
std::vector<float> relu_inputs(Rng& rng, size_t n) {
    std::vector<float> x = {-2.f, -0.5f, 0.f, 0.5f, 3.f, kInf, -kInf, 1e-38f, -1e-38f, 1e-45f, -1e-45f,
                            std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()};
    auto more = random_floats(rng, n - x.size(), -2.f, 2.f);
    x.insert(x.end(), more.begin(), more.end());
    return x;
}

}  // namespace

TEST_CASE("ReLU forward is max(x, 0) on any shape, every kernel set") {
    for (auto* ks : kernels::available()) {
        CAPTURE(ks->name);
        set_kernels(*ks);
        Rng rng(1);
        ReLU relu;
        CHECK(relu.build({3, 113}) == Shape{3, 113});  // the shape passes through
        CHECK(relu.parameters().empty());
        CHECK(relu.type_name() == "ReLU");
        const size_t batch = 3;
        auto x = relu_inputs(rng, batch * relu.in_features());
        std::vector<float> y(x.size(), kNaN);
        relu.forward(x.data(), batch, y.data());
        for (size_t i = 0; i < x.size(); ++i) {
            CAPTURE(i);
            CAPTURE(x[i]);
            CHECK(y[i] == (x[i] > 0.f ? x[i] : 0.f));
        }
        // through the allocating call as well
        ReLU flat;
        flat.build({5});
        xt::xtensor<float, 2> xb = {{-1.f, 2.f, 0.f, -3.f, 4.5f}};
        auto yb = flat(xb);
        CHECK(yb == xt::xtensor<float, 2>{{0.f, 2.f, 0.f, 0.f, 4.5f}});
    }
    set_kernels(kernels::best());
}

TEST_CASE("ReLU keeps NaN in forward, wherever it sits, every kernel set") {
    for (auto* ks : kernels::available()) {
        CAPTURE(ks->name);
        set_kernels(*ks);
        ReLU relu;
        relu.build({37});
        Rng rng(2);
        auto x = random_floats(rng, 2 * 37);
        const size_t nan_at[] = {0, 1, 7, 8, 15, 16, 36, 37, 40, 73};
        for (size_t i : nan_at) x[i] = kNaN;
        x[2] = -kNaN;  // a NaN with the sign bit set
        std::vector<float> y(x.size(), 0.f);
        relu.forward(x.data(), 2, y.data());
        for (size_t i = 0; i < x.size(); ++i) {
            CAPTURE(i);
            if (std::isnan(x[i])) CHECK(std::isnan(y[i]));
            else CHECK(y[i] == (x[i] > 0.f ? x[i] : 0.f));
        }
    }
    set_kernels(kernels::best());
}

TEST_CASE("ReLU backward: dx = dy where x > 0, else 0, dx nullptr allowed, every kernel set") {
    for (auto* ks : kernels::available()) {
        CAPTURE(ks->name);
        set_kernels(*ks);
        Rng rng(3);
        ReLU relu;
        relu.build({3, 113});
        const size_t batch = 3;
        auto x = relu_inputs(rng, batch * relu.in_features());
        auto dy = random_floats(rng, x.size());
        dy[3] = kInf, dy[0] = kNaN;  // passed where x > 0 (x[3] = 0.5), dropped where not (x[0] = -2)
        std::vector<float> y(x.size());
        relu.forward(x.data(), batch, y.data());
        std::vector<float> dx(x.size(), kNaN);  // every value must be written
        relu.backward(x.data(), dy.data(), batch, dx.data());
        for (size_t i = 0; i < x.size(); ++i) {
            CAPTURE(i);
            CAPTURE(x[i]);
            CHECK(dx[i] == (x[i] > 0.f ? dy[i] : 0.f));  // 0 at x == 0, as PyTorch
        }
        CHECK(dx[3] == kInf);
        CHECK(dx[0] == 0.f);
        // no parameters, so nothing to do without dx; and no crash
        relu.backward(x.data(), dy.data(), batch, nullptr);
        std::vector<float> again(x.size(), 7.f);
        relu.backward(x.data(), dy.data(), batch, again.data());
        CHECK(again == dx);
    }
    set_kernels(kernels::best());
}
