#include "data_parallel.hpp"

#include <algorithm>
#include <cmath>

#include "backend.hpp"
#include "thread_pool.hpp"

namespace sgdx {

DataParallelRule& data_parallel_rule() {
    static DataParallelRule rule;
    return rule;
}

double DataParallel::work_per_sample(Module& m) {
    if (m.children().empty()) {
        const std::vector<Parameter*> ps = m.parameters();
        if (ps.empty() || ps[0]->value.dimension() == 0) return 0;
        // weight (out, ...): a Linear's out_features / out = 1 position, a Conv2d's OH·OW
        const double out = double(ps[0]->value.shape()[0]);
        return double(ps[0]->value.size()) * (out > 0 ? double(m.out_features()) / out : 0.0);
    }
    double sum = 0;
    for (auto& [name, child] : m.children()) sum += work_per_sample(*child);
    return sum;
}

std::unique_ptr<DataParallel> DataParallel::create(Module& model, size_t threads) {
    if (threads < 2) return nullptr;
    const bool was_training = model.is_training();
    model.train();
    const bool separable = model.separable_by_sample();
    model.train(was_training);
    if (!separable) return nullptr;
    const DataParallelRule& rule = data_parallel_rule();
    const double work = work_per_sample(model);
    if (work < rule.min_work_per_parameter * double(model.parameter_count())) return nullptr;
    std::vector<std::unique_ptr<Module>> replicas;
    for (size_t r = 1; r < threads; ++r) {
        std::unique_ptr<Module> copy = model.replicate();
        if (!copy) return nullptr;
        replicas.push_back(std::move(copy));
    }
    const double rows = work > 0 ? std::ceil(rule.min_part_work / work) : 1.0;
    return std::unique_ptr<DataParallel>(new DataParallel(model, std::move(replicas), size_t(std::max(1.0, rows))));
}

DataParallel::DataParallel(Module& model, std::vector<std::unique_ptr<Module>> replicas, size_t min_rows)
    : model_(model), replicas_(std::move(replicas)), min_rows_(min_rows) {
    params_.push_back(model_.parameters());
    for (auto& r : replicas_) params_.push_back(r->parameters());
    for (Parameter* p : params_[0]) grad_values_ += p->grad.size();
    totals_.assign(parts(), 0.0);
    correct_.assign(parts(), 0);
}

DataParallel::~DataParallel() = default;

bool DataParallel::splits(const Module& model, size_t rows) const {
    return &model == &model_ && thread_pool().size() == parts() && !ThreadPool::in_job() &&
           rows / parts() >= min_rows_ && model.separable_by_sample();
}

void DataParallel::sync_values(size_t r) {
    const auto& from = params_[0];
    const auto& to = params_[r];
    for (size_t i = 0; i < from.size(); ++i)
        std::copy(from[i]->value.data(), from[i]->value.data() + from[i]->value.size(), to[i]->value.data());
}

namespace {
// Output values a sample leaves in the leaf modules, i.e. the activations kept.
double activation_floats(const Module& m) {
    if (m.children().empty()) return double(m.out_features());
    double sum = 0;
    for (auto& [name, child] : m.children()) sum += activation_floats(*child);
    return sum;
}
}  // namespace

size_t cache_rows(const Module& model, size_t rows) {
    if (!model.separable_by_sample()) return rows;
    const double per_row = activation_floats(model) * sizeof(float);
    const size_t fit = per_row > 0 ? size_t(double(kCacheActivationBytes) / per_row) : rows;
    return std::max<size_t>(1, std::min(rows, fit));
}

double forward_backward_rows(Module& m, const Batch& b, size_t r0, size_t n, bool bytes, float* logits,
                             float* dlogits, float grad_scale, size_t* correct) {
    const size_t D = b.features, C = m.out_features();
    // floor(n / most) equal sub-batches, each at most twice the budget: no small
    // last one (LeNet's 32-row data-parallel parts stay whole, not 29 + 3).
    const size_t most = cache_rows(m, n), subs = std::max<size_t>(1, n / most);
    double total = 0;
    size_t right = 0;
    for (size_t j = 0; j < subs; ++j) {
        const size_t s0 = r0 + n * j / subs, k = r0 + n * (j + 1) / subs - s0;
        float* z = logits + s0 * C;
        float* dz = dlogits ? dlogits + s0 * C : nullptr;
        if (bytes) m.forward(b.pixels + s0 * D, b.scale, k, z);
        else m.forward(b.x + s0 * D, k, z);
        size_t c = 0;
        const double t = active_kernels().softmax_xent(z, b.y + s0, dz, grad_scale, k, C, &c);
        total += t;
        right += c;
        // A sub-batch whose loss is not finite leaves the gradients alone: the step is dropped.
        if (!dz || !std::isfinite(t)) continue;
        if (bytes) m.backward(b.pixels + s0 * D, b.scale, dz, k);
        else m.backward(b.x + s0 * D, dz, k);
    }
    if (correct) *correct = right;
    return total;
}

void DataParallel::run_part(size_t r, const Batch& b, bool bytes, float* logits, float* dlogits, float grad_scale,
                            bool sync) {
    Module& m = replica(r);
    if (r > 0 && sync) sync_values(r);
    const size_t r0 = b.size * r / parts(), r1 = b.size * (r + 1) / parts();
    correct_[r] = 0;
    totals_[r] = forward_backward_rows(m, b, r0, r1 - r0, bytes, logits, dlogits, grad_scale, &correct_[r]);
}

void DataParallel::zero_replica_grads() {
    for (size_t r = 1; r < parts(); ++r)
        for (Parameter* p : params_[r]) std::fill(p->grad.begin(), p->grad.end(), 0.f);
}

namespace {
// g += h, then h = 0: two vectorised passes (one loop doing both, g and h possibly
// the same memory to the compiler, ran scalar: 33 µs for the MLP's 101,770 values).
void add_and_clear(float* __restrict g, float* __restrict h, size_t n) {
    for (size_t j = 0; j < n; ++j) g[j] += h[j];
    std::fill(h, h + n, 0.f);
}
}  // namespace

void DataParallel::reduce() {
    // Flat index ranges of all gradients, split over the pool where that pays (a
    // part of at least 32K values); every value summed model + replica 1 + ... in
    // that order whichever the split.
    ThreadPool& pool = thread_pool();
    const size_t chunks = pool.parts_for(grad_values_, size_t(32) << 10);
    pool.run(chunks, [&](size_t c) {
        const size_t v0 = grad_values_ * c / chunks, v1 = grad_values_ * (c + 1) / chunks;
        size_t base = 0;
        for (size_t i = 0; i < params_[0].size() && base < v1; ++i) {
            const size_t n = params_[0][i]->grad.size();
            const size_t a = std::max(v0, base), e = std::min(v1, base + n);
            if (a < e) {
                float* g = params_[0][i]->grad.data();
                for (size_t r = 1; r < parts(); ++r)
                    add_and_clear(g + (a - base), params_[r][i]->grad.data() + (a - base), e - a);
            }
            base += n;
        }
    });
}

double DataParallel::run(const Batch& b, bool bytes, float* logits, float* dlogits, float grad_scale, size_t* correct,
                         bool sync, size_t shift) {
    const bool training = model_.is_training();
    for (auto& r : replicas_)
        if (r->is_training() != training) r->train(training);
    thread_pool().run(parts(), [&](size_t p) {
        run_part((p + shift) % parts(), b, bytes, logits, dlogits, grad_scale, sync);
    });
    double total = 0;
    size_t right = 0;
    for (size_t r = 0; r < parts(); ++r) {
        total += totals_[r];
        right += correct_[r];
    }
    if (correct) *correct = right;
    if (dlogits) {
        if (std::isfinite(total)) {
            reduce();
        } else {  // the step is dropped: no part's gradient stays
            model_.zero_grad();
            zero_replica_grads();
        }
    }
    return total;
}

double DataParallel::step(const Batch& b, bool bytes, float* logits, float* dlogits, float grad_scale,
                          size_t* correct, bool sync) {
    return run(b, bytes, logits, dlogits, grad_scale, correct, sync, 0);
}

void DataParallel::reserve(size_t max_rows, bool byte_inputs) {
    ThreadPool& pool = thread_pool();
    const bool was_pinned = pool.pinned();
    pool.set_pinned(true);  // part p on thread p
    const size_t rows = (max_rows + parts() - 1) / parts();
    pool.run(parts(), [&](size_t p) { replica(p).reserve(rows, byte_inputs); });
    pool.set_pinned(was_pinned);
}

}  // namespace sgdx
