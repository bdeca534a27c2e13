#pragma once
// A data-parallel step: with a pool of T > 1 threads, a batch of B rows is cut
// into T contiguous parts, and part r (rows [B·r/T, B·(r+1)/T)) runs forward, the
// loss gradient and backward through the whole network on a model of its own:
// part 0 on the model itself, part r > 0 on replica r (Module::replicate: its own
// parameter copies, activations, scratch and gradients). Inside a part the layers'
// own pool calls run inline (ThreadPool::in_job), so one pool job covers the whole
// step instead of one per layer (~16 for a CNN, each a wake-up and a wait).
//
// Each row's loss gradient is scaled by 1/B of the whole batch, so the parts'
// gradients add up to the batch's: the replicas' are added into the model's in
// replica order (the same bits for a given thread count, whichever thread ran
// which part), then zeroed; the optimiser steps the model alone, and each replica
// copies the model's parameter values at the start of its next part.
//
// Only for models whose step is separable by sample (Module::separable_by_sample:
// no BatchNorm or Dropout in training mode) and whose every module clones; and
// only where it pays (see DataParallel::splits). Everything is allocated by
// create() and reserve(); step() allocates nothing.
#include <cstddef>
#include <memory>
#include <vector>

#include "data.hpp"
#include "module.hpp"

namespace sgdx {

// When a step is split. What a split costs beside the halved compute: the pool
// job (a hot worker: a few µs), each replica's copy of the parameters, the sum of
// the replicas' gradients (both per parameter value), and nothing saved on the
// optimiser's step. Thread CPU time (least of 7 rounds) on the 2-core AVX-512
// machine, batch 64, per step:
//   logistic  step 10.2 µs, forward+backward of 32 rows 4.6, copy 0.2, sum 2.6
//   mlp       step 124 µs,  32 rows 58,   copy 3.1, sum 10.4 (two threads: 5.2)
//   cnn       step 490 µs,  32 rows 248,  copy 0.1, sum 1.3
//   lenet     step 2830 µs, 32 rows 1400, copy 2.6, sum 7.7
// What those leave out is the traffic between the cores: every step the replica
// reads the parameters the optimiser just wrote on the other core, and its
// gradients are read back. That is the whole cost for the fully connected models,
// which do one multiply-add per parameter value per sample: on 2 threads, wall
// time, the same run (12-07, machine quiet), a training epoch of the MLP took
// 114-158 ms split against 110 on 1 thread and 90-101 with each layer splitting
// its own work; the logistic model's step (10 µs) is about one pool job's wake-up
// and wait. So a model is split only if a sample costs at least
// min_work_per_parameter multiply-adds per parameter value (convolutions reuse
// their weights over the positions: the tutorial CNN 7, LeNet 14; Linear layers 1),
// and a batch only when each part holds at least min_part_work multiply-adds
// (~10-20 µs of SIMD work): the CNN's epoch's 16-row last batch is split (8 rows a
// part), LeNet's from 1 row. Changeable for tests and measurements (before prepare()).
struct DataParallelRule {
    double min_work_per_parameter = 4;
    double min_part_work = double(1 << 20);
};
DataParallelRule& data_parallel_rule();

// Rows [r0, r0 + n) of batch b through `model` (bytes: from b.pixels, else b.x):
// logits (B, C) rows, their cross-entropy (Σ over the rows, `correct` rows whose
// argmax is the target), and with dlogits the loss gradient (each row scaled by
// grad_scale) and backward, gradients added into the model's. In sub-batches of
// cache_rows(model) rows, so that a large batch's activations stay in cache
// between a layer's forward and the next layer's, and between forward and
// backward. A sub-batch whose loss is not finite gets no backward (the caller
// drops the step). Allocates nothing.
double forward_backward_rows(Module& model, const Batch& b, size_t r0, size_t n, bool bytes, float* logits,
                             float* dlogits, float grad_scale, size_t* correct);

// The rows whose activations (every leaf module's outputs) fit
// kCacheActivationBytes (this machine's L2 is 1 MB a core; a layer's input and
// output and the saved activations of the sub-batch stay near). The tutorial CNN
// keeps ~36 KB a row, LeNet ~104 KB: their batches of 64 stay whole (measured as
// fast as 16-32 rows at a time, and the same bits as before), those of 1024 go
// 128 (CNN) or ~41 (LeNet) rows at a time. Training epoch, AVX-512, batch 1024,
// 1 / 2 threads: CNN 425 / 233 ms whole, 334 / 190 in sub-batches; LeNet 2,623 /
// 1,372 whole, 2,036 / 1,059. All of `rows` for a model that is not separable by
// sample in its current mode (BatchNorm in training needs the whole batch's
// statistics). forward_backward_rows cuts n rows into floor(n / cache_rows) equal
// sub-batches, so none is small (29 + 3 rows paid a whole pass of per-call costs
// for 3).
size_t cache_rows(const Module& model, size_t rows);
constexpr size_t kCacheActivationBytes = size_t(4) << 20;

class DataParallel {
public:
    // Replicas of `model` for `threads` parts, or null where splitting is not for
    // it: one thread, a step that is not separable by sample in training mode, a
    // module without clone(), or a model the rule above leaves undivided. Allocates.
    static std::unique_ptr<DataParallel> create(Module& model, size_t threads);
    ~DataParallel();

    Module& model() const { return model_; }
    size_t parts() const { return replicas_.size() + 1; }

    // Whether a batch of `rows` of this model, in its current mode, is split: the
    // pool still has parts() threads, the model is separable now, and every part
    // gets rows enough to pay for itself (min_rows()).
    bool splits(const Module& model, size_t rows) const;
    // The fewest rows of a batch this model's step is split at.
    size_t min_rows() const { return min_rows_; }

    // Forward of batch b's rows (bytes: from b.pixels, else from b.x) into logits
    // (B, C), their cross-entropy, and with dlogits also the loss gradient (each row
    // scaled by grad_scale) into dlogits (B, C) and backward, the whole batch's
    // parameter gradients added into the model's. Returns Σ over rows of the loss,
    // and the rows whose argmax is the target in `correct`. A non-finite sum leaves
    // every gradient as it was (nothing is added). sync: copy the model's parameter
    // values into the replicas first (false only when nothing changed them since the
    // last call). Allocates nothing.
    double step(const Batch& b, bool bytes, float* logits, float* dlogits, float grad_scale, size_t* correct,
                bool sync = true);

    // Module::reserve for the parts of batches of up to max_rows, each part's
    // model on a thread of its own (inside a job, as step() runs them: the layers
    // then keep one part's buffers); every thread's kernel scratch fits every part,
    // the replicas being alike. Allocates.
    void reserve(size_t max_rows, bool byte_inputs);

    // Multiply-adds one sample's forward costs in the model's Linear/Conv2d-like
    // layers (a layer's first parameter times its output positions): the rule's input.
    static double work_per_sample(Module& model);

private:
    DataParallel(Module& model, std::vector<std::unique_ptr<Module>> replicas, size_t min_rows);
    Module& replica(size_t r) { return r == 0 ? model_ : *replicas_[r - 1]; }
    // Part `r` of the step, on whatever thread runs it.
    void run_part(size_t r, const Batch& b, bool bytes, float* logits, float* dlogits, float grad_scale, bool sync);
    void sync_values(size_t r);
    // The replicas' gradients into the model's, in replica order, then zeroed.
    void reduce();
    void zero_replica_grads();
    double run(const Batch& b, bool bytes, float* logits, float* dlogits, float grad_scale, size_t* correct, bool sync,
               size_t shift);

    Module& model_;
    std::vector<std::unique_ptr<Module>> replicas_;
    // params_[r][i]: parameter i of part r's model (r = 0: the model's own).
    std::vector<std::vector<Parameter*>> params_;
    size_t grad_values_ = 0;  // values in all of a model's gradients
    size_t min_rows_;
    // Per part: its loss sum and correct rows.
    std::vector<double> totals_;
    std::vector<size_t> correct_;
};

}  // namespace sgdx
