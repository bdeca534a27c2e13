// libFuzzer target: the PGM reader (P5 and P2).
#include "checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sgdx::fuzz::check_pgm(data, size);
    return 0;
}
