// Picks the kernel set at start-up from what the running CPU supports, so one
// binary runs on any x86-64 (and in wasm, on the SIMD build's own set).
#include <cstdlib>
#include <string>

#include "../error.hpp"
#include "kernels.hpp"

namespace sgdx::kernels {

#if defined(SGDX_X86_KERNELS)
const KernelSet& xsimd_sse2();
const KernelSet& xsimd_avx2();
const KernelSet& xsimd_avx512();
#endif
#if defined(SGDX_WASM_SIMD_KERNELS)
const KernelSet& wasm_simd128();
#endif

std::vector<const KernelSet*> available() {
    std::vector<const KernelSet*> sets{&reference()};
#if defined(SGDX_X86_KERNELS)
    __builtin_cpu_init();
    sets.push_back(&xsimd_sse2());
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        sets.push_back(&xsimd_avx2());
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        sets.push_back(&xsimd_avx512());
#endif
#if defined(SGDX_WASM_SIMD_KERNELS)
    sets.push_back(&wasm_simd128());
#endif
    return sets;
}

const KernelSet& by_name(const std::string& name) {
    std::string choices;
    for (const KernelSet* set : available()) {
        if (name == set->name) return *set;
        choices += (choices.empty() ? "" : ", ") + std::string(set->name);
    }
    throw Error("unknown or unsupported kernel set '" + name + "' (this CPU offers: " +
                choices + ")");
}

const KernelSet& best() {
    static const KernelSet* chosen = [] {
        const char* env = std::getenv("SGDX_KERNELS");
        if (env && *env) {
            try {
                return &by_name(env);
            } catch (const Error& e) {
                throw Error(std::string("SGDX_KERNELS: ") + e.what());
            }
        }
        return available().back();
    }();
    return *chosen;
}

}  // namespace sgdx::kernels
