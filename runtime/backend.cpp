#include "backend.hpp"

#include "thread_pool.hpp"

namespace sgdx {
namespace {
const kernels::KernelSet*& slot() {
    static const kernels::KernelSet* set = nullptr;
    return set;
}
}  // namespace

const kernels::KernelSet& active_kernels() {
    if (!slot()) slot() = &kernels::best();
    return *slot();
}

void set_kernels(const kernels::KernelSet& set) { slot() = &set; }

void reserve_kernel_scratch(const kernels::ScratchNeeds& needs) {
    const kernels::KernelSet& k = active_kernels();
    if (!k.reserve_scratch) return;
    ThreadPool& pool = thread_pool();
    const bool was_pinned = pool.pinned();
    pool.set_pinned(true);  // part t on thread t: every thread sizes its own
    pool.run(ThreadPool::in_job() ? 1 : pool.size(), [&](size_t) { k.reserve_scratch(needs); });
    pool.set_pinned(was_pinned);
}

}  // namespace sgdx
