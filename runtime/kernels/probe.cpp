#include "probe.hpp"

#include <chrono>
#include <cstring>

#include "../error.hpp"
#include "kernels.hpp"

namespace sgdx::kernels {

#if defined(SGDX_X86_KERNELS)
double fma_probe_sse2(size_t iterations, double* flops);
double fma_probe_avx2(size_t iterations, double* flops);
double fma_probe_avx512(size_t iterations, double* flops);
#endif
#if defined(SGDX_WASM_SIMD_KERNELS)
double fma_probe_wasm_simd128(size_t iterations, double* flops);
#endif

namespace {
volatile double g_sink;

double scalar_probe(size_t iterations, double* flops) {
    float acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = float(j) * 1e-3f;
    for (size_t i = 0; i < iterations; ++i)
        for (int j = 0; j < 12; ++j) acc[j] = acc[j] * 0.999f + 1e-4f;
    *flops = double(iterations) * 12 * 2;
    double s = 0;
    for (float a : acc) s += a;
    return s;
}
}  // namespace

double fma_peak_gflops(const std::string& name, double seconds) {
    double (*probe)(size_t, double*) = nullptr;
    by_name(name);  // throws for a set this CPU cannot run
    if (name == "scalar") probe = scalar_probe;
#if defined(SGDX_X86_KERNELS)
    if (name == "sse2") probe = fma_probe_sse2;
    if (name == "avx2") probe = fma_probe_avx2;
    if (name == "avx512") probe = fma_probe_avx512;
#endif
#if defined(SGDX_WASM_SIMD_KERNELS)
    if (name == "wasm_simd128") probe = fma_probe_wasm_simd128;
#endif
    if (!probe) throw Error("no FMA probe for kernel set '" + name + "'");
    using clock = std::chrono::steady_clock;
    double best = 0;
    size_t iterations = 1 << 16;
    const auto start = clock::now();
    while (std::chrono::duration<double>(clock::now() - start).count() < seconds) {
        double flops;
        const auto t0 = clock::now();
        g_sink = probe(iterations, &flops);
        const double dt = std::chrono::duration<double>(clock::now() - t0).count();
        if (dt < 0.01) iterations *= 2;
        else if (flops / dt / 1e9 > best) best = flops / dt / 1e9;
    }
    return best;
}

double stream_read_gbs(const uint8_t* data, size_t n, int repeats) {
    using clock = std::chrono::steady_clock;
    double best = 0;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = clock::now();
        uint64_t sum = 0;
        for (size_t i = 0; i + 8 <= n; i += 8) {  // memcpy: no aliasing games; compiles to loads
            uint64_t word;
            std::memcpy(&word, data + i, 8);
            sum += word;
        }
        g_sink = double(sum);
        const double dt = std::chrono::duration<double>(clock::now() - t0).count();
        if (double(n) / dt / 1e9 > best) best = double(n) / dt / 1e9;
    }
    return best;
}

}  // namespace sgdx::kernels
