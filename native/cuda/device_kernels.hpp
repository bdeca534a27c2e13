#pragma once
// Launchers for the small CUDA kernels of a training step (device_kernels.cu).
// Every pointer is a device pointer; each call enqueues on `stream` and returns
// at once. The matrix products go through cuBLAS (cuda_backend.cpp). Each kernel
// computes what its namesake in runtime/kernels/reference.cpp computes.
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

namespace sgdx::cuda::dev {

// Per-batch loss and hit count, reduced on the device in a fixed order, so the
// same inputs always give the same bits.
struct LossCount {
    double loss;              // Σ_rows -log softmax(logits)[target]
    unsigned long long hits;  // rows whose argmax is the target
};

// y: (n) = x: (n) uint8 * scale
void scale_u8(const uint8_t* x, float scale, float* y, size_t n, cudaStream_t stream);

// y: (B, C), each row = b: (C). The forward product then adds x·wᵀ onto it.
void broadcast_rows(const float* b, float* y, size_t B, size_t C, cudaStream_t stream);

// Rows per block of softmax_xent; it writes one LossCount per block.
constexpr unsigned kSoftmaxThreads = 256;
inline size_t softmax_blocks(size_t B) { return (B + kSoftmaxThreads - 1) / kSoftmaxThreads; }

// logits: (B, C), target: (B) -> partial[softmax_blocks(B)] per-block sums; if
// dlogits (B, C) is not null it receives grad_scale * (softmax - onehot).
// logits and dlogits may alias. A target outside [0, C) gives a NaN loss.
void softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale,
                  size_t B, size_t C, LossCount* partial, cudaStream_t stream);

// *out (= or += if accumulate) Σ partial[0..n), summed in a fixed order.
void sum_partials(const LossCount* partial, size_t n, LossCount* out, bool accumulate,
                  cudaStream_t stream);

// db: (C) = Σ_rows dy: (B, C), plus db itself if accumulate (the bias gradient).
void column_sum(const float* dy, float* db, size_t B, size_t C, bool accumulate,
                cudaStream_t stream);

// PyTorch's SGD over n values, as kernels::KernelSet::sgd_update (buf unused
// without momentum).
void sgd_update(float* p, const float* grad, float* buf, size_t n, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first,
                cudaStream_t stream);

// y: (n) uniform in [-1, 1) from a hash of (seed, index): benchmark inputs
// without a host upload.
void fill_uniform(float* y, size_t n, uint32_t seed, cudaStream_t stream);

}  // namespace sgdx::cuda::dev
