// Plain scalar kernels: the definition every optimised variant is tested against.
#include "kernels.hpp"

#include <cmath>

#include "reference.hpp"
#include "softmax_reference.hpp"

// Named (not file-local) so a caller that needs one or two of them, as the C
// API does, links those alone: the table below pulls in every kernel.
namespace sgdx::kernels::ref {

void scale_u8(const uint8_t* x, float scale, float* y, size_t n) {
    for (size_t i = 0; i < n; ++i) y[i] = float(x[i]) * scale;
}

// x: (B, D), w: (C, D), b: (C) -> y: (B, C)
void linear_forward(const float* x, const float* w, const float* b, float* y, size_t B,
                    size_t D, size_t C) {
    for (size_t i = 0; i < B; ++i)
        for (size_t c = 0; c < C; ++c) {
            float acc = 0.f;
            for (size_t k = 0; k < D; ++k) acc += x[i * D + k] * w[c * D + k];
            y[i * C + c] = acc + b[c];
        }
}

// x: (B, D), dy: (B, C) -> dw: (C, D) += dyᵀ·x, db: (C) += Σ dy
void linear_backward(const float* x, const float* dy, float* dw, float* db, size_t B,
                     size_t D, size_t C) {
    for (size_t c = 0; c < C; ++c) {
        for (size_t k = 0; k < D; ++k) {
            float acc = 0.f;
            for (size_t i = 0; i < B; ++i) acc += dy[i * C + c] * x[i * D + k];
            dw[c * D + k] += acc;
        }
        if (db) {
            float acc = 0.f;
            for (size_t i = 0; i < B; ++i) acc += dy[i * C + c];
            db[c] += acc;
        }
    }
}

double softmax_xent(const float* logits, const int32_t* target, float* dlogits,
                    float grad_scale, size_t B, size_t C, size_t* correct) {
    return softmax_xent_with([](float x) { return std::exp(x); }, [](float x) { return std::log(x); }, logits,
                             target, dlogits, grad_scale, B, C, correct);
}

void sgd_update(float* p, const float* grad, float* buf, size_t n, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first) {
    for (size_t i = 0; i < n; ++i) {
        float g = grad[i] + weight_decay * p[i];
        if (momentum != 0.f) {
            buf[i] = first ? g : momentum * buf[i] + (1.f - dampening) * g;
            g = nesterov ? g + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * g;
    }
}

void linear_forward_u8(const uint8_t* x, float scale, const float* w, const float* b, float* y,
                       size_t B, size_t D, size_t C) {
    for (size_t i = 0; i < B; ++i)
        for (size_t c = 0; c < C; ++c) {
            float acc = 0.f;
            for (size_t k = 0; k < D; ++k) acc += float(x[i * D + k]) * w[c * D + k];
            y[i * C + c] = scale * acc + b[c];
        }
}

void linear_backward_u8(const uint8_t* x, float scale, const float* dy, float* dw, float* db,
                        size_t B, size_t D, size_t C) {
    for (size_t c = 0; c < C; ++c) {
        for (size_t k = 0; k < D; ++k) {
            float acc = 0.f;
            for (size_t i = 0; i < B; ++i) acc += dy[i * C + c] * float(x[i * D + k]);
            dw[c * D + k] += scale * acc;
        }
        if (db) {
            float acc = 0.f;
            for (size_t i = 0; i < B; ++i) acc += dy[i * C + c];
            db[c] += acc;
        }
    }
}

// c: (M, N) = op(a) · op(b) (+ c), the sum over k in order.
void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* a, size_t lda,
          const float* b, size_t ldb, float* c, size_t ldc, bool accumulate) {
    for (size_t i = 0; i < M; ++i)
        for (size_t j = 0; j < N; ++j) {
            float acc = 0.f;
            for (size_t k = 0; k < K; ++k)
                acc += (trans_a ? a[k * lda + i] : a[i * lda + k]) * (trans_b ? b[j * ldb + k] : b[k * ldb + j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc : acc;
        }
}

void relu_forward(const float* x, float* y, size_t n) {
    for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.f ? 0.f : x[i];
}

void relu_backward(const float* x, const float* dy, float* dx, size_t n) {
    for (size_t i = 0; i < n; ++i) dx[i] = x[i] <= 0.f ? 0.f : dy[i];  // NaN passes dy, as in PyTorch
}

size_t maxpool_first_max(const float* win, size_t k, size_t pixel, size_t row) {
    size_t arg = 0;
    float m = win[0];
    for (size_t i = 0; i < k; ++i)
        for (size_t j = 0; j < k; ++j) {
            const size_t at = i * row + j * pixel;
            const float v = win[at];
            const bool take = v > m || (v != v && m == m);  // a select, not a branch: which wins is random
            m = take ? v : m;
            arg = take ? at : arg;
        }
    return arg;
}

void maxpool_forward_cl(const float* x, float* y, const PoolShape& s) {
    for (size_t b = 0; b < s.n; ++b)
        for (size_t oi = 0; oi < s.oh; ++oi)
            for (size_t oj = 0; oj < s.ow; ++oj)
                for (size_t c = 0; c < s.c; ++c) {
                    const float* win = x + ((b * s.h + oi * s.stride) * s.w + oj * s.stride) * s.c + c;
                    y[((b * s.oh + oi) * s.ow + oj) * s.c + c] = win[maxpool_first_max(win, s.k, s.c, s.w * s.c)];
                }
}

void maxpool_backward_cl(const float* x, const float* dy, float* dx, const PoolShape& s) {
    for (size_t i = 0; i < s.n * s.h * s.w * s.c; ++i) dx[i] = 0.f;
    for (size_t b = 0; b < s.n; ++b)
        for (size_t oi = 0; oi < s.oh; ++oi)
            for (size_t oj = 0; oj < s.ow; ++oj)
                for (size_t c = 0; c < s.c; ++c) {
                    const size_t first = ((b * s.h + oi * s.stride) * s.w + oj * s.stride) * s.c + c;
                    dx[first + maxpool_first_max(x + first, s.k, s.c, s.w * s.c)] += dy[((b * s.oh + oi) * s.ow + oj) * s.c + c];
                }
}

}  // namespace sgdx::kernels::ref

namespace sgdx::kernels {

const KernelSet& reference() {
    using namespace ref;
    static const KernelSet set{"scalar",     scale_u8,          linear_forward,    linear_backward,
                               softmax_xent, sgd_update,        linear_forward_u8, linear_backward_u8,
                               gemm,         relu_forward,      relu_backward,
                               nullptr,      nullptr,           nullptr,
                               maxpool_forward_cl, maxpool_backward_cl};
    return set;
}

}  // namespace sgdx::kernels
