#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "alloc_counter.hpp"
#include "models/mnist_logistic.hpp"
#include "models/zoo.hpp"
#include "runtime/activation.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"
#include "runtime/mnist.hpp"
#include "runtime/loss.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/sequential.hpp"
#include "runtime/thread_pool.hpp"
#include "runtime/train.hpp"
#include "tutorial_data.hpp"

using namespace sgdx;
using namespace sgdx::test;

TEST_CASE("a training step allocates nothing after prepare (fit's buffer plan)") {
    TensorDataset train = mnist_head(0, 5000, "train");
    for (size_t threads : {1, 2}) {
        for (size_t bs : {64, 2500}) {  // a large batch too (the logistic model never splits its 10 outputs: the networks below cover split layers)
            CAPTURE(threads); CAPTURE(bs);
            set_num_threads(threads);
            SgdOptions o;
            o.momentum = 0.9f;
            o.weight_decay = 1e-4f;
            MnistLogistic model(784, 10, 1);
            SGD opt(model.parameters(), o);
            DataLoader dl(train, bs, true, 7);
            Workspace ws;
            size_t calls = 0;
            ProgressFn progress = [&](const Progress&) { ++calls; };
            // Sizes every buffer, each thread's kernel scratch included, from the shapes.
            prepare(model, dl, dl, ws);
            dl.start_epoch();
            const size_t before = g_allocations.load();
            for (size_t i = 0; i < dl.size(); ++i) loss_batch(model, dl.batch(i), ws, &opt);
            train_epoch(model, opt, dl, ws, 2, 2, progress);  // a whole epoch, new shuffle, callback
            CHECK(g_allocations.load() - before == 0);
            CHECK(calls == dl.size());
        }
    }
    set_num_threads(1);
}

namespace {
// The identity, counting the batches that pass through it.
struct CountingIdentity : Module {
    size_t forwards = 0, backwards = 0;
    void forward(const float* x, size_t batch, float* y) override {
        ++forwards;
        std::copy(x, x + batch * in_features(), y);
    }
    void backward(const float*, const float* dy, size_t batch, float* dx) override {
        ++backwards;
        if (dx) std::copy(dy, dy + batch * in_features(), dx);
    }
    std::string type_name() const override { return "CountingIdentity"; }

protected:
    Shape configure(const Shape& input) override { return input; }
};
}  // namespace

TEST_CASE("prepare runs no batch: it plans the buffers from the shapes, and the steps after it allocate nothing") {
    TensorDataset train = mnist_head(0, 1200, "train"), valid = mnist_head(1200, 1500, "valid");
    for (size_t threads : {1, 2}) {
        for (size_t bs : {64, 600}) {  // 600 rows: the 784x128 layer splits over the threads
            CAPTURE(threads); CAPTURE(bs);
            set_num_threads(threads);
            Rng rng(5);
            Sequential model;
            model.add(std::make_unique<Linear>(784, 128, rng));
            auto& spy = static_cast<CountingIdentity&>(model.add(std::make_unique<CountingIdentity>())[1]);
            model.add(std::make_unique<ReLU>());
            model.add(std::make_unique<Linear>(128, 10, rng));
            model.build({784});
            SGD opt(model.parameters(), SgdOptions{});
            DataLoader train_dl(train, bs, true, 7), valid_dl(valid, bs * 2);
            Workspace ws;
            prepare(model, train_dl, valid_dl, ws);
            CHECK(spy.forwards == 0);
            CHECK(spy.backwards == 0);
            const size_t before = g_allocations.load();
            train_epoch(model, opt, train_dl, ws, 1, 1);
            evaluate(model, valid_dl, ws);
            CHECK(g_allocations.load() - before == 0);
            CHECK(spy.forwards == train_dl.size() + valid_dl.size());
        }
    }
    set_num_threads(1);
}

TEST_CASE("every model: after prepare, a whole epoch and its validation allocate nothing") {
    TensorDataset train = mnist_head(0, 1200, "train"), valid = mnist_head(1200, 1500, "valid");
    for (const std::string& name : model_names()) {
        for (size_t threads : {1, 2}) {
            for (size_t bs : {64, 600}) {  // 600 rows: the networks' layers are split over the threads
                CAPTURE(name); CAPTURE(threads); CAPTURE(bs);
                set_num_threads(threads);
                ModelSpec spec;
                spec.architecture = name;
                auto model = make_model(spec, 3);
                SgdOptions o = default_sgd(name);
                o.weight_decay = 1e-4f;
                SGD opt(model->parameters(), o);
                DataLoader train_dl(train, bs, true, 7), valid_dl(valid, bs * 2);
                Workspace ws;
                const auto before_prepare = model->parameters()[0]->value;
                prepare(*model, train_dl, valid_dl, ws);
                CHECK(model->parameters()[0]->value == before_prepare);  // nothing learnt
                const size_t before = g_allocations.load();
                train_epoch(*model, opt, train_dl, ws, 1, 1);
                EvalResult r = evaluate(*model, valid_dl, ws);
                CHECK(g_allocations.load() - before == 0);
                CHECK(std::isfinite(r.loss));
            }
        }
    }
    set_num_threads(1);
}

TEST_CASE("Adam and AdamW: after prepare, a whole epoch allocates nothing (their state is allocated with them)") {
    TensorDataset train = mnist_head(0, 1200, "train"), valid = mnist_head(1200, 1500, "valid");
    for (const char* name : {"logistic", "mlp", "cnn"}) {
        for (bool decoupled : {false, true}) {
            CAPTURE(name); CAPTURE(decoupled);
            ModelSpec spec;
            spec.architecture = name;
            auto model = make_model(spec, 3);
            std::unique_ptr<Adam> opt = decoupled ? std::make_unique<AdamW>(model->parameters())
                                                  : std::make_unique<Adam>(model->parameters());
            DataLoader train_dl(train, 64, true, 7), valid_dl(valid, 128);
            Workspace ws;
            prepare(*model, train_dl, valid_dl, ws);
            const size_t before = g_allocations.load();
            train_epoch(*model, *opt, train_dl, ws, 1, 1);
            CHECK(g_allocations.load() - before == 0);
            CHECK(opt->steps() == train_dl.size());
            CHECK(all_finite(*model));
        }
    }
}

TEST_CASE("a NaN loss stops fit with the epoch and batch, and the last good weights are kept") {
    TensorDataset train = mnist_head(0, 640, "train"), valid = mnist_head(640, 768, "valid");
    MnistLogistic model(784, 10, 4);
    SgdOptions o;
    o.lr = 0.5f;
    SGD opt(model.parameters(), o);
    DataLoader train_dl(train, 64), valid_dl(valid, 128);
    fit(1, model, opt, train_dl, valid_dl);  // one good epoch
    const auto good = model.lin.weight.value;
    opt.set_lr(3e38f);  // steps overflow to inf, then the logits give NaN
    try {
        fit(3, model, opt, train_dl, valid_dl);
        FAIL("fit did not stop");
    } catch (const DivergenceError& e) {
        CHECK(e.epoch() == 1);
        CHECK(e.batch() >= 1);
        CHECK(std::string(e.what()).find("training diverged") != std::string::npos);
        CHECK(std::string(e.what()).find("epoch 1, batch") != std::string::npos);
    }
    CHECK(model.lin.weight.value == good);  // restored, finite
    CHECK(all_finite(model));
}

TEST_CASE("fit reports progress per batch and per epoch") {
    TensorDataset train = mnist_head(0, 300, "train"), valid = mnist_head(300, 400, "valid");
    auto [model, opt] = get_model();
    auto [train_dl, valid_dl] = get_data(train, valid, 64);
    std::vector<Progress> seen;
    auto history = fit(2, *model, *opt, train_dl, valid_dl, [&](const Progress& p) { seen.push_back(p); });
    REQUIRE(history.size() == 2);
    REQUIRE(seen.size() == 2 * (5 + 1));  // 5 batches + the epoch end, twice
    CHECK(seen[4].batch == 5);
    CHECK(seen[4].samples == 300);
    CHECK(seen[5].phase == Progress::kEpochEnd);
    CHECK(seen[5].valid_acc == history[0].valid_acc);
    CHECK(history[1].valid_loss < history[0].valid_loss + 0.5);
}

TEST_CASE("end to end on real MNIST: 5 epochs reach 0.91, save -> load predicts identically") {
    Splits data = load_splits(DataFiles::in_directory(mnist_dir()), 10000);
    REQUIRE(data.train.size() == 50000);
    auto [model, opt] = get_model(784, 10, SgdOptions{}, 0);
    auto [train_dl, valid_dl] = get_data(data.train, data.valid, 64, 0);
    auto history = fit(5, *model, *opt, train_dl, valid_dl);
    DataLoader test_dl(data.test, 1000);
    Workspace ws;
    EvalResult r = evaluate(*model, test_dl, ws);
    MESSAGE("test accuracy after 5 epochs: " << r.accuracy);
    CHECK(r.accuracy >= 0.91);
    CHECK(history.back().valid_acc >= 0.91);

    std::string path = temp_path("e2e.safetensors");
    save_model(*model, path);
    MnistLogistic loaded(784, 10, 99);
    load_model(loaded, read_safetensors(path), path);
    std::vector<float> a(1000 * 10), b(1000 * 10);
    const Batch& batch = test_dl.batch(3);
    model->forward(batch.x, batch.size, a.data());
    loaded.forward(batch.x, batch.size, b.data());
    CHECK(a == b);
}

TEST_CASE("SIMD and reference kernels train to the same accuracy") {
    TensorDataset train = mnist_head(0, 20000, "train"), valid = mnist_head(50000, 60000, "valid");
    std::vector<double> accs;
    for (auto* k : {&kernels::reference(), &kernels::best()}) {
        set_kernels(*k);
        MnistLogistic model(784, 10, 5);
        SGD opt(model.parameters(), {});
        DataLoader train_dl(train, 64, true, 5), valid_dl(valid, 128);
        auto history = fit(1, model, opt, train_dl, valid_dl);
        accs.push_back(history.back().valid_acc);
        MESSAGE(std::string(k->name) << ": validation accuracy " << history.back().valid_acc);
    }
    set_kernels(kernels::best());
    CHECK(accs[0] > 0.88);
    // Rounding differs, so the trajectories drift apart a little; 0.5 points is
    // ~5x the spread seen between seeds' rounding noise, far below a real bug.
    CHECK(std::fabs(accs[0] - accs[1]) <= 0.005);
}

TEST_CASE("loss_batch takes a hand-made float batch as well as a loader's uint8 one") {
    TensorDataset train = mnist_head(0, 64, "train");
    DataLoader dl(train, 64);
    const Batch& from_loader = dl.batch(0);
    REQUIRE(from_loader.pixels != nullptr);
    REQUIRE(from_loader.x != nullptr);
    Batch floats_only = from_loader;
    floats_only.pixels = nullptr;
    MnistLogistic a(784, 10, 1), b(784, 10, 1);
    SGD oa(a.parameters(), {}), ob(b.parameters(), {});
    Workspace ws;
    float la = loss_batch(a, from_loader, ws, &oa).loss;
    float lb = loss_batch(b, floats_only, ws, &ob).loss;
    CHECK(la == doctest::Approx(lb).epsilon(1e-6));
    CHECK(max_rel_error(a.lin.weight.value.data(), b.lin.weight.value.data(), a.lin.weight.value.size()) < 1e-6);
    Batch empty = from_loader;
    empty.pixels = nullptr;
    empty.x = nullptr;
    CHECK_THROWS_WITH_AS(loss_batch(a, empty, ws), doctest::Contains("neither pixels nor float inputs"), Error);
}

TEST_CASE("fit with lr_gamma trains epoch e at lr x gamma^(e-1), also when resumed") {
    TensorDataset train = mnist_head(0, 256, "train"), valid = mnist_head(256, 384, "valid");
    MnistLogistic model(784, 10, 2);
    SgdOptions o;
    o.lr = 0.4f;
    SGD opt(model.parameters(), o);
    DataLoader train_dl(train, 64), valid_dl(valid, 128);
    std::vector<float> seen;
    FitOptions f;
    f.lr_gamma = 0.5;
    f.progress = [&](const Progress& p) {
        if (p.phase == Progress::kBatch && p.batch == 1) seen.push_back(opt.options().lr);
    };
    fit(3, model, opt, train_dl, valid_dl, f);
    CHECK(seen == std::vector<float>{0.4f, 0.2f, 0.1f});
    TrainingState at_epoch_3;
    at_epoch_3.epoch = 3;
    seen.clear();
    opt.set_lr(0.4f);
    f.resume = &at_epoch_3;
    fit(3, model, opt, train_dl, valid_dl, f);
    CHECK(seen == std::vector<float>{0.1f});
    f.lr_gamma = 0;
    CHECK_THROWS_WITH_AS(fit(3, model, opt, train_dl, valid_dl, f), doctest::Contains("lr_gamma"), Error);
}

TEST_CASE("layer_outputs: each child's output for one image in eval mode, the logits last") {
    TensorDataset set = mnist_head(0, 40, "train");
    ModelSpec spec;
    spec.architecture = "cnn";
    auto model = make_model(spec, 5);
    auto* seq = dynamic_cast<Sequential*>(model.get());
    REQUIRE(seq != nullptr);
    model->train();
    const std::vector<LayerOutput> layers = layer_outputs(*model, set.image(7));
    CHECK(model->is_training());  // put back as it was
    REQUIRE(layers.size() == seq->size());
    const Prediction p = predict_proba(*model, set.image(7));
    for (size_t i = 0; i < layers.size(); ++i) {
        CHECK(layers[i].name == seq->children()[i].first);
        CHECK(layers[i].type == (*seq)[i].type_name());
        CHECK(layers[i].shape == (*seq)[i].output_shape());
        CHECK(layers[i].values.size() == (*seq)[i].out_features());
    }
    // the logits: the softmax of the last layer's values is predict_proba's
    const std::vector<float>& z = layers.back().values;
    CHECK(argmax(z.data(), z.size()) == p.predicted);
    double sum = 0;
    for (float v : z) sum += std::exp(double(v - z[p.predicted]));
    CHECK(1.0 / sum == doctest::Approx(p.probs[p.predicted]).epsilon(1e-6));
    // a conv's output is its maps after the fused ReLU, none negative, some positive
    REQUIRE(layers[1].type == "Conv2d");
    float lo = 0, hi = 0;
    for (float v : layers[1].values) lo = std::min(lo, v), hi = std::max(hi, v);
    CHECK(lo == 0.f);
    CHECK(hi > 0.f);
    // a model that is not a Sequential has no layers to show
    MnistLogistic logistic;
    CHECK(layer_outputs(logistic, set.image(0)).empty());
}

TEST_CASE("predicted_classes: one forward for many images, each image's argmax, in eval mode") {
    TensorDataset set = mnist_head(0, 40, "train");
    ModelSpec spec;
    spec.architecture = "mlp";
    auto model = make_model(spec, 9);
    Workspace ws;
    const std::vector<uint32_t> got = predicted_classes(*model, set, 5, 30, ws);
    REQUIRE(got.size() == 30);
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == predict_proba(*model, set.image(5 + i)).predicted);
    for (size_t i = 1; i < got.size(); ++i) differ += got[i] != got[0];
    CHECK(differ > 0);  // an untrained model still guesses more than one class
    CHECK(predicted_classes(*model, set, 40, 0, ws).empty());
    CHECK_THROWS_WITH_AS(predicted_classes(*model, set, 30, 11, ws), "train: images 30+11 are outside its 40", Error);
}
