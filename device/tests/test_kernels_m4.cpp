// runtime/kernels/cortex_m4: the C API's loops against the scalar reference
// (reference.cpp's gemm and softmax_xent) and against their plain definitions, on
// random ragged shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "runtime/kernels/cortex_m4.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/rng.hpp"

namespace m4 = sgdx::kernels::m4;

namespace {

std::vector<float> random_floats(sgdx::Rng& rng, size_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.uniform(lo, hi);
    return v;
}

size_t pick(sgdx::Rng& rng, size_t lo, size_t hi) { return lo + size_t(rng.next_u32() % uint32_t(hi - lo + 1)); }

// The sum of |a_k b_k|: a product's error is a few ulps of it.
bool close(double got, double want, double scale) { return std::fabs(got - want) <= 1e-6 * (scale + 1e-30); }

}  // namespace

TEST_CASE("m4::axpy_rows and m4::dot_rows equal the reference gemm on ragged shapes") {
    sgdx::Rng rng(11);
    const auto& ref = sgdx::kernels::reference();
    for (int trial = 0; trial < 200; ++trial) {
        const size_t M = pick(rng, 1, 9), N = pick(rng, 1, 19), K = pick(rng, 1, 37);
        CAPTURE(M); CAPTURE(N); CAPTURE(K);
        // dot_rows: out (M, N) = a (M, K) · b (N, K)ᵀ, at padded strides
        const size_t lda = K + pick(rng, 0, 3), ldb = K + pick(rng, 0, 3), ldo = N + pick(rng, 0, 2);
        const auto a = random_floats(rng, M * lda), b = random_floats(rng, N * ldb), start = random_floats(rng, M * ldo);
        for (bool accumulate : {false, true}) {
            std::vector<float> got = start, want = start;
            m4::dot_rows(got.data(), ldo, a.data(), lda, b.data(), ldb, M, N, K, accumulate);
            ref.gemm(false, true, M, N, K, a.data(), lda, b.data(), ldb, want.data(), ldo, accumulate);
            for (size_t i = 0; i < M; ++i)
                for (size_t j = 0; j < N; ++j) CHECK(close(got[i * ldo + j], want[i * ldo + j], double(K)));
        }
        // axpy_rows: y (N) += Σ_i a[i * stride] · x_i, x_i rows of x (M, ldx)
        const size_t a_stride = pick(rng, 1, 3), ldx = N + pick(rng, 0, 3);
        const auto coef = random_floats(rng, M * a_stride), x = random_floats(rng, M * ldx), y0 = random_floats(rng, N);
        std::vector<float> y = y0;
        m4::axpy_rows(y.data(), coef.data(), a_stride, x.data(), ldx, M, N);
        for (size_t p = 0; p < N; ++p) {
            double want = y0[p];
            for (size_t i = 0; i < M; ++i) want += double(coef[i * a_stride]) * x[i * ldx + p];
            CHECK(close(y[p], want, double(M) + 1));
        }
    }
}

TEST_CASE("m4::exp_portable and log_portable within 2 ulp of the C library, m4::softmax_xent equals the reference's") {
    auto ulps = [](float a, float b) {
        int32_t ia, ib;
        std::memcpy(&ia, &a, 4), std::memcpy(&ib, &b, 4);
        return std::abs(int64_t(ia) - int64_t(ib));
    };
    for (float x = -100.f; x < 88.f; x += 0.0137f) CHECK(ulps(m4::exp_portable(x), std::exp(x)) <= 2);
    for (float x = 1e-30f; x < 1e30f; x *= 1.0371f) CHECK(ulps(m4::log_portable(x), std::log(x)) <= 2);
    CHECK(std::isnan(m4::exp_portable(std::nanf(""))));
    CHECK(m4::log_portable(0.f) == -INFINITY);
    sgdx::Rng rng(14);
    const auto& ref = sgdx::kernels::reference();
    for (int trial = 0; trial < 50; ++trial) {
        const size_t B = pick(rng, 1, 7), C = pick(rng, 2, 13);
        const auto logits = random_floats(rng, B * C, -20.f, 20.f);
        std::vector<int32_t> target(B);
        for (int32_t& t : target) t = int32_t(rng.next_u32() % C);
        std::vector<float> d_got(B * C), d_want(B * C);
        size_t ok_got = 0, ok_want = 0;
        const double got = m4::softmax_xent(logits.data(), target.data(), d_got.data(), 0.5f, B, C, &ok_got);
        const double want = ref.softmax_xent(logits.data(), target.data(), d_want.data(), 0.5f, B, C, &ok_want);
        CHECK(close(got, want, 10 * std::fabs(want) + 1));
        CHECK(ok_got == ok_want);
        for (size_t i = 0; i < B * C; ++i) CHECK(std::fabs(d_got[i] - d_want[i]) <= 1e-6f);
    }
}

TEST_CASE("m4::dot2_i8_u8 and m4::rows_i8 sum int8 x uint8 exactly, m4::quantize_input is within half a step") {
    sgdx::Rng rng(15);
    for (int trial = 0; trial < 100; ++trial) {
        const size_t rows = pick(rng, 1, 7), R = pick(rng, 1, 41), P = pick(rng, 1, 5);
        std::vector<int8_t> q(rows * R);
        std::vector<uint8_t> in(P * R);
        for (int8_t& v : q) v = int8_t(int(rng.next_u32() % 255) - 127);
        for (uint8_t& v : in) v = uint8_t(rng.next_u32());
        const auto qscale = random_floats(rng, rows, 0.001f, 0.1f), bias = random_floats(rng, rows);
        const float in_scale = 1.f / 255.f;
        std::vector<float> y(rows * P);
        m4::rows_i8(q.data(), qscale.data(), bias.data(), rows, R, in.data(), P, in_scale, y.data());
        for (size_t c = 0; c < rows; ++c)
            for (size_t p = 0; p < P; ++p) {
                int32_t acc = 0;
                for (size_t k = 0; k < R; ++k) acc += int32_t(q[c * R + k]) * int32_t(in[p * R + k]);
                CHECK(y[c * P + p] == float(acc) * (qscale[c] * in_scale) + bias[c]);
            }
        int32_t a, b;
        m4::dot2_i8_u8(q.data(), q.data() + (rows - 1) * R, in.data(), R, a, b);
        int32_t wa = 0, wb = 0;
        for (size_t k = 0; k < R; ++k) wa += int32_t(q[k]) * in[k], wb += int32_t(q[(rows - 1) * R + k]) * in[k];
        CHECK(a == wa);
        CHECK(b == wb);
        const auto x = random_floats(rng, R, -1.f, 3.f);
        std::vector<uint8_t> qx(R);
        const float scale = m4::quantize_input(x.data(), R, qx.data());
        for (size_t k = 0; k < R; ++k) CHECK(std::fabs(qx[k] * scale - std::fmax(x[k], 0.f)) <= scale * 0.5f + 1e-6f);
    }
}

TEST_CASE("m4::quantize_row rounds half away from zero within ±127, m4::max_abs says NaN") {
    const float w[6] = {1.27f, -1.27f, 0.005f, -0.005f, 0.f, 0.635f};
    const float max = m4::max_abs(w, 6);
    CHECK(max == 1.27f);
    int8_t q[6];
    float scale = 0.f;
    m4::quantize_row(w, 6, max, q, &scale);
    CHECK(scale == 1.27f / 127.f);
    CHECK(q[0] == 127);
    CHECK(q[1] == -127);
    CHECK(q[2] == int8_t(w[2] / scale + 0.5f));  // ~0.5: away from zero
    CHECK(q[3] == -q[2]);
    CHECK(q[4] == 0);
    CHECK(q[5] == int8_t(w[5] / scale + 0.5f));
    m4::quantize_row(w, 6, 0.5f, q, &scale);  // a max below the values: clamped
    CHECK((q[0] == 127 && q[1] == -127));
    const float zeros[3] = {0.f, -0.f, 0.f};
    m4::quantize_row(zeros, 3, m4::max_abs(zeros, 3), q, &scale);
    CHECK(scale == 1.f);
    CHECK((q[0] == 0 && q[1] == 0 && q[2] == 0));
    const float nan[3] = {1.f, NAN, -2.f};
    CHECK(std::isnan(m4::max_abs(nan, 3)));
}
