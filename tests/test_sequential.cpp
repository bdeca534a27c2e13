#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "helpers.hpp"
#include "module_helpers.hpp"
#include "models/mnist_cnn.hpp"
#include "models/zoo.hpp"
#include "runtime/activation.hpp"
#include "runtime/backend.hpp"
#include "runtime/conv2d.hpp"
#include "runtime/error.hpp"
#include "runtime/linear.hpp"
#include "runtime/pooling.hpp"
#include "runtime/reshape.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/sequential.hpp"
#include "runtime/thread_pool.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Linear(4, 5), ReLU, Linear(5, 3), as nn.Sequential numbers them.
struct SmallMlp {
    Sequential seq;
    Linear* l1;
    ReLU* relu;
    Linear* l2;
    explicit SmallMlp(uint64_t seed) {
        Rng rng(seed);
        l1 = &seq.emplace<Linear>(4, 5, rng);
        relu = &seq.emplace<ReLU>();
        l2 = &seq.emplace<Linear>(5, 3, rng);
        seq.build({4});
    }
};

std::vector<float> grad_of(const Parameter& p) { return std::vector<float>(p.grad.begin(), p.grad.end()); }

std::vector<std::vector<float>> all_grads(Module& m) {
    std::vector<std::vector<float>> g;
    for (Parameter* p : m.parameters()) g.push_back(grad_of(*p));
    return g;
}

// Checks every parameter's gradient and dx of L = Σ y · r against central
// differences over the float step taken (L in double from the float forward).
void check_by_differences(Module& net, std::vector<float>& x, size_t batch, float h, double tolerance) {
    Rng rng(123);
    auto r = random_floats(rng, batch * net.out_features());
    std::vector<float> y(r.size());
    auto loss = [&] {
        net.forward(x.data(), batch, y.data());
        double l = 0;
        for (size_t i = 0; i < y.size(); ++i) l += double(y[i]) * double(r[i]);
        return l;
    };
    loss();
    std::vector<float> dx(x.size(), kNaN);
    net.zero_grad();
    net.backward(x.data(), r.data(), batch, dx.data());

    auto check = [&](float* v, const float* analytic, size_t n, const std::string& what) {
        check_finite_differences(v, analytic, n, loss, h, tolerance, what);
    };
    for (auto& [name, p] : net.named_parameters()) check(p->value.data(), p->grad.data(), p->value.size(), name);
    check(x.data(), dx.data(), x.size(), "dx");
}

// The smallest |value| of a buffer: how far the ReLU inputs are from their kink.
float min_abs(const float* v, size_t n) {
    float m = std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < n; ++i) m = std::min(m, std::fabs(v[i]));
    return m;
}


// An identity layer that records how its backward is called.
class Spy : public Module {
public:
    size_t calls = 0, calls_with_dx = 0;
    void forward(const float* x, size_t batch, float* y) override {
        std::copy(x, x + batch * in_features(), y);
    }
    void backward(const float*, const float* dy, size_t batch, float* dx) override {
        ++calls;
        if (dx) {
            ++calls_with_dx;
            std::copy(dy, dy + batch * in_features(), dx);
        }
    }
    std::string type_name() const override { return "Spy"; }

protected:
    Shape configure(const Shape& input) override { return input; }
};

ModelSpec spec_of(const char* architecture) {
    ModelSpec s;
    s.architecture = architecture;
    return s;
}

}  // namespace

TEST_CASE("Sequential names its children 0, 1, 2 and their parameters 0.weight, 2.bias, ...") {
    SmallMlp m(1);
    const auto& children = m.seq.children();
    REQUIRE(children.size() == 3);
    CHECK(children[0].first == "0");
    CHECK(children[1].first == "1");
    CHECK(children[2].first == "2");
    CHECK(children[0].second == m.l1);
    CHECK(children[1].second == m.relu);
    CHECK(children[2].second == m.l2);
    CHECK(m.seq.size() == 3);
    CHECK(&m.seq[1] == m.relu);
    auto named = m.seq.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "0.weight");
    CHECK(named[1].first == "0.bias");
    CHECK(named[2].first == "2.weight");
    CHECK(named[3].first == "2.bias");
    CHECK(named[0].second == &m.l1->weight);
    CHECK(named[3].second == &m.l2->bias);
    CHECK(named[0].second->value.shape() == std::vector<size_t>{5, 4});
    CHECK(named[2].second->value.shape() == std::vector<size_t>{3, 5});
    CHECK(m.seq.input_shape() == Shape{4});
    CHECK(m.seq.output_shape() == Shape{3});
    CHECK(m.seq.type_name() == "Sequential");

    // a name given to add() is used as it is
    Sequential named_seq;
    Rng rng(2);
    named_seq.add("fc", std::make_unique<Linear>(4, 2, rng));
    named_seq.add(std::make_unique<ReLU>());
    named_seq.build({4});
    CHECK(named_seq.children()[0].first == "fc");
    CHECK(named_seq.children()[1].first == "1");
    CHECK(named_seq.named_parameters()[0].first == "fc.weight");
    CHECK(named_seq.named_parameters()[1].first == "fc.bias");
}

TEST_CASE("Sequential forward equals calling its children by hand") {
    SmallMlp m(3);
    Rng rng(4);
    const size_t B = 6;
    auto x = random_floats(rng, B * 4);
    std::vector<float> h1(B * 5), h2(B * 5), want(B * 3), y(B * 3, kNaN);
    m.l1->forward(x.data(), B, h1.data());
    m.relu->forward(h1.data(), B, h2.data());
    m.l2->forward(h2.data(), B, want.data());
    m.seq.forward(x.data(), B, y.data());
    CHECK(y == want);
    // the activations it keeps are the children's inputs
    for (size_t i = 0; i < h1.size(); ++i) REQUIRE(m.seq.activation_before(1)[i] == h1[i]);
    for (size_t i = 0; i < h2.size(); ++i) REQUIRE(m.seq.activation_before(2)[i] == h2[i]);
    // a smaller batch after a larger one, through the allocating call
    xt::xtensor<float, 2> xb = xt::xtensor<float, 2>::from_shape({2, 4});
    std::copy(x.begin(), x.begin() + 8, xb.begin());
    auto yb = m.seq(xb);
    for (size_t i = 0; i < 6; ++i) CHECK(yb.data()[i] == want[i]);
}

TEST_CASE("Sequential gradients (every parameter and dx) match finite differences") {
    SUBCASE("Linear, ReLU, Linear") {
        SmallMlp m(5);
        Rng rng(6);
        const size_t B = 4;
        auto x = random_floats(rng, B * 4);
        std::vector<float> y(B * 3);
        m.seq.forward(x.data(), B, y.data());
        // no ReLU input within a step's reach of its kink (the seeds are chosen for it)
        REQUIRE(min_abs(m.seq.activation_before(1), B * 5) > 0.02f);
        check_by_differences(m.seq, x, B, 1e-2f, 1e-3);
    }
    SUBCASE("View, Conv2d, ReLU, AvgPool2d, Flatten, Linear") {
        Sequential net;
        Rng rng(32);
        net.add(std::make_unique<View>(Shape{2, 6, 7}));
        net.add(std::make_unique<Conv2d>(2, 3, 3, 2, 1, rng));  // -> 3 x 3x4
        net.add(std::make_unique<ReLU>());
        net.add(std::make_unique<AvgPool2d>(2, 1));  // -> 3 x 2x3
        net.add(std::make_unique<Flatten>());
        net.add(std::make_unique<Linear>(18, 4, rng));
        net.build({84});
        REQUIRE(net.output_shape() == Shape{4});
        const size_t B = 2;
        auto x = random_floats(rng, B * 84);
        std::vector<float> y(B * 4);
        net.forward(x.data(), B, y.data());
        // a step of 1e-2 in a weight, a bias or x moves a conv output by at most 1e-2.
        // The ReLU runs inside the conv (Sequential::fused), so the conv's output
        // before it comes from a twin built from the same seed.
        REQUIRE(net.fused(2));
        Rng twin_rng(32);
        Conv2d twin(2, 3, 3, 2, 1, twin_rng);
        twin.build({2, 6, 7});
        std::vector<float> pre(B * 36);
        twin.forward(x.data(), B, pre.data());
        REQUIRE(min_abs(pre.data(), B * 36) > 0.02f);
        check_by_differences(net, x, B, 1e-2f, 1e-3);
    }
}

TEST_CASE("Sequential backward without dx gives the same gradients as with dx") {
    SmallMlp m(8);
    Rng rng(9);
    const size_t B = 7;
    auto x = random_floats(rng, B * 4);
    auto dy = random_floats(rng, B * 3);
    std::vector<float> y(B * 3), dx(B * 4, kNaN);
    m.seq.forward(x.data(), B, y.data());
    m.seq.zero_grad();
    m.seq.backward(x.data(), dy.data(), B, dx.data());
    auto with_dx = all_grads(m.seq);
    m.seq.zero_grad();
    m.seq.backward(x.data(), dy.data(), B, nullptr);
    auto without = all_grads(m.seq);
    REQUIRE(with_dx.size() == 4);
    for (size_t i = 0; i < with_dx.size(); ++i) {
        CAPTURE(i);
        CHECK(max_rel_error(without[i].data(), with_dx[i].data(), with_dx[i].size(), 1e-6) < 1e-6);
        double norm = 0;
        for (float g : with_dx[i]) norm += std::fabs(g);
        CHECK(norm > 0);  // the first layer's grads are filled too
    }
    // dx is dy through the layers by hand: dy · W2, masked by the ReLU, · W1
    std::vector<double> want(B * 4, 0.0);
    const float* h1 = m.seq.activation_before(1);
    for (size_t b = 0; b < B; ++b)
        for (size_t j = 0; j < 5; ++j) {
            if (!(h1[b * 5 + j] > 0.f)) continue;
            double g = 0;
            for (size_t c = 0; c < 3; ++c) g += double(dy[b * 3 + c]) * m.l2->weight.value(c, j);
            for (size_t k = 0; k < 4; ++k) want[b * 4 + k] += g * m.l1->weight.value(j, k);
        }
    std::vector<float> wantf(want.begin(), want.end());
    CHECK(max_rel_error(dx.data(), wantf.data(), wantf.size()) < 1e-5);
}

TEST_CASE("Sequential whose first children have no parameters (View, ReLU, Linear) fills the Linear's grads") {
    Sequential seq;
    Rng rng(10);
    seq.add(std::make_unique<View>(Shape{2, 3}));
    seq.add(std::make_unique<ReLU>());
    auto lin_owned = std::make_unique<Linear>(6, 4, rng);
    Linear& lin = *lin_owned;
    seq.add(std::move(lin_owned));
    seq.build({6});
    const size_t B = 5;
    auto x = random_floats(rng, B * 6);
    auto dy = random_floats(rng, B * 4);
    std::vector<float> y(B * 4);

    // by hand: the Linear on relu(x)
    std::vector<float> rx(x.size());
    for (size_t i = 0; i < x.size(); ++i) rx[i] = x[i] > 0.f ? x[i] : 0.f;
    std::vector<float> want_y(B * 4);
    lin.forward(rx.data(), B, want_y.data());
    lin.zero_grad();
    lin.backward(rx.data(), dy.data(), B);
    auto want_w = grad_of(lin.weight), want_b = grad_of(lin.bias);

    seq.forward(x.data(), B, y.data());
    CHECK(y == want_y);
    seq.zero_grad();
    seq.backward(x.data(), dy.data(), B, nullptr);
    CHECK(grad_of(lin.weight) == want_w);
    CHECK(grad_of(lin.bias) == want_b);

    // and with dx: relu'(x) · (dy · W)
    std::vector<float> dx(x.size(), kNaN);
    seq.zero_grad();
    seq.backward(x.data(), dy.data(), B, dx.data());
    CHECK(max_rel_error(grad_of(lin.weight).data(), want_w.data(), want_w.size(), 1e-6) < 1e-6);
    CHECK(max_rel_error(grad_of(lin.bias).data(), want_b.data(), want_b.size(), 1e-6) < 1e-6);
    std::vector<float> want_dx(x.size());
    for (size_t b = 0; b < B; ++b)
        for (size_t k = 0; k < 6; ++k) {
            double g = 0;
            for (size_t c = 0; c < 4; ++c) g += double(dy[b * 4 + c]) * lin.weight.value(c, k);
            want_dx[b * 6 + k] = x[b * 6 + k] > 0.f ? float(g) : 0.f;
        }
    CHECK(max_rel_error(dx.data(), want_dx.data(), want_dx.size()) < 1e-5);
}

TEST_CASE("Sequential asks a child for its dx only if a child before it learns or the caller wants dx") {
    Rng rng(20);
    const size_t B = 3;
    auto x = random_floats(rng, B * 4);
    auto dy = random_floats(rng, B * 2);
    std::vector<float> y(B * 2), dx(B * 4);
    {
        // nothing learns before the Spies: they are not asked for dx (or not called at all)
        Sequential seq;
        Spy& first = seq.emplace<Spy>();
        Spy& second = seq.emplace<Spy>();
        auto& lin = seq.emplace<Linear>(4, 2, rng);
        seq.build({4});
        seq.forward(x.data(), B, y.data());
        seq.backward(x.data(), dy.data(), B, nullptr);
        CHECK(first.calls_with_dx == 0);
        CHECK(second.calls_with_dx == 0);
        double norm = 0;
        for (float g : lin.weight.grad) norm += std::fabs(g);
        CHECK(norm > 0);
        // unless the caller wants dx
        std::fill(dx.begin(), dx.end(), kNaN);
        seq.backward(x.data(), dy.data(), B, dx.data());
        CHECK(first.calls_with_dx == 1);
        CHECK(second.calls_with_dx == 1);
        for (float v : dx) CHECK(std::isfinite(v));
    }
    {
        // a Linear before the Spy: the Spy's dx is needed for that Linear's gradient
        Sequential seq;
        seq.emplace<Linear>(4, 3, rng);
        Spy& spy = seq.emplace<Spy>();
        Spy& spy2 = seq.emplace<Spy>();
        seq.emplace<Linear>(3, 2, rng);
        seq.build({4});
        seq.forward(x.data(), B, y.data());
        seq.zero_grad();
        seq.backward(x.data(), dy.data(), B, nullptr);
        CHECK(spy.calls == 1);
        CHECK(spy.calls_with_dx == 1);
        CHECK(spy2.calls_with_dx == 1);
        double norm = 0;
        for (float g : seq.parameters()[0]->grad) norm += std::fabs(g);
        CHECK(norm > 0);
    }
}

TEST_CASE("Sequential uint8 forward and backward equal the float path on scale * bytes (mlp, cnn, lenet)") {
    for (const char* arch : {"mlp", "cnn", "cnn_sequential", "lenet"}) {
        CAPTURE(arch);
        auto by_bytes = make_model(spec_of(arch), 11);
        auto by_floats = make_model(spec_of(arch), 11);
        Rng rng(12);
        const size_t B = 5;
        const float scale = 1.f / 255.f;
        auto bytes = mostly_zero_bytes(rng, B * 784);
        std::vector<float> xf(bytes.size());
        for (size_t i = 0; i < bytes.size(); ++i) xf[i] = float(bytes[i]) * scale;
        auto dy = random_floats(rng, B * 10);

        std::vector<float> y8(B * 10, kNaN), yf(B * 10, kNaN);
        by_bytes->forward(bytes.data(), scale, B, y8.data());
        by_floats->forward(xf.data(), B, yf.data());
        CHECK(max_rel_error(y8.data(), yf.data(), yf.size()) < 1e-5);

        by_bytes->zero_grad();
        by_floats->zero_grad();
        by_bytes->backward(bytes.data(), scale, dy.data(), B);
        by_floats->backward(xf.data(), dy.data(), B);
        auto g8 = all_grads(*by_bytes), gf = all_grads(*by_floats);
        REQUIRE(g8.size() == gf.size());
        for (size_t i = 0; i < gf.size(); ++i) {
            CAPTURE(by_floats->named_parameters()[i].first);
            CHECK(max_rel_error(g8[i].data(), gf[i].data(), gf[i].size()) < 1e-5);
        }
        double norm = 0;
        for (float g : g8[0]) norm += std::fabs(g);
        CHECK(norm > 0);  // the first layer learns on the bytes too
    }
}

TEST_CASE("Sequential build errors name the failing child and its type") {
    {
        Sequential seq;
        Rng rng(13);
        seq.add(std::make_unique<Linear>(4, 5, rng));
        seq.add(std::make_unique<ReLU>());
        seq.add(std::make_unique<Linear>(6, 3, rng));  // gets 5 values
        CHECK_THROWS_WITH_AS(seq.build({4}), doctest::Contains("child 2"), sgdx::Error);
        CHECK_THROWS_WITH_AS(seq.build({4}), doctest::Contains("Linear"), sgdx::Error);
        CHECK_THROWS_WITH_AS(seq.build({3}), doctest::Contains("child 0"), sgdx::Error);
    }
    {
        Sequential seq;
        Rng rng(14);
        seq.add("view", std::make_unique<View>(Shape{1, 28, 28}));
        seq.add("conv", std::make_unique<Conv2d>(3, 4, 3, 1, 1, rng));  // wants 3 channels
        CHECK_THROWS_WITH_AS(seq.build({784}), doctest::Contains("conv"), sgdx::Error);
        CHECK_THROWS_WITH_AS(seq.build({784}), doctest::Contains("Conv2d"), sgdx::Error);
        CHECK_THROWS_WITH_AS(seq.build({783}), doctest::Contains("view"), sgdx::Error);
        CHECK_THROWS_WITH_AS(seq.build({783}), doctest::Contains("View"), sgdx::Error);
    }
    {
        Sequential seq;
        Rng rng(15);
        seq.add(std::make_unique<View>(Shape{1, 6, 6}));
        seq.add(std::make_unique<Conv2d>(1, 2, 3, 1, 0, rng));  // -> 2 x 4x4
        seq.add(std::make_unique<MaxPool2d>(5));                // window larger than 4x4
        CHECK_THROWS_WITH_AS(seq.build({36}), doctest::Contains("child 2"), sgdx::Error);
        CHECK_THROWS_WITH_AS(seq.build({36}), doctest::Contains("MaxPool2d"), sgdx::Error);
    }
    Sequential empty;
    CHECK_THROWS_WITH_AS(empty.build({4}), doctest::Contains("Sequential"), sgdx::Error);
    Sequential with_null;
    CHECK_THROWS_AS(with_null.add(nullptr), sgdx::Error);
}

TEST_CASE("MnistCNN has exactly the tutorial's state_dict names and PyTorch's shapes") {
    MnistCNN cnn;
    auto named = cnn.named_parameters();
    const std::vector<std::pair<std::string, std::vector<size_t>>> want = {
        {"conv1.weight", {16, 1, 3, 3}},  {"conv1.bias", {16}}, {"conv2.weight", {16, 16, 3, 3}},
        {"conv2.bias", {16}},             {"conv3.weight", {10, 16, 3, 3}}, {"conv3.bias", {10}},
    };
    REQUIRE(named.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        CHECK(named[i].first == want[i].first);
        CHECK(named[i].second->value.shape() == want[i].second);
        CHECK(named[i].second->grad.shape() == want[i].second);
    }
    CHECK(cnn.input_shape() == Shape{784});
    CHECK(cnn.output_shape() == Shape{10});
    CHECK(cnn.type_name() == "Mnist_CNN");
    // make_model("cnn") is the same network
    auto zoo = make_model(spec_of("cnn"));
    auto zoo_named = zoo->named_parameters();
    REQUIRE(zoo_named.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(zoo_named[i].first == want[i].first);
    CHECK(zoo->out_features() == 10);
}

TEST_CASE("mlp and lenet from the zoo: nn.Sequential's names and shapes, 10 outputs") {
    auto mlp = make_model(spec_of("mlp"));
    auto named = mlp->named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "0.weight");
    CHECK(named[0].second->value.shape() == std::vector<size_t>{128, 784});
    CHECK(named[1].first == "0.bias");
    CHECK(named[1].second->value.shape() == std::vector<size_t>{128});
    CHECK(named[2].first == "2.weight");
    CHECK(named[2].second->value.shape() == std::vector<size_t>{10, 128});
    CHECK(named[3].first == "2.bias");
    CHECK(named[3].second->value.shape() == std::vector<size_t>{10});
    CHECK(mlp->in_features() == 784);
    CHECK(mlp->out_features() == 10);

    auto lenet = make_model(spec_of("lenet"));
    CHECK(lenet->in_features() == 784);
    CHECK(lenet->out_features() == 10);
    // as models/zoo.hpp documents it: conv layers 1 and 4, Linear layers 8 and 10
    auto lnamed = lenet->named_parameters();
    const std::vector<std::string> want = {"1.weight", "1.bias", "4.weight", "4.bias",
                                           "8.weight", "8.bias", "10.weight", "10.bias"};
    REQUIRE(lnamed.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(lnamed[i].first == want[i]);
    const auto& first = lnamed[0].second->value.shape();
    REQUIRE(first.size() == 4);  // Conv2d(1, C, 5)
    CHECK(first[1] == 1);
    CHECK(first[2] == 5);
    CHECK(first[3] == 5);
    const auto& last = lnamed[6].second->value.shape();
    REQUIRE(last.size() == 2);  // Linear(H, 10)
    CHECK(last[0] == 10);
    CHECK(lnamed[7].second->value.shape() == std::vector<size_t>{10});
    Rng rng(16);
    auto x = random_floats(rng, 3 * 784, 0.f, 1.f);
    std::vector<float> y(3 * 10, kNaN);
    lenet->forward(x.data(), 3, y.data());
    for (float v : y) CHECK(std::isfinite(v));
}

TEST_CASE("MnistCNN and the cnn_sequential zoo model give identical logits and gradients") {
    MnistCNN cnn(28, 28, 10, 17);
    auto seq = make_model(spec_of("cnn_sequential"), 18);  // other weights until copied
    const std::vector<std::string> cnn_names = {"conv1.weight", "conv1.bias", "conv2.weight",
                                                "conv2.bias",   "conv3.weight", "conv3.bias"};
    const std::vector<std::string> seq_names = {"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"};
    auto a = cnn.named_parameters(), b = seq->named_parameters();
    REQUIRE(a.size() == 6);
    REQUIRE(b.size() == 6);
    for (size_t i = 0; i < 6; ++i) {
        CHECK(a[i].first == cnn_names[i]);
        CHECK(b[i].first == seq_names[i]);
    }
    const size_t B = 6;
    Rng rng(19);
    auto x = random_floats(rng, B * 784, 0.f, 1.f);
    std::vector<float> y_cnn(B * 10, kNaN), y_seq(B * 10, kNaN);
    cnn.forward(x.data(), B, y_cnn.data());
    seq->forward(x.data(), B, y_seq.data());
    CHECK(y_cnn != y_seq);  // different seeds, different nets

    copy_parameters(cnn, *seq);
    seq->forward(x.data(), B, y_seq.data());
    CHECK(y_cnn == y_seq);  // avg_pool2d(4) on 4x4 planes is AdaptiveAvgPool2d(1): the same sums
    size_t nonzero = 0;
    for (float v : y_cnn) nonzero += v != 0.f;
    CHECK(nonzero > 0);

    auto dy = random_floats(rng, B * 10);
    std::vector<float> dx_cnn(x.size(), kNaN), dx_seq(x.size(), kNaN);
    cnn.zero_grad();
    seq->zero_grad();
    cnn.backward(x.data(), dy.data(), B, dx_cnn.data());
    seq->backward(x.data(), dy.data(), B, dx_seq.data());
    auto g_cnn = all_grads(cnn), g_seq = all_grads(*seq);
    for (size_t i = 0; i < 6; ++i) {
        CAPTURE(cnn_names[i]);
        CHECK(g_cnn[i] == g_seq[i]);
    }
    CHECK(dx_cnn == dx_seq);
    // and without dx (a first layer skips that work), the same gradients again
    cnn.zero_grad();
    cnn.backward(x.data(), dy.data(), B, nullptr);
    auto g_nodx = all_grads(cnn);
    for (size_t i = 0; i < 6; ++i) {
        CAPTURE(cnn_names[i]);
        CHECK(max_rel_error(g_nodx[i].data(), g_cnn[i].data(), g_cnn[i].size(), 1e-6) < 1e-6);
    }
}

namespace {
// net: a Sequential of `for_net` built for `in` inputs; `alone`: the same layers
// (twins from the same seed) built on their own, each for the one before it.
void build_twins(Sequential& net, std::vector<std::unique_ptr<Module>> for_net,
                 std::vector<std::unique_ptr<Module>>& alone, size_t in) {
    for (auto& l : for_net) net.add(std::move(l));
    net.build({in});
    Shape s{in};
    for (auto& l : alone) s = l->build(s);
    REQUIRE(net.output_shape() == s);
}
}  // namespace

TEST_CASE("Sequential's channels-last conv stack equals the same layers run on their own (forward, grads, dx)") {
    // conv -> relu -> max pool -> conv -> relu -> avg pool -> conv -> relu -> flatten ->
    // linear: between the convs and into the Flatten (a 3x2 plane, so a real
    // transpose) the Sequential keeps activations channels-last; the twins, built
    // alone from the same seed, run PyTorch's layout. 120 samples, so the first
    // conv splits over 2 threads.
    struct Net {
        std::vector<std::unique_ptr<Module>> layers;
        explicit Net(uint64_t seed) {
            Rng rng(seed);
            layers.push_back(std::make_unique<View>(Shape{3, 10, 9}));
            layers.push_back(std::make_unique<Conv2d>(3, 8, 3, 1, 1, rng));  // -> 8 x 10x9
            layers.push_back(std::make_unique<ReLU>());
            layers.push_back(std::make_unique<MaxPool2d>(2));                // -> 8 x 5x4
            layers.push_back(std::make_unique<Conv2d>(8, 6, 3, 1, 1, rng));  // -> 6 x 5x4
            layers.push_back(std::make_unique<ReLU>());
            layers.push_back(std::make_unique<AvgPool2d>(2, 1));             // -> 6 x 4x3
            layers.push_back(std::make_unique<Conv2d>(6, 5, 2, 1, 0, rng));  // -> 5 x 3x2
            layers.push_back(std::make_unique<ReLU>());
            layers.push_back(std::make_unique<Flatten>());
            layers.push_back(std::make_unique<Linear>(30, 4, rng));
        }
    };
    Net seq_layers(77), alone(77);
    Sequential net;
    build_twins(net, std::move(seq_layers.layers), alone.layers, 270);

    const size_t B = 120;
    Rng rng(78);
    auto x = random_floats(rng, B * 270);
    auto dy = random_floats(rng, B * 4);
    for (size_t threads : {1, 2}) {
        CAPTURE(threads);
        set_num_threads(threads);
        // the twins by hand, in PyTorch's layout
        std::vector<std::vector<float>> acts{x};
        for (auto& l : alone.layers) {
            std::vector<float> y(B * l->out_features());
            l->forward(acts.back().data(), B, y.data());
            acts.push_back(std::move(y));
        }
        std::vector<float> g = dy;
        for (size_t i = alone.layers.size(); i-- > 0;) {
            std::vector<float> gin(B * alone.layers[i]->in_features());
            alone.layers[i]->zero_grad();
            alone.layers[i]->backward(acts[i].data(), g.data(), B, gin.data());
            g = std::move(gin);
        }
        std::vector<float> y(B * 4, kNaN), dx(x.size(), kNaN);
        net.forward(x.data(), B, y.data());
        net.zero_grad();
        net.backward(x.data(), dy.data(), B, dx.data());
        set_num_threads(1);

        // the same sums, some in another order (patch columns (ki, kj, ci))
        CHECK(max_rel_error(y.data(), acts.back().data(), y.size()) < 1e-5);
        // Each child's output, read back in PyTorch's layout (channels-last inside);
        // a conv's whose ReLU runs inside it (all three here) after the ReLU.
        for (size_t i = 0; i + 1 < net.size(); ++i) {
            CAPTURE(i);
            std::vector<float> a(B * net[i].out_features(), kNaN);
            net.activation_after(i, B, a.data());
            CHECK(max_rel_error(a.data(), acts[net.fused(i + 1) ? i + 2 : i + 1].data(), a.size()) < 1e-5);
        }
        std::vector<float> last(B * 4);
        CHECK_THROWS_WITH_AS(net.activation_after(net.size() - 1, B, last.data()),
                             doctest::Contains("is not one before the last"), Error);
        CHECK(max_rel_error(dx.data(), g.data(), g.size()) < 1e-5);
        std::vector<Parameter*> want;
        for (auto& l : alone.layers)
            for (Parameter* p : l->parameters()) want.push_back(p);
        auto got = net.parameters();
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) {
            CAPTURE(i);
            REQUIRE(got[i]->grad.shape() == want[i]->grad.shape());
            CHECK(max_rel_error(got[i]->grad.data(), want[i]->grad.data(), want[i]->grad.size()) < 1e-4);
        }
    }
    // and in eval mode (patches built again in backward are not used; forward alone)
    net.eval();
    std::vector<float> y(B * 4, kNaN);
    net.forward(x.data(), B, y.data());
    std::vector<float> a = x;
    for (auto& l : alone.layers) {
        std::vector<float> o(B * l->out_features());
        l->forward(a.data(), B, o.data());
        a = std::move(o);
    }
    CHECK(max_rel_error(y.data(), a.data(), y.size()) < 1e-5);
}

TEST_CASE("Sequential's channels-last MaxPool2d routes NaNs and ties as the plain one does") {
    // An identity 1x1 conv before the pool makes it channels-last (one channel: the
    // same bytes, the channels-last loops); overlapping 3x3 windows every 2.
    Sequential net;
    Rng rng(90);
    net.add(std::make_unique<View>(Shape{1, 9, 7}));
    auto& conv = net.emplace<Conv2d>(1, 1, 1, 1, 0, rng);
    net.add(std::make_unique<MaxPool2d>(3, 2));  // -> 1 x 4x3
    net.add(std::make_unique<Flatten>());
    net.build({63});
    conv.weight.value.fill(1.f);
    conv.bias.value.fill(0.f);
    MaxPool2d alone(3, 2);
    alone.build({1, 9, 7});

    const size_t B = 3;
    std::vector<float> x(B * 63);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(rng.below(4));  // many ties
    x[5] = x[40] = x[63 + 17] = kNaN;
    auto dy = random_floats(rng, B * 12);
    std::vector<float> y(B * 12), want(B * 12), dx(x.size()), want_dx(x.size());
    net.forward(x.data(), B, y.data());
    net.backward(x.data(), dy.data(), B, dx.data());
    alone.forward(x.data(), B, want.data());
    alone.backward(x.data(), dy.data(), B, want_dx.data());
    for (size_t i = 0; i < y.size(); ++i) {
        CAPTURE(i);
        CHECK((std::isnan(y[i]) ? std::isnan(want[i]) : y[i] == want[i]));
    }
    for (size_t i = 0; i < dx.size(); ++i) {
        CAPTURE(i);
        CHECK(dx[i] == want_dx[i]);
    }
}

TEST_CASE("model_spec_of reads a file's architecture, one sgdx does not know is refused by name") {
    ModelSpec spec;
    spec.architecture = "mlp";
    spec.hidden = {32, 16};
    auto model = make_model(spec, 1);
    const std::vector<uint8_t> bytes = encode_model(*model, model_metadata(spec));
    const ModelSpec back = model_spec_of(parse_safetensors(bytes.data(), bytes.size(), "mlp.safetensors"), "mlp.safetensors");
    CHECK(back.architecture == "mlp");
    CHECK(back.hidden == spec.hidden);
    CHECK(back.rows == 28);
    CHECK(back.classes == 10);
    SafetensorsFile f;
    f.metadata["architecture"] = "transformer";
    CHECK_THROWS_WITH_AS(model_spec_of(f, "t.safetensors"),
                         "t.safetensors: its architecture 'transformer' is not one sgdx knows (logistic, cnn, "
                         "cnn_sequential, mlp, lenet, bncnn)",
                         Error);
}

TEST_CASE("every layer of lenet and the CNN split over 2 threads: outputs as on 1 thread, gradients deterministic") {
    // Batch 64: every conv, ReLU and max pool splits the batch over the pool. Outputs are per sample, so bit for bit those of 1 thread; the weight
    // gradients are summed per part then in part order: the same bits on every run
    // with 2 threads, and within rounding of 1 thread's.
    for (const char* arch : {"lenet", "cnn"}) {
        CAPTURE(arch);
        auto net = make_model(spec_of(arch), 5);
        const size_t B = 64, D = net->in_features(), C = net->out_features();
        Rng rng(6);
        auto x = random_floats(rng, B * D, 0.f, 1.f);
        auto dy = random_floats(rng, B * C);
        auto step = [&](size_t threads, std::vector<float>& y) {
            set_num_threads(threads);
            y.assign(B * C, kNaN);
            net->forward(x.data(), B, y.data());
            net->zero_grad();
            net->backward(x.data(), dy.data(), B);
            set_num_threads(1);
            return all_grads(*net);
        };
        std::vector<float> y1, y2, y2b;
        const auto g1 = step(1, y1);
        const auto g2 = step(2, y2);
        const auto g2b = step(2, y2b);
        CHECK(y1 == y2);
        CHECK(y2 == y2b);
        CHECK(g2 == g2b);
        REQUIRE(g1.size() == g2.size());
        for (size_t i = 0; i < g1.size(); ++i) {
            CAPTURE(i);
            CHECK(max_rel_error(g2[i].data(), g1[i].data(), g1[i].size()) < 1e-5);
        }
    }
}

namespace {
// Layers built alone run by hand, in PyTorch's layout: acts[i] the input of layer i
// (acts.back() the output), g the input gradient for dy.
void run_alone(std::vector<std::unique_ptr<Module>>& alone, const std::vector<float>& x, const std::vector<float>& dy,
               size_t B, std::vector<std::vector<float>>& acts, std::vector<float>& g) {
    acts = {x};
    for (auto& l : alone) {
        std::vector<float> y(B * l->out_features());
        l->forward(acts.back().data(), B, y.data());
        acts.push_back(std::move(y));
    }
    g = dy;
    for (size_t i = alone.size(); i-- > 0;) {
        std::vector<float> gin(B * alone[i]->in_features());
        alone[i]->zero_grad();
        alone[i]->backward(acts[i].data(), g.data(), B, gin.data());
        g = std::move(gin);
    }
}

// max_rel_error where a NaN must meet a NaN (1 if not), and the rest is compared.
double error_nan_alike(const float* a, const float* b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        if (std::isnan(a[i]) != std::isnan(b[i])) return 1.0;
        if (!std::isnan(a[i])) worst = std::max(worst, double(std::fabs(a[i] - b[i])) / (1 + std::fabs(b[i])));
    }
    return worst;
}

// Every parameter gradient of net equals its twin's in `alone` (the same order).
void check_grads_as_alone(Sequential& net, std::vector<std::unique_ptr<Module>>& alone) {
    std::vector<Parameter*> want;
    for (auto& l : alone)
        for (Parameter* p : l->parameters()) want.push_back(p);
    auto got = net.parameters();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(error_nan_alike(got[i]->grad.data(), want[i]->grad.data(), want[i]->grad.size()) < 1e-4);
    }
}
}  // namespace

TEST_CASE("Sequential's stride-2 convs (direct channels-last input gradient) equal the layers run on their own") {
    // conv2 and conv3 get channels-last inputs with stride 2 and 3: their dx comes from
    // the kernel set's conv_input_grad_cl where it has one (ragged channel counts).
    auto layers = [](uint64_t seed) {
        Rng rng(seed);
        std::vector<std::unique_ptr<Module>> l;
        l.push_back(std::make_unique<View>(Shape{2, 13, 11}));
        l.push_back(std::make_unique<Conv2d>(2, 17, 3, 1, 1, rng));  // -> 17 x 13x11
        l.push_back(std::make_unique<ReLU>());
        l.push_back(std::make_unique<Conv2d>(17, 9, 3, 2, 1, rng));  // -> 9 x 7x6
        l.push_back(std::make_unique<ReLU>());
        l.push_back(std::make_unique<Conv2d>(9, 4, 4, 3, 2, rng));   // -> 4 x 3x3
        l.push_back(std::make_unique<Flatten>());
        return l;
    };
    auto alone = layers(9);
    Sequential net;
    build_twins(net, layers(9), alone, 286);
    const size_t B = 5;
    Rng rng(10);
    auto x = random_floats(rng, B * 286);
    const size_t out = net.out_features();
    REQUIRE(out == 36);
    auto dy = random_floats(rng, B * out);
    std::vector<std::vector<float>> acts;
    std::vector<float> g;
    run_alone(alone, x, dy, B, acts, g);
    std::vector<float> y(B * out), dx(x.size(), kNaN);
    net.forward(x.data(), B, y.data());
    net.zero_grad();
    net.backward(x.data(), dy.data(), B, dx.data());
    CHECK(max_rel_error(y.data(), acts.back().data(), y.size()) < 1e-5);
    CHECK(max_rel_error(dx.data(), g.data(), g.size()) < 1e-5);
    check_grads_as_alone(net, alone);
}

TEST_CASE("Sequential fuses a ReLU after a Conv2d into it: the same values on every kernel set, NaN kept") {
    // conv -> ReLU -> conv (the consumer masks its dx), conv -> ReLU -> max pool and
    // Linear -> ReLU (not fused: no conv before it), conv -> ReLU -> Flatten; a ReLU
    // last stays a layer of its own. Each kernel set (the scalar one has no direct
    // convs: the conv clamps and masks in passes of its own) against the layers run
    // alone, which do not fuse.
    auto layers = [](uint64_t seed) {
        Rng rng(seed);
        std::vector<std::unique_ptr<Module>> l;
        l.push_back(std::make_unique<View>(Shape{1, 12, 11}));
        l.push_back(std::make_unique<Conv2d>(1, 16, 3, 2, 1, rng));  // -> 16 x 6x6, one input channel
        l.push_back(std::make_unique<ReLU>());                       // fused
        l.push_back(std::make_unique<Conv2d>(16, 7, 3, 1, 1, rng));  // masks its dx
        l.push_back(std::make_unique<ReLU>());                       // fused
        l.push_back(std::make_unique<MaxPool2d>(2));                 // -> 7 x 3x3, the Sequential masks
        l.push_back(std::make_unique<Conv2d>(7, 5, 2, 1, 0, rng));   // -> 5 x 2x2
        l.push_back(std::make_unique<ReLU>());                       // fused, before a Flatten
        l.push_back(std::make_unique<Flatten>());
        l.push_back(std::make_unique<Linear>(20, 6, rng));
        l.push_back(std::make_unique<ReLU>());                       // last: not fused
        return l;
    };
    const std::vector<bool> want_fused{false, false, true, false, true, false, false, true, false, false, false};
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const kernels::KernelSet* k : kernels::available()) {
        CAPTURE(k->name);
        set_kernels(*k);
        auto alone = layers(31);
        Sequential net;
        build_twins(net, layers(31), alone, 132);
        for (size_t i = 0; i < net.size(); ++i) CHECK(net.fused(i) == want_fused[i]);
        const size_t B = 7;
        Rng rng(32);
        auto x = random_floats(rng, B * 132);
        x[5] = nan;  // sample 0's windows over pixel 5 give NaN all the way
        auto dy = random_floats(rng, B * 6);
        std::vector<std::vector<float>> acts;
        std::vector<float> g;
        run_alone(alone, x, dy, B, acts, g);
        std::vector<float> y(B * 6), dx(x.size(), 7.f);
        net.forward(x.data(), B, y.data());
        net.zero_grad();
        net.backward(x.data(), dy.data(), B, dx.data());
        // NaN in the same places, the rest within summation order
        auto same = [](const std::vector<float>& a, const float* b, size_t n) { return error_nan_alike(a.data(), b, n); };
        CHECK(same(y, acts.back().data(), y.size()) < 1e-5);
        CHECK(same(dx, g.data(), g.size()) < 1e-5);
        size_t nans = 0;
        for (float v : y) nans += std::isnan(v);
        CHECK(nans > 0);  // the NaN reached the output: the fused ReLUs kept it
        // each child's output (a fused ReLU's is its conv's buffer)
        for (size_t i = 0; i + 1 < net.size(); ++i) {
            CAPTURE(i);
            std::vector<float> a(B * net[i].out_features());
            net.activation_after(i, B, a.data());
            // a conv whose ReLU is fused shows its output after the ReLU
            const auto& want = want_fused[i + 1] ? acts[i + 2] : acts[i + 1];
            CHECK(same(a, want.data(), a.size()) < 1e-5);
        }
        check_grads_as_alone(net, alone);
    }
    set_kernels(kernels::best());
}
