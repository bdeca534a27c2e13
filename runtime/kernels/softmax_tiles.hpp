#pragma once
// softmax_xent for the SIMD kernel sets: rows go through a tile of shifted
// logits e = z - max(z), so the exponentials run as one contiguous vector loop
// across row boundaries (C = 10 is not a multiple of any vector width); one exp
// per value, the probabilities are e / Σe. Internal linkage, like class_blocks.hpp.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels.hpp"

namespace sgdx::kernels {
namespace {

// An exponential below this (e^-60) counts as exactly 0. WebAssembly has no
// flush-to-zero mode, and on x86 every operation on a denormal costs ~100x: at a
// large learning rate most probabilities are tiny, and their gradients (x 1/batch,
// and x 1/255 in the fused kernels) fell below 1.2e-38 and made a wasm epoch 15x
// slower (1363 vs 87 ms at lr 50 under Node). A probability kept is at least
// e^-60 / C, so even / 1024 classes / a batch of 10^6 / 255 stays a normal float;
// next to the largest probability (>= 1/C) it is 19 orders of magnitude below
// float precision.
constexpr float kExpFlushBelow = 8.75651076e-27f;  // e^-60

// Same contract as KernelSet::softmax_xent. exp_inplace(e, n) replaces e[0, n)
// by exp(e) (the caller's vector code); rows wider than the tile take the reference.
template <size_t kTile, class ExpInplace>
double softmax_xent_tiled(const float* logits, const int32_t* target, float* dlogits, float grad_scale, size_t B,
                          size_t C, size_t* correct, ExpInplace&& exp_inplace) {
    if (C > kTile) return reference().softmax_xent(logits, target, dlogits, grad_scale, B, C, correct);
    alignas(64) float e[kTile];
    float zmax[kTile];
    double total = 0.0;
    size_t hits = 0;
    const size_t rows_per_tile = kTile / C;
    for (size_t r0 = 0; r0 < B; r0 += rows_per_tile) {
        const size_t rows = std::min(rows_per_tile, B - r0);
        const float* z = logits + r0 * C;
        for (size_t r = 0; r < rows; ++r) {
            const float* zr = z + r * C;
            float m = zr[0];
            size_t arg = 0;
            for (size_t c = 1; c < C; ++c)
                if (zr[c] > m) m = zr[c], arg = c;
            zmax[r] = m;
            hits += (arg == size_t(target[r0 + r]));
            for (size_t c = 0; c < C; ++c) e[r * C + c] = zr[c] - m;
        }
        exp_inplace(e, rows * C);
        for (size_t r = 0; r < rows; ++r) {
            float* er = e + r * C;
            const size_t t = size_t(target[r0 + r]);
            float sum = 0.f;
            for (size_t c = 0; c < C; ++c) {
                if (er[c] < kExpFlushBelow) er[c] = 0.f;  // false for NaN, which stays
                sum += er[c];
            }
            // read before the gradient is written: dlogits may alias logits
            total += double(std::log(sum) - (z[r * C + t] - zmax[r]));
            if (dlogits) {
                float* g = dlogits + (r0 + r) * C;
                const float inv = grad_scale / sum;
                for (size_t c = 0; c < C; ++c) g[c] = er[c] * inv;
                g[t] -= grad_scale;
            }
        }
    }
    if (correct) *correct = hits;
    return total;
}

}  // namespace
}  // namespace sgdx::kernels
