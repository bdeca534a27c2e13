// core/layout: the host's layout pass over a chain of layer roles, and the
// runtime's Sequential handing each child what it decided.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/layout.hpp"
#include "runtime/activation.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/linear.hpp"
#include "runtime/pooling.hpp"
#include "runtime/reshape.hpp"
#include "runtime/sequential.hpp"

using sgdx::core::LayerLayout;
using sgdx::core::LayoutRole;

namespace {

// One letter per role: C conv, R relu, P pool, V view, O other. Each layer's
// decisions as letters: i in_cl, o out_cl, a relu_out (after), b relu_in
// (before), f fused, u unmasked; "-" for none.
std::vector<std::string> plan(const std::string& chain) {
    std::vector<LayoutRole> roles;
    for (char c : chain)
        roles.push_back(c == 'C'   ? LayoutRole::kConv
                        : c == 'R' ? LayoutRole::kRelu
                        : c == 'P' ? LayoutRole::kPool
                        : c == 'V' ? LayoutRole::kView
                                   : LayoutRole::kOther);
    std::vector<LayerLayout> out(roles.size());
    sgdx::core::plan_layouts(roles.data(), uint32_t(roles.size()), out.data());
    std::vector<std::string> words;
    for (const LayerLayout& l : out) {
        std::string w;
        if (l.in_cl) w += 'i';
        if (l.out_cl) w += 'o';
        if (l.relu_out) w += 'a';
        if (l.relu_in) w += 'b';
        if (l.fused) w += 'f';
        if (l.unmasked) w += 'u';
        words.push_back(w.empty() ? "-" : w);
    }
    return words;
}

using W = std::vector<std::string>;

}  // namespace

TEST_CASE("core/layout: channels-last runs from a conv to a conv or a view, ReLUs fused into the conv before them") {
    // The tutorial CNN: 3 x (Conv2d, ReLU), AvgPool2d, View.
    CHECK(plan("CRCRCRPV") == W{"oa", "iof", "ioab", "iof", "ioab", "iof", "iou", "i"});
    // LeNet: Unflatten, Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Flatten, Linear, ReLU, Linear.
    CHECK(plan("VCRPCRPVORO") == W{"-", "oa", "iof", "iou", "ioa", "iof", "iou", "i", "-", "-", "-"});
    // A conv whose output reaches neither a conv nor a view stays PyTorch's: the
    // chain's output is PyTorch's layout.
    CHECK(plan("CRP") == W{"a", "f", "u"});
    CHECK(plan("CR") == W{"-", "-"});  // the last layer's ReLU is not fused
    CHECK(plan("CO") == W{"-", "-"});
    // A ReLU between a conv and a Linear: fused, the Linear's gradient masked by the chain.
    CHECK(plan("CRO") == W{"a", "f", "u"});
    // Something else between two convs ends the run.
    CHECK(plan("CPOC") == W{"-", "-", "-", "-"});
    CHECK(plan("") == W{});
    CHECK(plan("R") == W{"-"});
}

TEST_CASE("core/layout: a Sequential hands each child what the pass decided") {
    sgdx::Rng rng(3);
    sgdx::Sequential net;
    net.emplace<sgdx::Conv2d>(1, 4, 3, 1, 1, rng);
    net.emplace<sgdx::ReLU>();
    net.emplace<sgdx::MaxPool2d>(2);
    net.emplace<sgdx::Conv2d>(4, 4, 3, 1, 1, rng);
    net.emplace<sgdx::ReLU>();
    net.emplace<sgdx::Flatten>();
    net.emplace<sgdx::Linear>(4 * 4 * 4, 10, rng);
    net.build({1, 8, 8});
    CHECK(net[0].layout_role() == LayoutRole::kConv);
    CHECK(net[1].layout_role() == LayoutRole::kRelu);
    CHECK(net[2].layout_role() == LayoutRole::kPool);
    CHECK(net[5].layout_role() == LayoutRole::kView);
    CHECK(net[6].layout_role() == LayoutRole::kOther);
    CHECK(net.fused(1));
    CHECK(net.fused(4));
    CHECK_FALSE(net.fused(2));
    // The channels-last planes come back in PyTorch's order: the conv's output
    // after its fused ReLU, against a lone Conv2d with the same weights.
    std::vector<float> x(2 * 64);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 13) - 6) / 7.f;
    std::vector<float> y(2 * 10), seen(2 * 4 * 64), alone(2 * 4 * 64);
    net.forward(x.data(), 2, y.data());
    net.activation_after(1, 2, seen.data());
    sgdx::Rng other(9);
    sgdx::Conv2d conv(1, 4, 3, 1, 1, other);
    conv.weight.value = dynamic_cast<sgdx::Conv2d&>(net[0]).weight.value;
    conv.bias.value = dynamic_cast<sgdx::Conv2d&>(net[0]).bias.value;
    conv.build({1, 8, 8});
    conv.forward(x.data(), 2, alone.data());
    for (float& v : alone) v = v > 0 ? v : 0;
    for (size_t i = 0; i < alone.size(); ++i) CHECK(seen[i] == doctest::Approx(alone[i]).epsilon(1e-5));
}
