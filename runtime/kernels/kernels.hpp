#pragma once
// The hot operations of a training step behind one small table of function
// pointers. The scalar reference (reference.cpp) is the definition of what each
// kernel computes; SIMD variants (xsimd per x86 arch, wasm_simd128) must agree
// with it within the tolerances stated in tests/test_kernels.cpp.
//
// All matrices are dense row-major float32; shapes are given in comments.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sgdx::kernels {

// The shape of a 2-D convolution (square kernel k, one stride and zero padding for
// both axes): n samples of (h, w, cin) -> (oh, ow, cout).
struct ConvShape {
    size_t n, h, w, cin, oh, ow, cout, k, stride, pad;
    // A ReLU fused into the convolution (a Sequential's conv -> ReLU -> conv): its
    // forward run by the producer, its backward by the consumer, each over a sample
    // still in cache instead of a pass of its own over the batch. conv_forward_cl: y = max(y, 0), NaN kept, as
    // relu_forward. conv_input_grad_cl: dx = 0 where relu_mask <= 0 (a NaN passes),
    // relu_mask: (n, h, w, cin), the conv's input, the ReLU's output; as relu_backward.
    bool relu = false;
    const float* relu_mask = nullptr;
};

// A max pool's shape: n samples of (h, w, c) -> (oh, ow, c), a k x k window every
// stride pixels, no padding.
struct PoolShape {
    size_t n, h, w, c, oh, ow, k, stride;
};

// The kernel calls a layer will make on one thread, for KernelSet::reserve_scratch.
struct ScratchNeeds {
    bool gemm = false;                     // gemm, any shape
    const ConvShape* conv = nullptr;       // the three *_cl convolutions on this shape (n: the most samples a call takes)
    size_t linear_in = 0, linear_out = 0;  // linear_forward_u8 / linear_backward_u8 on (in, out) weights
};

struct KernelSet {
    const char* name;

    // x: (n) uint8 -> y: (n) float, y = x * scale.
    void (*scale_u8)(const uint8_t* x, float scale, float* y, size_t n);

    // x: (B, D), w: (C, D), b: (C) -> y: (B, C) = x · wᵀ + b
    void (*linear_forward)(const float* x, const float* w, const float* b, float* y,
                           size_t B, size_t D, size_t C);

    // x: (B, D), dy: (B, C) -> dw: (C, D) += dyᵀ · x, db: (C) += Σ_b dy (db may be null)
    void (*linear_backward)(const float* x, const float* dy, float* dw, float* db,
                            size_t B, size_t D, size_t C);

    // logits: (B, C), target: (B) -> returns Σ_b -log softmax(logits)[b, target[b]].
    // If dlogits (B, C) is not null it receives grad_scale * (softmax - onehot).
    // If correct is not null it receives the number of rows whose argmax is the target.
    // logits and dlogits may alias.
    double (*softmax_xent)(const float* logits, const int32_t* target, float* dlogits,
                           float grad_scale, size_t B, size_t C, size_t* correct);

    // PyTorch's SGD for one tensor of n values:
    //   g = grad + weight_decay * p
    //   buf = first ? g : momentum * buf + (1 - dampening) * g      (only if momentum != 0)
    //   g = nesterov ? g + momentum * buf : buf
    //   p -= lr * g
    // The SIMD sets store a momentum value of magnitude below kTinyMomentum as 0.
    void (*sgd_update)(float* p, const float* grad, float* buf, size_t n, float lr,
                       float momentum, float dampening, float weight_decay, bool nesterov,
                       bool first);

    // Fused variants reading uint8 pixels, x = scale * x_u8, so a batch is read
    // once as bytes instead of being converted and stored as floats first.
    // Optional: a set may leave them null and the runtime converts with scale_u8.
    // x_u8: (B, D), w: (C, D), b: (C) -> y: (B, C) = scale * x_u8 · wᵀ + b
    void (*linear_forward_u8)(const uint8_t* x, float scale, const float* w, const float* b,
                              float* y, size_t B, size_t D, size_t C) = nullptr;
    // x_u8: (B, D), dy: (B, C) -> dw: (C, D) += scale * dyᵀ · x_u8, db: (C) += Σ_b dy
    void (*linear_backward_u8)(const uint8_t* x, float scale, const float* dy, float* dw,
                               float* db, size_t B, size_t D, size_t C) = nullptr;

    // The general matrix product the layers share (Linear's input gradient, Conv2d
    // as im2col x weights, forward and backward):
    //   c: (M, N) = op(a) · op(b)   (+ c if accumulate)
    // op(a): (M, K) is a, stored (M, K) at row stride lda, or aᵀ if trans_a (a stored
    // (K, M)); op(b): (K, N) is b, stored (K, N) at row stride ldb, or bᵀ if trans_b
    // (b stored (N, K)). c is row-major at row stride ldc and must not overlap a or b.
    void (*gemm)(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* a,
                 size_t lda, const float* b, size_t ldb, float* c, size_t ldc,
                 bool accumulate) = nullptr;

    // x: (n) -> y: (n) = max(x, 0), NaN kept (y may alias x)
    void (*relu_forward)(const float* x, float* y, size_t n) = nullptr;
    // x: (n), dy: (n) -> dx: (n) = 0 where x <= 0, else dy (a NaN x passes dy, as
    // PyTorch's threshold_backward does; dx may alias dy)
    void (*relu_backward)(const float* x, const float* dy, float* dx, size_t n) = nullptr;

    // The input gradient of a convolution on channels-last planes, computed directly
    // (no patch matrix, no col2im):
    //   dy: (n, oh, ow, cout), wt: (cout, k, k, cin) (the weight (cout, cin, k, k) with
    //   its columns in channels-last patch order) -> dx: (n, h, w, cin), overwritten, with
    //   dx[b, i, j, ci] = Σ over the taps (ki, kj) and output pixels (oi, oj) with
    //   i + pad = oi·stride + ki and j + pad = oj·stride + kj of Σ_co dy[b, oi, oj, co]·wt[co, ki, kj, ci].
    // Optional: the scalar set leaves it null (core/conv then uses gemm + col2im);
    // conv_reference.hpp holds its reference.
    void (*conv_input_grad_cl)(const float* dy, const float* wt, float* dx, const ConvShape& shape) = nullptr;

    // The forward of the same convolution, computed directly (no patch matrix):
    //   x: (n, h, w, cin), w: (cout, cin, k, k) (PyTorch's layout), b: (cout) ->
    //   y: (n, oh, ow, cout), y[b, oi, oj, co] = b[co] + Σ over the taps (ki, kj, ci) of
    //   x[b, oi·stride + ki − pad, oj·stride + kj − pad, ci]·w[co, ci, ki, kj] (0 outside the plane).
    // Optional (null: core/conv uses patches + gemm); reference in conv_reference.hpp.
    void (*conv_forward_cl)(const float* x, const float* w, const float* b, float* y, const ConvShape& shape) = nullptr;
    // Its weight gradient, computed directly:
    //   x: (n, h, w, cin), dy: (n, oh, ow, cout) -> dw: (cout, cin, k, k) += Σ over the
    //   samples and output pixels of dy[b, oi, oj, co]·x[b, oi·stride + ki − pad, oj·stride + kj − pad, ci],
    //   db: (cout) += Σ dy (if not null).
    // Optional, like conv_forward_cl.
    void (*conv_weight_grad_cl)(const float* x, const float* dy, float* dw, float* db, const ConvShape& shape) = nullptr;

    // MaxPool2d on channels-last planes: x: (n, h, w, c) -> y: (n, oh, ow, c), each
    // window's maximum per channel; a NaN in the window wins (PyTorch's (v > max) ||
    // isnan(v)). Every set here fills both pool entries (reference.cpp's are the
    // definition; pool_tiles.hpp's the SIMD sets').
    void (*maxpool_forward_cl)(const float* x, float* y, const PoolShape& shape) = nullptr;
    // Its input gradient: dx: (n, h, w, c), overwritten, = dy routed to each window's
    // first maximum per channel (its first NaN if it holds one; taps in row order),
    // summed where windows overlap, 0 where no window takes a pixel.
    void (*maxpool_backward_cl)(const float* x, const float* dy, float* dx, const PoolShape& shape) = nullptr;

    // A set whose kernels keep scratch per thread (packed panels and weights, padded
    // copies: the SIMD sets) sizes the calling thread's for `needs` here, so that
    // those calls then allocate nothing; a layer's Module::reserve runs it on every
    // thread of the pool. Null where the kernels keep none (the scalar reference).
    void (*reserve_scratch)(const ScratchNeeds& needs) = nullptr;
};

// Momentum of a weight whose input is rarely nonzero (an MNIST border pixel)
// decays geometrically and spends hundreds of steps as a denormal float; WebAssembly
// has no flush-to-zero mode, and each operation on one costs ~100x on x86 (at
// momentum 0.9, ~100 of MNIST's 7,850 buffer values at a time, and a wasm epoch
// ~10% slower). The smallest normal float, so only denormals are flushed.
constexpr float kTinyMomentum = 1.17549435e-38f;  // FLT_MIN

// The SIMD sets' scalar tail: buf[i, n) below kTinyMomentum becomes 0 (NaN stays).
inline void flush_tiny_momentum(float* buf, size_t i, size_t n, float momentum) {
    if (!buf || momentum == 0.f) return;
    for (; i < n; ++i)
        if (buf[i] < kTinyMomentum && buf[i] > -kTinyMomentum) buf[i] = 0.f;
}

const KernelSet& reference();

// Every kernel set this binary holds that the running CPU supports, best last.
std::vector<const KernelSet*> available();

// The best set the CPU supports, unless SGDX_KERNELS names another ("scalar",
// "sse2", "avx2", "avx512", "wasm_simd128").
const KernelSet& best();

// The set with that name; throws sgdx::Error listing the choices if unknown or
// unsupported on this CPU.
const KernelSet& by_name(const std::string& name);

}  // namespace sgdx::kernels
