#pragma once
// Machine floors for the benchmark: what the FMA units and memory can do at best,
// measured the same way the kernels run (same instruction set, one thread).
#include <cstddef>
#include <cstdint>
#include <string>

namespace sgdx::kernels {

// Multiply-add throughput of kernel set `name` with enough independent
// accumulators to cover FMA latency: GFLOP/s (2 flops per lane per FMA).
double fma_peak_gflops(const std::string& name, double seconds = 0.2);

// A streaming read of n bytes (summed, so it cannot be skipped): GB/s.
double stream_read_gbs(const uint8_t* data, size_t n, int repeats = 5);

}  // namespace sgdx::kernels
