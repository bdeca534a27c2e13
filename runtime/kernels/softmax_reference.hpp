#pragma once
// The reference softmax_xent kernel's arithmetic over any exp and log: the
// runtime passes std::exp/std::log; the C API (device/) passes libm-free ones so
// a Cortex-M4 and a PC compute the same bits.
#include <cstddef>
#include <cstdint>

namespace sgdx::kernels {

// Same contract as KernelSet::softmax_xent.
template <class Exp, class Log>
double softmax_xent_with(Exp exp, Log log, const float* logits, const int32_t* target, float* dlogits,
                         float grad_scale, size_t B, size_t C, size_t* correct) {
    double total = 0.0;
    size_t hits = 0;
    for (size_t i = 0; i < B; ++i) {
        const float* z = logits + i * C;
        size_t arg = 0;
        float zmax = z[0];
        for (size_t c = 1; c < C; ++c)
            if (z[c] > zmax) zmax = z[c], arg = c;
        float sum = 0.f;
        for (size_t c = 0; c < C; ++c) sum += exp(z[c] - zmax);
        const float log_sum = log(sum);
        const size_t t = size_t(target[i]);
        total += double(log_sum - (z[t] - zmax));
        hits += (arg == t);
        if (dlogits) {
            float* g = dlogits + i * C;
            for (size_t c = 0; c < C; ++c) {
                const float p = exp(z[c] - zmax - log_sum);
                g[c] = grad_scale * (p - (c == t ? 1.f : 0.f));
            }
        }
    }
    if (correct) *correct = hits;
    return total;
}

}  // namespace sgdx::kernels
