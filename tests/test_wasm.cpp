// The WebAssembly build's own kernel checks (the comparison of every kernel set
// with the reference on ragged shapes is in test_kernels.cpp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "runtime/kernels/kernels.hpp"

#if defined(__EMSCRIPTEN__)
using namespace sgdx;

TEST_CASE("the wasm build offers the SIMD128 kernels as its best set") {
    CHECK(std::string(kernels::available().back()->name) == "wasm_simd128");
}

TEST_CASE("wasm scale_u8 converts every byte value exactly, whatever the alignment") {
    // The SIMD path builds floats from bytes with the 2^23 mantissa trick: every
    // value 0..255 must come out as the reference's float(x) * scale.
    const auto& simd = kernels::by_name("wasm_simd128");
    std::vector<uint8_t> bytes(256 + 37);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + 3);
    for (float scale : {1.f / 255.f, 1.f, -0.5f, 3.75f}) {
        for (size_t offset : {0, 1, 5}) {
            const size_t n = bytes.size() - offset;
            std::vector<float> want(n), got(n, -1.f);
            kernels::reference().scale_u8(bytes.data() + offset, scale, want.data(), n);
            simd.scale_u8(bytes.data() + offset, scale, got.data(), n);
            for (size_t i = 0; i < n; ++i) {
                CAPTURE(scale); CAPTURE(offset); CAPTURE(i);
                REQUIRE(got[i] == want[i]);
            }
        }
    }
}
#endif
