// Every kernel set this CPU (or wasm engine) offers against the scalar reference,
// on random shapes that include ragged vector tails and odd sizes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "helpers.hpp"
#include "runtime/error.hpp"
#include "runtime/kernels/conv_reference.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/kernels/reference.hpp"
#include "runtime/pooling.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {
// Products of length D summed in another order differ by ~D * eps * |terms|;
// with |x|, |w| <= 1 and D <= 2100 that stays below 1e-4 relative (+1 absolute floor).
constexpr double kDotTol = 1e-4;
// exp/log of SIMD libraries are within a few ulp: 1e-5 relative on losses and probabilities.
constexpr double kSoftmaxTol = 1e-5;

const size_t kBatches[] = {1, 2, 3, 7, 16, 33, 64, 65};
// 2100: longer than the 1024 pixels the wasm kernels list nonzero chunks for at a time.
const size_t kDims[] = {1, 3, 15, 16, 17, 31, 784, 785, 2100};
// 33: more classes than the wasm forward keeps accumulators for in one pass (32).
const size_t kClasses[] = {1, 2, 3, 7, 10, 13, 17, 33};
}  // namespace

TEST_CASE("every kernel set is listed, the reference first") {
    auto sets = kernels::available();
    REQUIRE(sets.size() >= 1);
    CHECK(std::string(sets.front()->name) == "scalar");
    for (auto* k : sets) CHECK(&kernels::by_name(k->name) == k);
    CHECK_THROWS_WITH_AS(kernels::by_name("nonsense"), doctest::Contains("unknown or unsupported kernel set 'nonsense'"), sgdx::Error);
}

TEST_CASE("scale_u8 matches the reference exactly") {
    Rng rng(1);
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        for (size_t n : {size_t(1), size_t(15), size_t(16), size_t(17), size_t(63), size_t(784), size_t(1000)}) {
            auto x = random_bytes(rng, n);
            std::vector<float> want(n), got(n);
            kernels::reference().scale_u8(x.data(), 1.f / 255.f, want.data(), n);
            k->scale_u8(x.data(), 1.f / 255.f, got.data(), n);
            CHECK(max_rel_error(got.data(), want.data(), n, 0.0) == 0.0);
        }
    }
}

TEST_CASE("linear_forward and linear_backward match the reference on ragged shapes") {
    Rng rng(2);
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        for (size_t B : kBatches)
            for (size_t D : kDims)
                for (size_t C : kClasses) {
                    CAPTURE(B); CAPTURE(D); CAPTURE(C);
                    auto x = random_floats(rng, B * D, 0.f, 1.f);
                    auto w = random_floats(rng, C * D);
                    auto b = random_floats(rng, C);
                    std::vector<float> want(B * C), got(B * C, 123.f);
                    kernels::reference().linear_forward(x.data(), w.data(), b.data(), want.data(), B, D, C);
                    k->linear_forward(x.data(), w.data(), b.data(), got.data(), B, D, C);
                    REQUIRE(max_rel_error(got.data(), want.data(), B * C) < kDotTol);

                    auto dy = random_floats(rng, B * C);
                    auto dw0 = random_floats(rng, C * D);  // backward accumulates
                    auto db0 = random_floats(rng, C);
                    auto dw_want = dw0, dw_got = dw0;
                    auto db_want = db0, db_got = db0;
                    kernels::reference().linear_backward(x.data(), dy.data(), dw_want.data(), db_want.data(), B, D, C);
                    k->linear_backward(x.data(), dy.data(), dw_got.data(), db_got.data(), B, D, C);
                    REQUIRE(max_rel_error(dw_got.data(), dw_want.data(), C * D) < kDotTol);
                    REQUIRE(max_rel_error(db_got.data(), db_want.data(), C) < kDotTol);
                }
    }
}

TEST_CASE("softmax_xent matches the reference, with and without gradient") {
    Rng rng(3);
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        for (size_t B : kBatches)
            for (size_t C : kClasses) {
                CAPTURE(B); CAPTURE(C);
                auto z = random_floats(rng, B * C, -30.f, 30.f);
                std::vector<int32_t> t(B);
                for (auto& v : t) v = int32_t(rng.below(uint32_t(C)));
                std::vector<float> g_want(B * C), g_got(B * C);
                size_t hits_want = 0, hits_got = 0, hits_eval = 0;
                double want = kernels::reference().softmax_xent(z.data(), t.data(), g_want.data(), 0.25f, B, C, &hits_want);
                double got = k->softmax_xent(z.data(), t.data(), g_got.data(), 0.25f, B, C, &hits_got);
                double eval = k->softmax_xent(z.data(), t.data(), nullptr, 0.f, B, C, &hits_eval);
                CHECK(std::fabs(got - want) <= kSoftmaxTol * (1.0 + std::fabs(want)));
                CHECK(eval == got);
                CHECK(hits_got == hits_want);
                CHECK(hits_eval == hits_want);
                CHECK(max_rel_error(g_got.data(), g_want.data(), B * C, 1.0) < kSoftmaxTol);
                // in place (dlogits aliasing logits) gives the same gradient
                auto inplace = z;
                k->softmax_xent(inplace.data(), t.data(), inplace.data(), 0.25f, B, C, nullptr);
                CHECK(max_rel_error(inplace.data(), g_got.data(), B * C, 1.0) < kSoftmaxTol);
            }
    }
}

TEST_CASE("softmax_xent: a NaN or infinite logit anywhere makes the loss NaN, as in the reference") {
    // Training stops on a non-finite loss; a kernel that clamped or skipped a NaN
    // logit would let training go on with garbage.
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        for (size_t C : {size_t(3), size_t(10), size_t(13)})
            for (float bad : {nan, inf})
                for (size_t at : {size_t(0), size_t(1), C - 1}) {
                    CAPTURE(C); CAPTURE(bad); CAPTURE(at);
                    std::vector<float> z(3 * C, 0.5f), g(3 * C);
                    for (size_t c = 0; c < C; ++c) z[C + c] = 0.1f * float(c);
                    z[C + at] = bad;             // the middle row, not its target (unless at == 0)
                    std::vector<int32_t> t{0, 0, 0};
                    const double want = kernels::reference().softmax_xent(z.data(), t.data(), g.data(), 1.f, 3, C, nullptr);
                    const double got = k->softmax_xent(z.data(), t.data(), g.data(), 1.f, 3, C, nullptr);
                    CHECK(std::isnan(want));
                    CHECK(std::isnan(got));
                }
    }
}

TEST_CASE("SIMD softmax and fused backward make no denormals from tiny probabilities") {
    // Wasm has no flush-to-zero mode and x86 takes ~100x longer on a denormal: at a
    // large learning rate nearly every probability is tiny, and gradients from them
    // below 1.2e-38 once made a wasm epoch 15x slower. The reference (std::exp)
    // does make them; it is the definition, not the fast path.
#if defined(__x86_64__) || defined(__wasm__)
    REQUIRE(kernels::available().size() > 1);  // a SIMD set to check
#endif
    // The worst case the flush must cover: 9 classes tie at the max (so the sum is
    // 9), the tenth sits just above or below the flush, the batch is the page's
    // largest (60,000) and every pixel is the smallest nonzero byte, 1/255.
    const size_t B = 40, C = 10, D = 48;
    const float grad_scale = 1.f / 60000.f;
    std::vector<float> z(B * C, 0.f);
    std::vector<int32_t> t(B);
    for (size_t r = 0; r < B; ++r) {
        z[r * C + r % C] = -52.f - 0.5f * float(r);  // -52 ... -71.5: both sides of e^-60 and e^-69
        t[r] = int32_t((r + 3) % C);
    }
    const std::vector<uint8_t> x(B * D, 1);
    auto denormals = [](const std::vector<float>& v) {
        return std::count_if(v.begin(), v.end(), [](float f) { return std::fpclassify(f) == FP_SUBNORMAL; });
    };
    for (auto* k : kernels::available()) {
        if (k == &kernels::reference()) continue;
        CAPTURE(k->name);
        std::vector<float> g(B * C), g_want(B * C), dw(C * D, 0.f), db(C, 0.f);
        const double want = kernels::reference().softmax_xent(z.data(), t.data(), g_want.data(), grad_scale, B, C, nullptr);
        const double got = k->softmax_xent(z.data(), t.data(), g.data(), grad_scale, B, C, nullptr);
        CHECK(std::fabs(got - want) <= kSoftmaxTol * (1.0 + std::fabs(want)));
        CHECK(max_rel_error(g.data(), g_want.data(), B * C, 1.0) < kSoftmaxTol);
        CHECK(denormals(g) == 0);
        // each row alone, so no sum over rows lifts a denormal term back up
        for (size_t r = 0; r < B; ++r) {
            CAPTURE(r);
            std::vector<float> dw_r(C * D, 0.f);
            k->linear_backward_u8(x.data() + r * D, 1.f / 255.f, g.data() + r * C, dw_r.data(), nullptr, 1, D, C);
            CHECK(denormals(dw_r) == 0);
        }
        k->linear_backward_u8(x.data(), 1.f / 255.f, g.data(), dw.data(), db.data(), B, D, C);
        CHECK(denormals(dw) == 0);
        CHECK(denormals(db) == 0);
    }
}

TEST_CASE("SIMD sgd_update stores a denormal momentum as 0 and keeps NaN") {
    // A rarely active input's momentum decays into denormals (see kTinyMomentum).
    const size_t n = 37;  // a ragged tail too
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (auto* k : kernels::available()) {
        if (k == &kernels::reference()) continue;
        CAPTURE(k->name);
        std::vector<float> p(n, 0.25f), grad(n, 0.f), buf(n), p_want(n, 0.25f), buf_want(n);
        for (size_t i = 0; i < n; ++i) buf[i] = i % 3 == 0 ? 1.2e-38f : i % 3 == 1 ? 1e-3f : -2e-38f;
        buf[5] = nan;
        buf_want = buf;
        kernels::reference().sgd_update(p_want.data(), grad.data(), buf_want.data(), n, 0.5f, 0.9f, 0.f, 0.f, false, false);
        k->sgd_update(p.data(), grad.data(), buf.data(), n, 0.5f, 0.9f, 0.f, 0.f, false, false);
        CHECK(std::isnan(buf[5]));
        CHECK(std::isnan(p[5]));
        for (size_t i = 0; i < n; ++i) {
            if (i == 5) continue;
            CAPTURE(i);
            CHECK(std::fpclassify(buf[i]) != FP_SUBNORMAL);
            if (std::fpclassify(buf_want[i]) == FP_SUBNORMAL) {
                CHECK(buf[i] == 0.f);
                CHECK(p[i] == p_want[i]);  // a step of lr x 1e-38 does not move 0.25
            } else {
                CHECK(buf[i] == doctest::Approx(buf_want[i]).epsilon(1e-6));
                CHECK(p[i] == doctest::Approx(p_want[i]).epsilon(1e-6));
            }
        }
    }
}

TEST_CASE("sgd_update matches the reference for every option") {
    Rng rng(4);
    struct Opt { float lr, momentum, dampening, wd; bool nesterov; };
    const Opt opts[] = {{0.5f, 0, 0, 0, false}, {0.1f, 0.9f, 0, 0, false}, {0.1f, 0.9f, 0.1f, 1e-3f, false},
                        {0.05f, 0.8f, 0, 1e-2f, true}};
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        for (const Opt& o : opts)
            for (size_t n : {size_t(1), size_t(10), size_t(17), size_t(7840), size_t(7851)}) {
                auto p_want = random_floats(rng, n), grad = random_floats(rng, n);
                auto buf_want = random_floats(rng, n);
                auto p_got = p_want, buf_got = buf_want;
                for (bool first : {true, false}) {
                    kernels::reference().sgd_update(p_want.data(), grad.data(), buf_want.data(), n, o.lr, o.momentum, o.dampening, o.wd, o.nesterov, first);
                    k->sgd_update(p_got.data(), grad.data(), buf_got.data(), n, o.lr, o.momentum, o.dampening, o.wd, o.nesterov, first);
                }
                CHECK(max_rel_error(p_got.data(), p_want.data(), n) < 1e-6);
                if (o.momentum != 0.f) CHECK(max_rel_error(buf_got.data(), buf_want.data(), n) < 1e-6);
            }
    }
}

TEST_CASE("fused uint8 kernels match the reference and the convert-then-float path") {
    Rng rng(5);
    const float scale = 1.f / 255.f;
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        if (!k->linear_forward_u8) {
            MESSAGE(std::string(k->name) << " has no fused uint8 kernels: the runtime converts (tested in test_linear)");
            continue;
        }
        REQUIRE(bool(k->linear_backward_u8));
        for (bool mnist_like : {false, true})
        for (size_t B : kBatches)
            for (size_t D : kDims)
                for (size_t C : kClasses) {
                    CAPTURE(mnist_like); CAPTURE(B); CAPTURE(D); CAPTURE(C);
                    // Kernels may skip zero pixels (wasm does): test rows made mostly of zero runs too.
                    auto x = mnist_like ? mostly_zero_bytes(rng, B * D) : random_bytes(rng, B * D);
                    std::vector<float> xf(B * D);
                    kernels::reference().scale_u8(x.data(), scale, xf.data(), B * D);
                    auto w = random_floats(rng, C * D);
                    auto b = random_floats(rng, C);
                    std::vector<float> want(B * C), via_float(B * C), got(B * C, 123.f);
                    kernels::reference().linear_forward_u8(x.data(), scale, w.data(), b.data(), want.data(), B, D, C);
                    kernels::reference().linear_forward(xf.data(), w.data(), b.data(), via_float.data(), B, D, C);
                    k->linear_forward_u8(x.data(), scale, w.data(), b.data(), got.data(), B, D, C);
                    REQUIRE(max_rel_error(got.data(), want.data(), B * C) < kDotTol);
                    REQUIRE(max_rel_error(want.data(), via_float.data(), B * C) < kDotTol);

                    auto dy = random_floats(rng, B * C);
                    auto dw0 = random_floats(rng, C * D);
                    auto db0 = random_floats(rng, C);
                    auto dw_want = dw0, dw_got = dw0, dw_float = dw0;
                    auto db_want = db0, db_got = db0, db_float = db0;
                    kernels::reference().linear_backward_u8(x.data(), scale, dy.data(), dw_want.data(), db_want.data(), B, D, C);
                    kernels::reference().linear_backward(xf.data(), dy.data(), dw_float.data(), db_float.data(), B, D, C);
                    k->linear_backward_u8(x.data(), scale, dy.data(), dw_got.data(), db_got.data(), B, D, C);
                    REQUIRE(max_rel_error(dw_got.data(), dw_want.data(), C * D) < kDotTol);
                    REQUIRE(max_rel_error(db_got.data(), db_want.data(), C) < kDotTol);
                    REQUIRE(max_rel_error(dw_want.data(), dw_float.data(), C * D) < kDotTol);
                }
    }
}

TEST_CASE("gemm matches the reference for every transpose, ragged tails, strides and accumulate") {
    Rng rng(9);
    // M, N, K around every set's tile sizes (rows 4..24, columns 4..32, k slabs of 256),
    // and the layers' shapes: conv (n·P, out) x patch, Linear's dx.
    const size_t shapes[][3] = {{1, 1, 1},   {1, 17, 3},   {5, 3, 1},    {6, 16, 9},    {7, 33, 144},
                                {12, 32, 8}, {13, 31, 17}, {25, 16, 300}, {64, 784, 10}, {392, 10, 144},
                                {16, 144, 513}, {49, 15, 16}, {3, 65, 257}};
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        REQUIRE(bool(k->gemm));
        for (const auto& s : shapes)
            for (int ta = 0; ta < 2; ++ta)
                for (int tb = 0; tb < 2; ++tb)
                    for (int acc = 0; acc < 2; ++acc) {
                        const size_t M = s[0], N = s[1], K = s[2];
                        CAPTURE(M); CAPTURE(N); CAPTURE(K); CAPTURE(ta); CAPTURE(tb); CAPTURE(acc);
                        // Leading dimensions larger than the rows they hold: a view into a wider matrix.
                        const size_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
                        auto a = random_floats(rng, (ta ? K : M) * lda);
                        auto b = random_floats(rng, (tb ? N : K) * ldb);
                        auto c0 = random_floats(rng, M * ldc);
                        auto want = c0, got = c0;
                        kernels::reference().gemm(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, want.data(), ldc, acc);
                        k->gemm(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, got.data(), ldc, acc);
                        CHECK(max_rel_error(got.data(), want.data(), got.size()) < kDotTol);
                        // The padding past N in each row of c is never written.
                        bool padding_kept = true;
                        for (size_t i = 0; i < M; ++i)
                            for (size_t j = N; j < ldc; ++j) padding_kept = padding_kept && got[i * ldc + j] == c0[i * ldc + j];
                        CHECK(padding_kept);
                    }
    }
}

TEST_CASE("gemm with K = 0 gives zeros, or leaves c as it was when accumulating") {
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        std::vector<float> c(6, 7.f);
        k->gemm(false, false, 2, 3, 0, nullptr, 1, nullptr, 3, c.data(), 3, true);
        CHECK(c == std::vector<float>(6, 7.f));
        k->gemm(false, false, 2, 3, 0, nullptr, 1, nullptr, 3, c.data(), 3, false);
        CHECK(c == std::vector<float>(6, 0.f));
    }
}

TEST_CASE("relu_forward and relu_backward match the reference exactly, NaN included") {
    Rng rng(10);
    for (auto* k : kernels::available()) {
        CAPTURE(k->name);
        for (size_t n : {size_t(1), size_t(3), size_t(16), size_t(17), size_t(33), size_t(1000)}) {
            CAPTURE(n);
            auto x = random_floats(rng, n), dy = random_floats(rng, n);
            x[n / 2] = std::numeric_limits<float>::quiet_NaN();
            if (n > 1) x[0] = 0.f;  // exactly 0: no gradient, as PyTorch's threshold_backward
            std::vector<float> want(n), got(n), want_dx(n), got_dx(n);
            kernels::reference().relu_forward(x.data(), want.data(), n);
            k->relu_forward(x.data(), got.data(), n);
            kernels::reference().relu_backward(x.data(), dy.data(), want_dx.data(), n);
            k->relu_backward(x.data(), dy.data(), got_dx.data(), n);
            bool same = true;
            for (size_t i = 0; i < n; ++i)
                same = same && (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) && got_dx[i] == want_dx[i];
            CHECK(same);
            CHECK(std::isnan(got[n / 2]));
            if (n > 1) CHECK(got_dx[0] == 0.f);
            CHECK(got_dx[n / 2] == dy[n / 2]);  // a NaN input passes its gradient, as PyTorch's relu does
        }
    }
}

TEST_CASE("conv_input_grad_cl: the reference equals the scattered sum, every set that has it equals the reference") {
    Rng rng(20);
    struct Case {
        size_t n, h, w, cin, cout, k, stride, pad;
    };
    // channel counts around the vector widths (4, 8, 16 lanes), strides 1-3, ragged planes
    const Case cases[] = {{2, 14, 14, 16, 16, 3, 2, 1}, {1, 7, 7, 16, 10, 3, 2, 1}, {3, 12, 12, 16, 32, 5, 1, 0},
                          {2, 9, 8, 17, 5, 3, 2, 1},    {1, 10, 7, 33, 7, 3, 3, 2},  {2, 5, 6, 3, 4, 2, 1, 0},
                          {1, 8, 9, 8, 3, 5, 2, 2},     {2, 6, 5, 64, 9, 1, 1, 0},   {1, 11, 4, 15, 16, 4, 3, 1},
                          // stride 1 with dy well under dx (most of the padded dy is zeros),
                          // padding 1 and 2 at the edges, wide and odd planes
                          {2, 9, 23, 16, 7, 5, 1, 1},   {1, 10, 10, 32, 3, 7, 1, 2}, {2, 8, 11, 8, 5, 4, 1, 0}};
    for (const Case& c : cases) {
        kernels::ConvShape s{c.n, c.h, c.w, c.cin, (c.h + 2 * c.pad - c.k) / c.stride + 1,
                             (c.w + 2 * c.pad - c.k) / c.stride + 1, c.cout, c.k, c.stride, c.pad};
        CAPTURE(c.h); CAPTURE(c.w); CAPTURE(c.cin); CAPTURE(c.cout); CAPTURE(c.k); CAPTURE(c.stride); CAPTURE(c.pad);
        auto dy = random_floats(rng, s.n * s.oh * s.ow * s.cout);
        auto wt = random_floats(rng, s.cout * s.k * s.k * s.cin);  // (cout, k, k, cin)
        // The definition: every output pixel's gradient scattered over its window.
        std::vector<double> want(s.n * s.h * s.w * s.cin, 0.0);
        for (size_t b = 0; b < s.n; ++b)
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj)
                    for (size_t ki = 0; ki < s.k; ++ki)
                        for (size_t kj = 0; kj < s.k; ++kj) {
                            const long i = long(oi * s.stride + ki) - long(s.pad), j = long(oj * s.stride + kj) - long(s.pad);
                            if (i < 0 || j < 0 || i >= long(s.h) || j >= long(s.w)) continue;
                            for (size_t ci = 0; ci < s.cin; ++ci)
                                for (size_t co = 0; co < s.cout; ++co)
                                    want[((b * s.h + size_t(i)) * s.w + size_t(j)) * s.cin + ci] +=
                                        double(dy[((b * s.oh + oi) * s.ow + oj) * s.cout + co]) *
                                        double(wt[((co * s.k + ki) * s.k + kj) * s.cin + ci]);
                        }
        std::vector<float> ref(want.size(), std::numeric_limits<float>::quiet_NaN());
        kernels::conv_input_grad_cl_reference(dy.data(), wt.data(), ref.data(), s);
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - want[i]) / (1 + std::fabs(want[i])));
        CHECK(worst < kDotTol);
        for (auto* k : kernels::available()) {
            if (!k->conv_input_grad_cl) continue;
            CAPTURE(k->name);
            std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
            k->conv_input_grad_cl(dy.data(), wt.data(), got.data(), s);
            CHECK(max_rel_error(got.data(), ref.data(), got.size()) < kDotTol);
        }
    }
}

namespace {
// The shapes the direct convolutions are tried on: channel counts around the vector
// widths (4, 8, 16 lanes), strides 1-3, ragged planes, the networks' own layers.
struct ConvCase {
    size_t n, h, w, cin, cout, k, stride, pad;
};
const ConvCase kConvCases[] = {
    {2, 28, 28, 1, 16, 3, 2, 1}, {2, 14, 14, 16, 16, 3, 2, 1}, {3, 7, 7, 16, 10, 3, 2, 1}, {2, 28, 28, 1, 16, 5, 1, 0},
    {2, 12, 12, 16, 32, 5, 1, 0}, {2, 9, 8, 17, 5, 3, 2, 1},   {1, 10, 7, 33, 7, 3, 3, 2}, {2, 5, 6, 3, 4, 2, 1, 0},
    {1, 8, 9, 8, 3, 5, 2, 2},    {2, 6, 5, 64, 9, 1, 1, 0},    {1, 11, 4, 15, 16, 4, 3, 1}, {1, 30, 31, 2, 40, 3, 1, 1},
    {2, 14, 14, 32, 64, 3, 1, 1}, {1, 4, 40, 1, 3, 3, 1, 1},
    // several L1-sized sample groups in wasm's weight gradient, with dy copied to whole vectors
    {3, 26, 25, 3, 13, 5, 1, 2}};

kernels::ConvShape conv_shape(const ConvCase& c) {
    return {c.n, c.h, c.w, c.cin, (c.h + 2 * c.pad - c.k) / c.stride + 1, (c.w + 2 * c.pad - c.k) / c.stride + 1,
            c.cout, c.k, c.stride, c.pad};
}

// fn(shape) for every case, its sizes captured for a failure's message.
template <class Fn>
void for_each_conv_case(Fn&& fn) {
    for (const ConvCase& c : kConvCases) {
        CAPTURE(c.h); CAPTURE(c.w); CAPTURE(c.cin); CAPTURE(c.cout); CAPTURE(c.k); CAPTURE(c.stride); CAPTURE(c.pad);
        fn(conv_shape(c));
    }
}

// A tap's input index, or -1 outside the plane.
long conv_in(size_t o, size_t k, const kernels::ConvShape& s, size_t size) {
    const long i = long(o * s.stride + k) - long(s.pad);
    return i < 0 || i >= long(size) ? -1 : i;
}
}  // namespace

TEST_CASE("conv_forward_cl: the reference equals the definition, every set that has it equals the reference") {
    Rng rng(21);
    for_each_conv_case([&](const kernels::ConvShape& s) {
        auto x = random_floats(rng, s.n * s.h * s.w * s.cin);
        auto w = random_floats(rng, s.cout * s.cin * s.k * s.k);  // (cout, cin, k, k)
        auto b = random_floats(rng, s.cout);
        std::vector<double> want(s.n * s.oh * s.ow * s.cout);
        for (size_t n = 0; n < s.n; ++n)
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj)
                    for (size_t co = 0; co < s.cout; ++co) {
                        double sum = b[co];
                        for (size_t ki = 0; ki < s.k; ++ki)
                            for (size_t kj = 0; kj < s.k; ++kj) {
                                const long i = conv_in(oi, ki, s, s.h), j = conv_in(oj, kj, s, s.w);
                                if (i < 0 || j < 0) continue;
                                for (size_t ci = 0; ci < s.cin; ++ci)
                                    sum += double(x[((n * s.h + size_t(i)) * s.w + size_t(j)) * s.cin + ci]) *
                                           double(w[((co * s.cin + ci) * s.k + ki) * s.k + kj]);
                            }
                        want[((n * s.oh + oi) * s.ow + oj) * s.cout + co] = sum;
                    }
        std::vector<float> ref(want.size(), std::numeric_limits<float>::quiet_NaN());
        kernels::conv_forward_cl_reference(x.data(), w.data(), b.data(), ref.data(), s);
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - want[i]) / (1 + std::fabs(want[i])));
        CHECK(worst < kDotTol);
        for (auto* k : kernels::available()) {
            if (!k->conv_forward_cl) continue;
            CAPTURE(k->name);
            std::vector<float> got(want.size() + 3, std::numeric_limits<float>::quiet_NaN());
            k->conv_forward_cl(x.data(), w.data(), b.data(), got.data(), s);
            CHECK(max_rel_error(got.data(), ref.data(), want.size()) < kDotTol);
            for (size_t i = want.size(); i < got.size(); ++i) CHECK(std::isnan(got[i]));  // nothing written past y
        }
    });
}

TEST_CASE("conv_weight_grad_cl: the reference equals the definition, every set that has it equals the reference") {
    Rng rng(22);
    for_each_conv_case([&](const kernels::ConvShape& s) {
        auto x = random_floats(rng, s.n * s.h * s.w * s.cin);
        auto dy = random_floats(rng, s.n * s.oh * s.ow * s.cout);
        auto dw0 = random_floats(rng, s.cout * s.cin * s.k * s.k);  // accumulated into
        auto db0 = random_floats(rng, s.cout);
        std::vector<double> want(dw0.begin(), dw0.end()), want_b(db0.begin(), db0.end());
        for (size_t n = 0; n < s.n; ++n)
            for (size_t oi = 0; oi < s.oh; ++oi)
                for (size_t oj = 0; oj < s.ow; ++oj)
                    for (size_t co = 0; co < s.cout; ++co) {
                        const double g = dy[((n * s.oh + oi) * s.ow + oj) * s.cout + co];
                        want_b[co] += g;
                        for (size_t ki = 0; ki < s.k; ++ki)
                            for (size_t kj = 0; kj < s.k; ++kj) {
                                const long i = conv_in(oi, ki, s, s.h), j = conv_in(oj, kj, s, s.w);
                                if (i < 0 || j < 0) continue;
                                for (size_t ci = 0; ci < s.cin; ++ci)
                                    want[((co * s.cin + ci) * s.k + ki) * s.k + kj] +=
                                        g * double(x[((n * s.h + size_t(i)) * s.w + size_t(j)) * s.cin + ci]);
                            }
                    }
        std::vector<float> ref = dw0, ref_b = db0;
        kernels::conv_weight_grad_cl_reference(x.data(), dy.data(), ref.data(), ref_b.data(), s);
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - want[i]) / (1 + std::fabs(want[i])));
        for (size_t i = 0; i < want_b.size(); ++i)
            worst = std::max(worst, std::fabs(ref_b[i] - want_b[i]) / (1 + std::fabs(want_b[i])));
        CHECK(worst < kDotTol);
        for (auto* k : kernels::available()) {
            if (!k->conv_weight_grad_cl) continue;
            CAPTURE(k->name);
            std::vector<float> got = dw0, got_b = db0;
            k->conv_weight_grad_cl(x.data(), dy.data(), got.data(), got_b.data(), s);
            CHECK(max_rel_error(got.data(), ref.data(), got.size()) < kDotTol);
            CHECK(max_rel_error(got_b.data(), ref_b.data(), got_b.size()) == 0);  // the same order
            got = dw0;
            k->conv_weight_grad_cl(x.data(), dy.data(), got.data(), nullptr, s);  // no bias
            CHECK(max_rel_error(got.data(), ref.data(), got.size()) < kDotTol);
        }
    });
}

namespace {
// The same bits, or both NaN: WebAssembly leaves a NaN's bits to the engine (V8's
// baseline and optimising compilers propagate different ones).
bool same_bits_or_nan(float a, float b) {
    return std::memcmp(&a, &b, sizeof(float)) == 0 || (std::isnan(a) && std::isnan(b));
}
bool same_bits_or_nan(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!same_bits_or_nan(a[i], b[i])) return false;
    return true;
}
}  // namespace

TEST_CASE("conv kernels' fused ReLU: forward clamps as relu_forward, input gradient masks as relu_backward") {
    // Every set's output with ConvShape::relu / relu_mask equals its own plain
    // output passed through the reference relu kernels: the same bits, NaN kept in
    // forward, a NaN mask passing the gradient, 0 and -0 masks blocking it.
    Rng rng(23);
    const float kNaN = std::numeric_limits<float>::quiet_NaN();
    const auto& ref = kernels::reference();
    for_each_conv_case([&](const kernels::ConvShape& plain) {
        kernels::ConvShape fused = plain;
        fused.relu = true;
        auto x = random_floats(rng, plain.n * plain.h * plain.w * plain.cin);
        auto w = random_floats(rng, plain.cout * plain.cin * plain.k * plain.k);
        auto b = random_floats(rng, plain.cout);
        b[0] = kNaN;  // output channel 0 is NaN everywhere: kept through the ReLU
        const size_t ny = plain.n * plain.oh * plain.ow * plain.cout, nx = x.size();
        auto check_forward = [&](const char* name, auto conv) {
            CAPTURE(name);
            std::vector<float> want(ny), got(ny + 3, kNaN);
            conv(x.data(), w.data(), b.data(), want.data(), plain);
            ref.relu_forward(want.data(), want.data(), ny);
            conv(x.data(), w.data(), b.data(), got.data(), fused);
            size_t differ = 0, clamped = 0;
            for (size_t i = 0; i < ny; ++i) {
                differ += !same_bits_or_nan(got[i], want[i]);
                clamped += got[i] == 0.f;
            }
            CHECK(differ == 0);
            CHECK(clamped > 0);  // the test sees the ReLU at work
            CHECK(std::isnan(got[0]));
            for (size_t i = ny; i < got.size(); ++i) CHECK(std::isnan(got[i]));  // nothing written past y
        };
        check_forward("reference", kernels::conv_forward_cl_reference);
        for (auto* k : kernels::available())
            if (k->conv_forward_cl) check_forward(k->name, k->conv_forward_cl);

        auto dy = random_floats(rng, ny);
        auto wt = random_floats(rng, plain.cout * plain.k * plain.k * plain.cin);
        auto mask = random_floats(rng, nx);  // about half <= 0
        mask[0] = kNaN;
        if (nx > 2) mask[1] = 0.f, mask[2] = -0.f;
        kernels::ConvShape masked = plain;
        masked.relu_mask = mask.data();
        auto check_dx = [&](const char* name, auto conv) {
            CAPTURE(name);
            std::vector<float> want(nx), got(nx, kNaN);
            conv(dy.data(), wt.data(), want.data(), plain);
            ref.relu_backward(mask.data(), want.data(), want.data(), nx);
            conv(dy.data(), wt.data(), got.data(), masked);
            size_t differ = 0;
            for (size_t i = 0; i < nx; ++i) differ += !same_bits_or_nan(got[i], want[i]);
            CHECK(differ == 0);
            if (nx > 2) CHECK((got[1] == 0.f && got[2] == 0.f));
        };
        check_dx("reference", kernels::conv_input_grad_cl_reference);
        for (auto* k : kernels::available())
            if (k->conv_input_grad_cl) check_dx(k->name, k->conv_input_grad_cl);
    });
}

TEST_CASE("maxpool_*_cl: the reference equals MaxPool2d on planes, every set equals the reference bit for bit") {
    Rng rng(40);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t c : {size_t(1), size_t(3), size_t(4), size_t(6), size_t(16), size_t(17), size_t(37), size_t(67)})
        for (size_t k : {size_t(1), size_t(2), size_t(3)})
            for (size_t stride : {size_t(1), size_t(2), size_t(3)}) {
                const size_t n = 3, h = 7 + k, w = 9 - k % 2;  // ragged: windows that leave pixels out
                const size_t oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
                CAPTURE(c);
                CAPTURE(k);
                CAPTURE(stride);
                const kernels::PoolShape s{n, h, w, c, oh, ow, k, stride};
                // few distinct values, so windows hold ties (the first maximum wins), and NaNs
                std::vector<float> x(n * h * w * c), dy(n * oh * ow * c);
                for (float& v : x) v = float(int(rng.uniform() * 6.f));
                for (size_t i = 0; i < x.size(); i += 7) x[i] = nan;  // some windows hold two
                for (float& v : dy) v = rng.uniform() * 2.f - 1.f;
                std::vector<float> want_y(dy.size()), want_dx(x.size(), 123.f);
                kernels::ref::maxpool_forward_cl(x.data(), want_y.data(), s);
                kernels::ref::maxpool_backward_cl(x.data(), dy.data(), want_dx.data(), s);
                // the definition: MaxPool2d's planes, the same numbers channels-first
                MaxPool2d pool(k, stride);
                pool.build({c, h, w});
                auto planes = [&](const std::vector<float>& v, size_t ph, size_t pw) {  // (n, ph, pw, c) -> (n, c, ph, pw)
                    std::vector<float> out(v.size());
                    for (size_t b = 0; b < n; ++b)
                        for (size_t i = 0; i < ph * pw; ++i)
                            for (size_t q = 0; q < c; ++q) out[(b * c + q) * ph * pw + i] = v[(b * ph * pw + i) * c + q];
                    return out;
                };
                const auto xp = planes(x, h, w), dyp = planes(dy, oh, ow);
                std::vector<float> yp(dy.size()), dxp(x.size());
                pool.forward(xp.data(), n, yp.data());
                pool.backward(xp.data(), dyp.data(), n, dxp.data());
                CHECK(same_bits_or_nan(planes(want_y, oh, ow), yp));
                CHECK(same_bits_or_nan(planes(want_dx, h, w), dxp));
                for (auto* set : kernels::available()) {
                    CAPTURE(set->name);
                    REQUIRE((set->maxpool_forward_cl && set->maxpool_backward_cl));
                    std::vector<float> y(dy.size()), dx(x.size(), 123.f);
                    set->maxpool_forward_cl(x.data(), y.data(), s);
                    set->maxpool_backward_cl(x.data(), dy.data(), dx.data(), s);
                    CHECK(same_bits_or_nan(want_y, y));
                    CHECK(same_bits_or_nan(want_dx, dx));
                }
            }
}
