// core/shape: each layer kind's shape rule, and the two front ends that apply
// it (the runtime's modules, the C API's planner) refusing a shape in the same
// words.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "core/shape.hpp"
#include "runtime/error.hpp"
#include "runtime/linear.hpp"
#include "runtime/reshape.hpp"
#include "runtime/network.hpp"

using namespace sgdx::core;

namespace {

SampleShape shape(std::initializer_list<uint64_t> d) {
    SampleShape s;
    for (uint64_t v : d) s.d[s.rank++] = v;
    return s;
}

std::string text(const SampleShape& s) {
    char buf[128];
    Text t(buf, sizeof buf);
    return shape_text(t, s).str();
}

// A rule's output, or "refused: <why>".
template <class Rule>
std::string apply(Rule&& rule) {
    char buf[256];
    Text why(buf, sizeof buf);
    SampleShape out;
    if (!rule(out, why)) return std::string("refused: ") + buf;
    CHECK(why.size() == 0);  // nothing said when it works
    return text(out);
}

// How many windows of k every s fit along n padded by p each side, counted one by one.
uint64_t windows(uint64_t n, uint64_t k, uint64_t s, uint64_t p) {
    uint64_t count = 0;
    for (uint64_t start = 0; start + k <= n + 2 * p; start += s) ++count;
    return count;
}

}  // namespace

TEST_CASE("core/shape: each kind's output shape") {
    CHECK(text(shape({1, 28, 28})) == "[1, 28, 28]");
    CHECK(shape({1, 28, 28}).size() == 784);
    CHECK(SampleShape{}.size() == 0);
    CHECK(apply([](auto& o, auto& w) { return infer_linear(784, 10, shape({1, 28, 28}), o, w); }) == "[10]");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({1, 16, 3, 3, 2, 1}, shape({1, 28, 28}), o, w); }) ==
          "[16, 14, 14]");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({3, 4, 5, 3, 1, 0}, shape({3, 9, 7}), o, w); }) == "[4, 5, 5]");
    CHECK(apply([](auto& o, auto& w) { return infer_pool(2, 2, 2, shape({16, 5, 7}), o, w); }) == "[16, 2, 3]");
    CHECK(apply([](auto& o, auto& w) { return infer_pool(3, 3, 1, shape({2, 3, 3}), o, w); }) == "[2, 1, 1]");
    CHECK(apply([](auto& o, auto& w) { return infer_adaptive_pool(1, 1, shape({10, 4, 4}), o, w); }) == "[10, 1, 1]");
    CHECK(apply([](auto& o, auto& w) { return infer_adaptive_pool(3, 2, shape({5, 7, 9}), o, w); }) == "[5, 3, 2]");
    CHECK(apply([](auto& o, auto& w) { return infer_norm(8, true, shape({8, 5, 5}), o, w); }) == "[8, 5, 5]");
    CHECK(apply([](auto& o, auto& w) { return infer_norm(8, false, shape({8}), o, w); }) == "[8]");
    CHECK(apply([](auto& o, auto& w) { return infer_norm(8, false, shape({8, 3}), o, w); }) == "[8, 3]");
    CHECK(apply([](auto& o, auto& w) { return infer_view(shape({0}), shape({16, 4, 4}), o, w); }) == "[256]");
    CHECK(apply([](auto& o, auto& w) { return infer_view(shape({1, 28, 28}), shape({784}), o, w); }) == "[1, 28, 28]");
    CHECK(apply([](auto& o, auto& w) { return infer_view(shape({4, 0, 2}), shape({32}), o, w); }) == "[4, 4, 2]");
}

TEST_CASE("core/shape: a refused shape says what and by how much") {
    CHECK(apply([](auto& o, auto& w) { return infer_linear(100, 10, shape({1, 28, 28}), o, w); }) ==
          "refused: input shape [1, 28, 28] has 784 values, not 100 (in_features)");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({3, 8, 3, 3, 1, 0}, shape({1, 28, 28}), o, w); }) ==
          "refused: wants a sample of shape [3, height, width], got [1, 28, 28]");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({1, 8, 3, 3, 1, 0}, shape({784}), o, w); }) ==
          "refused: wants a sample of shape [1, height, width], got [784]");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({1, 8, 5, 5, 1, 0}, shape({1, 4, 9}), o, w); }) ==
          "refused: a 4x9 input is smaller than the 5x5 kernel");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({1, 8, 7, 7, 1, 1}, shape({1, 4, 9}), o, w); }) ==
          "refused: a 4x9 input is smaller than the 7x7 kernel with padding 1");
    CHECK(apply([](auto& o, auto& w) { return infer_conv({1, 8, 1, 1, 1, 0}, shape({1, 1ull << 33, 1}), o, w); }) ==
          "refused: input shape [1, 8589934592, 1] is too large");
    CHECK(apply([](auto& o, auto& w) { return infer_pool(2, 2, 2, shape({16}), o, w); }) ==
          "refused: wants a sample of shape [channels, height, width], got [16]");
    CHECK(apply([](auto& o, auto& w) { return infer_pool(3, 3, 3, shape({4, 2, 8}), o, w); }) ==
          "refused: a 2x8 plane is smaller than the 3x3 window");
    CHECK(apply([](auto& o, auto& w) { return infer_adaptive_pool(1u << 20, 1, shape({1, 1u << 13, 1}), o, w); }) ==
          "refused: 1048576x1 outputs over a 8192x1 plane: too large (input size times output size must stay below "
          "2^32 on each side)");
    CHECK(apply([](auto& o, auto& w) { return infer_norm(3, true, shape({4, 5, 7}), o, w); }) ==
          "refused: input shape [4, 5, 7] is not (3, H, W)");
    CHECK(apply([](auto& o, auto& w) { return infer_norm(3, false, shape({3, 5, 7}), o, w); }) ==
          "refused: input shape [3, 5, 7] is not (3) or (3, L)");
    CHECK(apply([](auto& o, auto& w) { return infer_view(shape({2, 5, 5}), shape({49}), o, w); }) ==
          "refused: cannot view a sample of shape [49] (49 values) as [2, 5, 5]");
    CHECK(apply([](auto& o, auto& w) { return infer_view(shape({0, 5}), shape({49}), o, w); }) ==
          "refused: cannot view a sample of shape [49] (49 values) as [0, 5]");
    CHECK(apply([](auto& o, auto& w) { return infer_view(shape({0, 0}), shape({49}), o, w); }) ==
          "refused: at most one free dimension in [0, 0]");
}

TEST_CASE("window_output_size: PyTorch's floor rule with padding, refusing windows larger than the plane") {
    uint32_t oh = 0, ow = 0;
    CHECK(window_output_size(28, 28, 3, 3, 2, 1, oh, ow));  // the tutorial CNN's first convolution
    CHECK((oh == 14 && ow == 14));
    CHECK(window_output_size(7, 9, 2, 3, 2, 0, oh, ow));  // floor: the last row and column left out
    CHECK((oh == 3 && ow == 4));
    CHECK(window_output_size(1, 1, 3, 3, 1, 1, oh, ow));  // padding makes room
    CHECK((oh == 1 && ow == 1));
    oh = ow = 99;
    CHECK_FALSE(window_output_size(2, 9, 3, 3, 1, 0, oh, ow));  // too few rows
    CHECK_FALSE(window_output_size(9, 2, 3, 3, 1, 0, oh, ow));  // too few columns
    CHECK_FALSE(window_output_size(9, 9, 3, 3, 0, 0, oh, ow));  // stride 0
    CHECK_FALSE(window_output_size(uint64_t(1) << 33, 9, 1, 1, 1, 0, oh, ow));  // more rows than a uint32_t
    CHECK((oh == 99 && ow == 99));  // left as they were
}

TEST_CASE("core/shape: sizes past 64 bits never match, and the ranks each side keeps") {
    const uint64_t big = uint64_t(1) << 24;
    CHECK(shape({big, big, big}).size() == UINT64_MAX);
    CHECK(shape({big, big}).size() == big * big);
    // 2^72 wraps to 0 in 64 bits: a view of 0 values must not pass for it.
    CHECK(apply([&](auto& o, auto& w) { return infer_view(shape({big, big, big}), shape({0}), o, w); }).rfind(
              "refused: cannot view", 0) == 0);
    CHECK(apply([&](auto& o, auto& w) { return infer_view(shape({big, big, big, 0}), shape({64}), o, w); }).rfind(
              "refused: cannot view", 0) == 0);
    // The runtime's modules take samples of up to kSampleMaxRank axes.
    sgdx::Rng rng(2);
    sgdx::Linear lin(784, 10, rng);
    CHECK_THROWS_WITH_AS(lin.build({1, 1, 1, 1, 784}), doctest::Contains("a sample of rank 5 (at most 4)"), sgdx::Error);
    sgdx::View view({1, 1, 2, 2, 196});
    CHECK_THROWS_WITH_AS(view.build({784}), doctest::Contains("a target of more than 4 dimensions"), sgdx::Error);
    CHECK(lin.build({1, 1, 28, 28}) == sgdx::Shape{10});
    // The C API's layers take a flat sample or an image, nothing between.
    Planner p(28, 28, true);
    LayerSpec flatten{}, unflatten{}, relu{};
    flatten.kind = LayerKind::kFlatten;
    unflatten.kind = LayerKind::kUnflatten, unflatten.unflatten_rank = 2, unflatten.unflatten[0] = 4,
    unflatten.unflatten[1] = 196;
    relu.kind = LayerKind::kReLU;
    REQUIRE(p.take(flatten));
    REQUIRE(p.take(unflatten));
    char buf[128];
    Text why(buf, sizeof buf);
    CHECK_FALSE(p.take(relu, why));
    CHECK(std::string(buf) == "the C API's layers take [features] or [channels, height, width], not [4, 196]");
}

TEST_CASE("core/shape: window layers count every window that fits, on random geometries") {
    std::mt19937 rng(18);
    std::uniform_int_distribution<uint64_t> side(1, 40), kern(1, 9), step(1, 4), pad(0, 3);
    for (int i = 0; i < 2000; ++i) {
        const uint64_t h = side(rng), w = side(rng), k = kern(rng), kw = kern(rng), s = step(rng), p = pad(rng);
        const uint64_t rows = windows(h, k, s, p), cols = windows(w, kw, s, p);
        CAPTURE(h);
        CAPTURE(w);
        CAPTURE(k);
        CAPTURE(kw);
        CAPTURE(s);
        CAPTURE(p);
        const std::string conv = apply([&](auto& o, auto& why) { return infer_conv({2, 3, k, kw, s, p}, shape({2, h, w}), o, why); });
        const std::string pool = apply([&](auto& o, auto& why) { return infer_pool(k, kw, s, shape({2, h, w}), o, why); });
        if (rows && cols) CHECK(conv == "[3, " + std::to_string(rows) + ", " + std::to_string(cols) + "]");
        else CHECK(conv.rfind("refused: ", 0) == 0);
        const uint64_t prow = windows(h, k, s, 0), pcol = windows(w, kw, s, 0);
        if (prow && pcol) CHECK(pool == "[2, " + std::to_string(prow) + ", " + std::to_string(pcol) + "]");
        else CHECK(pool.rfind("refused: ", 0) == 0);
    }
}

// The runtime builds a printout's modules (Module::configure), the C API plans
// it (Planner, core/ops' infer): a shape one refuses, the other refuses in the
// same words, since both ask core/shape.
TEST_CASE("core/shape: the runtime's layers and the C API's planner refuse a shape in the same words") {
    const char* printouts[] = {
        "Sequential(\n  (0): Linear(in_features=100, out_features=10, bias=True)\n)",
        "Sequential(\n  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))\n)",
        "Sequential(\n  (0): Conv2d(1, 8, kernel_size=(13, 13), stride=(1, 1), padding=(2, 2))\n)",
        "Sequential(\n  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (1): MaxPool2d(kernel_size=7, stride=7, padding=0, dilation=1, ceil_mode=False)\n)",
        "Sequential(\n  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (1): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n)",
        "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Unflatten(dim=1, unflattened_size=(2, 5, 5))\n)",
        "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n"
        "  (1): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n)",
        "Sequential(\n  (0): Linear(in_features=64, out_features=16, bias=True)\n"
        "  (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n)",
        "Sequential(\n  (0): Linear(in_features=64, out_features=20, bias=True)\n"
        "  (1): BatchNorm1d(10, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n)",
    };
    for (const char* printout : printouts) {
        CAPTURE(printout);
        const sgdx::LayerList layers = sgdx::parse_printout(printout, "");
        std::string runtime;
        try {
            sgdx::Rng rng(1);
            sgdx::build_network(layers, sgdx::network_input(layers, 8, 8), rng, 1);
        } catch (const sgdx::Error& e) {
            runtime = e.what();
        }
        Planner p(8, 8, takes_images(layers.data(), uint32_t(layers.size())));
        char buf[256];
        Text why(buf, sizeof buf);
        bool planned = true;
        for (const LayerSpec& s : layers) {
            if (!p.take(s)) {
                CHECK_FALSE(p.take(s, why));  // the same refusal, now in words
                planned = false;
                break;
            }
        }
        REQUIRE_FALSE(planned);
        REQUIRE(why.size() > 0);
        CAPTURE(runtime);
        CAPTURE(buf);
        // "line 2, layer (0): Linear: Linear(100, 10): <why>" against "<why>"
        const std::string tail = std::string(": ") + buf;
        CHECK(runtime.size() > tail.size());
        CHECK(runtime.compare(runtime.size() - tail.size(), tail.size(), tail) == 0);
    }
}
