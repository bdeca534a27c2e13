#pragma once
// KernelSet::gemm for the SIMD sets, written once over a small vector adaptor V
// (xsimd per x86 arch in xsimd_kernels.hpp, wasm SIMD128 in wasm_simd.cpp):
//
//   struct V {
//       using type = ...;                      // W floats
//       static constexpr size_t W;             // floats per vector
//       static constexpr size_t kRows;         // rows of a two-vector-wide tile
//       static type zero(), splat(float), load(const float*);   // unaligned
//       static void store(float*, type);                        // unaligned
//       static type fma(type a, type b, type c);                // a * b + c
//       static type add(type a, type b);
//       static type relu(type), zero_where_le0(type, type);   // relu_tiles.hpp
//   };
//
// The tile: kRows rows of c by NR = 2 W columns (or 2 kRows rows by W columns when
// N <= W, as a 16-channel convolution on AVX-512 is), held in registers over a slab
// of KC steps of k: per step NR/W loads of b and one broadcast of a per row, so
// each loaded value feeds several multiply-adds. b is read in place when it is
// stored (K, N) and the panel is whole; transposed b and the ragged last panel
// are packed (zero-padded) once per slab into a per-thread buffer. a is never
// packed: a row's (or, transposed, a column's) values are broadcast one by one.
// Internal linkage and no std:: templates, like class_blocks.hpp (each
// instruction set's translation unit keeps its own copy).
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "class_blocks.hpp"

// The tile's loops over its rows and vectors must unroll completely, or the
// compiler keeps the accumulators in memory (GCC did, for 24 rows).
#ifndef SGDX_UNROLL
#define SGDX_UNROLL _Pragma("GCC unroll 32")
#endif

// The pack buffer is per thread where there are threads; a single-threaded wasm
// build has no thread_local (wasm-ld refuses it without the atomics feature).
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define SGDX_GEMM_PER_THREAD static
#else
#define SGDX_GEMM_PER_THREAD static thread_local
#endif

namespace sgdx::kernels {
namespace {

// Grown when a call needs more, and kept: KernelSet::reserve_scratch sizes it
// ahead for a layer's calls, so that a training step allocates nothing. Through
// operator new (the allocation-counting tests see it), except in the relaxed-SIMD
// side module, which imports only malloc and free.
struct PackBuffer {
    float* data = nullptr;
    size_t size = 0;
    ~PackBuffer() { release(data); }
    float* get(size_t n) {
        if (n > size) {
            release(data);
            data = acquire(n);
            if (!data) std::abort();
            size = n;
        }
        return data;
    }
#if defined(SGDX_WASM_RELAXED)
    static float* acquire(size_t n) { return static_cast<float*>(std::malloc(n * sizeof(float))); }  // (a memset here became calloc, which it does not import)
    static void release(float* p) { std::free(p); }
#else
    // Zero-filled: its pages are touched as it is made, not in a step.
    static float* acquire(size_t n) {
        void* p = ::operator new(n * sizeof(float), std::nothrow);
        if (p) std::memset(p, 0, n * sizeof(float));
        return static_cast<float*>(p);
    }
    static void release(float* p) { ::operator delete(p); }
#endif
};

template <class V>
struct GemmTiles {
    using vec = typename V::type;
    static constexpr size_t W = V::W;
    static constexpr size_t KC = 256;  // k steps per slab: a packed panel stays in L1/L2

    // R rows by NV vectors of c over kc steps of k.
    // a: row r, step k at a[r * lda + k] (or a[k * lda + r] if TA); bp: (kc, NV·W) at
    // row stride ldbp -> c: (R, cols) at row stride ldc, added to c if accumulate.
    template <size_t R, size_t NV, bool TA>
    static void tile(size_t kc, const float* a, size_t lda, const float* bp, size_t ldbp, float* c,
                     size_t ldc, bool accumulate, size_t cols) {
        vec acc[R][NV];
        SGDX_UNROLL
        for (size_t r = 0; r < R; ++r)
            SGDX_UNROLL
            for (size_t v = 0; v < NV; ++v) acc[r][v] = V::zero();
        for (size_t k = 0; k < kc; ++k) {
            vec bv[NV];
            SGDX_UNROLL
            for (size_t v = 0; v < NV; ++v) bv[v] = V::load(bp + k * ldbp + v * W);
            SGDX_UNROLL
            for (size_t r = 0; r < R; ++r) {
                const vec av = V::splat(TA ? a[k * lda + r] : a[r * lda + k]);
                SGDX_UNROLL
                for (size_t v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
            }
        }
        if (cols == NV * W) {
            SGDX_UNROLL
            for (size_t r = 0; r < R; ++r)
                SGDX_UNROLL
                for (size_t v = 0; v < NV; ++v) {
                    float* dst = c + r * ldc + v * W;
                    V::store(dst, accumulate ? V::add(V::load(dst), acc[r][v]) : acc[r][v]);
                }
            return;
        }
        float tmp[NV * W];
        for (size_t r = 0; r < R; ++r) {
            for (size_t v = 0; v < NV; ++v) V::store(tmp + v * W, acc[r][v]);
            float* dst = c + r * ldc;
            for (size_t j = 0; j < cols; ++j) dst[j] = accumulate ? dst[j] + tmp[j] : tmp[j];
        }
    }

    static constexpr size_t kMaxNV = 2;  // gemm() runs panels of 1 or 2 vectors
    // One per thread for every width: KC steps of the widest panel.
    static PackBuffer& pack_buffer() {
        SGDX_GEMM_PER_THREAD PackBuffer pack;
        return pack;
    }
    // This thread's panel sized ahead, so that no gemm call allocates.
    static void reserve() { pack_buffer().get(KC * kMaxNV * W); }

    template <size_t NV, bool TA>
    static void run(bool trans_b, size_t M, size_t N, size_t K, const float* a, size_t lda, const float* b,
                    size_t ldb, float* c, size_t ldc, bool accumulate) {
        constexpr size_t NR = NV * W;
        constexpr size_t MR = NV == 1 ? 2 * V::kRows : V::kRows;
        PackBuffer& pack = pack_buffer();
        for (size_t k0 = 0; k0 < K; k0 += KC) {
            const size_t kc = K - k0 < KC ? K - k0 : KC;
            const bool add = accumulate || k0 > 0;
            for (size_t j0 = 0; j0 < N; j0 += NR) {
                const size_t cols = N - j0 < NR ? N - j0 : NR;
                const float* bp;
                size_t ldbp;
                if (!trans_b && cols == NR) {
                    bp = b + k0 * ldb + j0;
                    ldbp = ldb;
                } else {
                    float* p = pack.get(KC * NR);
                    for (size_t j = 0; j < NR; ++j)
                        for (size_t k = 0; k < kc; ++k)
                            p[k * NR + j] = j >= cols ? 0.f
                                            : trans_b ? b[(j0 + j) * ldb + k0 + k]
                                                      : b[(k0 + k) * ldb + j0 + j];
                    bp = p;
                    ldbp = NR;
                }
                for (size_t i0 = 0; i0 < M; i0 += MR) {
                    const float* ai = TA ? a + k0 * lda + i0 : a + i0 * lda + k0;
                    float* ci = c + i0 * ldc + j0;
                    with_block_size<MR>(M - i0, [&](auto rows) {
                        tile<decltype(rows)::value, NV, TA>(kc, ai, lda, bp, ldbp, ci, ldc, add, cols);
                    });
                }
            }
        }
    }

    // Same contract as KernelSet::gemm.
    static void gemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* a, size_t lda,
                     const float* b, size_t ldb, float* c, size_t ldc, bool accumulate) {
        if (K == 0) {
            if (!accumulate)
                for (size_t i = 0; i < M; ++i)
                    for (size_t j = 0; j < N; ++j) c[i * ldc + j] = 0.f;
            return;
        }
        if (N <= W) {
            if (trans_a) run<1, true>(trans_b, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
            else run<1, false>(trans_b, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
        } else {
            if (trans_a) run<kMaxNV, true>(trans_b, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
            else run<kMaxNV, false>(trans_b, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
        }
    }
};

}  // namespace
}  // namespace sgdx::kernels
