#include "backend.hpp"

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

}  // namespace sgdx
