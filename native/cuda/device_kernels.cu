// The small kernels of a training step. Each mirrors the scalar reference
// (runtime/kernels/reference.cpp) operation for operation; the element-wise ones
// use __fmul_rn/__fadd_rn so nvcc cannot contract them into FMAs, which keeps
// them bit-identical to the reference (built without -mfma).
#include <string>

#include "device_kernels.hpp"
#include "runtime/error.hpp"

namespace sgdx::cuda::dev {
namespace {

constexpr unsigned kThreads = 256;  // every kernel's block size; reductions rely on it

void check_launch(const char* kernel) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        throw Error(std::string("CUDA kernel ") + kernel + ": " + cudaGetErrorString(e) + " (" +
                    std::to_string(int(e)) + ")");
}

// Grid for a grid-stride loop over n elements (capped: each thread then loops).
unsigned grid_for(size_t n) {
    size_t blocks = (n + kThreads - 1) / kThreads;
    return unsigned(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

// Tree sum of one LossCount per thread into s[0]; fixed order, so deterministic.
__device__ void block_reduce(LossCount* s) {
    for (unsigned half = kThreads / 2; half > 0; half /= 2) {
        __syncthreads();
        if (threadIdx.x < half) {
            s[threadIdx.x].loss += s[threadIdx.x + half].loss;
            s[threadIdx.x].hits += s[threadIdx.x + half].hits;
        }
    }
    __syncthreads();
}

__global__ void scale_u8_kernel(const uint8_t* x, float scale, float* y, size_t n) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
        y[i] = __fmul_rn(float(x[i]), scale);
}

__global__ void broadcast_rows_kernel(const float* b, float* y, size_t B, size_t C) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < B * C; i += size_t(gridDim.x) * blockDim.x)
        y[i] = b[i % C];
}

// One thread per row (C is small: 10 for MNIST), then a block sum of the rows' losses.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* target, float* dlogits,
                                    float grad_scale, size_t B, size_t C, LossCount* partial) {
    __shared__ LossCount s[kThreads];
    const size_t i = blockIdx.x * size_t(kThreads) + threadIdx.x;
    LossCount mine{0.0, 0};
    if (i < B) {
        const float* z = logits + i * C;
        size_t arg = 0;
        float zmax = z[0];
        for (size_t c = 1; c < C; ++c)
            if (z[c] > zmax) zmax = z[c], arg = c;
        float sum = 0.f;
        for (size_t c = 0; c < C; ++c) sum += expf(z[c] - zmax);
        const float log_sum = logf(sum);
        const int32_t t = target[i];
        if (t < 0 || size_t(t) >= C) {
            mine.loss = nan("");  // the host sees a non-finite loss and stops
        } else {
            mine.loss = double(log_sum - (z[t] - zmax));
            mine.hits = (arg == size_t(t));
        }
        if (dlogits) {
            float* g = dlogits + i * C;
            for (size_t c = 0; c < C; ++c) {
                float p = expf(z[c] - zmax - log_sum);
                g[c] = grad_scale * (p - (int64_t(c) == t ? 1.f : 0.f));
            }
        }
    }
    s[threadIdx.x] = mine;
    block_reduce(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

__global__ void sum_partials_kernel(const LossCount* partial, size_t n, LossCount* out, bool accumulate) {
    __shared__ LossCount s[kThreads];
    LossCount mine{0.0, 0};
    for (size_t i = threadIdx.x; i < n; i += kThreads) {
        mine.loss += partial[i].loss;
        mine.hits += partial[i].hits;
    }
    s[threadIdx.x] = mine;
    block_reduce(s);
    if (threadIdx.x == 0) {
        if (accumulate) {
            out->loss += s[0].loss;
            out->hits += s[0].hits;
        } else {
            *out = s[0];
        }
    }
}

// One block per column: the bias gradient, Σ over the batch of dy[:, c].
__global__ void column_sum_kernel(const float* dy, float* db, size_t B, size_t C, bool accumulate) {
    __shared__ float s[kThreads];
    const size_t c = blockIdx.x;
    float acc = 0.f;
    for (size_t r = threadIdx.x; r < B; r += kThreads) acc += dy[r * C + c];
    s[threadIdx.x] = acc;
    for (unsigned half = kThreads / 2; half > 0; half /= 2) {
        __syncthreads();
        if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
    }
    if (threadIdx.x == 0) db[c] = accumulate ? db[c] + s[0] : s[0];
}

__global__ void sgd_update_kernel(float* p, const float* grad, float* buf, size_t n, float lr,
                                  float momentum, float dampening, float weight_decay,
                                  bool nesterov, bool first) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
        float g = __fadd_rn(grad[i], __fmul_rn(weight_decay, p[i]));
        if (momentum != 0.f) {
            buf[i] = first ? g : __fadd_rn(__fmul_rn(momentum, buf[i]), __fmul_rn(1.f - dampening, g));
            g = nesterov ? __fadd_rn(g, __fmul_rn(momentum, buf[i])) : buf[i];
        }
        p[i] = __fsub_rn(p[i], __fmul_rn(lr, g));
    }
}

__global__ void fill_uniform_kernel(float* y, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
        uint32_t h = uint32_t(i) * 0x9E3779B1u ^ uint32_t(i >> 32) ^ seed;  // murmur3's finaliser
        h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
        y[i] = float(h >> 8) * (2.f / 16777216.f) - 1.f;
    }
}

}  // namespace

void scale_u8(const uint8_t* x, float scale, float* y, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    scale_u8_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, scale, y, n);
    check_launch("scale_u8");
}

void broadcast_rows(const float* b, float* y, size_t B, size_t C, cudaStream_t stream) {
    if (B * C == 0) return;
    broadcast_rows_kernel<<<grid_for(B * C), kThreads, 0, stream>>>(b, y, B, C);
    check_launch("broadcast_rows");
}

void softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale,
                  size_t B, size_t C, LossCount* partial, cudaStream_t stream) {
    static_assert(kSoftmaxThreads == kThreads, "softmax_blocks() assumes the common block size");
    if (B == 0 || C == 0) throw Error("softmax_xent: empty batch or no classes");
    softmax_xent_kernel<<<unsigned(softmax_blocks(B)), kThreads, 0, stream>>>(logits, target, dlogits,
                                                                               grad_scale, B, C, partial);
    check_launch("softmax_xent");
}

void sum_partials(const LossCount* partial, size_t n, LossCount* out, bool accumulate, cudaStream_t stream) {
    sum_partials_kernel<<<1, kThreads, 0, stream>>>(partial, n, out, accumulate);
    check_launch("sum_partials");
}

void column_sum(const float* dy, float* db, size_t B, size_t C, bool accumulate, cudaStream_t stream) {
    if (C == 0) return;
    column_sum_kernel<<<unsigned(C), kThreads, 0, stream>>>(dy, db, B, C, accumulate);
    check_launch("column_sum");
}

void sgd_update(float* p, const float* grad, float* buf, size_t n, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first, cudaStream_t stream) {
    if (n == 0) return;
    sgd_update_kernel<<<grid_for(n), kThreads, 0, stream>>>(p, grad, buf, n, lr, momentum, dampening,
                                                             weight_decay, nesterov, first);
    check_launch("sgd_update");
}

void fill_uniform(float* y, size_t n, uint32_t seed, cudaStream_t stream) {
    if (n == 0) return;
    fill_uniform_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, n, seed);
    check_launch("fill_uniform");
}

}  // namespace sgdx::cuda::dev
