// xsimd kernels for avx2; compiled with this instruction set's -m flags only.
#include "xsimd_kernels.hpp"

namespace sgdx::kernels {

using Kernels_avx2 = XsimdKernels<xsimd::fma3<xsimd::avx2>>;

const KernelSet& xsimd_avx2() {
    static const KernelSet set = Kernels_avx2::make("avx2");
    return set;
}

double fma_probe_avx2(size_t iterations, double* flops) {
    *flops = double(iterations) * double(Kernels_avx2::kProbeFlopsPerIteration);
    return Kernels_avx2::fma_probe(iterations);
}

}  // namespace sgdx::kernels
