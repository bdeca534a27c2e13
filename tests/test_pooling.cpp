#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "helpers.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/error.hpp"
#include "runtime/pooling.hpp"
#include "runtime/reshape.hpp"
#include "runtime/sequential.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Planes {
    size_t batch, c, h, w;
    size_t size() const { return batch * c * h * w; }
};

struct Win {
    size_t h0, h1, w0, w1;
};

// kernel x kernel windows every stride, no padding
std::vector<Win> strided_windows(size_t h, size_t w, size_t k, size_t s, size_t& oh, size_t& ow) {
    oh = 0, ow = 0;
    while (oh * s + k <= h) ++oh;
    while (ow * s + k <= w) ++ow;
    std::vector<Win> out;
    for (size_t i = 0; i < oh; ++i)
        for (size_t j = 0; j < ow; ++j) out.push_back({i * s, i * s + k, j * s, j * s + k});
    return out;
}

// PyTorch's adaptive windows: [floor(i H / OH), ceil((i + 1) H / OH))
std::vector<Win> adaptive_windows(size_t h, size_t w, size_t oh, size_t ow) {
    auto lo = [](size_t i, size_t n, size_t out) { return size_t(std::floor(double(i) * double(n) / double(out))); };
    auto hi = [](size_t i, size_t n, size_t out) { return size_t(std::ceil(double(i + 1) * double(n) / double(out))); };
    std::vector<Win> out;
    for (size_t i = 0; i < oh; ++i)
        for (size_t j = 0; j < ow; ++j) out.push_back({lo(i, h, oh), hi(i, h, oh), lo(j, w, ow), hi(j, w, ow)});
    return out;
}

std::vector<float> naive_max(const Planes& p, const float* x, const std::vector<Win>& wins) {
    std::vector<float> y;
    for (size_t plane = 0; plane < p.batch * p.c; ++plane)
        for (const Win& win : wins) {
            float m = -std::numeric_limits<float>::infinity();
            for (size_t i = win.h0; i < win.h1; ++i)
                for (size_t j = win.w0; j < win.w1; ++j) m = std::max(m, x[(plane * p.h + i) * p.w + j]);
            y.push_back(m);
        }
    return y;
}

std::vector<float> naive_mean(const Planes& p, const float* x, const std::vector<Win>& wins) {
    std::vector<float> y;
    for (size_t plane = 0; plane < p.batch * p.c; ++plane)
        for (const Win& win : wins) {
            double sum = 0;
            for (size_t i = win.h0; i < win.h1; ++i)
                for (size_t j = win.w0; j < win.w1; ++j) sum += x[(plane * p.h + i) * p.w + j];
            y.push_back(float(sum / double((win.h1 - win.h0) * (win.w1 - win.w0))));
        }
    return y;
}

// n distinct values 0.01 apart in a random order, centred on 0: no two values in a
// window are within a finite-difference step of each other.
std::vector<float> distinct_values(Rng& rng, size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = (float(i) - float(n) / 2) * 0.01f;
    for (size_t i = n; i > 1; --i) std::swap(v[i - 1], v[rng.below(uint32_t(i))]);
    return v;
}

// Checks dx of L = Σ y · r against central differences over the float step taken.
void check_dx_by_differences(Module& pool, std::vector<float>& x, size_t batch, float h) {
    Rng rng(99);
    auto r = random_floats(rng, batch * pool.out_features());
    std::vector<float> y(r.size());
    auto loss = [&] {
        pool.forward(x.data(), batch, y.data());
        double l = 0;
        for (size_t i = 0; i < y.size(); ++i) l += double(y[i]) * double(r[i]);
        return l;
    };
    loss();
    std::vector<float> dx(x.size(), kNaN);
    pool.backward(x.data(), r.data(), batch, dx.data());
    check_finite_differences(x.data(), dx.data(), x.size(), loss, h, 1e-3, "dx");
}

}  // namespace

TEST_CASE("MaxPool2d and AvgPool2d forward equal naive loops, non-divisible sizes and stride != kernel") {
    struct Case {
        size_t batch, c, h, w, k, s;  // s = 0: the default, stride = kernel
    };
    const Case table[] = {
        {2, 3, 7, 9, 2, 0},  // 7 and 9 not divisible by 2: the last row and column are dropped
        {1, 2, 7, 8, 3, 2},  // overlapping windows
        {2, 1, 8, 8, 2, 3},  // gaps between windows
        {1, 3, 10, 8, 3, 0}, {3, 2, 4, 4, 4, 0},  // one window per plane
        {1, 16, 28, 28, 2, 0}, {2, 10, 4, 4, 4, 0},  // LeNet's pooling, the tutorial's avg_pool2d(4)
        {1, 2, 5, 13, 1, 2}, {2, 2, 6, 5, 5, 1},
    };
    for (const Case& t : table) {
        CAPTURE(t.h);
        CAPTURE(t.w);
        CAPTURE(t.k);
        CAPTURE(t.s);
        const size_t stride = t.s ? t.s : t.k;
        size_t oh, ow;
        auto wins = strided_windows(t.h, t.w, t.k, stride, oh, ow);
        Planes p{t.batch, t.c, t.h, t.w};
        Rng rng(3);
        auto x = random_floats(rng, p.size());

        MaxPool2d maxp(t.k, t.s);
        CHECK(maxp.build({t.c, t.h, t.w}) == Shape{t.c, oh, ow});
        std::vector<float> y(t.batch * t.c * oh * ow, kNaN);
        maxp.forward(x.data(), t.batch, y.data());
        CHECK(y == naive_max(p, x.data(), wins));  // a maximum is exact

        AvgPool2d avgp(t.k, t.s);
        CHECK(avgp.build({t.c, t.h, t.w}) == Shape{t.c, oh, ow});
        std::fill(y.begin(), y.end(), kNaN);
        avgp.forward(x.data(), t.batch, y.data());
        auto want = naive_mean(p, x.data(), wins);
        CHECK(max_rel_error(y.data(), want.data(), want.size()) < 1e-6);
    }
    // the output sizes themselves, written out
    MaxPool2d m2(2);
    CHECK(m2.build({3, 7, 9}) == Shape{3, 3, 4});
    MaxPool2d m32(3, 2);
    CHECK(m32.build({2, 7, 8}) == Shape{2, 3, 3});
    AvgPool2d a23(2, 3);
    CHECK(a23.build({1, 8, 8}) == Shape{1, 3, 3});
    AvgPool2d a4(4);
    CHECK(a4.build({10, 4, 4}) == Shape{10, 1, 1});
}

TEST_CASE("AdaptiveAvgPool2d windows are PyTorch's, uneven ones included (5x7 -> 3x2)") {
    AdaptiveAvgPool2d pool(3, 2);
    REQUIRE(pool.build({2, 5, 7}) == Shape{2, 3, 2});
    // rows [floor(iH/OH), ceil((i+1)H/OH)): [0,2) [1,4) [3,5); columns [0,4) [3,7)
    const size_t rows[3][2] = {{0, 2}, {1, 4}, {3, 5}}, cols[2][2] = {{0, 4}, {3, 7}};
    for (size_t i = 0; i < 3; ++i)
        for (size_t j = 0; j < 2; ++j) {
            auto win = pool.window(i, j);
            CHECK(win.h0 == rows[i][0]);
            CHECK(win.h1 == rows[i][1]);
            CHECK(win.w0 == cols[j][0]);
            CHECK(win.w1 == cols[j][1]);
        }
    // x = row index * 10 + column: the first output is the mean of rows 0-1, columns 0-3
    std::vector<float> x(2 * 5 * 7);
    for (size_t c = 0; c < 2; ++c)
        for (size_t i = 0; i < 5; ++i)
            for (size_t j = 0; j < 7; ++j) x[(c * 5 + i) * 7 + j] = float(100 * c + 10 * i + j);
    std::vector<float> y(12, kNaN);
    pool.forward(x.data(), 1, y.data());
    const float want[12] = {6.5f, 9.5f, 21.5f, 24.5f, 36.5f, 39.5f, 106.5f, 109.5f, 121.5f, 124.5f, 136.5f, 139.5f};
    for (size_t i = 0; i < 12; ++i) CHECK(y[i] == doctest::Approx(want[i]).epsilon(1e-6));
}

TEST_CASE("AdaptiveAvgPool2d forward equals a naive loop for any input and output size") {
    struct Case {
        size_t batch, c, h, w, oh, ow;
    };
    const Case table[] = {
        {2, 3, 5, 7, 3, 2}, {1, 2, 7, 7, 3, 3}, {2, 10, 4, 4, 1, 1},  // the tutorial's AdaptiveAvgPool2d(1)
        {1, 2, 3, 4, 5, 6},                                           // larger than the input: windows overlap
        {1, 1, 6, 6, 3, 3}, {3, 1, 11, 13, 4, 5}, {1, 2, 9, 1, 2, 1},
    };
    for (const Case& t : table) {
        CAPTURE(t.h);
        CAPTURE(t.w);
        CAPTURE(t.oh);
        CAPTURE(t.ow);
        AdaptiveAvgPool2d pool(t.oh, t.ow);
        REQUIRE(pool.build({t.c, t.h, t.w}) == Shape{t.c, t.oh, t.ow});
        auto wins = adaptive_windows(t.h, t.w, t.oh, t.ow);
        for (size_t i = 0; i < t.oh; ++i)
            for (size_t j = 0; j < t.ow; ++j) {
                auto win = pool.window(i, j);
                const Win& want = wins[i * t.ow + j];
                CHECK(win.h0 == want.h0);
                CHECK(win.h1 == want.h1);
                CHECK(win.w0 == want.w0);
                CHECK(win.w1 == want.w1);
            }
        Planes p{t.batch, t.c, t.h, t.w};
        Rng rng(4);
        auto x = random_floats(rng, p.size());
        std::vector<float> y(t.batch * t.c * t.oh * t.ow, kNaN);
        pool.forward(x.data(), t.batch, y.data());
        auto want = naive_mean(p, x.data(), wins);
        CHECK(max_rel_error(y.data(), want.data(), want.size()) < 1e-6);
    }
    // a square output from one size
    AdaptiveAvgPool2d one(1);
    CHECK(one.build({16, 4, 4}) == Shape{16, 1, 1});
    // where the windows divide evenly it is AvgPool2d
    AdaptiveAvgPool2d adaptive(3);
    AvgPool2d avg(2);
    adaptive.build({2, 6, 6});
    avg.build({2, 6, 6});
    Rng rng(5);
    auto x = random_floats(rng, 3 * 2 * 36);
    std::vector<float> ya(3 * 2 * 9), yb(3 * 2 * 9);
    adaptive.forward(x.data(), 3, ya.data());
    avg.forward(x.data(), 3, yb.data());
    CHECK(max_rel_error(ya.data(), yb.data(), ya.size()) < 1e-6);
}

TEST_CASE("pooling dx matches finite differences (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d)") {
    Rng rng(6);
    SUBCASE("MaxPool2d, overlapping windows") {
        MaxPool2d pool(3, 2);
        pool.build({2, 7, 8});
        auto x = distinct_values(rng, 2 * 2 * 7 * 8);
        check_dx_by_differences(pool, x, 2, 1e-3f);
    }
    SUBCASE("MaxPool2d, non-divisible size") {
        MaxPool2d pool(2);
        pool.build({3, 5, 7});
        auto x = distinct_values(rng, 2 * 3 * 5 * 7);
        check_dx_by_differences(pool, x, 2, 1e-3f);
    }
    SUBCASE("AvgPool2d, stride != kernel") {
        AvgPool2d pool(3, 2);
        pool.build({2, 7, 6});
        auto x = random_floats(rng, 2 * 2 * 7 * 6);
        check_dx_by_differences(pool, x, 2, 1e-2f);
    }
    SUBCASE("AvgPool2d, gaps between windows") {
        AvgPool2d pool(2, 3);
        pool.build({1, 8, 7});
        auto x = random_floats(rng, 3 * 8 * 7);
        check_dx_by_differences(pool, x, 3, 1e-2f);
    }
    SUBCASE("AdaptiveAvgPool2d, uneven windows") {
        AdaptiveAvgPool2d pool(3, 2);
        pool.build({2, 5, 7});
        auto x = random_floats(rng, 2 * 2 * 5 * 7);
        check_dx_by_differences(pool, x, 2, 1e-2f);
    }
    SUBCASE("AdaptiveAvgPool2d, output larger than the input") {
        AdaptiveAvgPool2d pool(5, 6);
        pool.build({2, 3, 4});
        auto x = random_floats(rng, 2 * 2 * 3 * 4);
        check_dx_by_differences(pool, x, 2, 1e-2f);
    }
}

TEST_CASE("pooling backward: dx is overwritten, nullptr allowed, no parameters") {
    Rng rng(7);
    MaxPool2d maxp(2);
    AvgPool2d avgp(2);
    AdaptiveAvgPool2d adap(2, 3);
    for (Module* m : {static_cast<Module*>(&maxp), static_cast<Module*>(&avgp), static_cast<Module*>(&adap)}) {
        CAPTURE(m->type_name());
        m->build({2, 4, 6});
        CHECK(m->parameters().empty());
        auto x = random_floats(rng, 3 * m->in_features());
        auto dy = random_floats(rng, 3 * m->out_features());
        std::vector<float> y(dy.size());
        m->forward(x.data(), 3, y.data());
        m->backward(x.data(), dy.data(), 3, nullptr);  // nothing to do, and no crash
        std::vector<float> dx1(x.size(), kNaN), dx2(x.size(), 123.f);
        m->backward(x.data(), dy.data(), 3, dx1.data());
        m->backward(x.data(), dy.data(), 3, dx2.data());
        CHECK(dx1 == dx2);  // whatever dx held before is replaced
        double sum_dx = 0, sum_dy = 0;
        for (float v : dx1) sum_dx += v;
        for (float v : dy) sum_dy += v;
        // non-overlapping windows covering the plane: the gradient is conserved
        CHECK(sum_dx == doctest::Approx(sum_dy).epsilon(1e-5));
    }
}

TEST_CASE("MaxPool2d routes the gradient to the first maximum on ties") {
    // one 4x4 plane, 2x2 windows:
    //   5 5 | 1 3        window (0,0): all 5        -> (0,0)
    //   5 5 | 3 2        window (0,1): 3 twice      -> (0,3), not (1,2)
    //   ----+----
    //  -1 -1| 0 7        window (1,0): all -1       -> (2,0)
    //  -1 -1| 7 7        window (1,1): 7 three times -> (2,3)
    const std::vector<float> x = {5, 5, 1, 3, 5, 5, 3, 2, -1, -1, 0, 7, -1, -1, 7, 7};
    MaxPool2d pool(2);
    pool.build({1, 4, 4});
    std::vector<float> y(4, kNaN);
    pool.forward(x.data(), 1, y.data());
    CHECK(y == std::vector<float>{5, 3, -1, 7});
    const std::vector<float> dy = {1.5f, -2.f, 3.f, 0.25f};
    std::vector<float> dx(16, kNaN);
    pool.backward(x.data(), dy.data(), 1, dx.data());
    std::vector<float> want(16, 0.f);
    want[0] = 1.5f, want[3] = -2.f, want[8] = 3.f, want[11] = 0.25f;
    CHECK(dx == want);

    // overlapping windows (3x3, stride 1) that share their maximum add up its gradients;
    // a constant plane sends every window's gradient to its top-left corner
    std::vector<float> flat(2 * 4 * 5, 2.f);
    MaxPool2d overlap(3, 1);
    overlap.build({2, 4, 5});  // 2 x 3 windows per plane
    std::vector<float> dyo(2 * 2 * 3), dxo(flat.size(), kNaN);
    for (size_t i = 0; i < dyo.size(); ++i) dyo[i] = float(i + 1);
    std::vector<float> yo(dyo.size());
    overlap.forward(flat.data(), 1, yo.data());
    overlap.backward(flat.data(), dyo.data(), 1, dxo.data());
    std::vector<float> wanto(flat.size(), 0.f);
    for (size_t c = 0; c < 2; ++c)
        for (size_t i = 0; i < 2; ++i)
            for (size_t j = 0; j < 3; ++j) wanto[(c * 4 + i) * 5 + j] += dyo[(c * 2 + i) * 3 + j];
    CHECK(dxo == wanto);
}

TEST_CASE("MaxPool2d: a NaN anywhere in a window makes its output NaN, and takes the gradient") {
    // 2x2 windows of a 2x6 plane: the NaN first, in the middle, last; one window without
    const std::vector<float> x = {kNaN, 9, 1, 2, -5, -4, 1, 2, kNaN, 8, -3, -6};
    //                             window 0: NaN first   window 1: NaN bottom-left   window 2: none
    MaxPool2d pool(2);
    pool.build({1, 2, 6});
    std::vector<float> y(3, 0.f);
    pool.forward(x.data(), 1, y.data());
    CHECK(std::isnan(y[0]));
    CHECK(std::isnan(y[1]));
    CHECK(y[2] == -3.f);
    const std::vector<float> dy = {1, 2, 4};
    std::vector<float> dx(12, kNaN);
    pool.backward(x.data(), dy.data(), 1, dx.data());
    std::vector<float> want(12, 0.f);
    want[0] = 1, want[8] = 2, want[10] = 4;  // the NaN's position, as PyTorch's argmax
    CHECK(dx == want);

    // the NaN as the last value a window reads, after larger values
    const std::vector<float> last = {3, 9, 4, kNaN};
    MaxPool2d one(2);
    one.build({1, 2, 2});
    float out = 0;
    one.forward(last.data(), 1, &out);
    CHECK(std::isnan(out));
    // and AvgPool2d, by arithmetic
    AvgPool2d avg(2);
    avg.build({1, 2, 2});
    avg.forward(last.data(), 1, &out);
    CHECK(std::isnan(out));
}

TEST_CASE("channels-last MaxPool2d (blocks of channels) equals the plain one: ragged channel counts, ties, NaNs") {
    // An identity 1x1 conv of C channels before the pool makes it channels-last inside
    // a Sequential; the comparison runs the same conv and pool alone, on planes. The
    // identity's sums are exact (a NaN at a pixel becomes NaN in all its channels, in
    // both). Windows tiling the plane (every pixel written), disjoint ones leaving
    // pixels out, overlapping ones; channel counts below, at and past the block of 16.
    struct Case {
        size_t c, h, w, k, s;
    };
    for (const Case t : {Case{16, 8, 8, 2, 2}, Case{19, 7, 9, 2, 2}, Case{37, 9, 7, 3, 2}, Case{5, 8, 8, 3, 3},
                         Case{33, 6, 7, 2, 3}, Case{1, 6, 6, 2, 2}, Case{32, 4, 4, 2, 2}}) {
        CAPTURE(t.c);
        CAPTURE(t.h);
        CAPTURE(t.w);
        CAPTURE(t.k);
        CAPTURE(t.s);
        Rng rng(uint64_t(7 + t.c));
        Sequential net;
        net.add(std::make_unique<View>(Shape{t.c, t.h, t.w}));
        auto& conv = net.emplace<Conv2d>(t.c, t.c, 1, 1, 0, rng);
        net.add(std::make_unique<MaxPool2d>(t.k, t.s));
        net.add(std::make_unique<Flatten>());
        net.build({t.c * t.h * t.w});
        Conv2d conv_alone(t.c, t.c, 1, 1, 0, rng);
        conv_alone.build({t.c, t.h, t.w});
        for (Conv2d* cv : {&conv, &conv_alone}) {
            cv->weight.value.fill(0.f);
            for (size_t c = 0; c < t.c; ++c) cv->weight.value(c, c, 0, 0) = 1.f;
            cv->bias.value.fill(0.f);
        }
        MaxPool2d alone(t.k, t.s);
        alone.build({t.c, t.h, t.w});

        const size_t B = 3, D = t.c * t.h * t.w, O = alone.out_features();
        std::vector<float> x(B * D);
        for (float& v : x) v = float(rng.below(4)) - 1.f;  // many ties, zeros and negatives
        for (size_t i = 0; i < 4; ++i) x[rng.below(uint32_t(x.size()))] = kNaN;
        const auto dy = random_floats(rng, B * O);
        std::vector<float> y(B * O, 0.f), dx(x.size(), 0.f);
        net.forward(x.data(), B, y.data());
        net.zero_grad();
        net.backward(x.data(), dy.data(), B, dx.data());

        std::vector<float> xc(x.size()), want(B * O), dpool(x.size(), 1e9f), want_dx(x.size());
        conv_alone.forward(x.data(), B, xc.data());
        alone.forward(xc.data(), B, want.data());
        alone.backward(xc.data(), dy.data(), B, dpool.data());
        conv_alone.backward(x.data(), dpool.data(), B, want_dx.data());
        // the same values, NaN where the plain pooling has NaN
        auto mismatches = [](const std::vector<float>& got, const std::vector<float>& ref) {
            size_t bad = 0;
            for (size_t i = 0; i < got.size(); ++i) bad += std::isnan(ref[i]) ? !std::isnan(got[i]) : got[i] != ref[i];
            return bad;
        };
        CHECK(mismatches(y, want) == 0);
        CHECK(mismatches(dx, want_dx) == 0);
    }
}

TEST_CASE("pooling rejects inputs that are not 3-D or smaller than the window, naming the layer") {
    MaxPool2d maxp(4);
    CHECK_THROWS_WITH_AS(maxp.build({16}), doctest::Contains("MaxPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(maxp.build({4, 4}), doctest::Contains("MaxPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(maxp.build({1, 2, 4, 4}), doctest::Contains("MaxPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(maxp.build({3, 3, 5}), doctest::Contains("MaxPool2d"), sgdx::Error);  // 3 < 4 rows
    CHECK_THROWS_WITH_AS(maxp.build({3, 5, 3}), doctest::Contains("MaxPool2d"), sgdx::Error);  // 3 < 4 columns
    CHECK_THROWS_WITH_AS(maxp.build({3, 3, 5}), doctest::Contains("3x5"), sgdx::Error);
    CHECK(maxp.build({3, 4, 4}) == Shape{3, 1, 1});

    AvgPool2d avgp(3, 2);
    CHECK_THROWS_WITH_AS(avgp.build({9}), doctest::Contains("AvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(avgp.build({2, 2, 9}), doctest::Contains("AvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(avgp.build({2, 9, 2}), doctest::Contains("AvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(avgp.build({}), doctest::Contains("AvgPool2d"), sgdx::Error);

    AdaptiveAvgPool2d adap(2);
    CHECK_THROWS_WITH_AS(adap.build({16}), doctest::Contains("AdaptiveAvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(adap.build({4, 4}), doctest::Contains("AdaptiveAvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(adap.build({1, 1, 4, 4}), doctest::Contains("AdaptiveAvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(adap.build({3, 0, 4}), doctest::Contains("AdaptiveAvgPool2d"), sgdx::Error);
    CHECK(adap.build({3, 1, 1}) == Shape{3, 2, 2});  // any non-empty plane: windows may repeat

    CHECK_THROWS_AS(MaxPool2d(0), sgdx::Error);
    CHECK_THROWS_AS(AvgPool2d(0), sgdx::Error);
    CHECK_THROWS_WITH_AS(AdaptiveAvgPool2d(0), doctest::Contains("AdaptiveAvgPool2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(AdaptiveAvgPool2d(2, 0), doctest::Contains("AdaptiveAvgPool2d"), sgdx::Error);
}

TEST_CASE("pooling whose build failed still computes for the shape it was last built for") {
    Rng rng(8);
    MaxPool2d maxp(2);
    REQUIRE(maxp.build({2, 6, 6}) == Shape{2, 3, 3});
    // smaller than the window (same channel count, so a layer left with the new
    // sizes still reads and writes inside the buffers, just the wrong values)
    CHECK_THROWS_AS(maxp.build({2, 1, 9}), sgdx::Error);
    CHECK(maxp.input_shape() == Shape{2, 6, 6});
    auto x = random_floats(rng, 2 * 2 * 36);
    std::vector<float> y(2 * 2 * 9, kNaN);
    maxp.forward(x.data(), 2, y.data());
    size_t oh, ow;
    auto wins = strided_windows(6, 6, 2, 2, oh, ow);
    CHECK(y == naive_max(Planes{2, 2, 6, 6}, x.data(), wins));
}
