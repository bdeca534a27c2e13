#pragma once
// The optional CUDA backend (built with -DSGDX_CUDA=ON, preset `cuda`): the
// whole training step on one NVIDIA GPU. Weights, gradients and momentum stay on
// the device; batches go up as uint8 (4x less than floats) from pinned buffers
// on a copy stream, double-buffered against the compute stream; only each
// batch's loss comes back. Products are cuBLAS sgemm (FP32, no TF32), the rest
// small kernels (device_kernels.cu). Nothing here needs a GPU to compile or to
// call: without one, available() says why and the rest throw sgdx::Error.
#include <memory>
#include <string>
#include <vector>

#include "models/mnist_logistic.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/train.hpp"

namespace sgdx::cuda {

// True if a CUDA device this build can run on (compute capability >= 8.0) and a
// driver for it are present; otherwise false, with the reason in *why.
bool available(std::string* why = nullptr);

// "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB, CUDA runtime 13.0, driver 13.0",
// or "no device: <why>".
std::string describe();

// The logistic model's training steps on the GPU, as the executor of the
// runtime's TrainingSession (runtime/train.hpp), which keeps the training loop:
// StepLR, validation, divergence, checkpoints, resume, stop requests, progress.
// The weights, their gradients and the momentum live on the device packed as
// [weight (C×D) | bias (C)]. submit() uploads the batch's uint8 pixels and labels
// (from one of two pinned buffers, on a copy stream) and queues the step; it
// returns once the batch two before it has finished, and only each batch's loss
// comes back, so the host keeps up to two batches ahead of the GPU. `model` and
// `opt` (an SGD over model.parameters()) are the session's host copies: to_host()
// writes the device's weights and momentum into them, from_host() reads them.
// The constructor throws sgdx::Error (saying why) without a usable GPU.
class Executor : public StepExecutor {
public:
    Executor(MnistLogistic& model, SGD& opt);
    ~Executor() override;
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;
    // Checks the data fits the model, sizes the device buffers and runs one step of
    // `train` without its update (and one evaluation batch): cuBLAS loads its kernels.
    void prepare(DataLoader& train, DataLoader& valid) override;
    void submit(const Batch& batch, size_t index) override;
    void collect(bool wait, std::vector<BatchLoss>& out) override;
    EvalResult evaluate(DataLoader& loader) override;  // every batch of the loader, one read-back
    void set_lr(float lr) override;                   // the host SGD's too
    void to_host() override;
    void from_host() override;
    void abandon() noexcept override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The runtime's fit (the same TrainingSession, so the same contract: shuffled
// order, Progress, StepLR, checkpoints, resume, stop requests, DivergenceError
// with the last good epoch's weights restored) with the steps on the GPU.
// Per-batch progress arrives up to two batches after the GPU ran the batch.
// Input errors are thrown before the device is needed.
std::vector<EpochRecord> fit(int epochs, MnistLogistic& model, SGD& opt, DataLoader& train, DataLoader& valid,
                             const FitOptions& options = {});

// The CPU evaluate()'s numbers (loss, accuracy, count), computed on the GPU.
EvalResult evaluate(MnistLogistic& model, DataLoader& loader);

// The device kernels behind the host-pointer interface of kernels.hpp, named
// "cuda": each call uploads its inputs, runs the same kernels and cuBLAS calls as
// fit(), and downloads the results. Slow; for comparing with the reference.
const kernels::KernelSet& kernel_set();

// GFLOP/s of an n x n x n single-precision product, inputs resident on the GPU.
struct GemmBench {
    size_t n = 0;
    int reps = 0;
    double sgdx_ms = 0, sgdx_gflops = 0;      // sgdx's forward: bias broadcast + cublasSgemm (FP32)
    double cublas_ms = 0, cublas_gflops = 0;  // cublasSgemm alone (FP32)
    double tf32_ms = 0, tf32_gflops = 0;      // cublasSgemm with TF32 tensor cores allowed
};
GemmBench bench_gemm(size_t n, int reps);

}  // namespace sgdx::cuda
