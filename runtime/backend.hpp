#pragma once
// Which kernel set the layers call. Defaults to the best one for this CPU
// (or SGDX_KERNELS); set_kernels forces another, e.g. the scalar reference.
#include "kernels/kernels.hpp"

namespace sgdx {

const kernels::KernelSet& active_kernels();
void set_kernels(const kernels::KernelSet& set);

// The active set's reserve_scratch(needs) on every thread of the pool (on this
// thread alone inside a part of a job): what Module::reserve asks of the kernels.
void reserve_kernel_scratch(const kernels::ScratchNeeds& needs);

}  // namespace sgdx
