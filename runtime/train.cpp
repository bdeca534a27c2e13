#include "train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "backend.hpp"
#include "data_parallel.hpp"
#include "error.hpp"
#include "loss.hpp"
#include "sequential.hpp"
#include "thread_pool.hpp"

namespace sgdx {

Workspace::Workspace() = default;
Workspace::~Workspace() = default;
Workspace::Workspace(Workspace&&) noexcept = default;
Workspace& Workspace::operator=(Workspace&&) noexcept = default;

void Workspace::ensure(size_t batch, size_t classes) {
    if (logits.size() < batch * classes) {
        logits.resize(batch * classes);
        dlogits.resize(batch * classes);
    }
}

namespace {
// Whether the active kernels read uint8 batches directly (every set here does; a
// set may leave the fused kernels out). If not, the loader's one conversion to
// float is the cheapest path: the module's own fallback would convert again in
// forward and once more in backward.
bool fused_inputs() { return active_kernels().linear_forward_u8 && active_kernels().linear_backward_u8; }

// The loops below need float batches from the loader only when the kernels
// cannot read the bytes; otherwise the floats would be converted for nothing.
struct LoaderInputs {
    explicit LoaderInputs(DataLoader& dl) : dl_(dl), was_(dl.float_inputs()) { dl.set_float_inputs(!fused_inputs()); }
    ~LoaderInputs() { dl_.set_float_inputs(was_); }
    DataLoader& dl_;
    bool was_;
};

// Whether a batch's forward reads its uint8 pixels: a batch from a DataLoader
// carries them (and floats unless turned off); one built by hand may hold floats
// only. Bytes when the kernels read them.
bool uses_bytes(const Batch& b) {
    if (!b.pixels && !b.x) throw Error("batch has neither pixels nor float inputs");
    return b.pixels && (!b.x || fused_inputs());
}

// loss_batch's work. sync: the replicas copy the model's parameters first (false
// only where nothing changed them since the last call: evaluate's later batches).
BatchLoss step_batch(Module& model, const Batch& b, Workspace& ws, Optimizer* opt, bool sync) {
    const size_t C = model.out_features();
    if (b.features != model.in_features())
        throw Error("batch has " + std::to_string(b.features) + " features per row, the model expects " +
                    std::to_string(model.in_features()));
    // A label past the model's classes would read outside the logits: 64 compares
    // per batch are cheap insurance.
    check_targets(b.y, b.size, C, "batch");
    ws.ensure(b.size, C);
    BatchLoss out;
    out.count = b.size;
    float* dlogits = opt ? ws.dlogits.data() : nullptr;
    if (ws.parallel && ws.parallel->splits(model, b.size)) {
        const bool bytes = uses_bytes(b);
        // Forward, loss and backward of each part on its own thread, the gradients summed.
        const double total = ws.parallel->step(b, bytes, ws.logits.data(), dlogits, 1.f / float(b.size),
                                               &out.correct, sync);
        out.loss = float(total / double(b.size));
        if (opt && std::isfinite(out.loss)) opt->step_and_zero_grad();
        return out;
    }
    const double total = forward_backward_rows(model, b, 0, b.size, uses_bytes(b), ws.logits.data(), dlogits,
                                               1.f / float(b.size), &out.correct);
    out.loss = float(total / double(b.size));
    if (!opt) return out;
    if (std::isfinite(out.loss)) opt->step_and_zero_grad();
    else opt->zero_grad();  // a dropped step: the sub-batches' gradients so far
    return out;
}
}  // namespace

BatchLoss loss_batch(Module& model, const Batch& b, Workspace& ws, Optimizer* opt) {
    return step_batch(model, b, ws, opt, true);
}

EvalResult evaluate(Module& model, DataLoader& loader, Workspace& ws, ConfusionMatrix* confusion) {
    const bool was_training = model.is_training();
    model.eval();
    const size_t C = model.out_features();
    if (confusion) confusion->reset(C);
    LoaderInputs inputs(loader);
    double loss_sum = 0;
    size_t correct = 0, count = 0;
    bool sync = true;  // the replicas copy the parameters once: nothing changes them in here
    for (const Batch& b : loader) {
        const bool split = ws.parallel && ws.parallel->splits(model, b.size);
        BatchLoss r = step_batch(model, b, ws, nullptr, sync);
        if (split) sync = false;
        loss_sum += double(r.loss) * double(r.count);
        correct += r.correct;
        count += r.count;
        if (confusion)
            for (size_t i = 0; i < b.size; ++i) confusion->at(size_t(b.y[i]), argmax(ws.logits.data() + i * C, C)) += 1;
    }
    model.train(was_training);
    return {loss_sum / double(count), double(correct) / double(count), count};
}

double train_epoch(Module& model, Optimizer& opt, DataLoader& train, Workspace& ws, int epoch,
                   int epochs, const ProgressFn& progress, TrainingState* state,
                   const StateFn& after_batch) {
    using clock = std::chrono::steady_clock;
    LoaderInputs inputs(train);
    model.train();
    const auto start = clock::now();
    TrainingState local;
    TrainingState& st = state ? *state : local;
    st.epoch = epoch;
    if (st.next_batch == 0) {
        st.loss_sum = 0;
        st.samples = 0;
        st.rng_state = train.rng().state();
        st.rng_inc = train.rng().increment();
        train.start_epoch();
    }
    Progress p;
    p.epoch = epoch;
    p.epochs = epochs;
    p.batches = train.size();
    for (size_t i = st.next_batch; i < train.size(); ++i) {
        const Batch& b = train.batch(i);
        BatchLoss r = loss_batch(model, b, ws, &opt);
        if (!std::isfinite(r.loss))
            throw loss_divergence(r.loss, epoch, i + 1, train.size());
        st.loss_sum += double(r.loss) * double(r.count);
        st.samples += r.count;
        st.next_batch = i + 1;
        if (after_batch) after_batch(st);
        if (progress) {
            p.batch = i + 1;
            p.samples = st.samples;
            p.batch_loss = r.loss;
            p.train_loss = st.loss_sum / double(st.samples);
            p.seconds = std::chrono::duration<double>(clock::now() - start).count();
            progress(p);
        }
    }
    return st.samples ? st.loss_sum / double(st.samples) : 0.0;
}

DivergenceError loss_divergence(float loss, int epoch, size_t batch, size_t batches) {
    return DivergenceError(std::string("training diverged: the loss is ") + (std::isnan(loss) ? "NaN" : "infinite") +
                               " at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) + " of " +
                               std::to_string(batches) + " (try a smaller --lr)",
                           epoch, batch);
}

namespace {
// One image's logits, uint8 pixels scaled by 1/255, in eval mode.
std::vector<float> logits_of(Module& model, const uint8_t* pixels) {
    const size_t D = model.in_features();
    std::vector<float> x(D), logits(model.out_features());
    active_kernels().scale_u8(pixels, 1.f / 255.f, x.data(), D);
    const bool was_training = model.is_training();
    model.eval();
    model.forward(x.data(), 1, logits.data());
    model.train(was_training);
    return logits;
}
}  // namespace

Prediction predict_proba(Module& model, const uint8_t* pixels) {
    const size_t C = model.out_features();
    const std::vector<float> logits = logits_of(model, pixels);
    const float m = *std::max_element(logits.begin(), logits.end());
    Prediction out;
    out.probs.resize(C);
    double sum = 0;
    for (size_t c = 0; c < C; ++c) sum += out.probs[c] = std::exp(double(logits[c] - m));
    for (size_t c = 0; c < C; ++c) {
        out.probs[c] /= sum;
        if (out.probs[c] > out.probs[out.predicted]) out.predicted = c;
    }
    return out;
}

std::vector<LayerOutput> layer_outputs(Module& model, const uint8_t* pixels) {
    std::vector<LayerOutput> out;
    const auto* seq = dynamic_cast<const Sequential*>(&model);
    if (!seq) return out;
    const std::vector<float> logits = logits_of(model, pixels);  // activation_after reads this forward's
    for (size_t i = 0; i < seq->size(); ++i) {
        const Module& child = (*seq)[i];
        LayerOutput layer{seq->children()[i].first, child.type_name(), child.output_shape(), {}};
        if (i + 1 == seq->size()) {
            layer.values = logits;
        } else {
            layer.values.resize(child.out_features());
            seq->activation_after(i, 1, layer.values.data());
        }
        out.push_back(std::move(layer));
    }
    return out;
}

std::vector<uint32_t> predicted_classes(Module& model, const TensorDataset& set, size_t first, size_t count,
                                        Workspace& ws) {
    if (first > set.size() || count > set.size() - first)
        throw Error(set.name() + ": images " + std::to_string(first) + "+" + std::to_string(count) + " are outside its " +
                    std::to_string(set.size()));
    const size_t D = model.in_features(), C = model.out_features();
    std::vector<float> x(count * D);
    for (size_t i = 0; i < count; ++i) active_kernels().scale_u8(set.image(first + i), set.scale(), x.data() + i * D, D);
    ws.ensure(count, C);
    const bool was_training = model.is_training();
    model.eval();
    model.forward(x.data(), count, ws.logits.data());
    model.train(was_training);
    std::vector<uint32_t> classes(count);
    for (size_t i = 0; i < count; ++i) classes[i] = uint32_t(argmax(ws.logits.data() + i * C, C));
    return classes;
}

std::optional<NonFinite> first_non_finite(Module& model) {
    for (auto& [name, p] : model.named_parameters())
        for (float v : p->value)
            if (!std::isfinite(v)) return NonFinite{name, v};
    for (auto& [name, b] : model.named_buffers())
        for (float v : b->value)
            if (!std::isfinite(v)) return NonFinite{name, v};
    return std::nullopt;
}

bool all_finite(Module& model) { return !first_non_finite(model); }

void prepare(Module& model, DataLoader& train, DataLoader& valid, Workspace& ws) {
    // Every buffer for the largest batch either loader gives, planned from the
    // shapes: no batch runs, nothing is learnt or counted.
    const auto largest = [](const DataLoader& dl) { return std::min(dl.batch_size(), dl.dataset().size()); };
    const size_t rows = std::max(largest(train), largest(valid));
    const bool bytes = fused_inputs();
    ws.parallel.reset();
    ws.ensure(rows, model.out_features());
    model.reserve(rows, bytes);
    // Data-parallel replicas where they pay.
    ws.parallel = DataParallel::create(model, thread_pool().size());
    if (ws.parallel) ws.parallel->reserve(rows, bytes);
}

std::vector<EpochRecord> fit(int epochs, Module& model, Optimizer& opt, DataLoader& train,
                             DataLoader& valid, const ProgressFn& progress) {
    FitOptions options;
    options.progress = progress;
    return fit(epochs, model, opt, train, valid, options);
}

// ---- the CPU executor ------------------------------------------------------------

CpuExecutor::~CpuExecutor() {
    if (train_) train_->set_float_inputs(train_floats_);
}

void CpuExecutor::prepare(DataLoader& train, DataLoader& valid) {
    sgdx::prepare(model_, train, valid, ws_);
    if (!train_) {  // the steps read the loader's bytes when the kernels can
        train_ = &train;
        train_floats_ = train.float_inputs();
        train.set_float_inputs(!fused_inputs());
    }
}

void CpuExecutor::submit(const Batch& batch, size_t) { done_.push_back(loss_batch(model_, batch, ws_, &opt_)); }

void CpuExecutor::collect(bool, std::vector<BatchLoss>& out) {
    out.insert(out.end(), done_.begin(), done_.end());
    done_.clear();
}

EvalResult CpuExecutor::evaluate(DataLoader& loader) { return sgdx::evaluate(model_, loader, ws_); }

// ---- the training session ------------------------------------------------------

TrainingSession::TrainingSession(Module& model, Optimizer& opt, DataLoader& train, DataLoader& valid, int epochs,
                                 FitOptions options, StepExecutor* executor)
    : model_(model), train_(train), valid_(valid), epochs_(epochs), options_(std::move(options)),
      cpu_(executor ? nullptr : std::make_unique<CpuExecutor>(model, opt)), exec_(executor ? executor : cpu_.get()) {
    if (epochs < 0) throw Error("epochs must be >= 0");
    if (!(options_.lr_gamma > 0) || !std::isfinite(options_.lr_gamma))
        throw Error("lr_gamma must be a finite number > 0, not " + std::to_string(options_.lr_gamma));
    base_lr_ = opt.lr();
    results_.reserve(train.size());
    losses_.reserve(train.size());
}

void TrainingSession::start() {
    started_ = true;
    if (options_.resume) {
        st_ = *options_.resume;
        if (st_.next_batch > train_.size())
            throw Error("the saved state is at batch " + std::to_string(st_.next_batch) + " of an epoch of " +
                        std::to_string(train_.size()) + " batches: not this data or batch size");
        train_.rng().restore(st_.rng_state, st_.rng_inc);
        exec_->from_host();
    }
    if (done()) return;
    if (options_.schedule != LrSchedule::kStep) {  // before prepare: a momentum-free SGD takes its buffers here
        const ScheduledRate r = scheduled_rate(options_.schedule, base_lr_, options_.lr_gamma, st_.epoch, epochs_,
                                               st_.next_batch, train_.size());
        if (r.cycles_momentum) exec_->set_momentum(r.momentum);
    }
    exec_->prepare(train_, valid_);
    good_.clear();
    for (Parameter* p : model_.parameters()) good_.push_back(p->value);  // copied once per epoch, not per step
    good_buffers_.clear();
    for (auto& [name, b] : model_.named_buffers()) good_buffers_.push_back(*b);
    if (st_.next_batch > 0) {  // part-way through an epoch: its order, drawn again
        train_.start_epoch();
        begin_epoch();
    }
}

// Epoch e trains at lr x gamma^(e-1) (StepLR; per-batch schedules set theirs as
// each batch is submitted); its order was drawn (start_epoch) by the caller.
void TrainingSession::begin_epoch() {
    if (options_.schedule == LrSchedule::kStep && options_.lr_gamma != 1.0)
        exec_->set_lr(float(scheduled_rate(LrSchedule::kStep, base_lr_, options_.lr_gamma, st_.epoch, epochs_, 0, 1).lr));
    model_.train();
    submitted_ = st_.next_batch;
    open_ = true;
    epoch_start_ = std::chrono::steady_clock::now();
    progress_ = Progress();
    progress_.epoch = st_.epoch;
    progress_.epochs = epochs_;
    progress_.batches = train_.size();
    progress_.samples = st_.samples;
}

// Finished batches, in order: the divergence check, the epoch's running loss, progress.
void TrainingSession::account(std::vector<BatchLoss>& results) {
    for (const BatchLoss& r : results) {
        if (!std::isfinite(r.loss)) {
            const size_t batch = st_.next_batch + 1;
            exec_->abandon();
            restore_good();
            throw loss_divergence(r.loss, st_.epoch, batch, train_.size());
        }
        st_.loss_sum += double(r.loss) * double(r.count);
        st_.samples += r.count;
        ++st_.next_batch;
        losses_.push_back(r.loss);
        if (options_.progress) {
            progress_.batch = st_.next_batch;
            progress_.samples = st_.samples;
            progress_.batch_loss = r.loss;
            progress_.train_loss = st_.loss_sum / double(st_.samples);
            progress_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
            options_.progress(progress_);
        }
    }
    results.clear();
}

void TrainingSession::restore_good() {
    auto params = model_.parameters();
    for (size_t i = 0; i < params.size() && i < good_.size(); ++i) params[i]->value = good_[i];
    auto buffers = model_.named_buffers();  // BatchNorm's running statistics went bad with them
    for (size_t i = 0; i < buffers.size() && i < good_buffers_.size(); ++i) *buffers[i].second = good_buffers_[i];
    exec_->from_host();
}

void TrainingSession::checkpoint() {
    exec_->to_host();
    options_.checkpoint(st_);
}

bool TrainingSession::advance(const std::function<bool()>& pause) {
    losses_.clear();
    ended_ = false;
    try {
        if (!started_) start();
        if (done()) return false;
        if (!open_) {
            st_.loss_sum = 0;
            st_.samples = 0;
            st_.rng_state = train_.rng().state();
            st_.rng_inc = train_.rng().increment();
            train_.start_epoch();
            begin_epoch();
        }
        const size_t n = train_.size();
        const size_t every = options_.checkpoint ? options_.checkpoint_every : 0;
        bool stop_at_end = false;
        while (submitted_ < n) {
            if (options_.schedule != LrSchedule::kStep) {
                const ScheduledRate r =
                    scheduled_rate(options_.schedule, base_lr_, options_.lr_gamma, st_.epoch, epochs_, submitted_, n);
                exec_->set_lr(float(r.lr));
                if (r.cycles_momentum) exec_->set_momentum(r.momentum);
            }
            exec_->submit(train_.batch(submitted_), submitted_);
            ++submitted_;
            // A checkpoint, a stop or a pause sees every submitted step finished.
            const bool due = every > 0 && submitted_ % every == 0;
            const bool stop = options_.stop_requested && options_.stop_requested();
            const bool paused = !stop && pause && pause();
            exec_->collect(due || stop || paused || submitted_ == n, results_);
            account(results_);
            // A stop after the epoch's last batch finishes the epoch first (its validation and
            // its boundary checkpoint): "after batch n of n" then always resumes at the next epoch.
            const bool mid_epoch = submitted_ < n;
            if (due || (stop && mid_epoch && options_.checkpoint)) checkpoint();
            if (stop && mid_epoch) throw StopRequested(st_.epoch, st_.next_batch, n);
            if (stop) stop_at_end = true;
            if (paused && mid_epoch) return true;
        }
        end_epoch();
        if (stop_at_end) throw StopRequested(st_.epoch - 1, n, n);
        return !done();
    } catch (const DivergenceError&) {
        throw;  // restored where it was detected
    } catch (...) {  // a callback threw (Ctrl-C) or the executor failed: keep what trained, if sound
        exec_->abandon();
        try {
            exec_->to_host();
            if (!all_finite(model_)) restore_good();
        } catch (...) {
            restore_good();
        }
        throw;
    }
}

void TrainingSession::end_epoch() {
    exec_->to_host();
    const EvalResult v = exec_->evaluate(valid_);
    if (!std::isfinite(v.loss) || !all_finite(model_)) {
        restore_good();
        throw DivergenceError("training diverged: parameters or validation loss are not finite "
                              "after epoch " + std::to_string(st_.epoch) + " (try a smaller --lr)",
                              st_.epoch, train_.size());
    }
    EpochRecord rec;
    rec.epoch = st_.epoch;
    rec.train_loss = st_.samples ? st_.loss_sum / double(st_.samples) : 0.0;
    rec.valid_loss = v.loss;
    rec.valid_acc = v.accuracy;
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
    st_.history.push_back(rec);
    st_.epoch += 1;
    st_.next_batch = 0;
    st_.rng_state = train_.rng().state();
    st_.rng_inc = train_.rng().increment();
    open_ = false;
    ended_ = true;
    auto params = model_.parameters();
    for (size_t i = 0; i < params.size(); ++i) good_[i] = params[i]->value;
    auto buffers = model_.named_buffers();
    for (size_t i = 0; i < buffers.size(); ++i) good_buffers_[i] = *buffers[i].second;
    if (options_.checkpoint) options_.checkpoint(st_);
    if (options_.progress) options_.progress(epoch_end_progress(rec, epochs_, train_));
}

std::vector<EpochRecord> fit(int epochs, Module& model, Optimizer& opt, DataLoader& train, DataLoader& valid,
                             const FitOptions& options) {
    TrainingSession session(model, opt, train, valid, epochs, options);
    session.run();
    return session.state().history;
}

Progress epoch_end_progress(const EpochRecord& rec, int epochs, const DataLoader& train) {
    Progress p;
    p.phase = Progress::kEpochEnd;
    p.epoch = rec.epoch;
    p.epochs = epochs;
    p.batch = p.batches = train.size();
    p.samples = train.dataset().size();
    p.train_loss = rec.train_loss;
    p.seconds = rec.seconds;
    p.valid_loss = rec.valid_loss;
    p.valid_acc = rec.valid_acc;
    return p;
}

std::pair<DataLoader, DataLoader> get_data(const TensorDataset& train, const TensorDataset& valid,
                                           size_t batch_size, uint64_t seed) {
    return {DataLoader(train, batch_size, true, seed), DataLoader(valid, batch_size * 2, false)};
}

}  // namespace sgdx
