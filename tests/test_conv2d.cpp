#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "helpers.hpp"
#include "runtime/backend.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/error.hpp"
#include "runtime/thread_pool.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

struct ConvCase {
    size_t cin, cout, k, s, p, h, w, batch;
    size_t oh() const { return (h + 2 * p - k) / s + 1; }
    size_t ow() const { return (w + 2 * p - k) / s + 1; }
};

doctest::String case_text(const ConvCase& c) {
    return (std::to_string(c.cin) + "->" + std::to_string(c.cout) + " k" + std::to_string(c.k) + " s" +
            std::to_string(c.s) + " p" + std::to_string(c.p) + " on " + std::to_string(c.h) + "x" +
            std::to_string(c.w) + " B" + std::to_string(c.batch))
        .c_str();
}

// The ragged shapes every check runs on: odd sizes, padding (up to wider than the
// input), stride that skips the last rows, k = 1 with padding (border outputs are
// the bias alone), a 1x1 input, k = 3 and 5 (unrolled) and 2, 4, 7 (not), the
// tutorial's first layer, and a batch of several im2col chunks.
const std::vector<ConvCase>& cases() {
    static const std::vector<ConvCase> c{
        {3, 5, 3, 2, 1, 7, 9, 4},    {2, 4, 5, 1, 0, 9, 6, 3},  {4, 3, 1, 1, 0, 5, 3, 2},
        {2, 3, 1, 2, 1, 6, 5, 2},    {3, 2, 4, 3, 2, 10, 7, 2}, {5, 7, 3, 1, 1, 1, 1, 2},
        {2, 3, 2, 2, 0, 5, 5, 1},    {1, 16, 3, 2, 1, 28, 28, 2}, {2, 3, 5, 2, 2, 9, 8, 2},
        {3, 2, 3, 1, 0, 6, 5, 2},    {2, 2, 3, 1, 2, 4, 5, 2},  {1, 2, 5, 1, 2, 3, 3, 1},
        {2, 3, 5, 3, 1, 11, 12, 2},  {3, 4, 7, 2, 3, 9, 10, 1},
        {3, 5, 3, 2, 1, 7, 9, 130},  // 60 samples per chunk: 3 chunks, the last one short
    };
    return c;
}

float at(const float* x, const ConvCase& c, size_t b, size_t ch, long i, long j) {
    if (i < 0 || j < 0 || i >= long(c.h) || j >= long(c.w)) return 0.f;
    return x[((b * c.cin + ch) * c.h + size_t(i)) * c.w + size_t(j)];
}

// The definition, in double: y[b, o, i, j] = bias[o] + Σ w[o, c, ki, kj] x[b, c, i s + ki - p, j s + kj - p]
std::vector<float> naive_forward(const ConvCase& c, const float* x, const float* w, const float* bias) {
    std::vector<float> y(c.batch * c.cout * c.oh() * c.ow());
    for (size_t b = 0; b < c.batch; ++b)
        for (size_t o = 0; o < c.cout; ++o)
            for (size_t i = 0; i < c.oh(); ++i)
                for (size_t j = 0; j < c.ow(); ++j) {
                    double sum = bias[o];
                    for (size_t ch = 0; ch < c.cin; ++ch)
                        for (size_t ki = 0; ki < c.k; ++ki)
                            for (size_t kj = 0; kj < c.k; ++kj)
                                sum += double(w[((o * c.cin + ch) * c.k + ki) * c.k + kj]) *
                                       at(x, c, b, ch, long(i * c.s + ki) - long(c.p), long(j * c.s + kj) - long(c.p));
                    y[((b * c.cout + o) * c.oh() + i) * c.ow() + j] = float(sum);
                }
    return y;
}

struct Grads {
    std::vector<float> dw, db, dx;
};

// The definition of the gradients of L = Σ y·dy, in double.
Grads naive_backward(const ConvCase& c, const float* x, const float* w, const float* dy) {
    std::vector<double> dw(c.cout * c.cin * c.k * c.k, 0.0), db(c.cout, 0.0), dx(c.batch * c.cin * c.h * c.w, 0.0);
    for (size_t b = 0; b < c.batch; ++b)
        for (size_t o = 0; o < c.cout; ++o)
            for (size_t i = 0; i < c.oh(); ++i)
                for (size_t j = 0; j < c.ow(); ++j) {
                    const double g = dy[((b * c.cout + o) * c.oh() + i) * c.ow() + j];
                    db[o] += g;
                    for (size_t ch = 0; ch < c.cin; ++ch)
                        for (size_t ki = 0; ki < c.k; ++ki)
                            for (size_t kj = 0; kj < c.k; ++kj) {
                                const long ii = long(i * c.s + ki) - long(c.p), jj = long(j * c.s + kj) - long(c.p);
                                if (ii < 0 || jj < 0 || ii >= long(c.h) || jj >= long(c.w)) continue;
                                const size_t wi = ((o * c.cin + ch) * c.k + ki) * c.k + kj;
                                const size_t xi = ((b * c.cin + ch) * c.h + size_t(ii)) * c.w + size_t(jj);
                                dw[wi] += g * double(x[xi]);
                                dx[xi] += g * double(w[wi]);
                            }
                }
    return {std::vector<float>(dw.begin(), dw.end()), std::vector<float>(db.begin(), db.end()),
            std::vector<float>(dx.begin(), dx.end())};
}

std::vector<float> grad_of(const Parameter& p) { return std::vector<float>(p.grad.begin(), p.grad.end()); }

const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("Conv2d has PyTorch's parameter names, shapes and default initialisation bounds") {
    Rng rng(21);
    Conv2d conv(16, 32, 3, 1, 1, rng);
    auto named = conv.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "weight");
    CHECK(named[1].first == "bias");
    CHECK(named[0].second == &conv.weight);
    CHECK(named[1].second == &conv.bias);
    CHECK(conv.weight.value.shape() == std::vector<size_t>{32, 16, 3, 3});
    CHECK(conv.bias.value.shape() == std::vector<size_t>{32});
    CHECK(conv.weight.grad.shape() == conv.weight.value.shape());
    CHECK(conv.bias.grad.shape() == conv.bias.value.shape());
    for (float g : conv.weight.grad) REQUIRE(g == 0.f);
    for (float g : conv.bias.grad) REQUIRE(g == 0.f);
    CHECK(conv.type_name() == "Conv2d");

    // bound = 1/sqrt(in · k · k): 1/12 here. Another fan (out · k · k, or in alone)
    // would give a range the checks below reject.
    struct Init {
        size_t cin, cout, k;
    };
    for (Init c : {Init{16, 32, 3}, Init{1, 16, 3}, Init{3, 4, 5}}) {
        CAPTURE(c.cin);
        CAPTURE(c.cout);
        CAPTURE(c.k);
        Rng r(22);
        Conv2d layer(c.cin, c.cout, c.k, 1, 0, r);
        const float bound = 1.f / std::sqrt(float(c.cin * c.k * c.k));
        float lo = 1, hi = -1;
        double mean = 0;
        for (float w : layer.weight.value) lo = std::min(lo, w), hi = std::max(hi, w), mean += w;
        mean /= double(layer.weight.value.size());
        CHECK(lo >= -bound);
        CHECK(hi <= bound);
        CHECK(hi - lo > 1.8f * bound);  // spread over the whole range
        CHECK(std::fabs(mean) < 0.1 * bound);
        float blo = 1, bhi = -1;
        for (float b : layer.bias.value) blo = std::min(blo, b), bhi = std::max(bhi, b);
        CHECK(blo >= -bound);
        CHECK(bhi <= bound);
        if (c.cout >= 16) CHECK(bhi - blo > 0.5f * bound);  // drawn, not a constant
    }
    Rng again(21);
    Conv2d same(16, 32, 3, 1, 1, again);
    CHECK(same.weight.value == conv.weight.value);
    CHECK(same.bias.value == conv.bias.value);
}

TEST_CASE("Conv2d output shape is (H + 2 padding - k) / stride + 1 for odd sizes, strides and padding") {
    struct ShapeCase {
        size_t cin, cout, k, s, p, h, w, oh, ow;
    };
    const ShapeCase table[] = {
        {1, 16, 3, 2, 1, 28, 28, 14, 14},  // the tutorial's conv1..conv3
        {16, 16, 3, 2, 1, 14, 14, 7, 7},  {16, 10, 3, 2, 1, 7, 7, 4, 4},
        {3, 5, 3, 2, 1, 7, 9, 4, 5},      {2, 4, 5, 1, 0, 9, 6, 5, 2},  {4, 3, 1, 1, 0, 5, 3, 5, 3},
        {2, 3, 1, 2, 1, 6, 5, 4, 4},      {3, 2, 4, 3, 2, 10, 7, 4, 3}, {5, 7, 3, 1, 1, 1, 1, 1, 1},
        {2, 3, 2, 2, 0, 5, 5, 2, 2},      {1, 6, 5, 1, 0, 28, 28, 24, 24},
        {1, 1, 5, 1, 1, 3, 3, 1, 1},  // H + 2p == k: one output
        {2, 2, 3, 5, 0, 13, 3, 3, 1},     {1, 2, 2, 1, 3, 1, 2, 6, 7},
    };
    for (const auto& c : table) {
        CAPTURE(c.k);
        CAPTURE(c.s);
        CAPTURE(c.p);
        CAPTURE(c.h);
        CAPTURE(c.w);
        Rng rng(1);
        Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
        const Shape out = conv.build({c.cin, c.h, c.w});
        CHECK(out == Shape{c.cout, c.oh, c.ow});
        CHECK(conv.output_shape() == Shape{c.cout, c.oh, c.ow});
        CHECK(conv.input_shape() == Shape{c.cin, c.h, c.w});
        CHECK(conv.in_features() == c.cin * c.h * c.w);
        CHECK(conv.out_features() == c.cout * c.oh * c.ow);
    }
}

TEST_CASE("Conv2d forward equals a direct convolution loop on ragged shapes, every kernel set") {
    for (auto* ks : kernels::available()) {
        CAPTURE(ks->name);
        set_kernels(*ks);
        for (const ConvCase& c : cases()) {
            CAPTURE(case_text(c));
            Rng rng(31);
            Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
            conv.build({c.cin, c.h, c.w});
            auto x = random_floats(rng, c.batch * conv.in_features());
            std::vector<float> y(c.batch * conv.out_features(), kNaN);
            conv.forward(x.data(), c.batch, y.data());
            auto want = naive_forward(c, x.data(), conv.weight.value.data(), conv.bias.value.data());
            REQUIRE(want.size() == y.size());
            CHECK(max_rel_error(y.data(), want.data(), y.size()) < 1e-5);
        }
    }
    set_kernels(kernels::best());
}

TEST_CASE("Conv2d backward equals the direct gradient loops (weight, bias, dx), every kernel set") {
    for (auto* ks : kernels::available()) {
        CAPTURE(ks->name);
        set_kernels(*ks);
        for (const ConvCase& c : cases()) {
            for (bool training : {true, false}) {  // patches kept from forward, or built again
                CAPTURE(case_text(c));
                CAPTURE(training);
                Rng rng(32);
                Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
                conv.train(training);
                conv.build({c.cin, c.h, c.w});
                auto x = random_floats(rng, c.batch * conv.in_features());
                auto dy = random_floats(rng, c.batch * conv.out_features());
                std::vector<float> y(c.batch * conv.out_features());
                conv.forward(x.data(), c.batch, y.data());
                std::vector<float> dx(x.size(), kNaN);  // every value must be written
                conv.zero_grad();
                conv.backward(x.data(), dy.data(), c.batch, dx.data());
                Grads want = naive_backward(c, x.data(), conv.weight.value.data(), dy.data());
                // dw and db sum batch · OH · OW terms (up to ~2,600) in float
                CHECK(max_rel_error(conv.weight.grad.data(), want.dw.data(), want.dw.size()) < 1e-4);
                CHECK(max_rel_error(conv.bias.grad.data(), want.db.data(), want.db.size()) < 1e-4);
                CHECK(max_rel_error(dx.data(), want.dx.data(), want.dx.size()) < 1e-5);
            }
        }
    }
    set_kernels(kernels::best());
}

// L = Σ y · r for a fixed random r, so dL/dy = r; L is computed in double from the
// float forward, and each derivative is a central difference over the float step
// actually taken.
TEST_CASE("Conv2d gradients of weight, bias and dx match finite differences") {
    const ConvCase fd_cases[] = {{3, 5, 3, 2, 1, 7, 9, 2}, {2, 3, 5, 1, 0, 6, 7, 1}, {2, 2, 1, 1, 0, 4, 3, 2},
                                 {2, 3, 4, 3, 2, 5, 6, 2}};
    for (const ConvCase& c : fd_cases) {
        CAPTURE(case_text(c));
        Rng rng(41);
        Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
        conv.build({c.cin, c.h, c.w});
        auto x = random_floats(rng, c.batch * conv.in_features());
        auto r = random_floats(rng, c.batch * conv.out_features());
        std::vector<float> y(r.size());
        auto loss = [&] {
            conv.forward(x.data(), c.batch, y.data());
            double l = 0;
            for (size_t i = 0; i < y.size(); ++i) l += double(y[i]) * double(r[i]);
            return l;
        };
        loss();
        std::vector<float> dx(x.size(), kNaN);
        conv.zero_grad();
        conv.backward(x.data(), r.data(), c.batch, dx.data());

        auto check_all = [&](float* v, const float* analytic, size_t n, const char* what) {
            check_finite_differences(v, analytic, n, loss, 1e-2f, 1e-3, what);
        };
        check_all(conv.weight.value.data(), conv.weight.grad.data(), conv.weight.value.size(), "weight");
        check_all(conv.bias.value.data(), conv.bias.grad.data(), conv.bias.value.size(), "bias");
        check_all(x.data(), dx.data(), x.size(), "dx");
    }
}

TEST_CASE("Conv2d backward with dx == nullptr gives the same weight and bias gradients, and accumulates") {
    for (const ConvCase& c : cases()) {
        CAPTURE(case_text(c));
        Rng rng(51);
        Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
        conv.build({c.cin, c.h, c.w});
        auto x = random_floats(rng, c.batch * conv.in_features());
        auto dy = random_floats(rng, c.batch * conv.out_features());
        std::vector<float> y(dy.size()), dx(x.size());
        conv.forward(x.data(), c.batch, y.data());
        conv.zero_grad();
        conv.backward(x.data(), dy.data(), c.batch, dx.data());
        auto gw = grad_of(conv.weight), gb = grad_of(conv.bias);
        conv.zero_grad();
        conv.backward(x.data(), dy.data(), c.batch, nullptr);
        CHECK(max_rel_error(conv.weight.grad.data(), gw.data(), gw.size(), 1e-6) < 1e-6);
        CHECK(max_rel_error(conv.bias.grad.data(), gb.data(), gb.size(), 1e-6) < 1e-6);
        // grads are added to, not overwritten: a second backward doubles them
        conv.backward(x.data(), dy.data(), c.batch, nullptr);
        for (float& g : gw) g *= 2.f;
        for (float& g : gb) g *= 2.f;
        CHECK(max_rel_error(conv.weight.grad.data(), gw.data(), gw.size()) < 1e-5);
        CHECK(max_rel_error(conv.bias.grad.data(), gb.data(), gb.size()) < 1e-5);
    }
}

TEST_CASE("Conv2d reused on batches of different sizes still equals the direct loop") {
    const ConvCase big{3, 5, 3, 2, 1, 7, 9, 130};
    Rng rng(55);
    Conv2d conv(big.cin, big.cout, big.k, big.s, big.p, rng);
    conv.build({big.cin, big.h, big.w});
    for (size_t batch : {size_t(130), size_t(3), size_t(61), size_t(1)}) {
        CAPTURE(batch);
        ConvCase c = big;
        c.batch = batch;
        auto x = random_floats(rng, batch * conv.in_features());
        auto dy = random_floats(rng, batch * conv.out_features());
        std::vector<float> y(dy.size(), kNaN), dx(x.size(), kNaN);
        conv.forward(x.data(), batch, y.data());
        auto want_y = naive_forward(c, x.data(), conv.weight.value.data(), conv.bias.value.data());
        CHECK(max_rel_error(y.data(), want_y.data(), y.size()) < 1e-5);
        conv.zero_grad();
        conv.backward(x.data(), dy.data(), batch, dx.data());
        Grads want = naive_backward(c, x.data(), conv.weight.value.data(), dy.data());
        CHECK(max_rel_error(conv.weight.grad.data(), want.dw.data(), want.dw.size()) < 1e-4);
        CHECK(max_rel_error(conv.bias.grad.data(), want.db.data(), want.db.size()) < 1e-4);
        CHECK(max_rel_error(dx.data(), want.dx.data(), want.dx.size()) < 1e-5);
    }
}

TEST_CASE("Conv2d backward uses the input of the last forward, across train/eval switches and buffers") {
    const ConvCase c{3, 5, 3, 2, 1, 7, 9, 4};
    Rng rng(57);
    Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
    conv.build({c.cin, c.h, c.w});
    auto x1 = random_floats(rng, c.batch * conv.in_features());
    auto x2 = random_floats(rng, c.batch * conv.in_features());
    auto dy = random_floats(rng, c.batch * conv.out_features());
    std::vector<float> y(dy.size()), dx(x1.size(), kNaN);
    auto check_backward = [&](const std::vector<float>& x) {
        conv.zero_grad();
        conv.backward(x.data(), dy.data(), c.batch, dx.data());
        Grads want = naive_backward(c, x.data(), conv.weight.value.data(), dy.data());
        CHECK(max_rel_error(conv.weight.grad.data(), want.dw.data(), want.dw.size()) < 1e-4);
        CHECK(max_rel_error(conv.bias.grad.data(), want.db.data(), want.db.size()) < 1e-4);
        CHECK(max_rel_error(dx.data(), want.dx.data(), want.dx.size()) < 1e-5);
    };
    conv.train();
    conv.forward(x1.data(), c.batch, y.data());
    check_backward(x1);
    // eval: the last forward is on x2, the same batch size
    conv.eval();
    conv.forward(x2.data(), c.batch, y.data());
    check_backward(x2);
    // training again, x1 then x2
    conv.train();
    conv.forward(x1.data(), c.batch, y.data());
    conv.forward(x2.data(), c.batch, y.data());
    check_backward(x2);
    // new values in the same buffer, forward again
    conv.forward(x1.data(), c.batch, y.data());
    for (float& v : x1) v = 0.5f - v;
    conv.forward(x1.data(), c.batch, y.data());
    check_backward(x1);
}

TEST_CASE("Conv2d split over 2 threads equals the single-thread result (forward, grads, dx)") {
    // 67 samples of 4x12x10, 8 channels out, k 3, s 1, p 1: 120 pixels · 36 patch · 8
    // per sample, 2.3M multiply-adds in all, above the 2^21 that makes parts_for split;
    // and a layer with more channels out than patch values (1 -> 16, as conv1).
    const ConvCase split_cases[] = {{4, 8, 3, 1, 1, 12, 10, 67}, {1, 16, 3, 1, 1, 16, 16, 61}};
    for (const ConvCase& c : split_cases) {
        for (bool training : {true, false}) {  // patches kept from forward, or built again per part
            CAPTURE(case_text(c));
            CAPTURE(training);
            REQUIRE(c.batch * c.oh() * c.ow() * (c.cin * c.k * c.k) * c.cout >= (size_t(1) << 21));
            Rng rng(61);
            Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
            conv.train(training);
            conv.build({c.cin, c.h, c.w});
            auto x = random_floats(rng, c.batch * conv.in_features());
            auto dy = random_floats(rng, c.batch * conv.out_features());

            std::vector<float> y1(dy.size()), y2(dy.size(), kNaN), dx1(x.size()), dx2(x.size(), kNaN);
            set_num_threads(1);
            conv.forward(x.data(), c.batch, y1.data());
            conv.zero_grad();
            conv.backward(x.data(), dy.data(), c.batch, dx1.data());
            auto gw1 = grad_of(conv.weight), gb1 = grad_of(conv.bias);

            set_num_threads(2);
            conv.forward(x.data(), c.batch, y2.data());
            conv.zero_grad();
            conv.backward(x.data(), dy.data(), c.batch, dx2.data());
            auto gw2 = grad_of(conv.weight), gb2 = grad_of(conv.bias);
            // and once more without dx, on the threads' scratch buffers already in use
            conv.zero_grad();
            conv.backward(x.data(), dy.data(), c.batch, nullptr);
            auto gw3 = grad_of(conv.weight), gb3 = grad_of(conv.bias);
            set_num_threads(1);

            CHECK(max_rel_error(y2.data(), y1.data(), y1.size()) < 1e-6);
            CHECK(max_rel_error(dx2.data(), dx1.data(), dx1.size()) < 1e-6);
            // 8,040- and 15,616-term float sums added in another order
            CHECK(max_rel_error(gw2.data(), gw1.data(), gw1.size()) < 1e-4);
            CHECK(max_rel_error(gb2.data(), gb1.data(), gb1.size()) < 1e-4);
            CHECK(max_rel_error(gw3.data(), gw1.data(), gw1.size()) < 1e-4);
            CHECK(max_rel_error(gb3.data(), gb1.data(), gb1.size()) < 1e-4);
            // and both equal the definition
            auto want_y = naive_forward(c, x.data(), conv.weight.value.data(), conv.bias.value.data());
            CHECK(max_rel_error(y2.data(), want_y.data(), want_y.size()) < 1e-5);
            Grads want = naive_backward(c, x.data(), conv.weight.value.data(), dy.data());
            CHECK(max_rel_error(gw2.data(), want.dw.data(), want.dw.size()) < 1e-4);
            CHECK(max_rel_error(gb2.data(), want.db.data(), want.db.size()) < 1e-4);
            CHECK(max_rel_error(dx2.data(), want.dx.data(), want.dx.size()) < 1e-5);
        }
    }
}

TEST_CASE("Conv2d rejects bad input shapes and arguments with an error naming Conv2d") {
    Rng rng(71);
    Conv2d conv(3, 5, 3, 2, 1, rng);
    CHECK_THROWS_WITH_AS(conv.build({2, 7, 9}), doctest::Contains("Conv2d"), sgdx::Error);  // wrong channels
    CHECK_THROWS_WITH_AS(conv.build({2, 7, 9}), doctest::Contains("[2, 7, 9]"), sgdx::Error);
    CHECK_THROWS_WITH_AS(conv.build({3, 49}), doctest::Contains("Conv2d"), sgdx::Error);        // 2-D
    CHECK_THROWS_WITH_AS(conv.build({147}), doctest::Contains("Conv2d"), sgdx::Error);          // flat
    CHECK_THROWS_WITH_AS(conv.build({1, 3, 7, 9}), doctest::Contains("Conv2d"), sgdx::Error);   // 4-D
    CHECK_THROWS_WITH_AS(conv.build({}), doctest::Contains("Conv2d"), sgdx::Error);             // empty
    CHECK_THROWS_WITH_AS(conv.build({3, 0, 9}), doctest::Contains("Conv2d"), sgdx::Error);      // no pixels

    Conv2d k5(2, 2, 5, 1, 0, rng);
    CHECK_THROWS_WITH_AS(k5.build({2, 4, 9}), doctest::Contains("Conv2d"), sgdx::Error);  // smaller than 5x5
    CHECK_THROWS_WITH_AS(k5.build({2, 9, 4}), doctest::Contains("Conv2d"), sgdx::Error);
    CHECK(k5.build({2, 5, 5}) == Shape{2, 1, 1});  // exactly the kernel: fine
    Conv2d k5p1(2, 2, 5, 1, 1, rng);
    CHECK(k5p1.build({2, 3, 3}) == Shape{2, 1, 1});  // padding makes it fit
    CHECK_THROWS_WITH_AS(k5p1.build({2, 2, 3}), doctest::Contains("Conv2d"), sgdx::Error);

    CHECK_THROWS_WITH_AS(Conv2d(0, 5, 3, 1, 0, rng), doctest::Contains("Conv2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(Conv2d(3, 0, 3, 1, 0, rng), doctest::Contains("Conv2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(Conv2d(3, 5, 0, 1, 0, rng), doctest::Contains("Conv2d"), sgdx::Error);
    CHECK_THROWS_WITH_AS(Conv2d(3, 5, 3, 0, 0, rng), doctest::Contains("Conv2d"), sgdx::Error);
    // core/conv's geometry is 32-bit: nothing is cut to fit it (a 64-bit size_t; in
    // wasm32 no size is larger)
    if constexpr (sizeof(size_t) > 4) {
        const size_t big = size_t(UINT32_MAX) + 1;
        CHECK_THROWS_WITH_AS(Conv2d(3, 5, 3, 1, big, rng), doctest::Contains("2^32"), sgdx::Error);
        Conv2d wide(1, 1, 1, big / 2, 0, rng);  // 3 output rows from 2^32 + 1
        CHECK_THROWS_WITH_AS(wide.build({1, big + 1, 1}), doctest::Contains("too large"), sgdx::Error);
    }
}

TEST_CASE("Conv2d whose build failed still computes for the shape it was last built for") {
    // build() throws for both of these; the layer still reports [3, 7, 9] and must
    // still compute on 7x9 samples.
    const ConvCase c{3, 5, 3, 2, 1, 7, 9, 2};
    for (Shape bad : {Shape{4, 7, 9}, Shape{3, 1, 0}, Shape{3, 0, 9}}) {
        CAPTURE(shape_text(bad));
        Rng rng(72);
        Conv2d conv(c.cin, c.cout, c.k, c.s, c.p, rng);
        conv.build({3, 7, 9});
        CHECK_THROWS_AS(conv.build(bad), sgdx::Error);
        CHECK(conv.input_shape() == Shape{3, 7, 9});
        CHECK(conv.output_shape() == Shape{5, 4, 5});
        auto x = random_floats(rng, c.batch * conv.in_features());
        std::vector<float> y(c.batch * conv.out_features(), kNaN);
        conv.forward(x.data(), c.batch, y.data());
        auto want = naive_forward(c, x.data(), conv.weight.value.data(), conv.bias.value.data());
        CHECK(max_rel_error(y.data(), want.data(), y.size()) < 1e-5);
    }
    // a kernel larger than the new input (the check after the sizes are read)
    const ConvCase c5{2, 2, 5, 1, 0, 6, 7, 2};
    Rng rng(73);
    Conv2d conv(c5.cin, c5.cout, c5.k, c5.s, c5.p, rng);
    conv.build({2, 6, 7});
    CHECK_THROWS_AS(conv.build({2, 4, 9}), sgdx::Error);
    CHECK(conv.input_shape() == Shape{2, 6, 7});
    auto x = random_floats(rng, c5.batch * conv.in_features());
    std::vector<float> y(c5.batch * conv.out_features(), kNaN);
    conv.forward(x.data(), c5.batch, y.data());
    auto want = naive_forward(c5, x.data(), conv.weight.value.data(), conv.bias.value.data());
    CHECK(max_rel_error(y.data(), want.data(), y.size()) < 1e-5);
}
