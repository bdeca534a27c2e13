// Per-kernel times of wasm_relaxed_simd against wasm_simd128 on the tutorial CNN's
// and LeNet's layer shapes (batch 64), least of 7 rounds, under Node:
//   node --experimental-wasm-relaxed-simd --no-experimental-fetch sgdx_relaxed_bench.js
#include <emscripten.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "runtime/kernels/kernels.hpp"
#include "runtime/rng.hpp"
#include "web/relaxed/relaxed_kernels.hpp"

using namespace sgdx;
using namespace sgdx::kernels;

namespace {
double least_us(const std::function<void()>& fn) {
    // Warm-up: scratch, and V8's tiers (a module's functions start in its baseline
    // compiler and are optimised in the background after they have run a while).
    for (const double t0 = emscripten_get_now(); emscripten_get_now() - t0 < 300;) fn();
    double best = 1e30;
    for (int r = 0; r < 7; ++r) {
        const double t0 = emscripten_get_now();
        for (int i = 0; i < 5; ++i) fn();
        best = std::min(best, (emscripten_get_now() - t0) * 1000.0 / 5);
    }
    return best;
}

std::vector<float> rnd(Rng& rng, size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.uniform(-1.f, 1.f);
    return v;
}

void conv(const char* name, size_t h, size_t cin, size_t cout, size_t k, size_t stride, size_t pad, bool dx,
          const KernelSet& a, const KernelSet& b) {
    ConvShape s{};
    s.n = 64, s.h = s.w = h, s.cin = cin, s.cout = cout, s.k = k, s.stride = stride, s.pad = pad;
    s.oh = s.ow = (h + 2 * pad - k) / stride + 1;
    Rng rng(1);
    const size_t xs = s.n * h * h * cin, ys = s.n * s.oh * s.ow * cout, ws = cout * cin * k * k;
    auto x = rnd(rng, xs), w = rnd(rng, ws), bias = rnd(rng, cout), dy = rnd(rng, ys);
    std::vector<float> y(ys), dw(ws), db(cout), dxv(xs);
    for (const KernelSet* set : {&a, &b}) {
        const double f = least_us([&] { set->conv_forward_cl(x.data(), w.data(), bias.data(), y.data(), s); });
        const double g = least_us([&] { set->conv_weight_grad_cl(x.data(), dy.data(), dw.data(), db.data(), s); });
        const double d = dx ? least_us([&] { set->conv_input_grad_cl(dy.data(), w.data(), dxv.data(), s); }) : 0.0;
        std::printf("%-12s %-18s forward %8.0f us  weight grad %8.0f us  input grad %8.0f us\n", name, set->name, f, g, d);
    }
}

void linear(const char* name, size_t B, size_t D, size_t C, const KernelSet& a, const KernelSet& b) {
    Rng rng(2);
    auto x = rnd(rng, B * D), w = rnd(rng, C * D), bias = rnd(rng, C), dy = rnd(rng, B * C);
    std::vector<float> y(B * C), dw(C * D), db(C), dx(B * D);
    for (const KernelSet* set : {&a, &b}) {
        const double f = least_us([&] { set->linear_forward(x.data(), w.data(), bias.data(), y.data(), B, D, C); });
        const double g = least_us([&] { set->linear_backward(x.data(), dy.data(), dw.data(), db.data(), B, D, C); });
        const double d = least_us([&] { set->gemm(false, false, B, D, C, dy.data(), C, w.data(), D, dx.data(), D, false); });
        std::printf("%-12s %-18s forward %8.0f us  weight grad %8.0f us  input grad %8.0f us\n", name, set->name, f, g, d);
    }
}
}  // namespace

int main() {
    const KernelSet* relaxed = wasm_relaxed_simd();
    if (!relaxed) {
        std::printf("no relaxed SIMD here (run Node with --experimental-wasm-relaxed-simd)\n");
        return 1;
    }
    const KernelSet& plain = by_name("wasm_simd128");
    conv("cnn conv1", 28, 1, 16, 3, 2, 1, false, plain, *relaxed);
    conv("cnn conv2", 14, 16, 16, 3, 2, 1, true, plain, *relaxed);
    conv("cnn conv3", 7, 16, 10, 3, 2, 1, true, plain, *relaxed);
    conv("lenet conv1", 28, 1, 16, 5, 1, 0, false, plain, *relaxed);
    conv("lenet conv2", 12, 16, 32, 5, 1, 0, true, plain, *relaxed);
    linear("lenet fc1", 64, 512, 128, plain, *relaxed);
    linear("lenet fc2", 64, 128, 10, plain, *relaxed);
    return 0;
}
