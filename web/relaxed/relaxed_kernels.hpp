#pragma once
// The page's relaxed-SIMD kernel set ("wasm_relaxed_simd"): wasm_simd128 with gemm
// and the direct convolution's forward and input gradient taken from a second
// WebAssembly module, runtime/kernels/wasm_simd.cpp compiled again by clang-19 with
// f32x4.relaxed_madd (see web/relaxed/CMakeLists.txt). The other multiply-add
// kernels stay SIMD128's: with the fused multiply-add they measured slower in
// Chromium here (web/README.md). That module is embedded in this one, validated with
// WebAssembly.validate, and instantiated over this module's memory once per thread
// that calls it (its own data and stack area in the heap).
#include "runtime/kernels/kernels.hpp"

namespace sgdx::kernels {

// The relaxed set when the engine validates relaxed SIMD and the module
// instantiates on this thread; null otherwise. The first call decides and is
// remembered.
const KernelSet* wasm_relaxed_simd();

// The threads that have an instance of the relaxed module so far.
int wasm_relaxed_instances();

}  // namespace sgdx::kernels
