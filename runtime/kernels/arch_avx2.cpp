// xsimd kernels for avx2; compiled with this instruction set's -m flags only.
#include "xsimd_kernels.hpp"

namespace sgdx::kernels {
const KernelSet& xsimd_avx2() {
    static const KernelSet set = XsimdKernels<xsimd::fma3<xsimd::avx2>>::make("avx2");
    return set;
}
}  // namespace sgdx::kernels
