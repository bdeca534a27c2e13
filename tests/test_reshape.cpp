#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "helpers.hpp"
#include "module_helpers.hpp"
#include "runtime/activation.hpp"
#include "runtime/backend.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/error.hpp"
#include "runtime/linear.hpp"
#include "runtime/reshape.hpp"
#include "runtime/sequential.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {
const float kNaN = std::numeric_limits<float>::quiet_NaN();
}

TEST_CASE("View({1, 28, 28}) of 784 values: the tutorial's preprocess, values unchanged") {
    View view({1, 28, 28});
    CHECK(view.build({784}) == Shape{1, 28, 28});
    CHECK(view.input_shape() == Shape{784});
    CHECK(view.output_shape() == Shape{1, 28, 28});
    CHECK(view.in_features() == 784);
    CHECK(view.out_features() == 784);
    CHECK(view.parameters().empty());
    CHECK(view.type_name() == "View");
    Rng rng(1);
    auto x = random_floats(rng, 3 * 784);
    std::vector<float> y(x.size(), kNaN);
    view.forward(x.data(), 3, y.data());
    CHECK(y == x);
    // from any shape of the same size
    View again({1, 28, 28});
    CHECK(again.build({28, 28}) == Shape{1, 28, 28});
    View other({4, 7, 28});
    CHECK(other.build({1, 28, 28}) == Shape{4, 7, 28});
}

TEST_CASE("View with a 0 (free) dimension takes what is left") {
    View a({0, 7});
    CHECK(a.build({784}) == Shape{112, 7});
    View b({2, 0, 7});
    CHECK(b.build({3, 4, 7}) == Shape{2, 6, 7});
    View c({0});
    CHECK(c.build({16, 4, 4}) == Shape{256});
    View d({1, 0});
    CHECK(d.build({5}) == Shape{1, 5});
    View e({5, 0});
    CHECK(e.build({5}) == Shape{5, 1});
}

TEST_CASE("Flatten makes one dimension of a sample, like x.view(x.size(0), -1)") {
    Flatten flat;
    CHECK(flat.type_name() == "Flatten");
    CHECK(flat.build({16, 4, 4}) == Shape{256});
    CHECK(flat.build({10, 1, 1}) == Shape{10});
    CHECK(flat.build({7}) == Shape{7});
    Rng rng(2);
    auto x = random_floats(rng, 2 * 7);
    std::vector<float> y(x.size(), kNaN);
    flat.forward(x.data(), 2, y.data());
    CHECK(y == x);
}

TEST_CASE("View rejects sizes that do not match, naming the layer and the shapes") {
    View v({1, 28, 28});
    CHECK_THROWS_WITH_AS(v.build({783}), doctest::Contains("View"), sgdx::Error);
    CHECK_THROWS_WITH_AS(v.build({783}), doctest::Contains("[1, 28, 28]"), sgdx::Error);
    CHECK_THROWS_WITH_AS(v.build({785}), doctest::Contains("View"), sgdx::Error);
    CHECK_THROWS_WITH_AS(v.build({2, 784}), doctest::Contains("View"), sgdx::Error);
    View free5({0, 5});
    CHECK_THROWS_WITH_AS(free5.build({784}), doctest::Contains("View"), sgdx::Error);  // 784 % 5 != 0
    View too_big({0, 1000});
    CHECK_THROWS_WITH_AS(too_big.build({784}), doctest::Contains("View"), sgdx::Error);  // 784 < 1000
    View two_free({0, 0});
    CHECK_THROWS_WITH_AS(two_free.build({784}), doctest::Contains("View"), sgdx::Error);
    View zero_and_free({0, 3, 0});
    CHECK_THROWS_AS(zero_and_free.build({9}), sgdx::Error);
    CHECK_THROWS_WITH_AS(v.build({}), doctest::Contains("View"), sgdx::Error);
    CHECK_THROWS_WITH_AS(v.build({0}), doctest::Contains("View"), sgdx::Error);
    Flatten flat;
    CHECK_THROWS_WITH_AS(flat.build({}), doctest::Contains("Flatten"), sgdx::Error);
    CHECK_THROWS_WITH_AS(flat.build({3, 0, 2}), doctest::Contains("Flatten"), sgdx::Error);
}

TEST_CASE("View and Flatten backward copy dy into dx, dx nullptr allowed") {
    Rng rng(3);
    View view({2, 0, 3});
    view.build({4, 9});
    Flatten flat;
    flat.build({3, 4, 5});
    for (Module* m : {static_cast<Module*>(&view), static_cast<Module*>(&flat)}) {
        CAPTURE(m->type_name());
        auto x = random_floats(rng, 5 * m->in_features());
        auto dy = random_floats(rng, 5 * m->out_features());
        std::vector<float> dx(x.size(), kNaN);
        m->backward(x.data(), dy.data(), 5, dx.data());
        CHECK(dx == dy);
        m->backward(x.data(), dy.data(), 5, nullptr);
    }
}

TEST_CASE("View's uint8 forward equals scale * bytes exactly, every kernel set") {
    for (auto* ks : kernels::available()) {
        CAPTURE(ks->name);
        set_kernels(*ks);
        Rng rng(4);
        View view({1, 0});
        view.build({37});  // 5 x 37 = 185 bytes: ragged vector tails
        const size_t batch = 5;
        auto bytes = random_bytes(rng, batch * 37);
        bytes[0] = 0, bytes[1] = 255, bytes[2] = 1;
        for (float scale : {1.f / 255.f, 1.f, 0.3f}) {
            CAPTURE(scale);
            std::vector<float> y(bytes.size(), kNaN);
            view.forward(bytes.data(), scale, batch, y.data());
            for (size_t i = 0; i < bytes.size(); ++i) {
                CAPTURE(i);
                CHECK(y[i] == float(bytes[i]) * scale);
            }
        }
        // pixels have no gradient: the uint8 backward does nothing, and nothing fails
        std::vector<float> dy(bytes.size(), 1.f);
        view.backward(bytes.data(), 1.f / 255.f, dy.data(), batch);
        // and the MNIST-shaped case
        View img({1, 28, 28});
        img.build({784});
        auto pixels = mostly_zero_bytes(rng, 2 * 784);
        std::vector<float> yi(pixels.size(), kNaN);
        img.forward(pixels.data(), 1.f / 255.f, 2, yi.data());
        for (size_t i = 0; i < pixels.size(); ++i) REQUIRE(yi[i] == float(pixels[i]) * (1.f / 255.f));
    }
    set_kernels(kernels::best());
}

TEST_CASE("Unflatten(Shape{C, H, W}) is nn.Unflatten(1, (C, H, W)): a View by PyTorch's name") {
    Unflatten un({2, 3, 4});
    CHECK(un.type_name() == "Unflatten");
    CHECK(un.build({24}) == Shape{2, 3, 4});
    CHECK(un.parameters().empty());
    Rng rng(7);
    auto x = random_floats(rng, 5 * 24);
    std::vector<float> y(x.size(), kNaN), dx(x.size(), kNaN);
    un.forward(x.data(), 5, y.data());
    CHECK(y == x);
    un.backward(x.data(), y.data(), 5, dx.data());
    CHECK(dx == x);
    Unflatten wrong({2, 3, 5});
    CHECK_THROWS_WITH_AS(wrong.build({24}), doctest::Contains("Unflatten: cannot view a sample of shape [24]"), Error);
}

// After a convolution a Sequential may keep the activations channels-last; an
// Unflatten there must hand on PyTorch's order exactly as a View does.
TEST_CASE("Unflatten after a Conv2d in a Sequential behaves exactly as View, and as the layers run one by one") {
    auto make = [](bool unflatten) {
        Rng rng(8);
        auto net = std::make_unique<Sequential>();
        net->emplace<Conv2d>(2, 3, 3, 1, 1, rng);
        net->emplace<ReLU>();
        if (unflatten) net->emplace<Unflatten>(Shape{3, 20});
        else net->emplace<View>(Shape{3, 20});
        net->emplace<Linear>(60, 4, rng);
        net->build({2, 4, 5});
        return net;
    };
    auto a = make(true), b = make(false);
    Rng r2(8);
    Conv2d conv(2, 3, 3, 1, 1, r2);
    ReLU relu;
    Linear lin(60, 4, r2);
    conv.build({2, 4, 5});
    relu.build({3, 4, 5});
    const size_t B = 3;
    Rng rng(9);
    auto x = random_floats(rng, B * 40), dy = random_floats(rng, B * 4);
    std::vector<float> ya(B * 4), yb(B * 4), dxa(x.size()), dxb(x.size());
    a->forward(x.data(), B, ya.data());
    a->backward(x.data(), dy.data(), B, dxa.data());
    b->forward(x.data(), B, yb.data());
    b->backward(x.data(), dy.data(), B, dxb.data());
    CHECK(ya == yb);
    CHECK(dxa == dxb);
    for (size_t i = 0; i < a->parameters().size(); ++i) CHECK(a->parameters()[i]->grad == b->parameters()[i]->grad);
    // PyTorch's layout throughout
    std::vector<float> c(B * 60), h(B * 60), y(B * 4), dh(B * 60), dc(B * 60), dx(x.size());
    conv.forward(x.data(), B, c.data());
    relu.forward(c.data(), B, h.data());
    lin.forward(h.data(), B, y.data());
    lin.backward(h.data(), dy.data(), B, dh.data());
    relu.backward(c.data(), dh.data(), B, dc.data());
    conv.backward(x.data(), dc.data(), B, dx.data());
    CHECK(max_rel_error(ya.data(), y.data(), y.size()) < 1e-5);
    CHECK(max_rel_error(dxa.data(), dx.data(), dx.size()) < 1e-5);
}
