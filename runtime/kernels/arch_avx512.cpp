// xsimd kernels for avx512; compiled with this instruction set's -m flags only.
#include "xsimd_kernels.hpp"

namespace sgdx::kernels {
const KernelSet& xsimd_avx512() {
    static const KernelSet set = XsimdKernels<xsimd::avx512bw>::make("avx512");
    return set;
}
}  // namespace sgdx::kernels
