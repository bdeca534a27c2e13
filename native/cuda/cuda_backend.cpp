// Host side of the CUDA backend: device discovery, cuBLAS products, the batch
// pipeline and the training session's executor. Compiled by the host compiler;
// the kernels live in device_kernels.cu.
#include "cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>

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
void download(T* host, const T* device, size_t n) {
    check(cudaStreamSynchronize(gpu().compute), "cudaStreamSynchronize");
    if (n) check(cudaMemcpy(host, device, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

size_t rows_max(const DataLoader& loader) {
    return std::min(loader.batch_size(), loader.dataset().size());
}

// A batch on the device: int32 labels then uint8 pixels, in one copy.
struct DeviceBatch {
    const int32_t* labels;
    const uint8_t* pixels;
    size_t rows;
    float scale;
};

// Batches go up through two pinned buffers: while the GPU computes on one, the
// host copies the next into the other and the copy stream uploads it.
class Uploader {
public:
    Uploader(Gpu& g, size_t max_rows, size_t features) : g_(g), d_(features), max_rows_(max_rows) {
        const size_t bytes = label_bytes(max_rows) + max_rows * features;
        for (int s = 0; s < 2; ++s) {
            host_[s] = PinnedArray<uint8_t>(bytes);
            dev_[s] = DeviceArray<uint8_t>(bytes);
        }
    }
    size_t max_rows() const { return max_rows_; }

    // Copies a batch its loader gathered (at most max_rows rows) into the next
    // buffer and starts its upload; the compute stream will wait for it. Blocks
    // until the batch that last used this buffer (two uploads ago) has finished
    // on the GPU.
    DeviceBatch upload(const Batch& b) {
        const int s = next_;
        next_ ^= 1;
        if (in_use_[s]) check(cudaEventSynchronize(consumed_[s]), "cudaEventSynchronize");
        const size_t rows = b.size;
        uint8_t* h = host_[s].get();
        std::memcpy(h, b.y, rows * sizeof(int32_t));
        std::memcpy(h + label_bytes(rows), b.pixels, rows * d_);
        const size_t bytes = label_bytes(rows) + rows * d_;
        check(cudaMemcpyAsync(dev_[s].get(), h, bytes, cudaMemcpyHostToDevice, g_.copy), "cudaMemcpyAsync (batch)");
        check(cudaEventRecord(uploaded_[s], g_.copy), "cudaEventRecord");
        check(cudaStreamWaitEvent(g_.compute, uploaded_[s], 0), "cudaStreamWaitEvent");
        current_ = s;
        const uint8_t* d = dev_[s].get();
        return {reinterpret_cast<const int32_t*>(d), d + label_bytes(rows), rows, b.scale};
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
    size_t d_, max_rows_;
    PinnedArray<uint8_t> host_[2];
    DeviceArray<uint8_t> dev_[2];
    Event uploaded_[2], consumed_[2];
    bool in_use_[2] = {false, false};
    int next_ = 0, current_ = 0;
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

// The loader's batches without float inputs (the device scales the bytes) while in scope.
struct BytesOnly {
    explicit BytesOnly(DataLoader& dl) : dl_(dl), was_(dl.float_inputs()) { dl.set_float_inputs(false); }
    ~BytesOnly() { dl_.set_float_inputs(was_); }
    DataLoader& dl_;
    bool was_;
};

}  // namespace

// ---- the executor ----------------------------------------------------------------

// The model's parameters, gradients and momentum on the device, packed as
// [weight (C×D) | bias (C)] so one SGD launch updates both.
struct Executor::Impl {
    // Per-batch results on the device and their pinned copies: the batches in
    // flight (at most two once a submit returns) and the one being read use three.
    static constexpr int kSlots = 3;

    Impl(MnistLogistic& model, SGD& opt)
        : g_(gpu()),
          model_(model),
          opt_(opt),
          o_(opt.options()),
          D_(model.in_features()),
          C_(model.out_features()),
          params_(C_ * D_ + C_),
          grads_(C_ * D_ + C_),
          momentum_(o_.momentum != 0.f ? C_ * D_ + C_ : 0),
          results_(kSlots + 1),
          results_host_(kSlots) {
        const auto params = model.parameters();
        auto& buffers = opt.momentum_buffers();
        if (momentum_.size()) {
            for (size_t i = 0; i < params.size(); ++i) {
                if (params[i] == &model.lin.weight) w_at_ = i;
                if (params[i] == &model.lin.bias) b_at_ = i;
            }
            if (buffers.size() != params.size() || buffers[w_at_].size() != C_ * D_ || buffers[b_at_].size() != C_)
                throw Error("cuda::Executor: the SGD's momentum buffers do not fit the model (an SGD over "
                            "model.parameters() is needed)");
        }
        from_host();
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        drain();  // nothing may still read or write the buffers freed next
        if (train_) train_->set_float_inputs(train_floats_);
    }

    void drain() noexcept {
        cudaStreamSynchronize(g_.copy);
        cudaStreamSynchronize(g_.compute);
    }

    // Waits for every submitted batch and keeps its result for collect().
    void finish() {
        check(cudaStreamSynchronize(g_.compute), "cudaStreamSynchronize");
        while (!in_flight_.empty()) retire();
    }

    // The oldest batch in flight, known finished: its result, read from the pinned copy.
    void retire() {
        const InFlight f = in_flight_.front();
        in_flight_.pop_front();
        const dev::LossCount& r = results_host_.get()[f.slot];
        BatchLoss out;
        out.loss = float(r.loss / double(f.rows));
        out.count = f.rows;
        out.correct = size_t(r.hits);
        done_.push_back(out);
    }

    // The batch-sized buffers hold `rows` rows: grown (after a drain) if not.
    void ensure_rows(size_t rows) {
        if (up_ && up_->max_rows() >= rows) return;
        finish();
        drain();
        up_.reset();
        x_ = DeviceArray<float>(rows * D_);
        logits_ = DeviceArray<float>(rows * C_);
        partial_ = DeviceArray<dev::LossCount>(dev::softmax_blocks(rows));
        up_ = std::make_unique<Uploader>(g_, rows, D_);
    }

    void prepare(DataLoader& train, DataLoader& valid) {
        check_fits(model_, train, "the training");
        check_fits(model_, valid, "the validation");
        if (!train_) {  // the steps read the loader's bytes only
            train_ = &train;
            train_floats_ = train.float_inputs();
            train.set_float_inputs(false);
        }
        ensure_rows(std::max(rows_max(train), rows_max(valid)));
        // One step without its update (every step overwrites the gradients) and one
        // evaluation batch: cuBLAS picks and loads its kernels before the first epoch.
        dev::LossCount* scratch = results_.get() + kSlots;
        if (train.size() > 0) {
            const DeviceBatch b = up_->upload(train.batch(0));
            forward_batch(b);
            dev::softmax_xent(logits_.get(), b.labels, logits_.get(), 1.f / float(b.rows), b.rows, C_,
                              partial_.get(), g_.compute);
            dev::sum_partials(partial_.get(), dev::softmax_blocks(b.rows), scratch, false, g_.compute);
            backward(g_, x_.get(), logits_.get(), grads_.get(), grads_.get() + C_ * D_, b.rows, D_, C_, false);
            up_->release();
        }
        if (valid.size() > 0) {
            BytesOnly bytes(valid);
            const DeviceBatch b = up_->upload(valid.batch(0));
            forward_batch(b);
            dev::softmax_xent(logits_.get(), b.labels, nullptr, 1.f, b.rows, C_, partial_.get(), g_.compute);
            up_->release();
        }
        finish();
    }

    void submit(const Batch& batch) {
        if (!batch.pixels || !batch.y)
            throw Error("the CUDA executor takes batches of uint8 pixels and labels, as a DataLoader gives");
        if (batch.features != D_)
            throw Error("batch has " + std::to_string(batch.features) + " features per row, the model expects " +
                        std::to_string(D_));
        ensure_rows(batch.size);
        const DeviceBatch b = up_->upload(batch);  // returns once the batch two uploads ago is done
        while (in_flight_.size() > 1) retire();
        const int slot = next_slot_;
        next_slot_ = (next_slot_ + 1) % kSlots;
        step(b, slot);
        in_flight_.push_back({slot, b.rows});
    }

    void collect(bool wait, std::vector<BatchLoss>& out) {
        if (wait) finish();
        out.insert(out.end(), done_.begin(), done_.end());
        done_.clear();
    }

    // Every batch of the loader without gradients; one read-back at the end.
    EvalResult evaluate(DataLoader& loader) {
        check_fits(model_, loader, "the evaluation");
        finish();  // the batches in flight first: their uploads alternate with these
        ensure_rows(rows_max(loader));
        BytesOnly bytes(loader);
        loader.start_epoch();  // as the CPU's range-for over the loader
        dev::LossCount* total = results_.get() + kSlots;
        check(cudaMemsetAsync(total, 0, sizeof *total, g_.compute), "cudaMemsetAsync");
        size_t count = 0;
        for (size_t i = 0; i < loader.size(); ++i) {
            const DeviceBatch b = up_->upload(loader.batch(i));
            forward_batch(b);
            dev::softmax_xent(logits_.get(), b.labels, nullptr, 1.f, b.rows, C_, partial_.get(), g_.compute);
            dev::sum_partials(partial_.get(), dev::softmax_blocks(b.rows), total, true, g_.compute);
            up_->release();
            count += b.rows;
        }
        dev::LossCount r{};
        download(&r, total, 1);
        return {r.loss / double(count), double(r.hits) / double(count), count};
    }

    void set_lr(float lr) {
        opt_.set_lr(lr);  // validates it
        o_.lr = lr;       // read by the steps queued from now on
    }

    // The weights and the momentum, into the host model and SGD.
    void to_host() {
        download(model_.lin.weight.value.data(), params_.get(), C_ * D_);
        download(model_.lin.bias.value.data(), params_.get() + C_ * D_, C_);
        if (momentum_.size()) {
            download(opt_.momentum_buffers()[w_at_].data(), momentum_.get(), C_ * D_);
            download(opt_.momentum_buffers()[b_at_].data(), momentum_.get() + C_ * D_, C_);
            opt_.has_momentum() = !first_;
        }
    }

    void from_host() {
        check(cudaStreamSynchronize(g_.compute), "cudaStreamSynchronize");  // no step still reads them
        upload(params_.get(), model_.lin.weight.value.data(), C_ * D_);
        upload(params_.get() + C_ * D_, model_.lin.bias.value.data(), C_);
        if (momentum_.size()) {
            upload(momentum_.get(), opt_.momentum_buffers()[w_at_].data(), C_ * D_);
            upload(momentum_.get() + C_ * D_, opt_.momentum_buffers()[b_at_].data(), C_);
        }
        first_ = !opt_.has_momentum();
    }

    void abandon() noexcept {
        drain();
        in_flight_.clear();
        done_.clear();
    }

private:
    static void upload(float* device, const float* host, size_t n) {
        check(cudaMemcpy(device, host, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }

    void forward_batch(const DeviceBatch& b) {
        dev::scale_u8(b.pixels, b.scale, x_.get(), b.rows * D_, g_.compute);
        forward(g_, x_.get(), params_.get(), params_.get() + C_ * D_, logits_.get(), b.rows, D_, C_);
    }

    // Forward, loss and its gradient (in place of the logits), the loss's trip to
    // the host, gradients (overwritten: no zero_grad needed) and the SGD update.
    void step(const DeviceBatch& b, int slot) {
        forward_batch(b);
        float* dlogits = logits_.get();
        dev::softmax_xent(logits_.get(), b.labels, dlogits, 1.f / float(b.rows), b.rows, C_, partial_.get(),
                          g_.compute);
        dev::sum_partials(partial_.get(), dev::softmax_blocks(b.rows), results_.get() + slot, false, g_.compute);
        check(cudaMemcpyAsync(results_host_.get() + slot, results_.get() + slot, sizeof(dev::LossCount),
                              cudaMemcpyDeviceToHost, g_.compute),
              "cudaMemcpyAsync (loss)");
        backward(g_, x_.get(), dlogits, grads_.get(), grads_.get() + C_ * D_, b.rows, D_, C_, false);
        dev::sgd_update(params_.get(), grads_.get(), momentum_.get(), params_.size(), o_.lr, o_.momentum,
                        o_.dampening, o_.weight_decay, o_.nesterov, first_, g_.compute);
        first_ = false;
        up_->release();
    }

    struct InFlight {
        int slot;
        size_t rows;
    };

    Gpu& g_;
    MnistLogistic& model_;
    SGD& opt_;
    SgdOptions o_;
    size_t D_, C_;
    size_t w_at_ = 0, b_at_ = 1;  // the weight's and the bias's momentum buffers in the host SGD
    DeviceArray<float> params_, grads_, momentum_;
    DeviceArray<float> x_, logits_;  // sized for the largest batch (ensure_rows)
    DeviceArray<dev::LossCount> partial_;
    DeviceArray<dev::LossCount> results_;      // one per slot, then the evaluation total
    PinnedArray<dev::LossCount> results_host_;  // one per slot
    std::unique_ptr<Uploader> up_;
    std::deque<InFlight> in_flight_;  // submitted, oldest first; once a submit returns all but the newest are done
    std::vector<BatchLoss> done_;     // finished, not collected yet
    int next_slot_ = 0;
    bool first_ = true;  // the momentum buffer holds no value yet
    DataLoader* train_ = nullptr;  // whose float inputs prepare() turned off
    bool train_floats_ = true;
};

Executor::Executor(MnistLogistic& model, SGD& opt) : impl_(std::make_unique<Impl>(model, opt)) {}
Executor::~Executor() = default;
void Executor::prepare(DataLoader& train, DataLoader& valid) { impl_->prepare(train, valid); }
void Executor::submit(const Batch& batch, size_t) { impl_->submit(batch); }
void Executor::collect(bool wait, std::vector<BatchLoss>& out) { impl_->collect(wait, out); }
EvalResult Executor::evaluate(DataLoader& loader) { return impl_->evaluate(loader); }
void Executor::set_lr(float lr) { impl_->set_lr(lr); }
void Executor::to_host() { impl_->to_host(); }
void Executor::from_host() { impl_->from_host(); }
void Executor::abandon() noexcept { impl_->abandon(); }

namespace {

// ---- the kernels behind kernels.hpp's host-pointer interface ----------------

void k_scale_u8(const uint8_t* x, float scale, float* y, size_t n) {
    Gpu& g = gpu();
    auto dx = to_device(x, n);
    DeviceArray<float> dy(n);
    dev::scale_u8(dx.get(), scale, dy.get(), n, g.compute);
    download(y, dy.get(), n);
}

void k_linear_forward(const float* x, const float* w, const float* b, float* y, size_t B, size_t D, size_t C) {
    Gpu& g = gpu();
    auto dx = to_device(x, B * D), dw = to_device(w, C * D), db = to_device(b, C);
    DeviceArray<float> dy(B * C);
    forward(g, dx.get(), dw.get(), db.get(), dy.get(), B, D, C);
    download(y, dy.get(), B * C);
}

void k_linear_backward(const float* x, const float* dy, float* dw, float* db, size_t B, size_t D, size_t C) {
    Gpu& g = gpu();
    auto d_x = to_device(x, B * D), d_dy = to_device(dy, B * C), d_dw = to_device(dw, C * D);
    DeviceArray<float> d_db = db ? to_device(db, C) : DeviceArray<float>();
    backward(g, d_x.get(), d_dy.get(), d_dw.get(), db ? d_db.get() : nullptr, B, D, C, true);
    download(dw, d_dw.get(), C * D);
    if (db) download(db, d_db.get(), C);
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
    download(&r, total.get(), 1);
    if (dlogits) download(dlogits, d_dl.get(), B * C);
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
    download(p, d_p.get(), n);
    if (with_buf) download(buf, d_buf.get(), n);
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

std::vector<EpochRecord> fit(int epochs, MnistLogistic& model, SGD& opt, DataLoader& train, DataLoader& valid,
                             const FitOptions& options) {
    if (epochs < 0) throw Error("epochs must be >= 0");
    check_fits(model, train, "the training");
    check_fits(model, valid, "the validation");
    Executor exec(model, opt);
    TrainingSession session(model, opt, train, valid, epochs, options, &exec);
    session.run();
    return session.state().history;
}

EvalResult evaluate(MnistLogistic& model, DataLoader& loader) {
    check_fits(model, loader, "the evaluation");
    SGD opt(model.parameters(), SgdOptions{});
    Executor exec(model, opt);
    return exec.evaluate(loader);
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
