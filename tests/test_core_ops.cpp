// core/ops: each op of the C API's table (planned by core/plan from a printout
// line) against the runtime's layer of the same kind, on ragged shapes: the
// float forward, the backward's input gradient and its fused SGD step (the
// weights after one step at momentum 0 are the runtime's weights minus lr times
// its gradient), and the int8 forward of the ops that keep floats. The two sum
// in different orders (the Cortex-M4 set against the host's SIMD kernels), so
// products are compared within a few ulps of their size; pooling, ReLU and
// the int8 pass-through ops exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/plan.hpp"
#include "runtime/activation.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/linear.hpp"
#include "runtime/pooling.hpp"
#include "runtime/rng.hpp"

namespace {

using sgdx::core::Layer;

std::vector<float> random_floats(sgdx::Rng& rng, size_t n) {
    std::vector<float> v(n);
    rng.fill_uniform(v.data(), n, 1.f);
    return v;
}

// The one layer that `line` plans into for a sample of (c, h, w).
Layer plan_one(const std::string& line, uint32_t c, uint32_t h, uint32_t w) {
    const std::string text = "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n"
                             "  (1): Unflatten(dim=1, unflattened_size=(" +
                             std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) + "))\n  (2): " +
                             line + "\n)";
    sgdx::core::LayerSpec specs[4];
    uint32_t n = 0;
    char why[200];
    sgdx::core::Text t(why, sizeof why);
    REQUIRE_MESSAGE(sgdx::core::parse_printout(sgdx::core::span(text.c_str()), specs, 4, n, t), why);
    sgdx::core::Planner p(1, c * h * w, sgdx::core::takes_images(specs, n));
    for (uint32_t i = 0; i < n; ++i) REQUIRE_MESSAGE(p.take(specs[i], t), why);
    REQUIRE(p.count() == 1);
    Layer l;
    std::memset(&l, 0, sizeof l);
    static_cast<sgdx::core::LayerShape&>(l) = p.last();
    return l;
}

// A layer's buffers, for n samples.
struct Buffers {
    std::vector<float> weight, bias, gweight, gbias, out, patches, row;
    Buffers(Layer& l, uint32_t n) {
        const size_t w = l.learns() ? l.cout * l.patch() : 0, b = l.learns() ? l.cout : 0;
        weight.resize(w), bias.resize(b), gweight.resize(w), gbias.resize(b);
        out.resize(n * l.out_size());
        patches.resize(l.patch() * l.positions());
        row.resize(l.patch());
        l.weight = weight.data(), l.bias = bias.data(), l.gweight = gweight.data(), l.gbias = gbias.data();
        l.out = out.data();
    }
    sgdx::core::OpScratch scratch() { return {patches.data(), row.data()}; }
};

// |got - want| within a few ulps of `scale` (the sum of the magnitudes added).
void check_close(const std::vector<float>& got, const float* want, double scale) {
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(std::fabs(double(got[i]) - double(want[i])) <= 1e-6 * scale);
    }
}

// One op against a runtime module: forward, then backward with dy (and lr for
// a learning op, whose parameters the module holds); every check at n samples.
void compare(Layer& l, sgdx::Module& mod, sgdx::Parameter* weight, sgdx::Parameter* bias, uint32_t n,
             sgdx::Rng& rng, bool exact) {
    const auto shape = mod.build({l.cin, l.h, l.w});
    REQUIRE(sgdx::shape_size(shape) == l.out_size());
    Buffers b(l, n);
    if (weight) std::memcpy(b.weight.data(), weight->value.data(), b.weight.size() * 4);
    if (bias) std::memcpy(b.bias.data(), bias->value.data(), b.bias.size() * 4);
    const auto x = random_floats(rng, n * l.in_size()), dy0 = random_floats(rng, n * l.out_size());
    const double scale = l.learns() ? double(l.patch()) + 1 : double(l.kh * l.kw) + 1;

    std::vector<float> want_y(n * l.out_size());
    mod.forward(x.data(), n, want_y.data());
    if (l.kind == sgdx::core::kRelu) std::memcpy(b.out.data(), x.data(), x.size() * 4);  // in place: out is x
    const float* in = l.kind == sgdx::core::kRelu ? b.out.data() : x.data();
    sgdx::core::op(l).forward(l, in, n, b.scratch());
    if (exact) CHECK(std::memcmp(b.out.data(), want_y.data(), want_y.size() * 4) == 0);
    else check_close(b.out, want_y.data(), scale);

    for (sgdx::Parameter* p : {weight, bias})
        if (p) p->grad.fill(0.f);
    std::vector<float> want_dx(n * l.in_size()), dx(n * l.in_size(), 7.f), dy = dy0;
    mod.backward(x.data(), dy0.data(), n, want_dx.data());
    const float lr = 0.25f;
    const bool moved = sgdx::core::op(l).backward(l, in, dy.data(), dx.data(), n, b.scratch(), {lr, 0.f, true});
    CHECK(moved == (l.kind != sgdx::core::kRelu));  // ReLU leaves its input gradient in dy
    const std::vector<float>& got_dx = moved ? dx : dy;
    if (exact) CHECK(std::memcmp(got_dx.data(), want_dx.data(), want_dx.size() * 4) == 0);
    else check_close(got_dx, want_dx.data(), l.learns() ? double(l.cout) * l.kh * l.kw + 1 : scale);
    if (weight) {  // one SGD step: w - lr * grad
        std::vector<float> want(b.weight.size());
        for (size_t i = 0; i < want.size(); ++i) want[i] = weight->value.data()[i] - lr * weight->grad.data()[i];
        check_close(b.weight, want.data(), double(n) * l.positions() + 1);
        std::vector<float> want_b(b.bias.size());
        for (size_t i = 0; i < want_b.size(); ++i) want_b[i] = bias->value.data()[i] - lr * bias->grad.data()[i];
        check_close(b.bias, want_b.data(), double(n) * l.positions() + 1);
    }
}

}  // namespace

TEST_CASE("core ops: Linear's forward, input gradient and fused row-wise SGD step equal the runtime's Linear") {
    sgdx::Rng rng(3);
    for (uint32_t d : {1u, 7u, 33u})
        for (uint32_t c : {1u, 5u, 10u})
            for (uint32_t n : {1u, 3u}) {
                CAPTURE(d);
                CAPTURE(c);
                CAPTURE(n);
                Layer l = plan_one("Linear(in_features=" + std::to_string(d) + ", out_features=" + std::to_string(c) +
                                       ", bias=True)",
                                   1, 1, d);
                sgdx::Linear lin(d, c, rng);
                compare(l, lin, &lin.weight, &lin.bias, n, rng, false);
            }
}

TEST_CASE("core ops: Conv2d with strides and padding on ragged images equals the runtime's Conv2d") {
    sgdx::Rng rng(5);
    struct Case {
        uint32_t cin, cout, k, stride, pad, h, w, n;
    };
    for (const Case& t : {Case{1, 2, 3, 1, 0, 7, 9, 2}, Case{3, 5, 3, 2, 1, 9, 6, 3}, Case{2, 3, 1, 1, 0, 5, 4, 1},
                          Case{4, 1, 2, 3, 1, 8, 11, 2}}) {
        CAPTURE(t.cin);
        CAPTURE(t.cout);
        CAPTURE(t.k);
        CAPTURE(t.stride);
        CAPTURE(t.pad);
        const std::string k = std::to_string(t.k), s = std::to_string(t.stride), p = std::to_string(t.pad);
        Layer l = plan_one("Conv2d(" + std::to_string(t.cin) + ", " + std::to_string(t.cout) + ", kernel_size=(" + k +
                               ", " + k + "), stride=(" + s + ", " + s + "), padding=(" + p + ", " + p + "))",
                           t.cin, t.h, t.w);
        sgdx::Conv2d conv(t.cin, t.cout, t.k, t.stride, t.pad, rng);
        compare(l, conv, &conv.weight, &conv.bias, t.n, rng, false);
    }
}

// Both sides run core/pool (and the pools' values are checked against their
// definition in test_core_pool.cpp): here, that the planner's geometry (window,
// stride, AdaptiveAvgPool2d(1) as one whole-image window) and the ops' buffers
// are the layer's, so every comparison is exact.
TEST_CASE("core ops: ReLU, MaxPool2d, AvgPool2d and AdaptiveAvgPool2d(1) equal the runtime's layers") {
    sgdx::Rng rng(7);
    {
        Layer l = plan_one("ReLU()", 3, 5, 7);
        sgdx::ReLU relu;
        compare(l, relu, nullptr, nullptr, 2, rng, true);
    }
    for (uint32_t k : {2u, 3u})
        for (uint32_t s : {1u, 2u, 3u}) {
            CAPTURE(k);
            CAPTURE(s);
            const std::string ks = std::to_string(k), ss = std::to_string(s);
            Layer mp = plan_one("MaxPool2d(kernel_size=" + ks + ", stride=" + ss + ", padding=0, dilation=1, ceil_mode=False)",
                                3, 8, 7);
            sgdx::MaxPool2d max_pool(k, s);
            compare(mp, max_pool, nullptr, nullptr, 2, rng, true);
            Layer ap = plan_one("AvgPool2d(kernel_size=" + ks + ", stride=" + ss + ", padding=0)", 2, 7, 9);
            sgdx::AvgPool2d avg_pool(k, s);
            compare(ap, avg_pool, nullptr, nullptr, 3, rng, true);
        }
    Layer gap = plan_one("AdaptiveAvgPool2d(output_size=1)", 4, 5, 3);
    sgdx::AdaptiveAvgPool2d adaptive(1);
    compare(gap, adaptive, nullptr, nullptr, 2, rng, true);
}

TEST_CASE("core ops: the int8 forward of ReLU and the pools is their float forward on one image, in place for ReLU") {
    sgdx::Rng rng(9);
    for (const char* line : {"ReLU()", "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
                             "AvgPool2d(kernel_size=3, stride=1, padding=0)"}) {
        CAPTURE(line);
        Layer l = plan_one(line, 2, 6, 5);
        Buffers b(l, 1);
        auto cur = random_floats(rng, l.in_size());
        const auto x = cur;
        std::vector<float> next(l.out_size(), 5.f);
        const bool moved = sgdx::core::op(l).forward_int8(l, nullptr, 1.f, cur.data(), next.data(), nullptr);
        CHECK(moved == (l.kind != sgdx::core::kRelu));
        sgdx::core::op(l).forward(l, x.data(), 1, b.scratch());
        CHECK(std::memcmp((moved ? next : cur).data(), b.out.data(), b.out.size() * 4) == 0);
    }
}
