// tests/test_kernels.cpp once more, with the relaxed-SIMD set among the sets it
// checks against the scalar reference (the same random shapes with ragged tails,
// the same tolerances: relaxed_madd may round once where mul+add rounds twice).
// Its kernels::available() and by_name() are renamed to this file's versions,
// which add wasm_relaxed_simd when the engine runs it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/kernels/conv_reference.hpp"
#include "runtime/kernels/kernels.hpp"
#include "tests/helpers.hpp"
#include "web/relaxed/relaxed_kernels.hpp"

namespace sgdx::kernels {
namespace {
std::vector<const KernelSet*> available_with_relaxed() {
    std::vector<const KernelSet*> sets = available();
    if (const KernelSet* relaxed = wasm_relaxed_simd()) sets.push_back(relaxed);
    return sets;
}
const KernelSet& by_name_with_relaxed(const std::string& name) {
    if (const KernelSet* relaxed = wasm_relaxed_simd(); relaxed && name == relaxed->name) return *relaxed;
    return by_name(name);
}
}  // namespace
}  // namespace sgdx::kernels

#define available available_with_relaxed
#define by_name by_name_with_relaxed
#include "tests/test_kernels.cpp"
#undef available
#undef by_name
