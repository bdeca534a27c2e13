#pragma once
// The tutorial's training helpers: loss_batch, evaluate, train_epoch and fit,
// each a public piece, with progress reported through one callback that feeds
// the CLI's progress bar and the browser's chart alike.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data.hpp"
#include "error.hpp"
#include "module.hpp"
#include "optim.hpp"

namespace sgdx {

// Buffers for a step's logits and their gradient, grown on first use and then
// reused: a training step after the first allocates nothing.
struct Workspace {
    std::vector<float> logits;   // (B, C)
    std::vector<float> dlogits;  // (B, C)
    void ensure(size_t batch, size_t classes);
};

struct BatchLoss {
    float loss = 0;      // mean over the batch
    size_t count = 0;    // rows in the batch
    size_t correct = 0;  // rows whose argmax is the target
};

// The tutorial's loss_batch: forward and cross_entropy; with an optimiser also
// backward, step and zero_grad. Without one (evaluation) no gradient is computed.
// A non-finite loss is returned for the caller to judge, and the step is then
// skipped so the parameters stay as they were.
BatchLoss loss_batch(Module& model, const Batch& batch, Workspace& ws, SGD* opt = nullptr);

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
double train_epoch(Module& model, SGD& opt, DataLoader& train, Workspace& ws, int epoch,
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
    // Asked after every batch (e.g. whether Ctrl-C was pressed): true ends the run
    // there, with the checkpoint written for that point, by throwing StopRequested.
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

// Runs one batch of each loader through the model without changing it (a
// training forward and backward whose gradients are discarded, an evaluation
// forward), so every buffer of the model, the kernels and the workspace is
// allocated and touched before the first epoch: the first epoch then costs what
// the others do, instead of paying a page fault per new 4 KiB page (15-20 µs each
// on some machines; thousands for a CNN). fit calls it; a caller of train_epoch
// may too. Allocates.
void prepare(Module& model, DataLoader& train, DataLoader& valid, Workspace& ws);

// The tutorial's fit: for each epoch train, then validate without gradients.
// On divergence the parameters are restored to the end of the last good epoch
// (or the start) and DivergenceError is rethrown, so a caller can still save them.
std::vector<EpochRecord> fit(int epochs, Module& model, SGD& opt, DataLoader& train,
                             DataLoader& valid, const FitOptions& options);
std::vector<EpochRecord> fit(int epochs, Module& model, SGD& opt, DataLoader& train,
                             DataLoader& valid, const ProgressFn& progress = {});

// The kEpochEnd report of an epoch, as fit() gives it (shared with other backends' fits).
Progress epoch_end_progress(const EpochRecord& rec, int epochs, const DataLoader& train);

// The tutorial's get_data: (train loader shuffled, validation loader at twice the batch).
std::pair<DataLoader, DataLoader> get_data(const TensorDataset& train, const TensorDataset& valid,
                                           size_t batch_size, uint64_t seed = 0);

bool all_finite(Module& model);

// "training diverged: the loss is NaN at epoch 1, batch 5 of 782 (try a smaller --lr)",
// for every backend's training loop.
DivergenceError loss_divergence(float loss, int epoch, size_t batch, size_t batches);

}  // namespace sgdx
