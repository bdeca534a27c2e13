// core/linear: nn.Linear over a kernel set, the runtime's Linear and the C API's
// op alike. The Cortex-M4 set (kernels::m4::kernel_set(), the device's) against
// the scalar reference on ragged shapes: its gemm in all four transpositions,
// its linear_forward; and the fused row-by-row update (linear_sgd_rows, the
// device's) against the stored gradient followed by the optimiser's step (the
// runtime's), with and without momentum.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/linear.hpp"
#include "runtime/kernels/cortex_m4.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/rng.hpp"

namespace {

size_t pick(sgdx::Rng& rng, size_t lo, size_t hi) { return lo + rng.next_u32() % (hi - lo + 1); }

std::vector<float> random_floats(sgdx::Rng& rng, size_t n) {
    std::vector<float> v(n);
    rng.fill_uniform(v.data(), n, 1.f);
    return v;
}

// |got - want| within a few ulps of the sum of |terms| (the two sum in their own orders)
bool close(float got, float want, float scale) { return std::fabs(got - want) <= 1e-6f * (scale + 1.f); }

}  // namespace

TEST_CASE("kernels::m4::kernel_set(): gemm in all four transpositions and linear_forward equal the reference") {
    const auto& m4 = sgdx::kernels::m4::kernel_set();
    const auto& ref = sgdx::kernels::reference();
    CHECK(std::string(m4.name) == "cortex_m4");
    sgdx::Rng rng(31);
    for (int trial = 0; trial < 400; ++trial) {
        const bool ta = trial & 1, tb = trial & 2, acc = trial & 4;
        const size_t M = pick(rng, 1, 9), N = pick(rng, 1, 21), K = pick(rng, 1, 37);
        CAPTURE(ta); CAPTURE(tb); CAPTURE(acc); CAPTURE(M); CAPTURE(N); CAPTURE(K);
        // stored shapes, each at a padded row stride
        const size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
        const size_t lda = ac + pick(rng, 0, 3), ldb = bc + pick(rng, 0, 3), ldc = N + pick(rng, 0, 3);
        const auto a = random_floats(rng, ar * lda), b = random_floats(rng, br * ldb), c0 = random_floats(rng, M * ldc);
        auto got = c0, want = c0;
        m4.gemm(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, got.data(), ldc, acc);
        ref.gemm(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, want.data(), ldc, acc);
        for (size_t i = 0; i < M; ++i) {
            for (size_t j = 0; j < N; ++j) CHECK(close(got[i * ldc + j], want[i * ldc + j], float(K + 1)));
            for (size_t j = N; j < ldc; ++j) CHECK(got[i * ldc + j] == c0[i * ldc + j]);  // padding untouched
        }
    }
    for (int trial = 0; trial < 100; ++trial) {
        const size_t B = pick(rng, 1, 7), D = pick(rng, 1, 41), C = pick(rng, 1, 13);
        const auto x = random_floats(rng, B * D), w = random_floats(rng, C * D), bias = random_floats(rng, C);
        std::vector<float> got(B * C), want(B * C);
        sgdx::core::linear_forward(m4, x.data(), w.data(), bias.data(), got.data(), B, D, C);
        sgdx::core::linear_forward(ref, x.data(), w.data(), bias.data(), want.data(), B, D, C);
        for (size_t i = 0; i < B * C; ++i) CHECK(close(got[i], want[i], float(D + 1)));
    }
}

TEST_CASE("kernels::m4::kernel_set(): gemm is the device's own loops, bit for bit") {
    // The C API's layers called axpy_rows and dot_rows directly before they took
    // the set's gemm: the firmware's bits must not move. Each case the layers use,
    // against the loop it stands for, compared by bytes.
    namespace m4 = sgdx::kernels::m4;
    const auto& set = m4::kernel_set();
    sgdx::Rng rng(33);
    for (int trial = 0; trial < 200; ++trial) {
        const size_t M = pick(rng, 1, 9), N = pick(rng, 1, 21), K = pick(rng, 1, 37);
        const bool acc = trial % 2;
        CAPTURE(M); CAPTURE(N); CAPTURE(K); CAPTURE(acc);
        const auto a = random_floats(rng, M * K), at = random_floats(rng, K * M), b = random_floats(rng, K * N),
                   bt = random_floats(rng, N * K), c0 = random_floats(rng, M * N);
        // c (M, N) += a (M, K) · b (K, N): axpy_rows per row of c (Linear's dx, Conv2d's forward)
        auto got = c0, want = c0;
        set.gemm(false, false, M, N, K, a.data(), K, b.data(), N, got.data(), N, acc);
        for (size_t i = 0; i < M; ++i) {
            if (!acc) std::fill(want.begin() + long(i * N), want.begin() + long((i + 1) * N), 0.f);
            m4::axpy_rows(want.data() + i * N, a.data() + i * K, 1, b.data(), N, K, N);
        }
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        // c (M, N) += atᵀ (at stored (K, M)) · b: axpy_rows down a column (Linear's weight row, Conv2d's patch gradient)
        got = want = c0;
        set.gemm(true, false, M, N, K, at.data(), M, b.data(), N, got.data(), N, acc);
        for (size_t i = 0; i < M; ++i) {
            if (!acc) std::fill(want.begin() + long(i * N), want.begin() + long((i + 1) * N), 0.f);
            m4::axpy_rows(want.data() + i * N, at.data() + i, M, b.data(), N, K, N);
        }
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        // c (M, N) = a · btᵀ: dot_rows (Linear's forward, Conv2d's weight gradient)
        got = want = c0;
        set.gemm(false, true, M, N, K, a.data(), K, bt.data(), K, got.data(), N, acc);
        m4::dot_rows(want.data(), N, a.data(), K, bt.data(), K, M, N, K, acc);
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("core::linear_sgd_rows: the stored gradient and then the optimiser's step, a row at a time") {
    const auto& ref = sgdx::kernels::reference();
    sgdx::Rng rng(32);
    for (const auto* set : {&ref, &sgdx::kernels::m4::kernel_set()}) {
        CAPTURE(set->name);
        for (int trial = 0; trial < 100; ++trial) {
            const size_t n = pick(rng, 1, 9), D = pick(rng, 1, 33), C = pick(rng, 1, 11);
            const bool momentum = trial % 2, first = trial % 4 < 2;
            const sgdx::core::SgdStep step{0.3f, momentum ? 0.9f : 0.f, first};
            const auto x = random_floats(rng, n * D), dy = random_floats(rng, n * C);
            const auto w0 = random_floats(rng, C * D), b0 = random_floats(rng, C);
            const auto vw0 = random_floats(rng, C * D), vb0 = random_floats(rng, C);
            // the runtime's way: the whole gradient, then one SGD step per tensor
            std::vector<float> gw(C * D, 0.f), gb(C, 0.f);
            sgdx::core::linear_weight_grad(ref, x.data(), dy.data(), gw.data(), gb.data(), n, D, C);
            auto w = w0, b = b0, vw = vw0, vb = vb0;
            ref.sgd_update(w.data(), gw.data(), momentum ? vw.data() : nullptr, C * D, step.lr, step.momentum, 0.f, 0.f,
                           false, first);
            ref.sgd_update(b.data(), gb.data(), momentum ? vb.data() : nullptr, C, step.lr, step.momentum, 0.f, 0.f,
                           false, first);
            // the device's way
            auto fw = w0, fb = b0, fvw = vw0, fvb = vb0;
            std::vector<float> row(D);
            sgdx::core::linear_sgd_rows(*set, x.data(), dy.data(), fw.data(), fb.data(), momentum ? fvw.data() : nullptr,
                                        momentum ? fvb.data() : nullptr, row.data(), n, D, C, step);
            for (size_t i = 0; i < C * D; ++i) {
                CHECK(close(fw[i], w[i], float(n)));
                if (momentum) CHECK(close(fvw[i], vw[i], float(n)));
            }
            for (size_t i = 0; i < C; ++i) {
                CHECK(close(fb[i], b[i], float(n)));
                if (momentum) CHECK(close(fvb[i], vb[i], float(n)));
            }
            if (!momentum) CHECK((fvw == vw0 && fvb == vb0));  // no momentum: its buffers untouched
        }
    }
}
