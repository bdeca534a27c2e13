// xsimd kernels for sse2; compiled with this instruction set's -m flags only.
#include "xsimd_kernels.hpp"

namespace sgdx::kernels {

using Kernels_sse2 = XsimdKernels<xsimd::sse2>;

const KernelSet& xsimd_sse2() {
    static const KernelSet set = Kernels_sse2::make("sse2");
    return set;
}

double fma_probe_sse2(size_t iterations, double* flops) {
    *flops = double(iterations) * double(Kernels_sse2::kProbeFlopsPerIteration);
    return Kernels_sse2::fma_probe(iterations);
}

}  // namespace sgdx::kernels
