// "What is torch.nn really?" as tests: each refactoring step runs the code before
// and after it from the same initial weights and data order, and they must agree.
// The "before" side is written out by hand on plain arrays, as the tutorial's
// first version is, with its own gradient formulas.
#include <doctest/doctest.h>

#include <cmath>

#include "models/mnist_logistic.hpp"
#include "runtime/loss.hpp"
#include "runtime/train.hpp"
#include "tutorial_data.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

constexpr size_t kIn = 784, kOut = 10, kBs = 64;

// The tutorial's raw tensors: weights (784, 10) — note, transposed from Linear's
// (10, 784) — and bias (10).
struct RawModel {
    std::vector<double> weights = std::vector<double>(kIn * kOut), bias = std::vector<double>(kOut);

    static RawModel from(const MnistLogistic& m) {
        RawModel r;
        for (size_t c = 0; c < kOut; ++c) {
            r.bias[c] = m.lin.bias.value(c);
            for (size_t k = 0; k < kIn; ++k) r.weights[k * kOut + c] = m.lin.weight.value(c, k);
        }
        return r;
    }
    // model(xb) = log_softmax(xb @ weights + bias); loss = nll. Returns the loss and,
    // if grad_w/grad_b are given, adds d(loss)/d(weights, bias) to them.
    double loss(const TensorDataset& ds, size_t begin, size_t end, std::vector<double>* grad_w = nullptr,
                std::vector<double>* grad_b = nullptr) const {
        const size_t n = end - begin;
        double total = 0;
        for (size_t i = begin; i < end; ++i) {
            const uint8_t* x = ds.image(i);
            double z[kOut];
            for (size_t c = 0; c < kOut; ++c) {
                z[c] = bias[c];
                for (size_t k = 0; k < kIn; ++k) z[c] += x[k] / 255.0 * weights[k * kOut + c];
            }
            double sum_exp = 0;  // the tutorial's log_softmax has no max subtraction
            for (double v : z) sum_exp += std::exp(v);
            const size_t t = ds.label(i);
            total -= z[t] - std::log(sum_exp);
            if (grad_w)
                for (size_t c = 0; c < kOut; ++c) {
                    double d = (std::exp(z[c]) / sum_exp - (c == t)) / double(n);
                    (*grad_b)[c] += d;
                    for (size_t k = 0; k < kIn; ++k) (*grad_w)[k * kOut + c] += x[k] / 255.0 * d;
                }
        }
        return total / double(n);
    }
};

// Largest |raw - model| over all parameters.
double distance(const RawModel& raw, const MnistLogistic& m) {
    double worst = 0;
    for (size_t c = 0; c < kOut; ++c) {
        worst = std::max(worst, std::fabs(raw.bias[c] - m.lin.bias.value(c)));
        for (size_t k = 0; k < kIn; ++k)
            worst = std::max(worst, std::fabs(raw.weights[k * kOut + c] - m.lin.weight.value(c, k)));
    }
    return worst;
}

double max_weight(const MnistLogistic& m) {
    double w = 0;
    for (float v : m.lin.weight.value) w = std::max(w, double(std::fabs(v)));
    return w;
}

}  // namespace

TEST_CASE("step 1: log_softmax(xb @ weights + bias) + nll  ==  Mnist_Logistic + cross_entropy") {
    TensorDataset ds = mnist_head(0, 256, "head");
    MnistLogistic model(kIn, kOut, 1);
    RawModel raw = RawModel::from(model);
    DataLoader dl(ds, kBs);
    Workspace ws;
    for (size_t i = 0; i < dl.size(); ++i) {
        BatchLoss r = loss_batch(model, dl.batch(i), ws);
        CHECK(r.loss == doctest::Approx(raw.loss(ds, i * kBs, (i + 1) * kBs)).epsilon(1e-5));
    }
    // the untrained loss is near log(10), as the tutorial prints (~2.3)
    CHECK(raw.loss(ds, 0, kBs) == doctest::Approx(std::log(10.0)).epsilon(0.15));
}

TEST_CASE("step 2: manual update  ==  parameters() loop  ==  optim.SGD  ==  fit, over one epoch") {
    TensorDataset train = mnist_head(0, 1000, "train");
    TensorDataset valid = mnist_head(1000, 1300, "valid");
    const float lr = 0.5f;
    MnistLogistic by_loop(kIn, kOut, 2), by_sgd(kIn, kOut, 2), by_fit(kIn, kOut, 2);
    RawModel raw = RawModel::from(by_loop);

    // before: for i in range((n - 1) // bs + 1): slice, loss.backward(), weights -= weights.grad * lr
    const size_t n = train.size();
    for (size_t i = 0; i < (n - 1) / kBs + 1; ++i) {
        const size_t start = i * kBs, end = std::min(start + kBs, n);
        std::vector<double> gw(kIn * kOut), gb(kOut);
        raw.loss(train, start, end, &gw, &gb);
        for (size_t j = 0; j < gw.size(); ++j) raw.weights[j] -= gw[j] * lr;
        for (size_t c = 0; c < kOut; ++c) raw.bias[c] -= gb[c] * lr;
    }

    // after (a): for p in model.parameters(): p -= p.grad * lr; model.zero_grad()
    {
        DataLoader dl(train, kBs);  // no shuffle: the slices above
        Workspace ws;
        xt::xtensor<float, 2> dlogits;
        for (const Batch& b : dl) {
            xt::xtensor<float, 2> x = b.xs();
            xt::xtensor<int32_t, 1> y = b.ys();
            cross_entropy(by_loop(x), y, dlogits);
            by_loop.backward(b.x, dlogits.data(), b.size);
            for (Parameter* p : by_loop.parameters()) p->value -= p->grad * lr;
            by_loop.zero_grad();
        }
    }
    // after (b): opt.step(); opt.zero_grad() inside loss_batch
    {
        SGD opt(by_sgd.parameters(), {lr});
        DataLoader dl(train, kBs);
        Workspace ws;
        for (const Batch& b : dl) loss_batch(by_sgd, b, ws, &opt);
    }
    // after (c): fit(epochs, model, opt, train_dl, valid_dl) without shuffling
    {
        SGD opt(by_fit.parameters(), {lr});
        DataLoader train_dl(train, kBs), valid_dl(valid, kBs * 2);
        auto history = fit(1, by_fit, opt, train_dl, valid_dl);
        REQUIRE(history.size() == 1);
        // the validation loss fit reports is the sample-weighted mean of the explicit loop
        RawModel trained = RawModel::from(by_fit);
        CHECK(history[0].valid_loss == doctest::Approx(trained.loss(valid, 0, valid.size())).epsilon(1e-4));
    }

    // One epoch of float32 steps vs the double-precision reference: the weights
    // (|w| ~ 0.1) agree to 1e-3 of their scale; a wrong sign, lr or slice is off by far more.
    const double scale = max_weight(by_sgd);
    CHECK(distance(raw, by_loop) < 1e-3 * scale);
    CHECK(distance(raw, by_sgd) < 1e-3 * scale);
    CHECK(distance(raw, by_fit) < 1e-3 * scale);
    CHECK(by_sgd.lin.weight.value == by_fit.lin.weight.value);  // same kernels, same order: identical
    CHECK(distance(RawModel::from(MnistLogistic(kIn, kOut, 2)), by_sgd) > 1e-2 * scale);  // it did train
}

TEST_CASE("step 3: get_model and get_data wire the tutorial's defaults") {
    auto [model, opt] = get_model();
    CHECK(model->in_features() == 784);
    CHECK(model->out_features() == 10);
    CHECK(opt->options().lr == 0.5f);
    TensorDataset train = mnist_head(0, 300, "train"), valid = mnist_head(300, 400, "valid");
    auto [train_dl, valid_dl] = get_data(train, valid, 64);
    CHECK(train_dl.shuffles());
    CHECK(!valid_dl.shuffles());
    CHECK(train_dl.batch_size() == 64);
    CHECK(valid_dl.batch_size() == 128);  // bs * 2: no gradients, so twice the batch fits
}

TEST_CASE("train() / eval() flags and gradient-free evaluation") {
    TensorDataset valid = mnist_head(0, 200, "valid");
    MnistLogistic model(kIn, kOut, 3);
    model.eval();
    CHECK(!model.is_training());
    CHECK(!model.lin.is_training());
    model.train();
    CHECK(model.lin.is_training());
    DataLoader dl(valid, 128);
    Workspace ws;
    auto before = model.lin.weight.value;
    EvalResult r = evaluate(model, dl, ws);
    CHECK(model.is_training());  // restored
    CHECK(r.count == 200);
    for (float g : model.lin.weight.grad) CHECK(g == 0.f);  // no gradient work
    CHECK(model.lin.weight.value == before);
}
