// xsimd kernels for sse2; compiled with this instruction set's -m flags only.
#include "xsimd_kernels.hpp"

namespace sgdx::kernels {
const KernelSet& xsimd_sse2() {
    static const KernelSet set = XsimdKernels<xsimd::sse2>::make("sse2");
    return set;
}
}  // namespace sgdx::kernels
