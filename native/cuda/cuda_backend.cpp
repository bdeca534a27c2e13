// Host side of the CUDA backend: device discovery, cuBLAS products, the
// batch pipeline and fit/evaluate. Compiled by the host compiler; the kernels
// live in device_kernels.cu.
#include "cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "device_kernels.hpp"
#include "gemm_args.hpp"
#include "runtime/error.hpp"

namespace sgdx::cuda {
namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e) + " (" + std::to_string(int(e)) + ")");
}

void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS)
        throw Error(std::string("cuBLAS ") + what + ": " + cublasGetStatusString(s) + " (" + std::to_string(int(s)) + ")");
}

// The preset compiles sm_80 and sm_90 (with PTX, which newer GPUs JIT): older
// GPUs would fail at the first kernel launch, so they count as unusable.
constexpr int kMinMajor = 8;

bool probe(std::string* why, cudaDeviceProp* prop) {
    auto fail = [&](std::string reason) {
        if (why) *why = std::move(reason);
        return false;
    };
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();  // clear it: the runtime reports it once more otherwise
        return fail(std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e) + " (" + std::to_string(int(e)) +
                    "), 0 devices");
    }
    if (n == 0) return fail("cudaGetDeviceCount: 0 devices");
    cudaDeviceProp p{};
    e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return fail(std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e));
    }
    if (p.major < kMinMajor)
        return fail(std::string(p.name) + " has compute capability " + std::to_string(p.major) + "." +
                    std::to_string(p.minor) + "; this build runs on 8.0 or newer (CMAKE_CUDA_ARCHITECTURES 80;90)");
    if (prop) *prop = p;
    return true;
}

// Device (or pinned host) memory, freed on scope exit.
template <class T, bool Pinned>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(size_t n) : n_(n) {
        if (n == 0) return;
        void* p = nullptr;
        check(Pinned ? cudaMallocHost(&p, n * sizeof(T)) : cudaMalloc(&p, n * sizeof(T)),
              Pinned ? "cudaMallocHost" : "cudaMalloc");
        p_ = static_cast<T*>(p);
    }
    Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
    Buffer& operator=(Buffer&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        return *this;
    }
    ~Buffer() {
        if (p_) Pinned ? cudaFreeHost(p_) : cudaFree(p_);
    }
    T* get() const { return p_; }
    size_t size() const { return n_; }

private:
    T* p_ = nullptr;
    size_t n_ = 0;
};
template <class T> using DeviceArray = Buffer<T, false>;
template <class T> using PinnedArray = Buffer<T, true>;

class Event {
public:
    explicit Event(bool timing = false) {
        check(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    ~Event() { cudaEventDestroy(e_); }
    operator cudaEvent_t() const { return e_; }

private:
    cudaEvent_t e_{};
};

// One per process, created on first use and never destroyed: tearing CUDA
// objects down from a static destructor races the runtime's own shutdown.
struct Gpu {
    cublasHandle_t blas{};
    cudaStream_t compute{}, copy{};  // both synchronise with the legacy default stream
};

Gpu& gpu() {
    static Gpu* g = [] {
        std::string why;
        if (!probe(&why, nullptr)) throw Error("no usable CUDA device: " + why);
        check(cudaSetDevice(0), "cudaSetDevice");
        auto* g = new Gpu;
        check(cudaStreamCreate(&g->compute), "cudaStreamCreate");
        check(cudaStreamCreate(&g->copy), "cudaStreamCreate");
        check(cublasCreate(&g->blas), "cublasCreate");
        check(cublasSetStream(g->blas, g->compute), "cublasSetStream");
        // Plain FP32 products (no TF32), so results match the CPU's within float rounding.
        check(cublasSetMathMode(g->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        return g;
    }();
    return *g;
}

void sgemm(Gpu& g, const Gemm& p, float alpha, float beta, const char* what) {
    check(cublasSgemm(g.blas, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, p.m, p.n,
                      p.k, &alpha, p.a, p.lda, p.b, p.ldb, &beta, p.c, p.ldc),
          what);
}

// x: (B, D), w: (C, D), b: (C) -> y: (B, C) = x·wᵀ + b: the bias rows, then
// the product added onto them.
void forward(Gpu& g, const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C) {
    dev::broadcast_rows(b, y, B, C, g.compute);
    if (B == 0 || C == 0 || D == 0) return;
    sgemm(g, forward_gemm(x, w, y, B, D, C), 1.f, 1.f, "sgemm (forward)");
}

// x: (B, D), dy: (B, C) -> dw: (C, D) (+)= dyᵀ·x, db: (C) (+)= Σ_b dy.
void backward(Gpu& g, const float* x, const float* dy, float* dw, float* db, size_t B, size_t D, size_t C,
              bool accumulate) {
    if (D != 0 && C != 0) {
        if (B != 0)
            sgemm(g, weight_grad_gemm(x, dy, dw, B, D, C), 1.f, accumulate ? 1.f : 0.f, "sgemm (weight gradient)");
        else if (!accumulate)
            check(cudaMemsetAsync(dw, 0, C * D * sizeof(float), g.compute), "cudaMemsetAsync");
    }
    if (db) dev::column_sum(dy, db, B, C, accumulate, g.compute);
}

template <class T>
DeviceArray<T> to_device(const T* host, size_t n) {
    DeviceArray<T> d(n);
    if (n) check(cudaMemcpy(d.get(), host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
    return d;
}

template <class T>
void to_host(T* host, const T* device, size_t n) {
    check(cudaStreamSynchronize(gpu().compute), "cudaStreamSynchronize");
    if (n) check(cudaMemcpy(host, device, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

size_t rows_max(const DataLoader& loader) {
    return std::min(loader.batch_size(), loader.dataset().size());
}

size_t rows_of(const DataLoader& loader, size_t batch) {
    return std::min(loader.batch_size(), loader.dataset().size() - batch * loader.batch_size());
}

// A batch on the device: int32 labels then uint8 pixels, in one copy.
struct DeviceBatch {
    const int32_t* labels;
    const uint8_t* pixels;
    size_t rows;
    float scale;
};

// Batches go up through two pinned buffers: while the GPU computes on one, the
// host gathers the next into the other and the copy stream uploads it.
class Uploader {
public:
    Uploader(Gpu& g, size_t max_rows, size_t features) : g_(g), d_(features) {
        const size_t bytes = label_bytes(max_rows) + max_rows * features;
        for (int s = 0; s < 2; ++s) {
            host_[s] = PinnedArray<uint8_t>(bytes);
            dev_[s] = DeviceArray<uint8_t>(bytes);
        }
    }

    // Gathers batch i of the loader's current order and starts its upload; the
    // compute stream will wait for it. Blocks until the batch that last used
    // this buffer (two uploads ago) has finished on the GPU.
    DeviceBatch upload(const DataLoader& loader, size_t i) {
        const int s = next_;
        next_ ^= 1;
        if (in_use_[s]) check(cudaEventSynchronize(consumed_[s]), "cudaEventSynchronize");
        const TensorDataset& ds = loader.dataset();
        const size_t rows = rows_of(loader, i), first = i * loader.batch_size();
        uint8_t* h = host_[s].get();
        auto* labels = reinterpret_cast<int32_t*>(h);
        uint8_t* pixels = h + label_bytes(rows);
        for (size_t r = 0; r < rows; ++r) {
            const uint32_t src = loader.order()[first + r];
            std::memcpy(pixels + r * d_, ds.image(src), d_);
            labels[r] = ds.label(src);
        }
        const size_t bytes = label_bytes(rows) + rows * d_;
        check(cudaMemcpyAsync(dev_[s].get(), h, bytes, cudaMemcpyHostToDevice, g_.copy), "cudaMemcpyAsync (batch)");
        check(cudaEventRecord(uploaded_[s], g_.copy), "cudaEventRecord");
        check(cudaStreamWaitEvent(g_.compute, uploaded_[s], 0), "cudaStreamWaitEvent");
        current_ = s;
        const uint8_t* d = dev_[s].get();
        return {reinterpret_cast<const int32_t*>(d), d + label_bytes(rows), rows, ds.scale()};
    }

    // Marks the work enqueued on the compute stream since upload() as the last
    // reader of that buffer.
    void release() {
        check(cudaEventRecord(consumed_[current_], g_.compute), "cudaEventRecord");
        in_use_[current_] = true;
    }

private:
    static size_t label_bytes(size_t rows) { return (rows * sizeof(int32_t) + 255) / 256 * 256; }
    Gpu& g_;
    size_t d_;
    PinnedArray<uint8_t> host_[2];
    DeviceArray<uint8_t> dev_[2];
    Event uploaded_[2], consumed_[2];
    bool in_use_[2] = {false, false};
    int next_ = 0, current_ = 0;
};

// The model's parameters, gradients and momentum on the device, packed as
// [weight (C×D) | bias (C)] so one SGD launch updates both.
class Trainer {
public:
    Trainer(Gpu& g, MnistLogistic& model, const SgdOptions& o, size_t max_rows, size_t max_batches)
        : g_(g),
          o_(o),
          D_(model.in_features()),
          C_(model.out_features()),
          params_(C_ * D_ + C_),
          grads_(C_ * D_ + C_),
          momentum_(o.momentum != 0.f ? C_ * D_ + C_ : 0),
          x_(max_rows * D_),
          logits_(max_rows * C_),
          partial_(dev::softmax_blocks(max_rows)),
          results_(max_batches + 1),
          results_host_(max_batches + 1),
          up_(g, max_rows, D_) {
        upload(model);
    }
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;
    ~Trainer() { drain(); }  // nothing may still read or write the buffers freed next

    void upload(MnistLogistic& model) {
        check(cudaStreamSynchronize(g_.compute), "cudaStreamSynchronize");
        check(cudaMemcpy(params_.get(), model.lin.weight.value.data(), C_ * D_ * sizeof(float), cudaMemcpyHostToDevice),
              "cudaMemcpy (weights)");
        check(cudaMemcpy(params_.get() + C_ * D_, model.lin.bias.value.data(), C_ * sizeof(float),
                         cudaMemcpyHostToDevice),
              "cudaMemcpy (bias)");
    }

    void download(MnistLogistic& model) {
        to_host(model.lin.weight.value.data(), params_.get(), C_ * D_);
        to_host(model.lin.bias.value.data(), params_.get() + C_ * D_, C_);
    }

    void drain() noexcept {
        cudaStreamSynchronize(g_.copy);
        cudaStreamSynchronize(g_.compute);
    }

    // One pass over the loader as the CPU train_epoch, progress included.
    double train_epoch(DataLoader& train, int epoch, int epochs, const ProgressFn& progress) {
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        train.start_epoch();
        const size_t n = train.size();
        Progress p;
        p.epoch = epoch;
        p.epochs = epochs;
        p.batches = n;
        double loss_sum = 0;
        size_t reported = 0;
        // Batches [reported, end) have finished on the GPU: their losses are on the host.
        auto report_until = [&](size_t end) {
            for (; reported < end; ++reported) {
                const size_t rows = rows_of(train, reported);
                const float loss = float(results_host_.get()[reported].loss / double(rows));
                if (!std::isfinite(loss))
                    throw loss_divergence(loss, epoch, reported + 1, n);
                loss_sum += double(loss) * double(rows);
                p.batch = reported + 1;
                p.samples += rows;
                p.batch_loss = loss;
                p.train_loss = loss_sum / double(p.samples);
                if (progress) {
                    p.seconds = std::chrono::duration<double>(clock::now() - start).count();
                    progress(p);
                }
            }
        };
        for (size_t i = 0; i < n; ++i) {
            const DeviceBatch b = up_.upload(train, i);  // returns once batch i-2 is done
            if (i >= 2) report_until(i - 1);
            step(b, i);
        }
        check(cudaStreamSynchronize(g_.compute), "cudaStreamSynchronize");
        report_until(n);
        return p.samples ? loss_sum / double(p.samples) : 0.0;
    }

    // Every batch of the loader without gradients; one read-back at the end.
    EvalResult evaluate(DataLoader& loader) {
        loader.start_epoch();  // as the CPU's range-for over the loader
        dev::LossCount* total = results_.get() + results_.size() - 1;
        check(cudaMemsetAsync(total, 0, sizeof *total, g_.compute), "cudaMemsetAsync");
        size_t count = 0;
        for (size_t i = 0; i < loader.size(); ++i) {
            const DeviceBatch b = up_.upload(loader, i);
            forward_batch(b);
            dev::softmax_xent(logits_.get(), b.labels, nullptr, 1.f, b.rows, C_, partial_.get(), g_.compute);
            dev::sum_partials(partial_.get(), dev::softmax_blocks(b.rows), total, true, g_.compute);
            up_.release();
            count += b.rows;
        }
        dev::LossCount r{};
        to_host(&r, total, 1);
        return {r.loss / double(count), double(r.hits) / double(count), count};
    }

private:
    void forward_batch(const DeviceBatch& b) {
        dev::scale_u8(b.pixels, b.scale, x_.get(), b.rows * D_, g_.compute);
        forward(g_, x_.get(), params_.get(), params_.get() + C_ * D_, logits_.get(), b.rows, D_, C_);
    }

    // Forward, loss and its gradient (in place of the logits), the loss's trip to
    // the host, gradients (overwritten: no zero_grad needed) and the SGD update.
    void step(const DeviceBatch& b, size_t i) {
        forward_batch(b);
        float* dlogits = logits_.get();
        dev::softmax_xent(logits_.get(), b.labels, dlogits, 1.f / float(b.rows), b.rows, C_, partial_.get(),
                          g_.compute);
        dev::sum_partials(partial_.get(), dev::softmax_blocks(b.rows), results_.get() + i, false, g_.compute);
        check(cudaMemcpyAsync(results_host_.get() + i, results_.get() + i, sizeof(dev::LossCount),
                              cudaMemcpyDeviceToHost, g_.compute),
              "cudaMemcpyAsync (loss)");
        backward(g_, x_.get(), dlogits, grads_.get(), grads_.get() + C_ * D_, b.rows, D_, C_, false);
        dev::sgd_update(params_.get(), grads_.get(), momentum_.get(), params_.size(), o_.lr, o_.momentum,
                        o_.dampening, o_.weight_decay, o_.nesterov, first_, g_.compute);
        first_ = false;
        up_.release();
    }

    Gpu& g_;
    SgdOptions o_;
    size_t D_, C_;
    DeviceArray<float> params_, grads_, momentum_, x_, logits_;
    DeviceArray<dev::LossCount> partial_, results_;  // results_: one per batch, then the evaluation total
    PinnedArray<dev::LossCount> results_host_;
    Uploader up_;
    bool first_ = true;  // the momentum buffer holds no value yet
};

void check_fits(const MnistLogistic& model, const DataLoader& loader, const char* what) {
    const TensorDataset& ds = loader.dataset();
    if (ds.features() != model.in_features())
        throw Error(std::string(what) + " set has " + std::to_string(ds.features()) +
                    " features per row, the model expects " + std::to_string(model.in_features()));
    if (ds.classes() > model.out_features())
        throw Error(std::string(what) + " set has " + std::to_string(ds.classes()) + " classes, the model " +
                    std::to_string(model.out_features()));
}

// ---- the kernels behind kernels.hpp's host-pointer interface ----------------

void k_scale_u8(const uint8_t* x, float scale, float* y, size_t n) {
    Gpu& g = gpu();
    auto dx = to_device(x, n);
    DeviceArray<float> dy(n);
    dev::scale_u8(dx.get(), scale, dy.get(), n, g.compute);
    to_host(y, dy.get(), n);
}

void k_linear_forward(const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C) {
    Gpu& g = gpu();
    auto dx = to_device(x, B * D), dw = to_device(w, C * D), db = to_device(b, C);
    DeviceArray<float> dy(B * C);
    forward(g, dx.get(), dw.get(), db.get(), dy.get(), B, D, C);
    to_host(y, dy.get(), B * C);
}

void k_linear_backward(const float* x, const float* dy, float* dw, float* db, size_t B, size_t D, size_t C) {
    Gpu& g = gpu();
    auto d_x = to_device(x, B * D), d_dy = to_device(dy, B * C), d_dw = to_device(dw, C * D);
    DeviceArray<float> d_db = db ? to_device(db, C) : DeviceArray<float>();
    backward(g, d_x.get(), d_dy.get(), d_dw.get(), db ? d_db.get() : nullptr, B, D, C, true);
    to_host(dw, d_dw.get(), C * D);
    if (db) to_host(db, d_db.get(), C);
}

double k_softmax_xent(const float* logits, const int32_t* target, float* dlogits, float grad_scale, size_t B,
                      size_t C, size_t* correct) {
    if (B == 0) {
        if (correct) *correct = 0;
        return 0.0;
    }
    Gpu& g = gpu();
    auto d_logits = to_device(logits, B * C);
    auto d_target = to_device(target, B);
    DeviceArray<float> d_dl(dlogits ? B * C : 0);
    DeviceArray<dev::LossCount> partial(dev::softmax_blocks(B)), total(1);
    dev::softmax_xent(d_logits.get(), d_target.get(), dlogits ? d_dl.get() : nullptr, grad_scale, B, C,
                      partial.get(), g.compute);
    dev::sum_partials(partial.get(), partial.size(), total.get(), false, g.compute);
    dev::LossCount r{};
    to_host(&r, total.get(), 1);
    if (dlogits) to_host(dlogits, d_dl.get(), B * C);
    if (correct) *correct = size_t(r.hits);
    return r.loss;
}

void k_sgd_update(float* p, const float* grad, float* buf, size_t n, float lr, float momentum, float dampening,
                  float weight_decay, bool nesterov, bool first) {
    Gpu& g = gpu();
    auto d_p = to_device(p, n), d_grad = to_device(grad, n);
    const bool with_buf = momentum != 0.f;
    DeviceArray<float> d_buf = with_buf ? to_device(buf, n) : DeviceArray<float>();
    dev::sgd_update(d_p.get(), d_grad.get(), d_buf.get(), n, lr, momentum, dampening, weight_decay, nesterov, first,
                    g.compute);
    to_host(p, d_p.get(), n);
    if (with_buf) to_host(buf, d_buf.get(), n);
}

}  // namespace

bool available(std::string* why) { return probe(why, nullptr); }

std::string describe() {
    std::string why;
    cudaDeviceProp p{};
    if (!probe(&why, &p)) return "no device: " + why;
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s, sm_%d%d, %d SMs, %.1f GiB, CUDA runtime %d.%d, driver %d.%d", p.name, p.major,
                  p.minor, p.multiProcessorCount, double(p.totalGlobalMem) / double(1ull << 30), runtime / 1000,
                  runtime % 1000 / 10, driver / 1000, driver % 1000 / 10);
    return buf;
}

std::vector<EpochRecord> fit(int epochs, MnistLogistic& model, const SgdOptions& options, DataLoader& train,
                             DataLoader& valid, const ProgressFn& progress) {
    using clock = std::chrono::steady_clock;
    if (epochs < 0) throw Error("epochs must be >= 0");
    validate(options);
    check_fits(model, train, "the training");
    check_fits(model, valid, "the validation");
    Trainer t(gpu(), model, options, std::max(rows_max(train), rows_max(valid)), train.size());
    // The last good parameters, on the host, as the CPU fit keeps them.
    xt::xarray<float> good_w = model.lin.weight.value, good_b = model.lin.bias.value;
    auto restore = [&] {
        model.lin.weight.value = good_w;
        model.lin.bias.value = good_b;
    };
    std::vector<EpochRecord> history;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        const auto start = clock::now();
        EpochRecord rec;
        rec.epoch = epoch;
        try {
            rec.train_loss = t.train_epoch(train, epoch, epochs, progress);
        } catch (const DivergenceError&) {
            t.drain();
            restore();
            throw;
        } catch (...) {  // progress threw (Ctrl-C) or CUDA failed: keep what trained, if sound
            t.drain();
            try {
                t.download(model);
                if (!all_finite(model)) restore();
            } catch (...) {
                restore();
            }
            throw;
        }
        EvalResult v = t.evaluate(valid);
        t.download(model);
        if (!std::isfinite(v.loss) || !all_finite(model)) {
            restore();
            throw DivergenceError("training diverged: parameters or validation loss are not finite after epoch " +
                                      std::to_string(epoch) + " (try a smaller --lr)",
                                  epoch, train.size());
        }
        rec.valid_loss = v.loss;
        rec.valid_acc = v.accuracy;
        rec.seconds = std::chrono::duration<double>(clock::now() - start).count();
        history.push_back(rec);
        good_w = model.lin.weight.value;
        good_b = model.lin.bias.value;
        if (progress) progress(epoch_end_progress(rec, epochs, train));
    }
    return history;
}

EvalResult evaluate(MnistLogistic& model, DataLoader& loader) {
    check_fits(model, loader, "the evaluation");
    Trainer t(gpu(), model, SgdOptions{}, rows_max(loader), 0);
    return t.evaluate(loader);
}

const kernels::KernelSet& kernel_set() {
    static const kernels::KernelSet set{"cuda", k_scale_u8, k_linear_forward, k_linear_backward, k_softmax_xent,
                                        k_sgd_update};
    return set;
}

GemmBench bench_gemm(size_t n, int reps) {
    if (n == 0 || reps <= 0) throw Error("bench_gemm: n and reps must be positive");
    Gpu& g = gpu();
    DeviceArray<float> a(n * n), b(n * n), c(n * n), bias(n);
    dev::fill_uniform(a.get(), a.size(), 1, g.compute);
    dev::fill_uniform(b.get(), b.size(), 2, g.compute);
    dev::fill_uniform(bias.get(), n, 3, g.compute);
    Event start(true), stop(true);
    auto time_ms = [&](auto&& op) {
        op();  // warm-up: cuBLAS picks and loads its kernel
        check(cudaEventRecord(start, g.compute), "cudaEventRecord");
        for (int r = 0; r < reps; ++r) op();
        check(cudaEventRecord(stop, g.compute), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        return double(ms) / reps;
    };
    const Gemm product = forward_gemm(a.get(), b.get(), c.get(), n, n, n);
    auto plain = [&] { sgemm(g, product, 1.f, 0.f, "sgemm"); };
    GemmBench r;
    r.n = n;
    r.reps = reps;
    const double flop = 2.0 * double(n) * double(n) * double(n);
    r.sgdx_ms = time_ms([&] { forward(g, a.get(), b.get(), bias.get(), c.get(), n, n, n); });
    r.cublas_ms = time_ms(plain);
    check(cublasSetMathMode(g.blas, CUBLAS_TF32_TENSOR_OP_MATH), "cublasSetMathMode");
    try {
        r.tf32_ms = time_ms(plain);
    } catch (...) {
        cublasSetMathMode(g.blas, CUBLAS_DEFAULT_MATH);
        throw;
    }
    check(cublasSetMathMode(g.blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    r.sgdx_gflops = flop / (r.sgdx_ms * 1e6);
    r.cublas_gflops = flop / (r.cublas_ms * 1e6);
    r.tf32_gflops = flop / (r.tf32_ms * 1e6);
    return r;
}

}  // namespace sgdx::cuda
