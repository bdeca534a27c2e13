#include <doctest/doctest.h>

#include <memory>

#include "models/mnist_logistic.hpp"
#include "runtime/activation.hpp"
#include "runtime/batchnorm.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/dropout.hpp"
#include "runtime/error.hpp"
#include "runtime/linear.hpp"
#include "runtime/sequential.hpp"
#include "tutorial_data.hpp"

using namespace sgdx;
using namespace sgdx::test;

TEST_CASE("fit stopped at any checkpoint and resumed equals the uninterrupted run bit for bit") {
    TensorDataset train = mnist_head(0, 1000, "train"), valid = mnist_head(1000, 1200, "valid");
    MnistLogistic reference(784, 10, 1);
    {
        SGD opt(reference.parameters(), with_momentum());
        DataLoader t(train, 64, true, 9), v(valid, 128);
        fit(3, reference, opt, t, v);
    }
    const std::string path = temp_path("fit.ckpt");
    for (size_t stop_at : {size_t(5), size_t(16), size_t(23), size_t(40)}) {  // mid-epoch and at an epoch's end
        CAPTURE(stop_at);
        struct Stop {};
        MnistLogistic first(784, 10, 1);
        SGD opt1(first.parameters(), with_momentum());
        DataLoader t1(train, 64, true, 9), v1(valid, 128);
        size_t calls = 0;
        FitOptions o1;
        o1.checkpoint_every = 1;
        o1.checkpoint = [&](const TrainingState& st) {
            save_checkpoint(path, first, opt1, st, {{"note", "test"}});
            if (++calls == stop_at) throw Stop{};
        };
        CHECK_THROWS_AS(fit(3, first, opt1, t1, v1, o1), Stop);

        // a new process: fresh objects, everything from the file
        MnistLogistic second(784, 10, 12345);
        SGD opt2(second.parameters(), with_momentum());
        DataLoader t2(train, 64, true, 555), v2(valid, 128);
        std::map<std::string, std::string> settings;
        TrainingState st = restore_checkpoint(read_safetensors(path), path, second, opt2, &settings);
        CHECK(settings.at("note") == "test");
        FitOptions o2;
        o2.resume = &st;
        auto history = fit(3, second, opt2, t2, v2, o2);
        CHECK(history.size() == 3);
        CHECK(second.lin.weight.value == reference.lin.weight.value);
        CHECK(second.lin.bias.value == reference.lin.bias.value);
    }
}

TEST_CASE("a checkpoint that does not fit is rejected and changes nothing") {
    MnistLogistic model(784, 10, 1);
    SGD plain(model.parameters(), {});
    TrainingState st;
    const std::string path = temp_path("plain.ckpt");
    save_checkpoint(path, model, plain, st, {});
    MnistLogistic other(784, 10, 2);
    const auto before = other.lin.weight.value;
    SGD needs_momentum(other.parameters(), with_momentum());
    CHECK_THROWS_WITH_AS(restore_checkpoint(read_safetensors(path), path, other, needs_momentum),
                         doctest::Contains("no momentum buffers but SGD uses momentum"), Error);
    MnistLogistic small(20, 10, 1);
    SGD small_opt(small.parameters(), {});
    CHECK_THROWS_WITH_AS(restore_checkpoint(read_safetensors(path), path, small, small_opt),
                         doctest::Contains("has shape [10, 784], the model expects [10, 20]"), Error);
    const std::string model_path = temp_path("just-a-model.safetensors");
    save_model(model, model_path);
    SGD o(other.parameters(), {});
    CHECK_THROWS_WITH_AS(restore_checkpoint(read_safetensors(model_path), model_path, other, o),
                         doctest::Contains("not an sgdx checkpoint"), Error);
    CHECK(other.lin.weight.value == before);
}

TEST_CASE("Adam and AdamW: fit stopped at a checkpoint and resumed equals the uninterrupted run bit for bit") {
    TensorDataset train = mnist_head(0, 1000, "train"), valid = mnist_head(1000, 1200, "valid");
    for (bool decoupled : {false, true}) {
        CAPTURE(decoupled);
        AdamOptions o = decoupled ? adamw_options() : AdamOptions{};
        if (!decoupled) o.weight_decay = 1e-3f;
        auto make = [&](Module& m) -> std::unique_ptr<Adam> {
            if (decoupled) return std::make_unique<AdamW>(m.parameters(), o);
            return std::make_unique<Adam>(m.parameters(), o);
        };
        MnistLogistic reference(784, 10, 1);
        {
            auto opt = make(reference);
            DataLoader t(train, 64, true, 9), v(valid, 128);
            FitOptions fo;
            fo.lr_gamma = 0.5;  // the resumed run must also take up the schedule where it was
            fit(3, reference, *opt, t, v, fo);
            CHECK(opt->steps() == 3 * 16);
        }
        const std::string path = temp_path("adam.ckpt");
        for (size_t stop_at : {size_t(7), size_t(16), size_t(30)}) {
            CAPTURE(stop_at);
            struct Stop {};
            MnistLogistic first(784, 10, 1);
            auto opt1 = make(first);
            DataLoader t1(train, 64, true, 9), v1(valid, 128);
            size_t calls = 0;
            FitOptions o1;
            o1.lr_gamma = 0.5;
            o1.checkpoint_every = 1;
            o1.checkpoint = [&](const TrainingState& st) {
                save_checkpoint(path, first, *opt1, st, {});
                if (++calls == stop_at) throw Stop{};
            };
            CHECK_THROWS_AS(fit(3, first, *opt1, t1, v1, o1), Stop);

            MnistLogistic second(784, 10, 12345);
            auto opt2 = make(second);
            DataLoader t2(train, 64, true, 555), v2(valid, 128);
            const SafetensorsFile file = read_safetensors(path);
            CHECK(file.metadata.at("optimizer") == (decoupled ? "AdamW" : "Adam"));
            CHECK(file.tensors.count("optimizer.exp_avg.lin.weight") == 1);
            CHECK(file.tensors.count("optimizer.exp_avg_sq.lin.bias") == 1);
            TrainingState st = restore_checkpoint(file, path, second, *opt2);
            CHECK(opt2->steps() == opt1->steps());
            FitOptions o2;
            o2.lr_gamma = 0.5;
            o2.resume = &st;
            fit(3, second, *opt2, t2, v2, o2);
            CHECK(second.lin.weight.value == reference.lin.weight.value);
            CHECK(second.lin.bias.value == reference.lin.bias.value);
        }
    }
}

TEST_CASE("a checkpoint of another optimiser is rejected and changes nothing") {
    MnistLogistic model(784, 10, 1);
    Adam adam(model.parameters());
    const std::string path = temp_path("adam-only.ckpt");
    save_checkpoint(path, model, adam, TrainingState{}, {});
    MnistLogistic other(784, 10, 2);
    const auto before = other.lin.weight.value;
    SGD sgd(other.parameters(), with_momentum());
    CHECK_THROWS_WITH_AS(restore_checkpoint(read_safetensors(path), path, other, sgd),
                         doctest::Contains("checkpoint was made with Adam, not SGD"), Error);
    AdamW adamw(other.parameters());
    CHECK_THROWS_WITH_AS(restore_checkpoint(read_safetensors(path), path, other, adamw),
                         doctest::Contains("checkpoint was made with Adam, not AdamW"), Error);
    // an SGD checkpoint (older ones name no optimiser) is not Adam's
    SGD plain(model.parameters(), {});
    save_checkpoint(path, model, plain, TrainingState{}, {});
    SafetensorsFile old = read_safetensors(path);
    old.metadata.erase("optimizer");
    Adam adam2(other.parameters());
    CHECK_THROWS_WITH_AS(restore_checkpoint(old, path, other, adam2),
                         doctest::Contains("checkpoint was made with SGD, not Adam"), Error);
    // Adam's checkpoint without its second moments
    save_checkpoint(path, model, adam, TrainingState{}, {});
    SafetensorsFile torn = read_safetensors(path);
    torn.tensors.erase("optimizer.exp_avg_sq.lin.bias");
    CHECK_THROWS_WITH_AS(restore_checkpoint(torn, path, other, adam2),
                         doctest::Contains("lacks a fitting exp_avg_sq buffer for 'lin.bias'"), Error);
    CHECK(other.lin.weight.value == before);
    CHECK(adam2.steps() == 0);
}

namespace {

// An MLP with every kind of state a checkpoint must carry beyond the weights:
// BatchNorm's running statistics and count, and a Dropout's seed and count.
std::unique_ptr<Sequential> regularised_mlp(uint64_t seed) {
    Rng rng(seed);
    auto net = std::make_unique<Sequential>();
    net->emplace<Linear>(784, 32, rng);
    net->emplace<BatchNorm1d>(32);
    net->emplace<ReLU>();
    net->emplace<Dropout>(0.25, seed);
    net->emplace<Linear>(32, 10, rng);
    net->build({784});
    return net;
}

void check_same_state(Module& a, Module& b) {
    auto pa = a.named_parameters(), pb = b.named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
        CAPTURE(pa[i].first);
        CHECK(pa[i].second->value == pb[i].second->value);
    }
    auto ba = a.named_buffers(), bb = b.named_buffers();
    REQUIRE(ba.size() == bb.size());
    for (size_t i = 0; i < ba.size(); ++i) {
        CAPTURE(ba[i].first);
        CHECK(ba[i].second->value == bb[i].second->value);
        CHECK(ba[i].second->count == bb[i].second->count);
    }
    auto ca = a.named_counters(), cb = b.named_counters();
    REQUIRE(ca.size() == cb.size());
    for (size_t i = 0; i < ca.size(); ++i) {
        CAPTURE(ca[i].first);
        CHECK(*ca[i].second == *cb[i].second);
    }
}

}  // namespace

TEST_CASE("BatchNorm statistics and Dropout masks: fit stopped at a checkpoint and resumed equals the uninterrupted run bit for bit") {
    TensorDataset train = mnist_head(0, 1000, "train"), valid = mnist_head(1000, 1200, "valid");
    auto reference = regularised_mlp(1);
    {
        SGD opt(reference->parameters(), with_momentum());
        DataLoader t(train, 64, true, 9), v(valid, 128);
        fit(3, *reference, opt, t, v);
    }
    auto& bn = dynamic_cast<BatchNorm1d&>((*reference)[1]);
    auto& drop = dynamic_cast<Dropout&>((*reference)[3]);
    CHECK(bn.num_batches_tracked.count == 3 * 16);  // one per training batch: prepare() runs none
    CHECK(drop.calls() == 3 * 16);
    CHECK(bn.running_var.value(0) != 1.f);
    const std::string path = temp_path("regularised.ckpt");
    for (size_t stop_at : {size_t(5), size_t(16), size_t(23)}) {
        CAPTURE(stop_at);
        struct Stop {};
        auto first = regularised_mlp(1);
        SGD opt1(first->parameters(), with_momentum());
        DataLoader t1(train, 64, true, 9), v1(valid, 128);
        size_t calls = 0;
        FitOptions o1;
        o1.checkpoint_every = 1;
        o1.checkpoint = [&](const TrainingState& st) {
            save_checkpoint(path, *first, opt1, st, {});
            if (++calls == stop_at) throw Stop{};
        };
        CHECK_THROWS_AS(fit(3, *first, opt1, t1, v1, o1), Stop);

        auto second = regularised_mlp(12345);  // other weights, another Dropout seed
        SGD opt2(second->parameters(), with_momentum());
        DataLoader t2(train, 64, true, 555), v2(valid, 128);
        const SafetensorsFile file = read_safetensors(path);
        CHECK(file.tensors.at("1.num_batches_tracked").dtype == DType::I64);
        CHECK(file.metadata.at("module.3.seed") == "1");
        TrainingState st = restore_checkpoint(file, path, *second, opt2);
        check_same_state(*first, *second);
        FitOptions o2;
        o2.resume = &st;
        fit(3, *second, opt2, t2, v2, o2);
        check_same_state(*second, *reference);
    }
}

TEST_CASE("a checkpoint without the model's buffers or counters, or with others, is rejected and changes nothing") {
    auto model = regularised_mlp(1);
    SGD opt(model->parameters(), {});
    const std::string path = temp_path("regularised-bad.ckpt");
    save_checkpoint(path, *model, opt, TrainingState{}, {});
    auto target = regularised_mlp(2);
    const auto before = target->parameters()[0]->value;
    SGD opt2(target->parameters(), {});
    auto fails = [&](const SafetensorsFile& f, const char* fragment) {
        CAPTURE(fragment);
        CHECK_THROWS_WITH_AS(restore_checkpoint(f, path, *target, opt2), doctest::Contains(fragment), Error);
        CHECK(target->parameters()[0]->value == before);
        CHECK(dynamic_cast<Dropout&>((*target)[3]).seed() == 2);
        CHECK(dynamic_cast<BatchNorm1d&>((*target)[1]).running_var.value(0) == 1.f);
    };
    SafetensorsFile good = read_safetensors(path);
    SafetensorsFile no_count = good;
    no_count.metadata.erase("module.3.calls");
    fails(no_count, "checkpoint lacks 'module.3.calls'");
    SafetensorsFile extra = good;
    extra.metadata["module.4.calls"] = "3";
    fails(extra, "counter 'module.4.calls' this model does not have");
    SafetensorsFile no_stats = good;
    no_stats.tensors.erase("1.running_mean");
    fails(no_stats, "no tensor '1.running_mean'");
    // The plain tutorial model's checkpoint has none of them.
    MnistLogistic plain(784, 10, 1);
    SGD plain_opt(plain.parameters(), {});
    save_checkpoint(path, plain, plain_opt, TrainingState{}, {});
    fails(read_safetensors(path), "checkpoint lacks 'module.3.seed'");
}

TEST_CASE("a checkpoint's weights load as a model (eval, predict, --init): the optimiser's state is passed over") {
    MnistLogistic model(784, 10, 3);
    SGD sgd(model.parameters(), with_momentum());
    Adam adam(model.parameters());
    for (Optimizer* opt : std::initializer_list<Optimizer*>{&sgd, &adam}) {
        CAPTURE(opt->name());
        const std::string path = temp_path("weights.ckpt");
        save_checkpoint(path, model, *opt, TrainingState{}, {});
        const SafetensorsFile file = read_safetensors(path);
        bool has_state = false;
        for (const auto& [name, t] : file.tensors) has_state |= is_optimizer_state(file, name);
        REQUIRE(has_state);
        MnistLogistic other(784, 10, 4);
        load_model(other, file, path);
        CHECK(other.lin.weight.value == model.lin.weight.value);
        CHECK(other.lin.bias.value == model.lin.bias.value);
        // The same names in a plain model file are not passed over.
        SafetensorsFile plain = file;
        plain.metadata.erase("kind");
        CHECK_THROWS_WITH_AS(load_model(other, plain, path), doctest::Contains("unexpected tensor 'optimizer."), Error);
    }
}

TEST_CASE("an SGD made without momentum whose schedule cycled one resumes with its momentum buffers") {
    MnistLogistic model(784, 10, 5);
    SGD sgd(model.parameters(), {});
    REQUIRE(sgd.momentum_buffers().empty());
    REQUIRE(sgd.set_momentum(0.95));  // what OneCycleLR does before the first step
    REQUIRE(sgd.momentum_buffers().size() == 2);
    sgd.momentum_buffers()[0].fill(0.25f);
    sgd.has_momentum() = true;
    const std::string path = temp_path("sgd0-onecycle.ckpt");
    save_checkpoint(path, model, sgd, TrainingState{}, {});
    MnistLogistic other(784, 10, 6);
    SGD fresh(other.parameters(), {});
    restore_checkpoint(read_safetensors(path), path, other, fresh);
    REQUIRE(fresh.momentum_buffers().size() == 2);
    CHECK(fresh.momentum_buffers()[0] == sgd.momentum_buffers()[0]);
    CHECK(fresh.has_momentum());
    // A checkpoint whose buffers do not fit is refused before anything is adopted.
    SafetensorsFile torn = read_safetensors(path);
    torn.tensors.erase("optimizer.momentum.lin.bias");
    MnistLogistic third(784, 10, 7);
    SGD plain(third.parameters(), {});
    CHECK_THROWS_WITH_AS(restore_checkpoint(torn, path, third, plain),
                         doctest::Contains("lacks a fitting momentum buffer for 'lin.bias'"), Error);
    CHECK(plain.momentum_buffers().empty());
}
