#pragma once
// KernelSet::relu_forward and relu_backward for the SIMD sets, written once over
// gemm_tiles.hpp's vector adaptor V, which has for them
//
//   static type relu(type v);                   // v < 0 -> 0, a NaN kept
//   static type zero_where_le0(type v, type m); // v's lanes -> 0 where m <= 0, a NaN m passes
//
// (select on x86, and-not in wasm: GCC keeps a plain loop's select as a branch on
// the sign, mispredicted half the time). conv_tiles.hpp's fused ReLU runs the same
// loops in place. Internal linkage, like gemm_tiles.hpp.
#include <cstddef>

namespace sgdx::kernels {
namespace {

template <class V>
struct ReluTiles {
    static constexpr size_t W = V::W;

    // x: (n) -> y: (n) = max(x, 0), NaN kept (y may alias x)
    static void forward(const float* x, float* y, size_t n) {
        size_t i = 0;
        for (; i + W <= n; i += W) V::store(y + i, V::relu(V::load(x + i)));
        for (; i < n; ++i) y[i] = x[i] < 0.f ? 0.f : x[i];  // NaN < 0 is false: kept
    }

    // x: (n), dy: (n) -> dx: (n) = 0 where x <= 0, else dy (a NaN x passes dy;
    // dx may alias dy)
    static void backward(const float* x, const float* dy, float* dx, size_t n) {
        size_t i = 0;
        for (; i + W <= n; i += W) V::store(dx + i, V::zero_where_le0(V::load(dy + i), V::load(x + i)));
        for (; i < n; ++i) dx[i] = x[i] <= 0.f ? 0.f : dy[i];
    }
};

}  // namespace
}  // namespace sgdx::kernels
