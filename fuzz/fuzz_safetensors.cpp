// libFuzzer target: the safetensors reader and load_model into MnistLogistic models.
#include "checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sgdx::fuzz::check_safetensors(data, size);
    return 0;
}
