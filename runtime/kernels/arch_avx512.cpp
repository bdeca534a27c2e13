// xsimd kernels for avx512; compiled with this instruction set's -m flags only.
#include "xsimd_kernels.hpp"

namespace sgdx::kernels {

using Kernels_avx512 = XsimdKernels<xsimd::avx512bw>;

const KernelSet& xsimd_avx512() {
    static const KernelSet set = Kernels_avx512::make("avx512");
    return set;
}

double fma_probe_avx512(size_t iterations, double* flops) {
    *flops = double(iterations) * double(Kernels_avx512::kProbeFlopsPerIteration);
    return Kernels_avx512::fma_probe(iterations);
}

}  // namespace sgdx::kernels
