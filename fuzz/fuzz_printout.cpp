// libFuzzer target: PyTorch's nn.Sequential printout (core/printout), as a model
// file's "architecture" metadata or the command line hands it over.
#include "checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sgdx::fuzz::check_printout(data, size);
    return 0;
}
