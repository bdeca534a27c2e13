#pragma once
// The optional CUDA backend (built with -DSGDX_CUDA=ON, preset `cuda`): the
// whole training step on one NVIDIA GPU. Weights, gradients and momentum stay on
// the device; batches go up as uint8 (4x less than floats) from pinned buffers
// on a copy stream, double-buffered against the compute stream; only each
// batch's loss comes back. Products are cuBLAS sgemm (FP32, no TF32), the rest
// small kernels (device_kernels.cu). Nothing here needs a GPU to compile or to
// call: without one, available() says why and the rest throw sgdx::Error.
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

// The tutorial's fit on the GPU, with the CPU fit's contract (runtime/train.hpp):
// the same shuffled order (train.start_epoch() each epoch), the same Progress
// fields (per batch, reported up to two batches after the GPU ran it: the host
// keeps that far ahead), validation without gradients each epoch, and on a
// non-finite loss DivergenceError naming the epoch and batch with the last good
// epoch's weights restored into `model`. Momentum starts fresh. If `progress`
// throws (e.g. Ctrl-C), `model` receives the weights trained so far.
std::vector<EpochRecord> fit(int epochs, MnistLogistic& model, const SgdOptions& options,
                             DataLoader& train, DataLoader& valid, const ProgressFn& progress = {});

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
