// The data-parallel step (runtime/data_parallel.hpp): on 2 threads each half of a
// batch runs through the whole network on its own replica and the gradients are
// summed, which must train as the 1-thread step does (within float rounding), give
// the same bits run after run, and leave BatchNorm and Dropout networks (whose
// samples are not independent in training) on the undivided path.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "models/zoo.hpp"
#include "runtime/backend.hpp"
#include "runtime/data_parallel.hpp"
#include "runtime/network.hpp"
#include "runtime/thread_pool.hpp"
#include "runtime/train.hpp"
#include "tutorial_data.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

// Every model of the zoo splits under these (the logistic model and the MLP too,
// which the measured rule leaves undivided): restored when it goes out of scope.
struct SplitEverything {
    DataParallelRule saved = data_parallel_rule();
    SplitEverything() { data_parallel_rule() = {0.0, 0.0}; }
    ~SplitEverything() { data_parallel_rule() = saved; }
};

struct Trained {
    std::vector<std::vector<float>> params;
    std::vector<float> losses;
    bool split = false;  // the workspace had replicas and split the batches
};

// `steps` SGD steps (momentum and weight decay) of batches of `bs` rows on `threads`
// threads, from the model's seed-3 weights.
Trained train_steps(const std::string& name, size_t threads, size_t bs, size_t steps, const TensorDataset& data) {
    set_num_threads(threads);
    ModelSpec spec;
    spec.architecture = name;
    auto model = make_model(spec, 3);
    SgdOptions o = default_sgd(name);
    o.momentum = 0.9f;
    o.weight_decay = 1e-4f;
    SGD opt(model->parameters(), o);
    DataLoader dl(data, bs, true, 11), valid(data, bs);
    Workspace ws;
    prepare(*model, dl, valid, ws);
    dl.start_epoch();
    Trained out;
    out.split = ws.parallel && ws.parallel->splits(*model, bs);
    for (size_t i = 0; i < steps; ++i) out.losses.push_back(loss_batch(*model, dl.batch(i), ws, &opt).loss);
    for (Parameter* p : model->parameters()) out.params.emplace_back(p->value.begin(), p->value.end());
    set_num_threads(1);
    return out;
}

// The largest difference over the largest value, tensor by tensor.
double worst_relative(const Trained& a, const Trained& b) {
    double worst = 0;
    for (size_t t = 0; t < a.params.size(); ++t) {
        double diff = 0, scale = 0;
        for (size_t i = 0; i < a.params[t].size(); ++i) {
            diff = std::max(diff, double(std::fabs(a.params[t][i] - b.params[t][i])));
            scale = std::max(scale, double(std::fabs(b.params[t][i])));
        }
        const double e = diff / std::max(scale, 1e-30);
        if (!(e <= worst)) worst = e;  // NaN counts as worst
    }
    return worst;
}

}  // namespace

TEST_CASE("data-parallel step: 2 threads train as 1 does, for every zoo model and ragged batches") {
    const SplitEverything split;
    TensorDataset data = mnist_head(0, 4 * 65, "train");
    for (const char* name : {"logistic", "mlp", "cnn", "lenet"}) {
        for (size_t bs : {1, 3, 63, 64, 65}) {
            CAPTURE(name); CAPTURE(bs);
            const Trained one = train_steps(name, 1, bs, 3, data);
            const Trained two = train_steps(name, 2, bs, 3, data);
            CHECK_FALSE(one.split);
            CHECK(two.split == (bs >= 2));  // a part needs a row at least
            REQUIRE(one.params.size() == two.params.size());
            CHECK(worst_relative(two, one) < 1e-5);
            for (size_t i = 0; i < one.losses.size(); ++i)
                CHECK(two.losses[i] == doctest::Approx(one.losses[i]).epsilon(1e-5));
            // The same thread count gives the same bits, whichever thread ran which part.
            const Trained again = train_steps(name, 2, bs, 3, data);
            CHECK(again.params == two.params);
            CHECK(again.losses == two.losses);
        }
    }
}

TEST_CASE("data-parallel step: validation splits too, with the 1-thread loss and accuracy") {
    const SplitEverything split;
    TensorDataset train = mnist_head(0, 640, "train"), valid = mnist_head(640, 1000, "valid");
    for (const char* name : {"mlp", "cnn"}) {  // the MLP as the forced rule splits it
        CAPTURE(name);
        std::vector<EvalResult> results;
        for (size_t threads : {1, 2}) {
            set_num_threads(threads);
            ModelSpec spec;
            spec.architecture = name;
            auto model = make_model(spec, 5);
            SGD opt(model->parameters(), default_sgd(name));
            DataLoader train_dl(train, 64, true, 1), valid_dl(valid, 128);
            Workspace ws;
            prepare(*model, train_dl, valid_dl, ws);
            CHECK(bool(ws.parallel) == (threads == 2));
            train_epoch(*model, opt, train_dl, ws, 1, 1);
            results.push_back(evaluate(*model, valid_dl, ws));
        }
        set_num_threads(1);
        CHECK(results[1].count == results[0].count);
        CHECK(results[1].loss == doctest::Approx(results[0].loss).epsilon(1e-4));
        CHECK(std::fabs(results[1].accuracy - results[0].accuracy) <= 2.0 / double(results[0].count));
    }
}

TEST_CASE("data-parallel step: the measured rule splits the convolutional networks, not the fully connected ones") {
    TensorDataset data = mnist_head(0, 256, "train");
    set_num_threads(2);
    for (const char* name : {"logistic", "mlp", "cnn", "lenet"}) {
        CAPTURE(name);
        ModelSpec spec;
        spec.architecture = name;
        auto model = make_model(spec, 0);
        DataLoader dl(data, 64), valid(data, 128);
        Workspace ws;
        prepare(*model, dl, valid, ws);
        const bool connected = std::string(name) == "logistic" || std::string(name) == "mlp";
        CHECK(bool(ws.parallel) == !connected);
        if (ws.parallel) {
            CHECK(ws.parallel->splits(*model, 64));
            CHECK_FALSE(ws.parallel->splits(*model, 1));  // too few rows: the undivided path
        }
    }
    set_num_threads(1);
}

TEST_CASE("data-parallel step: BatchNorm and Dropout networks keep the undivided path and still train") {
    TensorDataset data = mnist_head(0, 640, "train");
    const SplitEverything split;
    ModelSpec bn;
    bn.architecture = "bncnn";
    ModelSpec dropout = model_spec_from_text(
        "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n  (1): Linear(in_features=784, out_features=64, bias=True)\n"
        "  (2): ReLU()\n  (3): Dropout(p=0.25, inplace=False)\n  (4): Linear(in_features=64, out_features=10, bias=True)\n)");
    for (const ModelSpec* spec : {&bn, &dropout}) {
        CAPTURE(describe(*spec));
        set_num_threads(2);
        auto model = make_model(*spec, 1);
        model->train();
        CHECK_FALSE(model->separable_by_sample());
        model->eval();
        CHECK(model->separable_by_sample());  // running statistics, no mask: each sample on its own
        model->train();
        SGD opt(model->parameters(), default_sgd("cnn"));
        DataLoader dl(data, 64, true, 3), valid(data, 128);
        Workspace ws;
        prepare(*model, dl, valid, ws);
        CHECK(ws.parallel == nullptr);
        const double first = train_epoch(*model, opt, dl, ws, 1, 2);
        const double second = train_epoch(*model, opt, dl, ws, 2, 2);
        CHECK(std::isfinite(second));
        CHECK(second < first);
        set_num_threads(1);
    }
}

TEST_CASE("Module::replicate: the same parameters by name and value, its own storage, the same outputs") {
    TensorDataset data = mnist_head(0, 8, "train");
    for (const char* name : {"logistic", "cnn", "cnn_sequential", "mlp", "lenet"}) {
        CAPTURE(name);
        ModelSpec spec;
        spec.architecture = name;
        auto model = make_model(spec, 2);
        auto copy = model->replicate();
        REQUIRE(copy != nullptr);
        auto a = model->named_parameters(), b = copy->named_parameters();
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].first == b[i].first);
            CHECK(a[i].second->value == b[i].second->value);
            CHECK(a[i].second->value.data() != b[i].second->value.data());
        }
        DataLoader dl(data, 8);
        const Batch& batch = dl.batch(0);
        std::vector<float> ya(8 * 10), yb(8 * 10);
        model->forward(batch.x, 8, ya.data());
        copy->forward(batch.x, 8, yb.data());
        CHECK(ya == yb);
    }
    ModelSpec bn;
    bn.architecture = "bncnn";
    CHECK(make_model(bn, 0)->replicate() == nullptr);  // BatchNorm has no clone
}

TEST_CASE("forward_backward_rows: a large batch in cache-sized sub-batches gives the batch's logits, loss and gradients") {
    // 300 rows of the tutorial CNN (~36 KB of activations a row: 2 sub-batches of
    // 150) against one pass of the whole batch: logits row by row the same bits,
    // loss and gradients the same up to the order of the sums.
    TensorDataset data = mnist_head(0, 300, "train");
    ModelSpec spec;
    spec.architecture = "cnn";
    auto model = make_model(spec, 4);
    const size_t B = 300, C = model->out_features();
    REQUIRE(cache_rows(*model, B) < B);
    REQUIRE(cache_rows(*model, 64) == 64);  // a batch of 64 stays whole
    DataLoader dl(data, B);
    const Batch& b = dl.batch(0);
    REQUIRE(b.pixels);
    std::vector<float> z1(B * C), dz1(B * C), z2(B * C), dz2(B * C);
    model->train();
    // the whole batch at once, by hand
    model->forward(b.pixels, b.scale, B, z1.data());
    size_t right1 = 0;
    const double total1 = active_kernels().softmax_xent(z1.data(), b.y, dz1.data(), 1.f / B, B, C, &right1);
    model->zero_grad();
    model->backward(b.pixels, b.scale, dz1.data(), B);
    std::vector<std::vector<float>> g1;
    for (Parameter* p : model->parameters()) g1.emplace_back(p->grad.begin(), p->grad.end());
    model->zero_grad();
    size_t right2 = 0;
    const double total2 = forward_backward_rows(*model, b, 0, B, true, z2.data(), dz2.data(), 1.f / B, &right2);
    CHECK(z1 == z2);
    CHECK(right1 == right2);
    CHECK(std::fabs(total1 - total2) <= 1e-6 * std::fabs(total1));
    auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
        CAPTURE(i);
        CHECK(max_rel_error(params[i]->grad.data(), g1[i].data(), g1[i].size(), 1e-3) < 1e-4);
    }

    // A sub-batch whose loss is not finite adds nothing: a NaN in row 200 (float inputs).
    std::vector<float> x(B * b.features);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(b.pixels[i]) * b.scale;
    x[200 * b.features + 300] = std::numeric_limits<float>::quiet_NaN();
    Batch f = b;
    f.pixels = nullptr;
    f.x = x.data();
    model->zero_grad();
    const double nan_total = forward_backward_rows(*model, f, 0, B, false, z2.data(), dz2.data(), 1.f / B, nullptr);
    CHECK(std::isnan(nan_total));
    bool grads_finite = true;
    for (Parameter* p : params)
        for (float g : p->grad) grads_finite = grads_finite && std::isfinite(g);
    CHECK(grads_finite);
    model->zero_grad();

    // BatchNorm in training needs the whole batch: never cut.
    ModelSpec bn;
    bn.architecture = "bncnn";
    auto bn_model = make_model(bn, 1);
    bn_model->train();
    CHECK(cache_rows(*bn_model, 4096) == 4096);
    bn_model->eval();
    CHECK(cache_rows(*bn_model, 4096) < 4096);
}
