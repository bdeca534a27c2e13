#pragma once
// Which kernel set the layers call. Defaults to the best one for this CPU
// (or SGDX_KERNELS); set_kernels forces another, e.g. the scalar reference.
#include "kernels/kernels.hpp"

namespace sgdx {

const kernels::KernelSet& active_kernels();
void set_kernels(const kernels::KernelSet& set);

}  // namespace sgdx
