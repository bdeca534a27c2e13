// core/plan: the C API's layer planner (device/sgdx_c.cpp plans every model
// with it) and its BatchNorm folding, on the host.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/architecture.hpp"
#include "core/plan.hpp"

using namespace sgdx::core;

namespace {

std::vector<LayerSpec> parsed(const char* printout) {
    std::vector<LayerSpec> specs(16);
    uint32_t n = 0;
    char why[200];
    Text t(why, sizeof why);
    REQUIRE_MESSAGE(parse_printout(span(printout), specs.data(), uint32_t(specs.size()), n, t), why);
    specs.resize(n);
    return specs;
}

// Plans every spec; the shapes of the layers made, or the first problem in `problem`.
std::vector<LayerShape> plan(const std::vector<LayerSpec>& specs, uint32_t rows, uint32_t cols,
                             std::string* problem = nullptr) {
    Planner p(rows, cols, takes_images(specs.data(), uint32_t(specs.size())));
    std::vector<LayerShape> out;
    for (const LayerSpec& s : specs) {
        const uint32_t before = p.count();
        char why[200];
        Text t(why, sizeof why);
        if (!p.take(s, t)) {
            if (problem) *problem = why;
            return out;
        }
        if (p.count() > before) out.push_back(p.last());
    }
    return out;
}

// The tutorial CNN's layers from core/architecture's table.
std::vector<LayerSpec> cnn_specs() {
    LayerSpec specs[kPlanMaxLayers];
    uint32_t n = 0;
    Spec spec;
    spec.arch = kCnn;
    REQUIRE(model_layers(spec, specs, kPlanMaxLayers, n));
    return std::vector<LayerSpec>(specs, specs + n);
}

}  // namespace

TEST_CASE("plan: the tutorial CNN from the architecture table, layer by layer") {
    const auto layers = plan(cnn_specs(), 28, 28);
    REQUIRE(layers.size() == 7);  // 3 x (Conv2d, ReLU), the average pool
    CHECK(layers[0].kind == kConv);
    CHECK(std::string(layers[0].wname) == "conv1.weight");
    CHECK(std::string(layers[0].bname) == "conv1.bias");
    CHECK((layers[0].cin == 1 && layers[0].h == 28 && layers[0].cout == 16 && layers[0].oh == 14 && layers[0].ow == 14));
    CHECK((layers[0].kh == 3 && layers[0].stride == 2 && layers[0].pad == 1));
    CHECK(layers[0].patch() == 9);
    CHECK(layers[0].positions() == 196);
    CHECK(layers[1].kind == kRelu);
    CHECK(layers[1].out_size() == layers[0].out_size());
    CHECK(layers[2].patch() == 16 * 9);
    CHECK(layers[6].kind == kAvgPool);
    CHECK(layers[6].out_size() == 10);
}

TEST_CASE("plan: Linear layers flatten, and the mlp's row lengths") {
    const auto layers = plan(parsed("Sequential(\n"
                                    "  (0): Flatten(start_dim=1, end_dim=-1)\n"
                                    "  (1): Linear(in_features=784, out_features=48, bias=True)\n"
                                    "  (2): ReLU()\n"
                                    "  (3): Linear(in_features=48, out_features=10, bias=False)\n"
                                    ")"),
                             28, 28);
    REQUIRE(layers.size() == 3);
    CHECK(layers[0].kind == kLinear);
    CHECK(layers[0].patch() == 784);
    CHECK(layers[0].in_size() == 784);
    CHECK(!layers[0].nobias);
    CHECK(layers[2].patch() == 48);
    CHECK(layers[2].nobias);
    CHECK(std::string(layers[2].wname) == "3.weight");
}

TEST_CASE("plan: each op infers its shape (pools in floor mode, AdaptiveAvgPool2d over the whole image)") {
    const auto layers = plan(parsed("Sequential(\n"
                                    "  (0): Conv2d(1, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))\n"
                                    "  (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
                                    "  (2): AvgPool2d(kernel_size=2, stride=1, padding=0)\n"
                                    "  (3): AdaptiveAvgPool2d(output_size=1)\n"
                                    "  (4): Flatten(start_dim=1, end_dim=-1)\n"
                                    "  (5): Linear(in_features=3, out_features=2, bias=True)\n"
                                    ")"),
                             13, 11);
    REQUIRE(layers.size() == 5);
    CHECK((layers[0].oh == 7 && layers[0].ow == 6 && layers[0].cout == 3));
    CHECK((layers[1].kind == kMaxPool && layers[1].oh == 3 && layers[1].ow == 3 && layers[1].stride == 2));
    CHECK((layers[2].kind == kAvgPool && layers[2].oh == 2 && layers[2].ow == 2 && layers[2].kh == 2));
    CHECK((layers[3].kind == kAvgPool && layers[3].kh == 2 && layers[3].kw == 2 && layers[3].out_size() == 3));
    CHECK((layers[4].kind == kLinear && layers[4].cin == 3 && layers[4].h == 1 && layers[4].cout == 2));
}

TEST_CASE("plan: a BatchNorm folds into the layer directly before it, its eps and affine kept") {
    const auto specs = parsed("Sequential(\n"
                              "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), bias=False)\n"
                              "  (1): BatchNorm2d(4, eps=0.001, momentum=0.1, affine=False, track_running_stats=True)\n"
                              "  (2): ReLU()\n"
                              ")");
    const auto layers = plan(specs, 8, 8);
    REQUIRE(layers.size() == 3);
    CHECK(layers[1].kind == kNorm);
    CHECK((layers[1].cout == 4 && layers[1].oh == 6 && layers[1].ow == 6));
    CHECK(norm_eps(layers[1]) == 0.001f);
    CHECK(!norm_has(layers[1], kGamma));
    CHECK(!norm_has(layers[1], kBeta));
    CHECK(norm_has(layers[1], kMean));
    char buf[32];
    CHECK(std::string(norm_name(layers[1], kVar, buf)) == "1.running_var");
    CHECK(std::string(norm_name(layers[1], kTracked, buf)) == "1.num_batches_tracked");
    CHECK(plan_untrainable(specs[1]) != nullptr);
    CHECK(plan_untrainable(specs[0]) != nullptr);  // bias=False
    CHECK(plan_untrainable(specs[2]) == nullptr);
}

TEST_CASE("plan: shapes that do not work, and layers the planner does not run, say so") {
    std::string problem;
    plan(parsed("Sequential(\n"
                "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
                "  (1): ReLU()\n"
                "  (2): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                ")"),
         8, 8, &problem);
    CHECK(problem == "the C API folds a BatchNorm into a Linear or Conv2d directly before it");
    plan(parsed("Sequential(\n  (0): Conv2d(1, 4, kernel_size=(5, 5), stride=(1, 1))\n)"), 4, 4, &problem);
    CHECK(problem == "a 4x4 input is smaller than the 5x5 kernel");
    plan(parsed("Sequential(\n  (0): Linear(in_features=10, out_features=2, bias=True)\n)"), 28, 28, &problem);
    CHECK(problem == "input shape [784] has 784 values, not 10 (in_features)");
    plan(parsed("Sequential(\n  (0): Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1))\n)"), 8, 8, &problem);
    CHECK(problem == "wants a sample of shape [2, height, width], got [1, 8, 8]");
    plan(parsed("Sequential(\n  (0): MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)\n)"),
         2, 8, &problem);
    CHECK(problem == "a 2x8 plane is smaller than the 3x3 window");
    plan(parsed("Sequential(\n"
                "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
                "  (1): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                ")"),
         8, 8, &problem);
    CHECK(problem == "input shape [4, 6, 6] is not (3, H, W)");
    plan(parsed("Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Unflatten(dim=1, unflattened_size=(2, 5, 5))\n)"),
         7, 7, &problem);
    CHECK(problem == "cannot view a sample of shape [49] (49 values) as [2, 5, 5]");
    std::string relus = "Sequential(\n";
    for (int i = 0; i < 13; ++i) relus += "  (" + std::to_string(i) + "): ReLU()\n";
    const auto many = plan(parsed((relus + ")").c_str()), 4, 4, &problem);
    CHECK(many.size() == kPlanMaxLayers);
    CHECK(problem == "more layers than the C API keeps (12)");
    const auto pool = parsed("Sequential(\n  (0): AvgPool2d(kernel_size=2, stride=2, padding=1)\n)");
    REQUIRE(plan_unsupported(pool[0]) != nullptr);
    CHECK(std::string(plan_unsupported(pool[0])) == "pool padding is not supported by the C API");
}

TEST_CASE("plan: BatchNorm folding in float, as the device computes it") {
    const float gamma = 1.5f, var = 0.25f, eps = 1e-5f, mean = 0.75f, beta = -0.5f, bias = 2.f;
    const float s = fold_scale(gamma, var, eps);
    CHECK(s == gamma / std::sqrt(var + eps));
    CHECK(s == doctest::Approx(3.0).epsilon(1e-4));
    CHECK(fold_bias(bias, mean, s, beta) == (bias - mean) * s + beta);
    CHECK(fold_bias(0.f, mean, s, beta) == doctest::Approx(-0.75 * 3.0 - 0.5).epsilon(1e-4));
}

TEST_CASE("plan: the tensors of planned layers, by name, with their shapes") {
    const auto layers = plan(cnn_specs(), 28, 28);
    PlanTensor list[kPlanMaxTensors];
    const uint32_t count = plan_tensors(layers.data(), uint32_t(layers.size()), list);
    REQUIRE(count == 6);
    const char* names[] = {"conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "conv3.bias", "conv3.weight"};
    for (uint32_t i = 0; i < count; ++i) CHECK(std::string(list[i].name()) == names[i]);
    uint32_t dims[4];
    REQUIRE(list[1].shape(dims) == 4);
    CHECK((dims[0] == 16 && dims[1] == 1 && dims[2] == 3 && dims[3] == 3));
    CHECK(list[1].count() == 16 * 9);
    REQUIRE(list[4].shape(dims) == 1);
    CHECK(dims[0] == 10);

    const auto mlp = plan(parsed("Sequential(\n"
                                 "  (0): Linear(in_features=784, out_features=48, bias=True)\n"
                                 "  (1): ReLU()\n"
                                 "  (2): Linear(in_features=48, out_features=10, bias=False)\n"
                                 ")"),
                          28, 28);
    REQUIRE(plan_tensors(mlp.data(), uint32_t(mlp.size()), list) == 3);  // no 2.bias
    CHECK(std::string(list[0].name()) == "0.bias");
    CHECK(std::string(list[2].name()) == "2.weight");
    REQUIRE(list[2].shape(dims) == 2);
    CHECK((dims[0] == 10 && dims[1] == 48));
}
