// The one training driver (TrainingSession) through its executor seam: an
// executor that keeps its own "device" copy of the model and reports each batch
// two batches late, as the CUDA backend does, must train exactly as the CPU does,
// with StepLR, checkpoints, resume, stop requests and divergence handling; and the
// page's time-sliced form (advance with a pause) must equal fit.
#include <doctest/doctest.h>

#include <deque>

#include "models/zoo.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/error.hpp"
#include "runtime/train.hpp"
#include "tutorial_data.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {
ModelSpec mlp_spec() {
    ModelSpec s;
    s.architecture = "mlp";
    s.hidden = {16};
    return s;
}

// Trains a copy of the model of its own and holds results back until two later
// batches were submitted; the host model and optimiser see its state only through
// to_host, and it sees theirs only through from_host.
class LaggingExecutor : public StepExecutor {
public:
    LaggingExecutor(Module& host, SGD& host_opt)
        : host_(host), host_opt_(host_opt), device_(make_model(mlp_spec(), 999)),
          opt_(device_->parameters(), host_opt.options()) {
        from_host();
    }
    void prepare(DataLoader& train, DataLoader& valid) override { sgdx::prepare(*device_, train, valid, ws_); }
    void submit(const Batch& b, size_t index) override {
        if (submits == 0) next_index_ = index;  // a resumed run starts part-way
        CHECK(index == next_index_++ % batches_per_epoch);
        in_flight_.push_back(loss_batch(*device_, b, ws_, &opt_));
        ++submits;
    }
    void collect(bool wait, std::vector<BatchLoss>& out) override {
        while (in_flight_.size() > (wait ? 0u : 2u)) {
            out.push_back(in_flight_.front());
            in_flight_.pop_front();
        }
    }
    EvalResult evaluate(DataLoader& loader) override {
        CHECK(in_flight_.empty());
        return sgdx::evaluate(*device_, loader, ws_);
    }
    void set_lr(float lr) override { opt_.set_lr(lr); }
    void to_host() override {
        CHECK(in_flight_.empty());  // the session reads the host copy at consistent points only
        copy(*device_, opt_, host_, host_opt_);
    }
    void from_host() override { copy(host_, host_opt_, *device_, opt_); }
    void abandon() noexcept override { in_flight_.clear(); }

    size_t submits = 0;
    size_t batches_per_epoch = 1;

private:
    static void copy(Module& from, SGD& from_opt, Module& to, SGD& to_opt) {
        auto a = from.parameters(), b = to.parameters();
        for (size_t i = 0; i < a.size(); ++i) b[i]->value = a[i]->value;
        to_opt.momentum_buffers() = from_opt.momentum_buffers();
        to_opt.has_momentum() = from_opt.has_momentum();
    }
    Module& host_;
    SGD& host_opt_;
    std::unique_ptr<Module> device_;
    SGD opt_;
    Workspace ws_;
    std::deque<BatchLoss> in_flight_;
    size_t next_index_ = 0;
};

bool same_parameters(Module& a, Module& b) {
    auto pa = a.parameters(), pb = b.parameters();
    for (size_t i = 0; i < pa.size(); ++i)
        if (!(pa[i]->value == pb[i]->value)) return false;
    return true;
}

struct Run {
    std::unique_ptr<Module> model = make_model(mlp_spec(), 5);
    SGD opt{model->parameters(), with_momentum()};
};
}  // namespace

TEST_CASE("an executor that reports two batches late trains as the CPU does, StepLR included") {
    TensorDataset train = mnist_head(0, 1000, "train"), valid = mnist_head(1000, 1200, "valid");
    FitOptions f;
    f.lr_gamma = 0.7;
    Run cpu, lagging;
    DataLoader t1(train, 64, true, 3), v1(valid, 128), t2(train, 64, true, 3), v2(valid, 128);
    const auto cpu_history = fit(3, *cpu.model, cpu.opt, t1, v1, f);

    LaggingExecutor exec(*lagging.model, lagging.opt);
    exec.batches_per_epoch = t2.size();
    std::vector<Progress> seen;
    f.progress = [&](const Progress& p) { seen.push_back(p); };
    TrainingSession session(*lagging.model, lagging.opt, t2, v2, 3, f, &exec);
    session.run();
    CHECK(exec.submits == 3 * t2.size());
    CHECK(same_parameters(*cpu.model, *lagging.model));  // the device's result, downloaded
    REQUIRE(session.state().history.size() == 3);
    for (size_t e = 0; e < 3; ++e) {
        CHECK(session.state().history[e].train_loss == cpu_history[e].train_loss);
        CHECK(session.state().history[e].valid_loss == cpu_history[e].valid_loss);
    }
    REQUIRE(seen.size() == 3 * (t2.size() + 1));  // every batch reported, in order, then the epoch's end
    CHECK(seen[0].batch == 1);
    CHECK(seen[t2.size() - 1].batch == t2.size());
    CHECK(seen[t2.size()].phase == Progress::kEpochEnd);
}

TEST_CASE("through the executor seam, a run stopped at a checkpoint and resumed equals the uninterrupted one") {
    TensorDataset train = mnist_head(0, 1000, "train"), valid = mnist_head(1000, 1200, "valid");
    Run reference;
    {
        DataLoader t(train, 64, true, 9), v(valid, 128);
        FitOptions f;
        f.lr_gamma = 0.5;
        fit(3, *reference.model, reference.opt, t, v, f);
    }
    const std::string path = temp_path("session.ckpt");
    for (size_t stop_after : {size_t(7), size_t(16), size_t(21)}) {  // batches, mid-epoch and at an epoch's end
        CAPTURE(stop_after);
        Run first;
        DataLoader t1(train, 64, true, 9), v1(valid, 128);
        LaggingExecutor exec1(*first.model, first.opt);
        exec1.batches_per_epoch = t1.size();
        size_t batches = 0;
        FitOptions f1;
        f1.lr_gamma = 0.5;
        f1.checkpoint_every = 3;  // not a divisor of the stops: the stop writes its own
        f1.checkpoint = [&](const TrainingState& st) { save_checkpoint(path, *first.model, first.opt, st, {}); };
        f1.stop_requested = [&] { return ++batches == stop_after; };
        TrainingSession s1(*first.model, first.opt, t1, v1, 3, f1, &exec1);
        CHECK_THROWS_AS(s1.run(), StopRequested);

        Run second;  // a new process: everything from the file
        DataLoader t2(train, 64, true, 555), v2(valid, 128);
        TrainingState st = restore_checkpoint(read_safetensors(path), path, *second.model, second.opt);
        CHECK(size_t(st.epoch - 1) * t1.size() + st.next_batch == stop_after);
        if (stop_after % t1.size() == 0) CHECK(st.next_batch == 0);  // the epoch was finished, validated
        LaggingExecutor exec2(*second.model, second.opt);
        exec2.batches_per_epoch = t2.size();
        FitOptions f2;
        f2.lr_gamma = 0.5;
        f2.resume = &st;
        TrainingSession s2(*second.model, second.opt, t2, v2, 3, f2, &exec2);
        s2.run();
        CHECK(same_parameters(*second.model, *reference.model));
    }
}

TEST_CASE("through the executor seam, a NaN loss restores the last good epoch on the host and the device") {
    TensorDataset train = mnist_head(0, 640, "train"), valid = mnist_head(640, 768, "valid");
    Run run;
    DataLoader t(train, 64), v(valid, 128);
    LaggingExecutor exec(*run.model, run.opt);
    exec.batches_per_epoch = t.size();
    size_t batches = 0;
    FitOptions f;
    f.progress = [&](const Progress& p) {
        if (p.phase == Progress::kBatch && ++batches == t.size() + 3) exec.set_lr(3e38f);  // epoch 2 blows up
    };
    TrainingSession session(*run.model, run.opt, t, v, 3, f, &exec);
    CHECK(session.advance());  // epoch 1
    auto good = run.model->parameters()[0]->value;
    try {
        session.run();
        FAIL("the session did not stop");
    } catch (const DivergenceError& e) {
        CHECK(e.epoch() == 2);
        CHECK(std::string(e.what()).find("the loss is NaN at epoch 2") != std::string::npos);
    }
    CHECK(run.model->parameters()[0]->value == good);
    // The device was given the good parameters back: its next evaluation is the host's.
    Workspace ws;
    CHECK(exec.evaluate(v).loss == evaluate(*run.model, v, ws).loss);
}

TEST_CASE("the page's time slices (advance with a pause after every few batches) train as fit does") {
    TensorDataset train = mnist_head(0, 1000, "train"), valid = mnist_head(1000, 1200, "valid");
    Run whole, sliced;
    DataLoader t1(train, 64, true, 4), v1(valid, 128), t2(train, 64, true, 4), v2(valid, 128);
    const auto history = fit(2, *whole.model, whole.opt, t1, v1);
    TrainingSession session(*sliced.model, sliced.opt, t2, v2, 2);
    size_t slices = 0, ends = 0, count = 0;
    bool more = true;
    while (more) {
        more = session.advance([&] { return ++count % 5 == 0; });
        ++slices;
        CHECK(session.batch_losses().size() <= 5);
        if (session.epoch_end()) {
            CHECK(session.epoch_end()->valid_loss == history[ends].valid_loss);
            ++ends;
        }
    }
    CHECK(ends == 2);
    CHECK(slices > 2 * t2.size() / 5);
    CHECK(same_parameters(*whole.model, *sliced.model));
    CHECK_FALSE(session.advance());  // done
}
