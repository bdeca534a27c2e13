#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "alloc_counter.hpp"
#include "helpers.hpp"
#include "module_helpers.hpp"
#include "runtime/activation.hpp"
#include "runtime/batchnorm.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/error.hpp"
#include "runtime/file_io.hpp"
#include "runtime/pooling.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/sequential.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

std::string fixture(const char* name) { return std::string(SGDX_SOURCE_DIR) + "/tests/fixtures/" + name; }

double max_abs_diff(const float* a, const float* b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        const double e = std::fabs(double(a[i]) - double(b[i]));
        if (!(e <= worst)) worst = e;  // NaN counts as worst
    }
    return worst;
}

// Σ y·r in double: a loss whose gradient in y is r.
double dot(const std::vector<float>& y, const std::vector<float>& r) {
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * double(r[i]);
    return s;
}

}  // namespace

TEST_CASE("BatchNorm has PyTorch's parameter and buffer names, shapes, dtypes and initial values") {
    BatchNorm2d bn(3);
    auto params = bn.named_parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].first == "weight");
    CHECK(params[1].first == "bias");
    CHECK(bn.weight.value == xt::xarray<float>({1.f, 1.f, 1.f}));
    CHECK(bn.bias.value == xt::xarray<float>({0.f, 0.f, 0.f}));
    CHECK(bn.weight.grad.shape() == std::vector<size_t>{3});
    auto buffers = bn.named_buffers();
    REQUIRE(buffers.size() == 3);
    CHECK(buffers[0].first == "running_mean");
    CHECK(buffers[1].first == "running_var");
    CHECK(buffers[2].first == "num_batches_tracked");
    CHECK(buffers[0].second->dtype == DType::F32);
    CHECK(buffers[0].second->shape() == std::vector<size_t>{3});
    CHECK(bn.running_mean.value == xt::xarray<float>({0.f, 0.f, 0.f}));
    CHECK(bn.running_var.value == xt::xarray<float>({1.f, 1.f, 1.f}));
    CHECK(buffers[2].second->dtype == DType::I64);
    CHECK(buffers[2].second->shape().empty());  // a 0-d tensor, as PyTorch's
    CHECK(bn.num_batches_tracked.count == 0);
    CHECK(bn.type_name() == "BatchNorm2d");
    bn.build({3, 5, 7});
    CHECK(bn.describe() == "BatchNorm2d(3) [3, 5, 7] -> [3, 5, 7]");

    BatchNorm1d plain(4, 1e-3, 0.2, false, false);
    CHECK(plain.type_name() == "BatchNorm1d");
    CHECK(plain.named_parameters().empty());
    CHECK(plain.named_buffers().empty());
    CHECK(plain.describe() == "BatchNorm1d(4, eps 0.001, momentum 0.2, no affine, no running stats) [4] -> [4]");

    // Inside a Sequential the names are dotted, as in a state_dict.
    Sequential seq;
    seq.emplace<BatchNorm1d>(3);
    seq.emplace<ReLU>();
    seq.emplace<BatchNorm1d>(3, 1e-5, 0.1, true, true);
    seq.build({3});
    std::vector<std::string> names;
    for (auto& [name, b] : seq.named_buffers()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"0.running_mean", "0.running_var", "0.num_batches_tracked",
                                            "2.running_mean", "2.running_var", "2.num_batches_tracked"});
}

TEST_CASE("BatchNorm refuses shapes without its channels, and training on one value per channel") {
    BatchNorm2d bn(3);
    CHECK_THROWS_WITH_AS(bn.build({4, 5, 7}), doctest::Contains("input shape [4, 5, 7] is not (3, H, W)"), Error);
    CHECK_THROWS_WITH_AS(bn.build({3, 35}), doctest::Contains("is not (3, H, W)"), Error);
    BatchNorm1d bn1(3);
    CHECK_THROWS_WITH_AS(bn1.build({3, 5, 7}), doctest::Contains("is not (3) or (3, L)"), Error);
    CHECK(bn1.build({3, 5}) == Shape{3, 5});
    bn1.build({3});
    std::vector<float> x{1, 2, 3}, y(3);
    CHECK_THROWS_WITH_AS(bn1.forward(x.data(), 1, y.data()), doctest::Contains("more than 1 value per channel"), Error);
    bn1.eval();  // running statistics: one sample is fine
    bn1.forward(x.data(), 1, y.data());
    CHECK(y[0] == doctest::Approx(1 / std::sqrt(1 + 1e-5)));
}

// tests/fixtures/batchnorm.safetensors is PyTorch's (tests/make_layer_fixtures.py):
// two training steps and one eval step of each layer, with the gradients of each
// step and the buffers after it.
TEST_CASE("BatchNorm1d/2d match PyTorch: outputs, gradients and running statistics over training and eval steps") {
    const SafetensorsFile f = read_safetensors(fixture("batchnorm.safetensors"));
    CHECK(f.metadata.at("bn1d") == "BatchNorm1d(3)");
    CHECK(f.metadata.at("bn2d") == "BatchNorm2d(3, eps=0.001, momentum=0.2)");
    CHECK(f.metadata.at("plain") == "BatchNorm1d(3, affine=False, track_running_stats=False)");
    CHECK(f.metadata.at("cumavg") == "BatchNorm1d(3, momentum=None)");
    struct Case {
        const char* name;
        std::unique_ptr<BatchNorm> bn;
        Shape sample;
    };
    Case cases[] = {
        {"bn1d", std::make_unique<BatchNorm1d>(3), {3}},
        {"bn2d", std::make_unique<BatchNorm2d>(3, 1e-3, 0.2), {3, 5, 7}},
        {"plain", std::make_unique<BatchNorm1d>(3, 1e-5, 0.1, false, false), {3, 5}},
        {"cumavg", std::make_unique<BatchNorm1d>(3, 1e-5, std::nullopt), {3}},  // momentum=None
    };
    const size_t B = 4;
    double worst_y = 0, worst_grad = 0, worst_stats = 0;
    for (Case& c : cases) {
        CAPTURE(c.name);
        BatchNorm& bn = *c.bn;
        bn.build(c.sample);
        const std::string p = std::string(c.name) + ".";
        auto t = [&](const std::string& n) -> const TensorData& {
            auto it = f.tensors.find(p + n);
            REQUIRE_MESSAGE(it != f.tensors.end(), "the fixture has no " << p + n);
            return it->second;
        };
        if (bn.affine()) {
            std::copy(t("weight").values.begin(), t("weight").values.end(), bn.weight.value.begin());
            std::copy(t("bias").values.begin(), t("bias").values.end(), bn.bias.value.begin());
        }
        const auto& dy = t("dy").values;
        const size_t n = B * bn.in_features();
        REQUIRE(dy.size() == n);
        for (int k = 0; k < 3; ++k) {
            CAPTURE(k);
            const std::string s = std::to_string(k);
            bn.train(k < 2);
            const auto& x = t("x" + s).values;
            REQUIRE(x.size() == n);
            std::vector<float> y(n), dx(n);
            bn.forward(x.data(), B, y.data());
            const double ey = max_abs_diff(y.data(), t("y" + s).values.data(), n);
            CHECK(ey < 1e-5);
            worst_y = std::max(worst_y, ey);
            bn.zero_grad();
            bn.backward(x.data(), dy.data(), B, dx.data());
            double eg = max_abs_diff(dx.data(), t("dx" + s).values.data(), n);
            if (bn.affine()) {
                eg = std::max(eg, max_abs_diff(bn.weight.grad.data(), t("dweight" + s).values.data(), 3));
                eg = std::max(eg, max_abs_diff(bn.bias.grad.data(), t("dbias" + s).values.data(), 3));
            }
            CHECK(eg < 1e-5);
            worst_grad = std::max(worst_grad, eg);
            if (bn.track_running_stats()) {
                double es = std::max(max_abs_diff(bn.running_mean.value.data(), t("running_mean" + s).values.data(), 3),
                                     max_abs_diff(bn.running_var.value.data(), t("running_var" + s).values.data(), 3));
                CHECK(es < 1e-6);
                worst_stats = std::max(worst_stats, es);
                const TensorData& count = t("num_batches_tracked" + s);
                CHECK(count.dtype == DType::I64);
                CHECK(count.shape.empty());
                REQUIRE(count.ints.size() == 1);
                CHECK(bn.num_batches_tracked.count == count.ints[0]);
            }
        }
    }
    MESSAGE("max |sgdx - PyTorch|: outputs " << worst_y << ", gradients " << worst_grad << ", running statistics "
                                             << worst_stats);
}

TEST_CASE("BatchNorm gradients (input, weight, bias) match finite differences, in training and in eval mode") {
    for (bool two_d : {false, true}) {
        for (bool training : {true, false}) {
            CAPTURE(two_d);
            CAPTURE(training);
            Rng rng(31);
            std::unique_ptr<BatchNorm> bn;
            if (two_d) bn = std::make_unique<BatchNorm2d>(3);
            else bn = std::make_unique<BatchNorm1d>(3);
            bn->build(two_d ? Shape{3, 3, 2} : Shape{3});
            const size_t B = 5, n = B * bn->in_features();
            for (float& w : bn->weight.value) w = rng.uniform(0.5f, 1.5f);
            for (float& b : bn->bias.value) b = rng.uniform(-0.5f, 0.5f);
            std::vector<float> x = random_floats(rng, n, -1.f, 2.f), r = random_floats(rng, n), y(n), dx(n);
            // Running statistics away from 0 and 1, from a few training batches.
            for (int i = 0; i < 3; ++i) {
                std::vector<float> warm = random_floats(rng, n, -2.f, 3.f);
                bn->forward(warm.data(), B, y.data());
            }
            bn->train(training);
            auto loss = [&] {
                bn->forward(x.data(), B, y.data());
                return dot(y, r);
            };
            loss();
            bn->zero_grad();
            bn->backward(x.data(), r.data(), B, dx.data());
            // In training mode Σ_x dx = 0 per channel (a shift of the batch changes nothing):
            // a gradient that ignored the batch statistics would not be.
            check_finite_differences(x.data(), dx.data(), n, loss, 1e-2f, 2e-3, "input");
            const std::vector<float> dw(bn->weight.grad.begin(), bn->weight.grad.end());
            const std::vector<float> db(bn->bias.grad.begin(), bn->bias.grad.end());
            check_finite_differences(bn->weight.value.data(), dw.data(), 3, loss, 1e-2f, 2e-3, "weight");
            check_finite_differences(bn->bias.value.data(), db.data(), 3, loss, 1e-2f, 2e-3, "bias");
        }
    }
}

TEST_CASE("BatchNorm in training mode: the batch's statistics, biased in y and unbiased in running_var") {
    BatchNorm1d bn(1, 1e-5, 0.5);
    std::vector<float> x{1, 2, 3, 6}, y(4);
    bn.forward(x.data(), 4, y.data());
    // mean 3, biased variance 3.5, unbiased 14/3
    for (size_t i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx((x[i] - 3) / std::sqrt(3.5 + 1e-5)));
    CHECK(bn.running_mean.value(0) == doctest::Approx(0.5 * 3));
    CHECK(bn.running_var.value(0) == doctest::Approx(0.5 * 1 + 0.5 * 14.0 / 3));
    CHECK(bn.num_batches_tracked.count == 1);
    bn.eval();
    bn.forward(x.data(), 4, y.data());
    CHECK(bn.num_batches_tracked.count == 1);  // eval counts nothing
    const double rv = 0.5 + 0.5 * 14.0 / 3;
    for (size_t i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx((x[i] - 1.5) / std::sqrt(rv + 1e-5)));

    // Without running statistics, eval normalises with the batch's too.
    BatchNorm1d free(1, 1e-5, 0.5, true, false);
    free.eval();
    free.forward(x.data(), 4, y.data());
    for (size_t i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx((x[i] - 3) / std::sqrt(3.5 + 1e-5)));
}

TEST_CASE("BatchNorm: after the first batch of a size, forward and backward allocate nothing") {
    BatchNorm2d bn(4);
    bn.build({4, 6, 5});
    Rng rng(5);
    const size_t B = 8, n = B * bn.in_features();
    std::vector<float> x = random_floats(rng, n), dy = random_floats(rng, n), y(n), dx(n);
    for (bool training : {true, false}) {
        bn.train(training);
        bn.forward(x.data(), B, y.data());
        bn.backward(x.data(), dy.data(), B, dx.data());
        const size_t before = g_allocations.load();
        for (int i = 0; i < 3; ++i) {
            bn.forward(x.data(), B, y.data());
            bn.backward(x.data(), dy.data(), B, dx.data());
        }
        CHECK(g_allocations.load() - before == 0);
    }
}

// The Sequential keeps a conv's output channels-last only up to another conv or a
// view through ReLUs and pools: a BatchNorm2d between them must see PyTorch's NCHW.
TEST_CASE("Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d -> Conv2d in a Sequential equals the layers run one by one") {
    Rng rng(41), rng2(41);
    Sequential seq;
    seq.emplace<Conv2d>(2, 4, 3, 1, 1, rng);
    seq.emplace<BatchNorm2d>(4);
    seq.emplace<ReLU>();
    seq.emplace<MaxPool2d>(2);
    seq.emplace<Conv2d>(4, 3, 3, 1, 0, rng);
    seq.build({2, 9, 8});
    Conv2d c1(2, 4, 3, 1, 1, rng2);
    BatchNorm2d bn(4);
    ReLU relu;
    MaxPool2d pool(2);
    Conv2d c2(4, 3, 3, 1, 0, rng2);
    Module* layers[] = {&c1, &bn, &relu, &pool, &c2};
    Shape s{2, 9, 8};
    for (Module* m : layers) s = m->build(s);
    REQUIRE(s == seq.output_shape());
    for (size_t i = 0; i < 5; ++i) copy_parameters(seq[i], *layers[i]);
    for (float& w : dynamic_cast<BatchNorm2d&>(seq[1]).weight.value) w = rng.uniform(0.5f, 2.f);
    copy_parameters(seq[1], bn);

    const size_t B = 3;
    std::vector<float> x = random_floats(rng, B * 2 * 9 * 8), dy = random_floats(rng, B * seq.out_features());
    for (bool training : {true, false}) {
        CAPTURE(training);
        seq.train(training);
        for (Module* m : layers) m->train(training);
        std::vector<float> y(B * seq.out_features()), dx(x.size());
        seq.zero_grad();
        seq.forward(x.data(), B, y.data());
        seq.backward(x.data(), dy.data(), B, dx.data());
        // one by one, every tensor in PyTorch's layout
        std::vector<std::vector<float>> acts(6);
        acts[0] = x;
        for (size_t i = 0; i < 5; ++i) {
            acts[i + 1].resize(B * layers[i]->out_features());
            layers[i]->forward(acts[i].data(), B, acts[i + 1].data());
        }
        std::vector<float> g = dy;
        for (Module* m : layers) m->zero_grad();
        for (size_t i = 5; i-- > 0;) {
            std::vector<float> gin(B * layers[i]->in_features());
            layers[i]->backward(acts[i].data(), g.data(), B, gin.data());
            g = std::move(gin);
        }
        CHECK(max_rel_error(y.data(), acts[5].data(), y.size()) < 1e-5);
        CHECK(max_rel_error(dx.data(), g.data(), dx.size()) < 1e-5);
        auto pa = seq.parameters();
        std::vector<Parameter*> pb;
        for (Module* m : layers)
            for (Parameter* p : m->parameters()) pb.push_back(p);
        REQUIRE(pa.size() == pb.size());
        for (size_t i = 0; i < pa.size(); ++i) {
            CAPTURE(i);
            CHECK(max_rel_error(pa[i]->grad.data(), pb[i]->grad.data(), pa[i]->grad.size()) < 1e-5);
        }
        const auto& sbn = dynamic_cast<BatchNorm2d&>(seq[1]);
        CHECK(max_rel_error(sbn.running_mean.value.data(), bn.running_mean.value.data(), 4) < 1e-6);
        CHECK(max_rel_error(sbn.running_var.value.data(), bn.running_var.value.data(), 4) < 1e-6);
        CHECK(sbn.num_batches_tracked.count == bn.num_batches_tracked.count);
    }
}

TEST_CASE("a PyTorch BatchNorm2d state_dict (num_batches_tracked I64, shape []) loads exactly and is written back byte for byte") {
    const std::string path = fixture("batchnorm2d_state.safetensors");
    const std::vector<uint8_t> bytes = read_file(path);
    const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), path);
    BatchNorm2d bn(3, 1e-3, 0.2);
    load_model(bn, f, path);
    CHECK(bn.num_batches_tracked.count == (int64_t(1) << 53) + 1);  // no float or double holds it
    for (size_t c = 0; c < 3; ++c) {
        CHECK(bn.running_mean.value(c) == f.tensors.at("running_mean").values[c]);
        CHECK(bn.running_var.value(c) == f.tensors.at("running_var").values[c]);
        CHECK(bn.weight.value(c) == f.tensors.at("weight").values[c]);
    }
    CHECK(bn.running_var.value(0) != 1.f);  // trained statistics, not the initial ones
    CHECK(encode_model(bn) == bytes);

    // A file that does not fit is refused, naming the file and the tensor, and changes nothing.
    auto refused = [&](SafetensorsFile bad, const char* fragment) {
        CAPTURE(fragment);
        BatchNorm2d target(3);
        CHECK_THROWS_WITH_AS(load_model(target, bad, "bn.safetensors"), doctest::Contains(fragment), Error);
        CHECK(target.num_batches_tracked.count == 0);
        CHECK(target.running_var.value == xt::xarray<float>({1.f, 1.f, 1.f}));
        CHECK(target.weight.value == xt::xarray<float>({1.f, 1.f, 1.f}));
    };
    SafetensorsFile as_float = f;
    TensorData& t = as_float.tensors.at("num_batches_tracked");
    t.dtype = DType::F32;
    t.ints.clear();
    t.values = {2.f};
    refused(as_float, "bn.safetensors: tensor 'num_batches_tracked' has dtype F32, the model expects I64");
    SafetensorsFile no_var = f;
    no_var.tensors.erase("running_var");
    refused(no_var, "bn.safetensors: the model file has no tensor 'running_var'");
    SafetensorsFile shaped = f;
    shaped.tensors.at("num_batches_tracked").shape = {1};
    refused(shaped, "tensor 'num_batches_tracked' has shape [1], the model expects []");
    // A model without running statistics has no such tensors.
    BatchNorm2d free(3, 1e-3, 0.2, true, false);
    CHECK_THROWS_WITH_AS(load_model(free, f, path), doctest::Contains("unexpected tensor 'num_batches_tracked'"), Error);
}
