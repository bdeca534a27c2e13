// core/pool: the pooling that the runtime's layers and the C API's ops share,
// against its plain definition (each window's first maximum, a NaN winning, or
// its mean; their gradients) on ragged strided and adaptive geometries, and the
// channels-last forms against the channels-first ones, exactly, for every
// kernel set this binary holds.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/plan.hpp"
#include "core/pool.hpp"
#include "runtime/error.hpp"
#include "runtime/kernels/kernels.hpp"
#include "runtime/pooling.hpp"
#include "runtime/rng.hpp"

namespace {

using sgdx::core::PoolGeometry;

uint32_t pick(sgdx::Rng& rng, uint32_t lo, uint32_t hi) { return lo + rng.next_u32() % (hi - lo + 1); }

// A random geometry: strided (kh x kw every stride) or adaptive (oh x ow windows
// of PyTorch's adaptive pooling, overlapping where the plane does not divide).
PoolGeometry random_geometry(sgdx::Rng& rng, bool max, bool square) {
    PoolGeometry g{};
    g.c = pick(rng, 1, 19), g.max = max;
    g.adaptive = !max && rng.next_u32() % 3 == 0;
    if (g.adaptive) {
        g.h = pick(rng, 1, 11), g.w = pick(rng, 1, 11);
        g.oh = pick(rng, 1, g.h + 2), g.ow = pick(rng, 1, g.w + 2);  // more outputs than rows: windows repeat
        return g;
    }
    g.kh = pick(rng, 1, 4), g.kw = square ? g.kh : pick(rng, 1, 4), g.stride = pick(rng, 1, 3);
    g.h = pick(rng, g.kh, 11), g.w = pick(rng, g.kw, 13);
    REQUIRE(sgdx::core::window_output_size(g.h, g.w, g.kh, g.kw, g.stride, 0, g.oh, g.ow));
    return g;
}

// (n, c, h, w) <-> (n, h, w, c)
std::vector<float> to_channels_last(const std::vector<float>& x, size_t n, size_t c, size_t h, size_t w) {
    std::vector<float> y(x.size());
    for (size_t b = 0; b < n; ++b)
        for (size_t ci = 0; ci < c; ++ci)
            for (size_t i = 0; i < h * w; ++i) y[(b * h * w + i) * c + ci] = x[(b * c + ci) * h * w + i];
    return y;
}

bool same(float a, float b) { return std::isnan(a) ? std::isnan(b) : a == b; }

}  // namespace

TEST_CASE("core::pool_forward/backward: each window's first maximum (NaN wins) or mean, and its gradient") {
    sgdx::Rng rng(13);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int trial = 0; trial < 300; ++trial) {
        const PoolGeometry g = random_geometry(rng, trial % 2 == 0, false);
        CAPTURE(trial);
        const size_t n = pick(rng, 1, 3), X = size_t(g.c) * g.h * g.w, Y = size_t(g.c) * g.oh * g.ow;
        // small integers: ties are common, so "first maximum" is tested
        std::vector<float> x(n * X), dy(n * Y);
        for (float& v : x) v = float(rng.next_u32() % 4);
        if (trial % 3 == 0) x[rng.next_u32() % x.size()] = nan;
        rng.fill_uniform(dy.data(), dy.size(), 1.f);
        std::vector<float> y(n * Y, -7.f), dx(n * X, 5.f);
        sgdx::core::pool_forward(g, x.data(), y.data(), n);
        sgdx::core::pool_backward(g, x.data(), dy.data(), dx.data(), n);
        std::vector<double> want_dx(n * X, 0.0);
        for (size_t s = 0; s < n; ++s)
            for (size_t c = 0; c < g.c; ++c)
                for (uint32_t oi = 0; oi < g.oh; ++oi)
                    for (uint32_t oj = 0; oj < g.ow; ++oj) {
                        // the window by its definition, not by pool_window
                        size_t h0 = oi * g.stride, h1 = h0 + g.kh, w0 = oj * g.stride, w1 = w0 + g.kw;
                        if (g.adaptive) {
                            h0 = size_t(std::floor(double(oi) * g.h / g.oh)), h1 = size_t(std::ceil(double(oi + 1) * g.h / g.oh));
                            w0 = size_t(std::floor(double(oj) * g.w / g.ow)), w1 = size_t(std::ceil(double(oj + 1) * g.w / g.ow));
                        }
                        const size_t plane = (s * g.c + c) * g.h * g.w;
                        size_t arg = SIZE_MAX;
                        double sum = 0;
                        for (size_t i = h0; i < h1; ++i)
                            for (size_t j = w0; j < w1; ++j) {
                                const float v = x[plane + i * g.w + j];
                                sum += v;
                                const bool takes = arg == SIZE_MAX ||
                                                   (!std::isnan(x[arg]) && (v > x[arg] || std::isnan(v)));
                                if (takes) arg = plane + i * g.w + j;
                            }
                        const size_t o = ((s * g.c + c) * g.oh + oi) * g.ow + oj;
                        const double area = double((h1 - h0) * (w1 - w0));
                        if (g.max) {
                            CHECK(same(y[o], x[arg]));
                            want_dx[arg] += dy[o];
                        } else {
                            // small integers: the float sum is exact, then one division
                            CHECK(same(y[o], float(sum) / float(area)));
                            for (size_t i = h0; i < h1; ++i)
                                for (size_t j = w0; j < w1; ++j) want_dx[plane + i * g.w + j] += double(dy[o] / float(area));
                        }
                    }
        for (size_t i = 0; i < n * X; ++i) CHECK(std::fabs(dx[i] - want_dx[i]) <= 1e-5);
    }
}

TEST_CASE("core::pool_forward_cl/backward_cl equal the channels-first forms exactly, in every kernel set") {
    sgdx::Rng rng(21);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const auto* set : sgdx::kernels::available()) {
        CAPTURE(set->name);
        for (int trial = 0; trial < 200; ++trial) {
            // the kernel sets' max pool takes square windows
            const PoolGeometry g = random_geometry(rng, trial % 2 == 0, true);
            CAPTURE(trial);
            const size_t n = pick(rng, 1, 3), X = size_t(g.c) * g.h * g.w, Y = size_t(g.c) * g.oh * g.ow;
            std::vector<float> x(n * X), dy(n * Y);
            rng.fill_uniform(x.data(), x.size(), 1.f);
            if (trial % 4 == 0) x[rng.next_u32() % x.size()] = nan;
            rng.fill_uniform(dy.data(), dy.size(), 1.f);
            std::vector<float> y(n * Y), dx(n * X), y_cl(n * Y, -7.f), dx_cl(n * X, 5.f), acc(g.c);
            sgdx::core::pool_forward(g, x.data(), y.data(), n);
            sgdx::core::pool_backward(g, x.data(), dy.data(), dx.data(), n);
            const auto x_cl = to_channels_last(x, n, g.c, g.h, g.w), dy_cl = to_channels_last(dy, n, g.c, g.oh, g.ow);
            sgdx::core::pool_forward_cl(*set, g, x_cl.data(), y_cl.data(), n, acc.data());
            sgdx::core::pool_backward_cl(*set, g, x_cl.data(), dy_cl.data(), dx_cl.data(), n, acc.data());
            const auto want_y = to_channels_last(y, n, g.c, g.oh, g.ow), want_dx = to_channels_last(dx, n, g.c, g.h, g.w);
            for (size_t i = 0; i < n * Y; ++i) CHECK(same(y_cl[i], want_y[i]));
            for (size_t i = 0; i < n * X; ++i) CHECK(same(dx_cl[i], want_dx[i]));
        }
    }
}

TEST_CASE("core::pool_window: adaptive windows of tall planes, up to the 32-bit limit, and the layer refusing beyond it") {
    // (i + 1)·h + oh - 1 up to 4,294,770,223: just inside 32 bits
    PoolGeometry g{};
    g.c = 1, g.h = 65535, g.w = 1, g.oh = 65534, g.ow = 1, g.adaptive = true;
    REQUIRE(sgdx::core::adaptive_fits(g.h, g.w, g.oh, g.ow));
    std::vector<float> x(g.h), y(g.oh), dy(g.oh, 1.f), dx(g.h);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7);
    sgdx::core::pool_forward(g, x.data(), y.data(), 1);
    sgdx::core::pool_backward(g, x.data(), dy.data(), dx.data(), 1);
    size_t wrong = 0;
    double spread = 0;
    for (uint32_t i = 0; i < g.oh; ++i) {
        const uint64_t h0 = uint64_t(i) * g.h / g.oh, h1 = (uint64_t(i + 1) * g.h + g.oh - 1) / g.oh;
        const auto win = sgdx::core::pool_window(g, i, 0);
        wrong += win.h0 != h0 || win.h1 != h1 || y[i] != (x[h0] + x[h1 - 1]) / 2.f;  // every window here holds 2 rows
    }
    for (float v : dx) spread += v;
    CHECK(wrong == 0);
    CHECK(spread == doctest::Approx(double(g.oh)));  // each output's gradient 1, spread over its window

    CHECK_FALSE(sgdx::core::adaptive_fits(65537, 1, 65536, 1));  // (i + 1)·h would wrap
    sgdx::AdaptiveAvgPool2d big(65536, 1);
    CHECK_THROWS_WITH_AS(big.build({1, 65537, 1}), doctest::Contains("too large"), sgdx::Error);
    sgdx::AdaptiveAvgPool2d tall(65534, 1);
    CHECK(tall.build({1, 65535, 1}) == sgdx::Shape{1, 65534, 1});
}
