#pragma once
// The tutorial's training helpers: loss_batch, evaluate, train_epoch and fit,
// each a public piece, with progress reported through one callback that feeds
// the CLI's progress bar and the browser's chart alike.
#include <chrono>
#include <cstdint>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data.hpp"
#include "error.hpp"
#include "module.hpp"
#include "optim.hpp"
#include "schedule.hpp"

namespace sgdx {

class DataParallel;

// Buffers for a step's logits and their gradient, sized by prepare() (or grown
// on first use) and reused: the steps after prepare allocate nothing. With more than one
// thread, prepare() may also put the model's replicas here (data_parallel.hpp):
// loss_batch and evaluate then split a batch's rows over the threads, each part
// through the whole network, where that pays.
struct Workspace {
    std::vector<float> logits;   // (B, C)
    std::vector<float> dlogits;  // (B, C)
    std::unique_ptr<DataParallel> parallel;  // set by prepare(); null: every layer splits its own work
    void ensure(size_t batch, size_t classes);
    Workspace();
    ~Workspace();
    Workspace(Workspace&&) noexcept;
    Workspace& operator=(Workspace&&) noexcept;
};

struct BatchLoss {
    float loss = 0;      // mean over the batch
    size_t count = 0;    // rows in the batch
    size_t correct = 0;  // rows whose argmax is the target
};

// The tutorial's loss_batch: forward and cross_entropy; with an optimiser also
// backward, step and zero_grad. Without one (evaluation) no gradient is computed.
// Data-parallel where prepare() set ws up for it (the gradient summed over the
// parts, the same bits for a given thread count).
// A non-finite loss is returned for the caller to judge, and the step is then
// skipped so the parameters stay as they were.
BatchLoss loss_batch(Module& model, const Batch& batch, Workspace& ws, Optimizer* opt = nullptr);

// (C, C) counts: rows are the true class, columns the prediction.
struct ConfusionMatrix {
    size_t classes = 0;
    std::vector<uint64_t> counts;
    void reset(size_t c) { classes = c; counts.assign(c * c, 0); }
    uint64_t& at(size_t truth, size_t predicted) { return counts[truth * classes + predicted]; }
};

struct EvalResult {
    double loss = 0;      // sample-weighted mean, as the tutorial's fit
    double accuracy = 0;
    size_t count = 0;
};

// model.eval(), every batch of the loader without gradients, model.train() restored.
EvalResult evaluate(Module& model, DataLoader& loader, Workspace& ws,
                    ConfusionMatrix* confusion = nullptr);

struct Progress {
    enum Phase { kBatch, kEpochEnd } phase = kBatch;
    int epoch = 0, epochs = 0;      // 1-based
    size_t batch = 0, batches = 0;  // batches done in this epoch
    size_t samples = 0;             // samples done in this epoch
    double batch_loss = 0;          // this batch's loss
    double train_loss = 0;          // running sample-weighted mean of this epoch
    double seconds = 0;             // since the epoch began
    double valid_loss = 0, valid_acc = 0;  // at kEpochEnd
};
using ProgressFn = std::function<void(const Progress&)>;

struct EpochRecord {
    int epoch = 0;
    double train_loss = 0, valid_loss = 0, valid_acc = 0, seconds = 0;
};

// Where training stands: all a restart needs to continue bit for bit.
struct TrainingState {
    int epoch = 1;           // the epoch in progress, 1-based
    size_t next_batch = 0;   // batches of it already applied
    double loss_sum = 0;     // Σ loss · rows over those batches
    size_t samples = 0;      // rows in those batches
    uint64_t rng_state = 0, rng_inc = 0;  // the train loader's RNG before this epoch's shuffle
    std::vector<EpochRecord> history;     // the finished epochs
};
using StateFn = std::function<void(const TrainingState&)>;

// One pass over the training loader. Throws DivergenceError (naming epoch and
// batch) if the loss stops being finite; the failing step is not applied.
// With `state`, an epoch can start part-way: if state->next_batch > 0 the loader's
// order must already be this epoch's (see fit); state is updated after every
// batch, and after_batch is called with it.
double train_epoch(Module& model, Optimizer& opt, DataLoader& train, Workspace& ws, int epoch,
                   int epochs, const ProgressFn& progress = {}, TrainingState* state = nullptr,
                   const StateFn& after_batch = {});

struct FitOptions {
    ProgressFn progress;
    // Called with the state to save every `checkpoint_every` batches (0: never
    // mid-epoch) and after each epoch's validation.
    StateFn checkpoint;
    size_t checkpoint_every = 0;
    const TrainingState* resume = nullptr;  // continue from a saved state
    // Epoch e trains at the optimiser's lr x lr_gamma^(e-1): PyTorch's
    // StepLR(step_size=1, gamma). 1 keeps the rate constant, as the tutorial does.
    double lr_gamma = 1.0;
    // Or a schedule stepped after every batch (schedule.hpp): OneCycleLR, whose
    // peak is the optimiser's lr, or CosineAnnealingLR from it.
    LrSchedule schedule = LrSchedule::kStep;
    // Asked after every batch (e.g. whether Ctrl-C was pressed): true ends the run
    // there, with the checkpoint written for that point, by throwing StopRequested
    // (after an epoch's last batch, once the epoch is validated and checkpointed).
    std::function<bool()> stop_requested;
};

// fit() stopped on request after `batch` of `batches` in `epoch` (1-based); the
// model holds every step up to there, and a checkpoint made then resumes it.
class StopRequested : public Error {
public:
    StopRequested(int epoch, size_t batch, size_t batches)
        : Error("stopped in epoch " + std::to_string(epoch) + " after batch " + std::to_string(batch) + " of " +
                std::to_string(batches)),
          epoch_(epoch), batch_(batch) {}
    int epoch() const { return epoch_; }
    size_t batch() const { return batch_; }

private:
    int epoch_;
    size_t batch_;
};

// Sizes every buffer of the model, the kernels (each thread's scratch) and the
// workspace for the largest batch of either loader, from the shapes alone
// (Module::reserve): no batch runs, so nothing is learnt, no running statistic
// moves, no Dropout call is counted. The buffers are zero-filled as they are
// made, so the first epoch pays no page faults either (15-20 µs each on some
// machines; thousands for a CNN). With more than one thread in the pool it also
// makes ws's replicas for data-parallel steps (data_parallel.hpp) where the model
// allows and it pays, and reserves theirs. fit calls it; a caller of train_epoch
// may too. Allocates; the steps after it allocate nothing.
void prepare(Module& model, DataLoader& train, DataLoader& valid, Workspace& ws);

// What runs a TrainingSession's steps. The CPU runs each batch as it is submitted
// (CpuExecutor); an asynchronous executor (the CUDA backend) may keep batches in
// flight and report their results later, in submission order. The session keeps
// the host's model and optimiser as the reference copy: it calls to_host() before
// it reads them (checkpoints, the last-good copy, the finite check) and
// from_host() after it changes them (resume, restore).
class StepExecutor {
public:
    virtual ~StepExecutor() = default;
    // Before the first step: size and touch every buffer the steps use.
    virtual void prepare(DataLoader& train, DataLoader& valid) = 0;
    // Batch `index` of the epoch's order: forward, loss, backward and the optimiser's step.
    virtual void submit(const Batch& batch, size_t index) = 0;
    // Appends the results of finished batches, oldest first; with `wait`, of every submitted one.
    virtual void collect(bool wait, std::vector<BatchLoss>& out) = 0;
    virtual EvalResult evaluate(DataLoader& loader) = 0;
    virtual void set_lr(float lr) = 0;
    // The optimiser's momentum term (Optimizer::set_momentum); false if it has none
    // or the executor cannot change it.
    virtual bool set_momentum(double) { return false; }
    virtual void to_host() {}
    virtual void from_host() {}
    // The session is leaving with an exception: finish or drop what is in flight.
    virtual void abandon() noexcept {}
};

// The CPU: loss_batch on the model and optimiser themselves.
class CpuExecutor : public StepExecutor {
public:
    CpuExecutor(Module& model, Optimizer& opt) : model_(model), opt_(opt) { done_.reserve(1); }
    ~CpuExecutor() override;
    void prepare(DataLoader& train, DataLoader& valid) override;
    void submit(const Batch& batch, size_t index) override;
    void collect(bool wait, std::vector<BatchLoss>& out) override;
    EvalResult evaluate(DataLoader& loader) override;
    void set_lr(float lr) override { opt_.set_lr(lr); }
    bool set_momentum(double m) override { return opt_.set_momentum(m); }

private:
    Module& model_;
    Optimizer& opt_;
    Workspace ws_;
    std::vector<BatchLoss> done_;
    DataLoader* train_ = nullptr;  // whose float inputs prepare() turned off
    bool train_floats_ = true;
};

// The training loop, written once: epochs with StepLR, validation, divergence
// (the last good epoch's parameters restored), checkpoints, resume, stop requests
// and progress. fit() runs it to the end; the page's worker runs it a time slice
// at a time (advance with a pause predicate); the CUDA backend runs it through its
// own executor.
class TrainingSession {
public:
    TrainingSession(Module& model, Optimizer& opt, DataLoader& train, DataLoader& valid, int epochs,
                    FitOptions options = {}, StepExecutor* executor = nullptr);
    // Trains until the current epoch ends (then validates it) or `pause`, asked after
    // every batch, says stop. Returns whether epochs remain. Throws DivergenceError
    // (parameters restored to the last good epoch), StopRequested, or what a
    // callback throws.
    bool advance(const std::function<bool()>& pause = {});
    void run() { while (advance()) {} }
    bool done() const { return st_.epoch > epochs_; }
    const TrainingState& state() const { return st_; }
    // The losses of the batches the last advance() trained (for the page's chart).
    const std::vector<float>& batch_losses() const { return losses_; }
    // An epoch's end, as the last advance() reached it (null if it did not).
    const EpochRecord* epoch_end() const { return ended_ ? &st_.history.back() : nullptr; }

private:
    void start();
    void begin_epoch();
    void account(std::vector<BatchLoss>& results);
    void end_epoch();
    void restore_good();
    void checkpoint();

    Module& model_;
    DataLoader& train_;
    DataLoader& valid_;
    int epochs_;
    FitOptions options_;
    std::unique_ptr<CpuExecutor> cpu_;
    StepExecutor* exec_;
    TrainingState st_;
    std::vector<xt::xarray<float>> good_;  // the parameters after the last good epoch
    std::vector<Buffer> good_buffers_;     // and the buffers (BatchNorm's running statistics)
    std::vector<BatchLoss> results_;
    std::vector<float> losses_;
    Progress progress_;
    double base_lr_ = 0;
    size_t submitted_ = 0;
    bool started_ = false, open_ = false, ended_ = false;
    std::chrono::steady_clock::time_point epoch_start_;
};

// The tutorial's fit: for each epoch train, then validate without gradients.
// On divergence the parameters are restored to the end of the last good epoch
// (or the start) and DivergenceError is rethrown, so a caller can still save them.
std::vector<EpochRecord> fit(int epochs, Module& model, Optimizer& opt, DataLoader& train,
                             DataLoader& valid, const FitOptions& options);
std::vector<EpochRecord> fit(int epochs, Module& model, Optimizer& opt, DataLoader& train,
                             DataLoader& valid, const ProgressFn& progress = {});

// The kEpochEnd report of an epoch, as fit() gives it (shared with other backends' fits).
Progress epoch_end_progress(const EpochRecord& rec, int epochs, const DataLoader& train);

// The tutorial's get_data: (train loader shuffled, validation loader at twice the batch).
std::pair<DataLoader, DataLoader> get_data(const TensorDataset& train, const TensorDataset& valid,
                                           size_t batch_size, uint64_t seed = 0);

// The first parameter or buffer (by state_dict name) holding NaN or infinity, and
// that value; none when every value is finite.
struct NonFinite {
    std::string name;
    float value;
};
std::optional<NonFinite> first_non_finite(Module& model);
bool all_finite(Module& model);

// One image of uint8 pixels (scaled by 1/255 as the loaders do) -> the class
// probabilities (softmax of the logits, in double) and the most probable class, with
// the model in eval mode: what `sgdx predict` prints and the page shows.
struct Prediction {
    std::vector<double> probs;
    size_t predicted = 0;
};
Prediction predict_proba(Module& model, const uint8_t* pixels);

// What a Sequential computes for one image (as predict_proba), child by child:
// each child's name, type, output shape ((C, H, W) maps or (units)) and output in
// PyTorch's layout, the logits last; what the page draws. Empty for any other model.
struct LayerOutput {
    std::string name, type;
    Shape shape;
    std::vector<float> values;
};
std::vector<LayerOutput> layer_outputs(Module& model, const uint8_t* pixels);

// The most probable class of images [first, first + count) of `set`, in eval
// mode, one forward through ws's logits (the page's test-set grid).
std::vector<uint32_t> predicted_classes(Module& model, const TensorDataset& set, size_t first, size_t count,
                                        Workspace& ws);

// "training diverged: the loss is NaN at epoch 1, batch 5 of 782 (try a smaller --lr)",
// for every backend's training loop.
DivergenceError loss_divergence(float loss, int epoch, size_t batch, size_t batches);

}  // namespace sgdx
