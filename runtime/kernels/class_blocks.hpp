#pragma once
// Splitting the C output classes into register-sized blocks for the SIMD kernels:
// a block's K accumulators must be a compile-time count to stay in registers.
// Internal linkage (anonymous namespace), like the kernels that use it, so each
// instruction set's translation unit keeps its own copy.
#include <cstddef>
#include <type_traits>

namespace sgdx::kernels {
namespace {

// fn(std::integral_constant<size_t, k>{}) for the runtime k in [1, N].
template <size_t N, class Fn>
void with_block_size(size_t k, Fn&& fn) {
    if constexpr (N == 1) {
        fn(std::integral_constant<size_t, 1>{});
    } else if (k >= N) {
        fn(std::integral_constant<size_t, N>{});
    } else {
        with_block_size<N - 1>(k, fn);
    }
}

// Calls fn(K, c0) for classes [c0, c0 + K) over C classes in equal blocks of at
// most MaxK (10 with MaxK 5 -> 5 + 5; 13 with MaxK 10 -> 6 + 7).
template <size_t MaxK, class Fn>
void for_each_class_block(size_t C, Fn&& fn) {
    const size_t blocks = (C + MaxK - 1) / MaxK;
    size_t c0 = 0;
    for (size_t blk = 0; blk < blocks; ++blk) {
        const size_t K = (C - c0) / (blocks - blk);
        with_block_size<MaxK>(K, [&](auto k) { fn(k, c0); });
        c0 += K;
    }
}

}  // namespace
}  // namespace sgdx::kernels
