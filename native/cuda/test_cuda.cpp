// Tests of the CUDA backend. Test cases that need a GPU print "skipped: no CUDA
// device (...)" and return when there is none (ctest lists them as skipped). The
// rest runs everywhere: the no-GPU behaviour, input checks, and the comparison
// harness itself, which must reject a kernel set with a ragged-tail bug and
// accept the CPU's SIMD set (another summation order, as cuBLAS has).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "native/cuda/cuda_backend.hpp"
#include "native/cuda/gemm_args.hpp"
#include "runtime/sgdx.hpp"
#include "tests/helpers.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {

constexpr double kEps = std::numeric_limits<float>::epsilon();

bool have_gpu() {
    std::string why;
    if (cuda::available(&why)) return true;
    MESSAGE("skipped: no CUDA device (" << why << ")");
    return false;
}

// ---- kernel comparison --------------------------------------------------------

// Where a kernel set disagreed with the reference beyond the tolerance.
struct Mismatch {
    std::string kernel, where;
    double got, want, tol;
};
using Report = std::vector<Mismatch>;

size_t count(const Report& r, const std::string& kernel) {
    size_t n = 0;
    for (const auto& m : r) n += m.kernel == kernel;
    return n;
}

std::string describe(const Report& r) {
    std::ostringstream s;
    for (size_t i = 0; i < r.size() && i < 10; ++i)
        s << r[i].kernel << " " << r[i].where << ": got " << r[i].got << ", want " << r[i].want << " (tol "
          << r[i].tol << ")\n";
    if (r.size() > 10) s << "... " << r.size() - 10 << " more\n";
    return s.str();
}

// |got[i] - want[i]| <= tol[i] for each i; NaN never passes. One entry per array.
void expect_close(Report& r, const char* kernel, const std::string& shape, const float* got, const float* want,
                  const std::vector<double>& tol, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (!(std::abs(double(got[i]) - double(want[i])) <= tol[i])) {
            r.push_back({kernel, shape + " [" + std::to_string(i) + "]", got[i], want[i], tol[i]});
            return;
        }
}

// Tolerance of a float sum of k terms whose absolute values sum to `abs_sum`,
// in any order: 4·sqrt(k)·eps·abs_sum. Rounding errors of k additions grow like
// sqrt(k) (a random walk), each at most eps times a partial sum <= abs_sum; the
// factor 4 is headroom. A bug (a missing row, bias or tail) costs O(one term),
// far more than this for the shapes below.
double sum_tol(size_t k, double abs_sum) { return 4.0 * std::sqrt(double(k)) * kEps * abs_sum; }

// Runs `got` and the reference on random shapes (MNIST's, a 1x1x1, then random
// sizes with ragged tails) and lists every kernel output outside its tolerance.
Report compare_sets(const kernels::KernelSet& got, uint64_t seed, int trials) {
    const kernels::KernelSet& ref = kernels::reference();
    Rng rng(seed);
    Report r;
    const size_t Bs[] = {1, 2, 3, 17, 64, 100, 257, 1000}, Ds[] = {1, 5, 31, 100, 784, 785}, Cs[] = {1, 3, 10, 33};
    const float kSentinel = -7.25f;  // outputs a kernel forgets to write keep it
    for (int t = 0; t < trials; ++t) {
        size_t B = Bs[rng.below(8)], D = Ds[rng.below(6)], C = Cs[rng.below(4)];
        if (t == 0) B = 64, D = 784, C = 10;
        if (t == 1) B = D = C = 1;
        const std::string shape = "B=" + std::to_string(B) + " D=" + std::to_string(D) + " C=" + std::to_string(C);
        {  // scale_u8: one rounding on both sides, so exact
            const auto u = random_bytes(rng, B * D);
            std::vector<float> want(B * D, kSentinel), have(B * D, kSentinel);
            ref.scale_u8(u.data(), 1.f / 255.f, want.data(), u.size());
            got.scale_u8(u.data(), 1.f / 255.f, have.data(), u.size());
            expect_close(r, "scale_u8", shape, have.data(), want.data(), std::vector<double>(u.size(), 0.0), u.size());
        }
        const auto x = random_floats(rng, B * D, 0.f, 1.f), w = random_floats(rng, C * D, -1.f, 1.f), b = random_floats(rng, C, -1.f, 1.f);
        {  // linear_forward
            std::vector<float> want(B * C, kSentinel), have(B * C, kSentinel);
            std::vector<double> tol(B * C);
            ref.linear_forward(x.data(), w.data(), b.data(), want.data(), B, D, C);
            got.linear_forward(x.data(), w.data(), b.data(), have.data(), B, D, C);
            for (size_t i = 0; i < B; ++i)
                for (size_t c = 0; c < C; ++c) {
                    double s = std::abs(b[c]);
                    for (size_t k = 0; k < D; ++k) s += std::abs(double(x[i * D + k]) * w[c * D + k]);
                    tol[i * C + c] = sum_tol(D + 1, s);
                }
            expect_close(r, "linear_forward", shape, have.data(), want.data(), tol, B * C);
        }
        {  // linear_backward, accumulating onto non-zero gradients; once without db
            const auto dy = random_floats(rng, B * C, -1.f / float(B), 1.f / float(B));
            const auto dw0 = random_floats(rng, C * D, -1.f, 1.f), db0 = random_floats(rng, C, -1.f, 1.f);
            const bool with_db = t % 3 != 2;
            auto dw_want = dw0, dw_have = dw0, db_want = db0, db_have = db0;
            ref.linear_backward(x.data(), dy.data(), dw_want.data(), with_db ? db_want.data() : nullptr, B, D, C);
            got.linear_backward(x.data(), dy.data(), dw_have.data(), with_db ? db_have.data() : nullptr, B, D, C);
            std::vector<double> tw(C * D), tb(C);
            for (size_t c = 0; c < C; ++c) {
                double sb = std::abs(db0[c]);
                for (size_t i = 0; i < B; ++i) sb += std::abs(dy[i * C + c]);
                tb[c] = sum_tol(B + 1, sb);
                for (size_t k = 0; k < D; ++k) {
                    double s = std::abs(dw0[c * D + k]);
                    for (size_t i = 0; i < B; ++i) s += std::abs(double(dy[i * C + c]) * x[i * D + k]);
                    tw[c * D + k] = sum_tol(B + 1, s);
                }
            }
            expect_close(r, "linear_backward", shape + " dw", dw_have.data(), dw_want.data(), tw, C * D);
            expect_close(r, "linear_backward", shape + " db", db_have.data(), db_want.data(), tb, C);
        }
        {  // softmax_xent; every fourth trial writes the gradient over the logits
            const auto logits = random_floats(rng, B * C, -5.f, 5.f);
            std::vector<int32_t> y(B);
            for (auto& v : y) v = int32_t(rng.below(uint32_t(C)));
            const float scale = 1.f / float(B);
            const bool alias = t % 4 == 3;
            std::vector<float> want(B * C, kSentinel), have(B * C, kSentinel);
            auto in_want = logits, in_have = logits;
            size_t hits_want = 0, hits_have = 0;
            float* out_want = alias ? in_want.data() : want.data();
            float* out_have = alias ? in_have.data() : have.data();
            const double loss_want = ref.softmax_xent(in_want.data(), y.data(), out_want, scale, B, C, &hits_want);
            const double loss_have = got.softmax_xent(in_have.data(), y.data(), out_have, scale, B, C, &hits_have);
            // exp/log differ by a few ulp between libm and CUDA; each row's loss and
            // probabilities carry that relative to the magnitudes that enter them.
            double loss_tol = 0;
            std::vector<double> tol(B * C);
            for (size_t i = 0; i < B; ++i) {
                double zmax = logits[i * C];
                for (size_t c = 1; c < C; ++c) zmax = std::max(zmax, double(logits[i * C + c]));
                double sum = 0;
                for (size_t c = 0; c < C; ++c) sum += std::exp(logits[i * C + c] - zmax);
                const double log_sum = std::log(sum);
                loss_tol += 16 * kEps * (1 + log_sum + (zmax - logits[i * C + size_t(y[i])]));
                for (size_t c = 0; c < C; ++c) {
                    const double p = std::exp(logits[i * C + c] - zmax - log_sum);
                    tol[i * C + c] = scale * (16 * kEps * (1 + zmax - logits[i * C + c] + log_sum) * p + 2 * kEps);
                }
            }
            if (!(std::abs(loss_have - loss_want) <= loss_tol))
                r.push_back({"softmax_xent", shape + " loss", loss_have, loss_want, loss_tol});
            if (hits_have != hits_want)
                r.push_back({"softmax_xent", shape + " correct", double(hits_have), double(hits_want), 0});
            expect_close(r, "softmax_xent", shape + (alias ? " dlogits (in place)" : " dlogits"), out_have, out_want,
                         tol, B * C);
        }
        {  // sgd_update with PyTorch's options drawn at random
            const size_t n = C * D + C;
            const float lr = rng.below(2) ? 0.5f : 0.01f, momentum = rng.below(2) ? 0.9f : 0.f;
            const bool nesterov = momentum != 0.f && rng.below(2);
            const float dampening = momentum != 0.f && !nesterov && rng.below(2) ? 0.1f : 0.f;
            const float wd = rng.below(2) ? 1e-3f : 0.f;
            const bool first = rng.below(2);
            const auto p0 = random_floats(rng, n, -1.f, 1.f), g = random_floats(rng, n, -1.f, 1.f), buf0 = random_floats(rng, n, -1.f, 1.f);
            auto p_want = p0, p_have = p0, buf_want = buf0, buf_have = buf0;
            ref.sgd_update(p_want.data(), g.data(), buf_want.data(), n, lr, momentum, dampening, wd, nesterov, first);
            got.sgd_update(p_have.data(), g.data(), buf_have.data(), n, lr, momentum, dampening, wd, nesterov, first);
            // A handful of roundings, each eps relative to the values that enter it.
            std::vector<double> tp(n), tb(n);
            for (size_t i = 0; i < n; ++i) {
                tb[i] = 8 * kEps * (momentum * std::abs(buf0[i]) + std::abs(g[i]) + wd * std::abs(p0[i]));
                tp[i] = 8 * kEps * (std::abs(p0[i]) + lr * (tb[i] / (8 * kEps) + std::abs(buf_want[i])));
            }
            const std::string opts = shape + " lr=" + std::to_string(lr) + " momentum=" + std::to_string(momentum) +
                                     (nesterov ? " nesterov" : "") + (first ? " first" : "");
            expect_close(r, "sgd_update", opts + " p", p_have.data(), p_want.data(), tp, n);
            if (momentum != 0.f) expect_close(r, "sgd_update", opts + " buf", buf_have.data(), buf_want.data(), tb, n);
        }
    }
    return r;
}

// The reference with a ragged-tail bug in every kernel: the last row (or
// element) is left out. The harness must catch each one.
const kernels::KernelSet& tail_dropping_set() {
    static const kernels::KernelSet set{
        "drops-the-tail",
        [](const uint8_t* x, float scale, float* y, size_t n) { kernels::reference().scale_u8(x, scale, y, n - 1); },
        [](const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C) {
            kernels::reference().linear_forward(x, w, b, y, B - 1, D, C);
        },
        [](const float* x, const float* dy, float* dw, float* db, size_t B, size_t D, size_t C) {
            kernels::reference().linear_backward(x, dy, dw, db, B - 1, D, C);
        },
        [](const float* z, const int32_t* t, float* dz, float s, size_t B, size_t C, size_t* hits) {
            return kernels::reference().softmax_xent(z, t, dz, s, B - 1, C, hits);
        },
        [](float* p, const float* g, float* buf, size_t n, float lr, float m, float d, float wd, bool nest, bool first) {
            kernels::reference().sgd_update(p, g, buf, n - 1, lr, m, d, wd, nest, first);
        }};
    return set;
}

// The reference with its products done by the column-major sgemm calls the GPU
// makes (gemm_args.hpp) on a plain CPU sgemm: checks the transposes, leading
// dimensions and the bias/accumulation handling without a GPU.
const kernels::KernelSet& blas_mapping_set() {
    static const kernels::KernelSet set{
        "blas-mapping", kernels::reference().scale_u8,
        [](const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C) {
            for (size_t i = 0; i < B; ++i)
                for (size_t c = 0; c < C; ++c) y[i * C + c] = b[c];
            cuda::sgemm_reference(cuda::forward_gemm(x, w, y, B, D, C), 1.f, 1.f);
        },
        [](const float* x, const float* dy, float* dw, float* db, size_t B, size_t D, size_t C) {
            cuda::sgemm_reference(cuda::weight_grad_gemm(x, dy, dw, B, D, C), 1.f, 1.f);
            for (size_t c = 0; db && c < C; ++c)
                for (size_t i = 0; i < B; ++i) db[c] += dy[i * C + c];
        },
        kernels::reference().softmax_xent, kernels::reference().sgd_update};
    return set;
}

// ---- training comparison ---------------------------------------------------------

// A learnable synthetic set shaped like MNIST but smaller: class c lights up
// every C-th pixel from c, over sparse noise. Sizes leave ragged last batches.
struct Synthetic {
    TensorDataset train, valid;
};

Synthetic synthetic(size_t D = 200, size_t C = 10, size_t n_train = 1000, size_t n_valid = 300) {
    Rng rng(11);
    auto make = [&](size_t n, const char* name) {
        xt::xtensor<uint8_t, 2> x = xt::zeros<uint8_t>({n, D});
        xt::xtensor<uint8_t, 1> y = xt::zeros<uint8_t>({n});
        for (size_t i = 0; i < n; ++i) {
            y(i) = uint8_t(rng.below(uint32_t(C)));
            for (size_t k = 0; k < D; ++k)
                x(i, k) = k % C == y(i) ? uint8_t(150 + rng.below(100)) : rng.below(4) == 0 ? uint8_t(rng.below(60)) : 0;
        }
        return TensorDataset(std::move(x), std::move(y), C, 1.f / 255.f, name);
    };
    return {make(n_train, "synthetic train"), make(n_valid, "synthetic valid")};
}

struct Run {
    std::vector<EpochRecord> history;
    xt::xarray<float> w0, w, b;
    std::vector<Progress> reports;
};

using FitFn = std::function<std::vector<EpochRecord>(int, MnistLogistic&, const SgdOptions&, DataLoader&, DataLoader&,
                                                     const FitOptions&)>;

// The CPU fit with the given kernel set (the kernels switched back afterwards).
FitFn cpu_fit(const kernels::KernelSet& k) {
    return [&k](int epochs, MnistLogistic& m, const SgdOptions& o, DataLoader& tr, DataLoader& va,
                const FitOptions& f) {
        const kernels::KernelSet& before = active_kernels();
        set_kernels(k);
        SGD opt(m.parameters(), o);
        try {
            auto h = fit(epochs, m, opt, tr, va, f);
            set_kernels(before);
            return h;
        } catch (...) {
            set_kernels(before);
            throw;
        }
    };
}

// The runtime's TrainingSession with the CUDA executor.
FitFn gpu_fit() {
    return [](int epochs, MnistLogistic& m, const SgdOptions& o, DataLoader& tr, DataLoader& va, const FitOptions& f) {
        SGD opt(m.parameters(), o);
        return cuda::fit(epochs, m, opt, tr, va, f);
    };
}

// Two epochs of batch 64 (16 batches each, the last of 40 rows), shuffled.
Run train_run(const FitFn& fit_fn, const SgdOptions& o, const Synthetic& data, int epochs = 2, double lr_gamma = 1.0) {
    MnistLogistic model(data.train.features(), data.train.classes(), 7);
    DataLoader train(data.train, 64, true, 3), valid(data.valid, 128, false);
    Run r;
    r.w0 = model.lin.weight.value;
    FitOptions f;
    f.lr_gamma = lr_gamma;
    f.progress = [&](const Progress& p) { r.reports.push_back(p); };
    r.history = fit_fn(epochs, model, o, train, valid, f);
    r.w = model.lin.weight.value;
    r.b = model.lin.bias.value;
    return r;
}

double max_abs_diff(const xt::xarray<float>& a, const xt::xarray<float>& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.flat(i)) - double(b.flat(i))));
    return m;
}

// 32 SGD steps on this data (48 in the three-epoch runs). Each step's gradient
// agrees to about 4·sqrt(64)·eps ≈ 4e-6 (its entries are sums of 64 terms of
// size <= 1/64), so one step moves the two runs apart by <= lr·4e-6. The loss's
// curvature is at most ||x||²/2 ≈ 6.5 here (20 bright pixels and sparse faint
// ones per row), so lr·6.5 = 0.65 (0.33 with momentum 0.9, stable below 2·1.9;
// StepLR only lowers lr) keeps SGD contracting: differences do not grow, and 32
// steps stay below ~1.3e-5 (48 below ~2e-5).
// 1e-4 leaves headroom (scalar vs AVX-512 measure 1.2e-7); the weights move by
// over 100 times it (checked), so a run that trains differently fails.
constexpr double kWeightTol = 1e-4;

void expect_same_training(const Run& a, const Run& b) {
    const double moved = max_abs_diff(a.w, a.w0);
    INFO("weights moved by up to " << moved);
    CHECK(moved > 100 * kWeightTol);
    CHECK(max_abs_diff(a.w, b.w) <= kWeightTol);
    CHECK(max_abs_diff(a.b, b.b) <= kWeightTol);
    REQUIRE(a.history.size() == b.history.size());
    for (size_t e = 0; e < a.history.size(); ++e) {
        CHECK(b.history[e].train_loss == doctest::Approx(a.history[e].train_loss).epsilon(1e-4));
        CHECK(b.history[e].valid_loss == doctest::Approx(a.history[e].valid_loss).epsilon(1e-4));
        CHECK(std::abs(b.history[e].valid_acc - a.history[e].valid_acc) <= 2.0 / 300);  // a near-tie may flip
    }
    // The same progress reports: every batch in order, then each epoch's end.
    REQUIRE(a.reports.size() == b.reports.size());
    for (size_t i = 0; i < a.reports.size(); ++i) {
        const Progress &p = a.reports[i], &q = b.reports[i];
        CHECK(q.phase == p.phase);
        CHECK(q.epoch == p.epoch);
        CHECK(q.batch == p.batch);
        CHECK(q.batches == p.batches);
        CHECK(q.samples == p.samples);
        CHECK(q.batch_loss == doctest::Approx(p.batch_loss).epsilon(1e-3));
    }
}

const SgdOptions kPlain = [] { SgdOptions o; o.lr = 0.1f; return o; }();
const SgdOptions kNesterov = [] {
    SgdOptions o;
    o.lr = 0.05f, o.momentum = 0.9f, o.nesterov = true, o.weight_decay = 1e-3f;
    return o;
}();

// The CPU fit or cuda::fit (the same TrainingSession, with the CUDA executor).
std::vector<EpochRecord> fit_on(bool gpu, int epochs, MnistLogistic& m, SGD& opt, DataLoader& train,
                                DataLoader& valid, const FitOptions& f) {
    return gpu ? cuda::fit(epochs, m, opt, train, valid, f) : fit(epochs, m, opt, train, valid, f);
}

// Three epochs with StepLR (gamma 0.5) and Nesterov momentum, stopped by
// stop_requested (as Ctrl-C stops `sgdx train`) after `stop_after` batches, with
// checkpoints every 5 batches and the one the stop writes, then resumed from the
// file with a new model, SGD and loaders (as a new process does): the weights,
// bias, momentum and history equal the uninterrupted run's, bit for bit. On the GPU
// too: cuBLAS's FP32 sgemm and the kernels (fixed-order reductions, no atomics)
// give the same bits for the same inputs on one GPU, and the executor moves the
// weights and momentum between host and device exactly.
void expect_resume_equals_uninterrupted(bool gpu) {
    const Synthetic data = synthetic();
    FitOptions base;
    base.lr_gamma = 0.5;
    MnistLogistic whole(200, 10, 7);
    SGD whole_opt(whole.parameters(), kNesterov);
    std::vector<EpochRecord> want;
    {
        DataLoader t(data.train, 64, true, 3), v(data.valid, 128);
        want = fit_on(gpu, 3, whole, whole_opt, t, v, base);
    }
    const std::string path = temp_path(gpu ? "cuda-resume.ckpt" : "cpu-resume.ckpt");
    for (size_t stop_after : {size_t(7), size_t(16), size_t(21)}) {  // mid-epoch, at epoch 1's end, in epoch 2
        CAPTURE(stop_after);
        MnistLogistic first(200, 10, 7);
        SGD first_opt(first.parameters(), kNesterov);
        DataLoader t1(data.train, 64, true, 3), v1(data.valid, 128);
        size_t batches = 0;
        FitOptions f1 = base;
        f1.checkpoint_every = 5;  // not a divisor of the stops: the stop writes its own
        f1.checkpoint = [&](const TrainingState& st) { save_checkpoint(path, first, first_opt, st, {}); };
        f1.stop_requested = [&] { return ++batches == stop_after; };
        CHECK_THROWS_AS(fit_on(gpu, 3, first, first_opt, t1, v1, f1), StopRequested);

        MnistLogistic second(200, 10, 99);
        SGD second_opt(second.parameters(), kNesterov);
        DataLoader t2(data.train, 64, true, 555), v2(data.valid, 128);
        TrainingState st = restore_checkpoint(read_safetensors(path), path, second, second_opt);
        CHECK(size_t(st.epoch - 1) * t1.size() + st.next_batch == stop_after);
        FitOptions f2 = base;
        f2.resume = &st;
        const auto got = fit_on(gpu, 3, second, second_opt, t2, v2, f2);
        INFO("max weight difference to the uninterrupted run: "
             << max_abs_diff(second.lin.weight.value, whole.lin.weight.value));
        CHECK(second.lin.weight.value == whole.lin.weight.value);
        CHECK(second.lin.bias.value == whole.lin.bias.value);
        CHECK(second_opt.has_momentum());
        CHECK(second_opt.momentum_buffers() == whole_opt.momentum_buffers());
        REQUIRE(got.size() == want.size());
        for (size_t e = 0; e < want.size(); ++e) {
            CHECK(got[e].train_loss == want[e].train_loss);
            CHECK(got[e].valid_loss == want[e].valid_loss);
        }
    }
}

// Two ways to diverge in the first epoch, each must throw DivergenceError at
// the batch whose loss is NaN and leave the starting weights in the model:
// an infinite weight (batch 1), and a weight decay that overflows the weights
// to ±inf in the first step (batch 2: on the GPU that loss arrives through the
// lagged read-back).
void expect_divergences(const FitFn& f) {
    const Synthetic data = synthetic();
    SgdOptions wild = kPlain;
    wild.lr = 100.f, wild.weight_decay = 1e38f;
    for (const bool inf_weight : {true, false}) {
        CAPTURE(inf_weight);
        MnistLogistic model(200, 10, 7);
        if (inf_weight) model.lin.weight.value(3, 7) = std::numeric_limits<float>::infinity();
        const xt::xarray<float> w0 = model.lin.weight.value;
        DataLoader train(data.train, 64, true, 3), valid(data.valid, 128);
        try {
            f(2, model, inf_weight ? kPlain : wild, train, valid, {});
            FAIL("no DivergenceError");
        } catch (const DivergenceError& e) {
            CHECK(e.epoch() == 1);
            CHECK(e.batch() == (inf_weight ? 1u : 2u));
        }
        REQUIRE(model.lin.weight.value.size() == w0.size());
        CHECK(std::memcmp(model.lin.weight.value.data(), w0.data(), w0.size() * sizeof(float)) == 0);
    }
}

}  // namespace

// ---- runs everywhere -------------------------------------------------------------

TEST_CASE("available() and describe() agree, and without a GPU every entry point says why") {
    std::string why;
    const bool ok = cuda::available(&why);
    const std::string d = cuda::describe();
    if (ok) {
        CHECK(d.find("sm_") != std::string::npos);
        return;
    }
    MESSAGE("this machine has no usable GPU: " << why);
    CHECK(!why.empty());
    CHECK(d == "no device: " + why);
    Synthetic data = synthetic(20, 10, 100, 50);
    MnistLogistic model(20, 10);
    SGD opt(model.parameters(), kPlain);
    DataLoader train(data.train, 16), valid(data.valid, 32);
    CHECK_THROWS_WITH_AS(cuda::fit(1, model, opt, train, valid), doctest::Contains("no usable CUDA device"), Error);
    CHECK_THROWS_WITH_AS(cuda::Executor(model, opt), doctest::Contains("no usable CUDA device"), Error);
    CHECK_THROWS_WITH_AS(cuda::evaluate(model, valid), doctest::Contains("no usable CUDA device"), Error);
    uint8_t x = 1;
    float y = 0;
    CHECK_THROWS_AS(cuda::kernel_set().scale_u8(&x, 1.f, &y, 1), Error);
    CHECK_THROWS_AS(cuda::bench_gemm(64, 1), Error);
}

TEST_CASE("cuda::fit rejects bad input before it needs the device") {
    Synthetic data = synthetic(20, 10, 100, 50);
    DataLoader train(data.train, 16), valid(data.valid, 32);
    MnistLogistic model(20, 10), narrow(19, 10), few_classes(20, 5);
    SGD opt(model.parameters(), kPlain), narrow_opt(narrow.parameters(), kPlain),
        few_opt(few_classes.parameters(), kPlain);
    CHECK_THROWS_WITH_AS(cuda::fit(-1, model, opt, train, valid), doctest::Contains("epochs"), Error);
    CHECK_THROWS_WITH_AS(cuda::fit(1, narrow, narrow_opt, train, valid), doctest::Contains("features per row"), Error);
    CHECK_THROWS_WITH_AS(cuda::fit(1, few_classes, few_opt, train, valid), doctest::Contains("classes"), Error);
    CHECK_THROWS_WITH_AS(cuda::evaluate(narrow, valid), doctest::Contains("features per row"), Error);
}

TEST_CASE("the comparison harness rejects a ragged-tail bug and accepts the SIMD kernels") {
    const Report broken = compare_sets(tail_dropping_set(), 5, 12);
    for (const char* k : {"scale_u8", "linear_forward", "linear_backward", "softmax_xent", "sgd_update"}) {
        INFO("kernel " << k);
        CHECK(count(broken, k) > 0);
    }
    const Report simd = compare_sets(kernels::best(), 5, 12);
    INFO("kernel set " << std::string(kernels::best().name) << "\n" << describe(simd));
    CHECK(simd.empty());
}

TEST_CASE("the cuBLAS calls' operand layout gives the reference's products (on a CPU sgemm)") {
    const Report r = compare_sets(blas_mapping_set(), 7, 40);
    INFO(describe(r));
    CHECK(r.empty());
    // And a transposition mistake is caught: the weight's leading dimension swapped.
    std::vector<float> x{1, 2, 3, 4, 5, 6}, w{1, 0, 0, 0, 1, 0}, y(4, 0.f);  // x: 2×3, w: 2×3
    cuda::Gemm g = cuda::forward_gemm(x.data(), w.data(), y.data(), 2, 3, 2);
    cuda::sgemm_reference(g, 1.f, 0.f);
    CHECK(y == std::vector<float>{1, 2, 4, 5});  // y = x·wᵀ picks columns 0 and 1
    g.trans_a = !g.trans_a;
    g.lda = 2;
    cuda::sgemm_reference(g, 1.f, 0.f);
    CHECK(y != std::vector<float>{1, 2, 4, 5});
}

TEST_CASE("the training comparison holds between the scalar and SIMD CPU kernels") {
    const Synthetic data = synthetic();
    for (const SgdOptions& o : {kPlain, kNesterov}) {
        CAPTURE(o.momentum);
        const Run a = train_run(cpu_fit(kernels::reference()), o, data);
        const Run b = train_run(cpu_fit(kernels::best()), o, data);
        MESSAGE("max weight difference scalar vs " << std::string(kernels::best().name) << ": " << max_abs_diff(a.w, b.w));
        expect_same_training(a, b);
    }
}

TEST_CASE("the divergence cases fail where expected on the CPU") { expect_divergences(cpu_fit(kernels::reference())); }

TEST_CASE("the StepLR comparison would notice an ignored schedule: gamma 0.5 trains elsewhere than a constant lr") {
    const Synthetic data = synthetic();
    for (const SgdOptions& o : {kPlain, kNesterov}) {
        CAPTURE(o.momentum);
        const Run stepped = train_run(cpu_fit(kernels::reference()), o, data, 3, 0.5);
        const Run constant = train_run(cpu_fit(kernels::reference()), o, data, 3, 1.0);
        MESSAGE("max weight difference gamma 0.5 vs 1: " << max_abs_diff(stepped.w, constant.w));
        CHECK(max_abs_diff(stepped.w, constant.w) > 100 * kWeightTol);
    }
}

TEST_CASE("the stop-and-resume harness: on the CPU a resumed run equals the uninterrupted one") {
    expect_resume_equals_uninterrupted(false);
}

// ---- needs a GPU -------------------------------------------------------------------

TEST_CASE("CUDA kernels match the reference on random ragged shapes") {
    if (!have_gpu()) return;
    const Report r = compare_sets(cuda::kernel_set(), 42, 40);
    INFO(describe(r));
    CHECK(r.empty());
}

TEST_CASE("cuda::fit trains as the CPU fit: weights, losses and progress") {
    if (!have_gpu()) return;
    const Synthetic data = synthetic();
    for (const SgdOptions& o : {kPlain, kNesterov}) {
        CAPTURE(o.momentum);
        const Run cpu = train_run(cpu_fit(kernels::reference()), o, data);
        const Run gpu = train_run(gpu_fit(), o, data);
        MESSAGE("max weight difference CPU vs GPU: " << max_abs_diff(cpu.w, gpu.w));
        expect_same_training(cpu, gpu);
    }
}

TEST_CASE("cuda::fit follows StepLR (lr_gamma 0.5) as the CPU fit does") {
    if (!have_gpu()) return;
    const Synthetic data = synthetic();
    for (const SgdOptions& o : {kPlain, kNesterov}) {
        CAPTURE(o.momentum);
        const Run cpu = train_run(cpu_fit(kernels::reference()), o, data, 3, 0.5);
        const Run gpu = train_run(gpu_fit(), o, data, 3, 0.5);
        MESSAGE("max weight difference CPU vs GPU, StepLR: " << max_abs_diff(cpu.w, gpu.w));
        expect_same_training(cpu, gpu);
    }
}

TEST_CASE("cuda::fit stopped at a checkpoint and resumed equals the uninterrupted GPU run") {
    if (!have_gpu()) return;
    expect_resume_equals_uninterrupted(true);
}

TEST_CASE("cuda::Executor reports each batch two submits later, in order, and the rest on wait") {
    if (!have_gpu()) return;
    const Synthetic data = synthetic();
    MnistLogistic model(200, 10, 7), ref(200, 10, 7);
    SGD opt(model.parameters(), kPlain), ref_opt(ref.parameters(), kPlain);
    DataLoader train(data.train, 64, true, 3), valid(data.valid, 128);
    cuda::Executor exec(model, opt);
    exec.prepare(train, valid);
    train.start_epoch();
    Workspace ws;
    std::vector<BatchLoss> got, want;
    for (size_t i = 0; i < train.size(); ++i) {
        const Batch& b = train.batch(i);
        want.push_back(loss_batch(ref, b, ws, &ref_opt));
        exec.submit(b, i);
        exec.collect(false, got);
        CHECK(got.size() == (i >= 2 ? i - 1 : 0));
    }
    exec.collect(true, got);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i].count == want[i].count);
        CHECK(got[i].loss == doctest::Approx(want[i].loss).epsilon(1e-3));
        CHECK(std::abs(double(got[i].correct) - double(want[i].correct)) <= 1.0);  // a near-tie may flip
    }
    exec.to_host();  // the device's weights, in the host model
    CHECK(max_abs_diff(model.lin.weight.value, ref.lin.weight.value) <= kWeightTol);

    // The momentum goes up and comes back as the host SGD holds it: weight then bias.
    SGD momentum_opt(model.parameters(), kNesterov);
    Rng rng(3);
    for (auto& buf : momentum_opt.momentum_buffers())
        for (auto& v : buf) v = rng.uniform(-1.f, 1.f);
    momentum_opt.has_momentum() = true;
    const auto sent = momentum_opt.momentum_buffers();
    cuda::Executor with_momentum(model, momentum_opt);  // uploads them
    for (auto& buf : momentum_opt.momentum_buffers()) buf.fill(0.f);
    momentum_opt.has_momentum() = false;
    with_momentum.to_host();
    CHECK(momentum_opt.momentum_buffers() == sent);
    CHECK(momentum_opt.has_momentum());
}

TEST_CASE("cuda::evaluate gives the CPU evaluate's loss and accuracy") {
    if (!have_gpu()) return;
    const Synthetic data = synthetic();
    MnistLogistic model(200, 10, 5);
    DataLoader valid(data.valid, 128);
    Workspace ws;
    const EvalResult want = sgdx::evaluate(model, valid, ws);
    const EvalResult got = cuda::evaluate(model, valid);
    CHECK(got.count == want.count);
    CHECK(got.loss == doctest::Approx(want.loss).epsilon(1e-5));
    CHECK(std::abs(got.accuracy - want.accuracy) * double(want.count) <= 1.0);
}

TEST_CASE("cuda::fit throws DivergenceError where the CPU does and restores the weights") {
    if (!have_gpu()) return;
    expect_divergences(gpu_fit());
}

TEST_CASE("cuda::fit leaves the weights trained so far when progress throws") {
    if (!have_gpu()) return;
    const Synthetic data = synthetic();
    MnistLogistic model(200, 10, 7);
    const xt::xarray<float> w0 = model.lin.weight.value;
    DataLoader train(data.train, 64, true, 3), valid(data.valid, 128);
    struct Stop {};
    FitOptions f;
    f.progress = [](const Progress& p) {
        if (p.phase == Progress::kBatch && p.batch == 5) throw Stop{};
    };
    SGD opt(model.parameters(), kPlain);
    CHECK_THROWS_AS(cuda::fit(2, model, opt, train, valid, f), Stop);
    CHECK(all_finite(model));
    CHECK(max_abs_diff(model.lin.weight.value, w0) > 0.0);
}
