// runtime/network: a printout (PyTorch's print(model)) built into a Sequential,
// and the zoo's Sequentials built from core's layer lists by the same builder.
#include <doctest/doctest.h>

#include <string>

#include "models/zoo.hpp"
#include "runtime/batchnorm.hpp"
#include "runtime/network.hpp"
#include "runtime/optim.hpp"
#include "runtime/train.hpp"
#include "tutorial_data.hpp"

using namespace sgdx;
using sgdx::test::mnist_head;

namespace {

// print(nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 4, 3, padding=1, bias=False),
//   nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
//   nn.Linear(4 * 14 * 14, 10)))  -- torch 1.13
const char* kPrintout =
    "Sequential(\n"
    "  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
    "  (1): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
    "  (2): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
    "  (3): ReLU()\n"
    "  (4): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
    "  (5): Flatten(start_dim=1, end_dim=-1)\n"
    "  (6): Dropout(p=0.25, inplace=False)\n"
    "  (7): Linear(in_features=784, out_features=10, bias=True)\n"
    ")";

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a printout builds the Sequential it describes, with PyTorch's state_dict names") {
    const LayerList layers = parse_printout(kPrintout, "--model");
    REQUIRE(layers.size() == 8);
    CHECK(printout_text(layers) == kPrintout);
    Rng rng(1);
    auto net = build_network(layers, network_input(layers, 28, 28), rng, 1);
    CHECK(net->in_features() == 784);
    CHECK(net->out_features() == 10);
    std::vector<std::string> names;
    for (auto& [name, p] : net->named_parameters()) names.push_back(name);
    // the bias-free convolution has no "1.bias"
    CHECK(names == std::vector<std::string>{"1.weight", "2.weight", "2.bias", "7.weight", "7.bias"});
    std::vector<std::string> buffers;
    for (auto& [name, b] : net->named_buffers()) buffers.push_back(name);
    CHECK(buffers == std::vector<std::string>{"2.running_mean", "2.running_var", "2.num_batches_tracked"});
    CHECK((*net)[6].type_name() == "Dropout");
}

TEST_CASE("a printout pasted as one line parses as the same layers") {
    const LayerList layers = parse_printout(
        "Sequential((0): Flatten(start_dim=1, end_dim=-1) (1): Linear(in_features=784, out_features=10, bias=True))",
        "--model");
    REQUIRE(layers.size() == 2);
    CHECK(layers[1].kind == core::LayerKind::kLinear);
    CHECK(layers[1].out == 10);
}

TEST_CASE("a network starting with a Conv2d takes images as (1, rows, cols)") {
    const LayerList layers = parse_printout(
        "Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(2, 2))\n  (1): Flatten(start_dim=1, end_dim=-1)\n)",
        "f");
    CHECK(network_input(layers, 28, 20) == Shape{1, 28, 20});
    Rng rng(0);
    auto net = build_network(layers, network_input(layers, 28, 20), rng, 0);
    CHECK(net->output_shape() == Shape{2 * 13 * 9});
}

TEST_CASE("BatchNorm with momentum=None builds as the cumulative average and prints back as None") {
    const std::string text =
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=8, bias=False)\n"
        "  (1): BatchNorm1d(8, eps=1e-05, momentum=None, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Linear(in_features=8, out_features=10, bias=True)\n"
        ")";
    const LayerList layers = parse_printout(text, "--model");
    CHECK(printout_text(layers) == text);
    Rng rng(0);
    auto net = build_network(layers, network_input(layers, 28, 28), rng, 0);
    const auto& bn = dynamic_cast<const BatchNorm&>((*net)[1]);
    CHECK(bn.cumulative());
    // Three training batches: running_mean is the plain mean of the three batch means.
    TensorDataset data = mnist_head(0, 96, "train");
    std::vector<float> out(32 * 10), hidden(32 * 8), mean_of_means(8, 0.f), x(32 * 784);
    net->train();
    for (size_t b = 0; b < 3; ++b) {
        for (size_t i = 0; i < x.size(); ++i) x[i] = data.image(b * 32)[i] * data.scale();
        (*net)[0].forward(x.data(), 32, hidden.data());
        for (size_t c = 0; c < 8; ++c) {
            double m = 0;
            for (size_t i = 0; i < 32; ++i) m += hidden[i * 8 + c];
            mean_of_means[c] += float(m / 32 / 3);
        }
        net->forward(x.data(), 32, out.data());
    }
    CHECK(bn.num_batches_tracked.count == 3);
    for (size_t c = 0; c < 8; ++c) CHECK(bn.running_mean.value(c) == doctest::Approx(mean_of_means[c]).epsilon(1e-5));
}

TEST_CASE("a printout's error starts with where the text came from, or with its line where that is empty") {
    const std::string bad = "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Tanh()\n)";
    const std::string cli = error_of([&] { model_spec_from_text(bad); });
    const std::string page = error_of([&] { model_spec_from_text(bad, ""); });
    CHECK(cli.rfind("--model: line 3: ", 0) == 0);
    CHECK(page.rfind("line 3: ", 0) == 0);
    CHECK(cli == "--model: " + page);
}

TEST_CASE("layers sgdx cannot build are refused naming their line") {
    auto build = [](const std::string& text) {
        return error_of([&] {
            const LayerList layers = parse_printout(text, "net.txt");
            Rng rng(0);
            build_network(layers, network_input(layers, 28, 28), rng, 0);
        });
    };
    CHECK(build("Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 5), stride=(1, 1))\n)") ==
          "line 2, layer (0): Conv2d: kernel_size (3, 5) differs across height and width: sgdx takes equal ones");
    CHECK(build("Sequential(\n  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
                "  (1): MaxPool2d(kernel_size=2, stride=2, padding=1, dilation=1, ceil_mode=False)\n)") ==
          "line 3, layer (1): MaxPool2d: padding other than 0 is not supported for pooling");
    // shapes that do not fit name the line too
    CHECK(build("Sequential(\n  (0): Linear(in_features=100, out_features=10, bias=True)\n)").rfind(
              "line 2, layer (0): Linear: ", 0) == 0);
    CHECK(build("Sequential(\n  (0): Tanh()\n)").rfind("net.txt: line 2: ", 0) == 0);
    // a Linear on an image: PyTorch would apply it to the last axis alone and fail
    const std::string no_flatten =
        "line 4, layer (2): Linear: its input is still an image (channels, height, width): add Flatten() before it "
        "(PyTorch's Linear would act on the last axis alone)";
    CHECK(build("Sequential(\n  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
                "  (1): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1))\n"
                "  (2): Linear(in_features=5408, out_features=10, bias=True)\n)") == no_flatten);
    CHECK(build("Sequential(\n  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1))\n  (1): ReLU()\n"
                "  (2): Linear(in_features=5408, out_features=10, bias=True)\n)") == no_flatten);
    CHECK(build("Sequential(\n  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1))\n  (1): Flatten(start_dim=1, end_dim=-1)\n"
                "  (2): Linear(in_features=5408, out_features=10, bias=True)\n)") == "");
}

TEST_CASE("the zoo's Sequentials come from core's layer lists and print as PyTorch prints them") {
    for (const char* name : {"cnn_sequential", "mlp", "lenet", "bncnn"}) {
        ModelSpec spec;
        spec.architecture = name;
        auto model = make_model(spec, 3);
        const auto meta = model_metadata(spec);
        const std::string printout = meta.at("architecture");
        CAPTURE(printout);
        // a printout of the zoo's is that model again, with the same weights from the same seed
        ModelSpec custom = model_spec_from_text(printout);
        auto again = make_model(custom, 3);
        auto a = model->named_parameters(), b = again->named_parameters();
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].first == b[i].first);
            CHECK(a[i].second->value == b[i].second->value);
        }
    }
}

TEST_CASE("after a divergence the session restores BatchNorm's running statistics with the weights") {
    TensorDataset train = mnist_head(0, 640, "train"), valid = mnist_head(640, 768, "valid");
    ModelSpec spec = model_spec_from_text(kPrintout);
    auto model = make_model(spec, 2);
    SgdOptions o;
    o.lr = 0.05f;
    SGD opt(model->parameters(), o);
    DataLoader train_dl(train, 64), valid_dl(valid, 128);
    fit(1, *model, opt, train_dl, valid_dl);  // one good epoch
    auto& bn = dynamic_cast<BatchNorm2d&>(dynamic_cast<Sequential&>(*model)[2]);
    const auto mean = bn.running_mean.value, var = bn.running_var.value;
    const int64_t tracked = bn.num_batches_tracked.count;
    opt.set_lr(3e38f);
    CHECK_THROWS_AS(fit(2, *model, opt, train_dl, valid_dl), DivergenceError);
    CHECK(all_finite(*model));
    CHECK(bn.running_mean.value == mean);
    CHECK(bn.running_var.value == var);
    CHECK(bn.num_batches_tracked.count == tracked);
}
