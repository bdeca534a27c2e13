// libFuzzer target: the safetensors reader and model detection (core/) as the
// C API (device/sgdx_c.cpp) runs them on files from flash or a host, with its
// fixed arrays and its model matching: sgdx_config_from_weights, then
// sgdx_load and sgdx_load_stream into the model the file names (and into a fixed
// CNN), each int8-only too. Any refusal must name its problem; a loaded model
// must predict.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "sgdx.h"

namespace {

void require_message(sgdx_status st, const sgdx_model* m) {
    if (st != SGDX_OK && std::strlen(sgdx_last_error(m)) == 0) std::abort();  // a refusal without a reason
}

struct Source {
    const uint8_t* data;
    static int read(void* ctx, size_t offset, uint8_t* out, size_t n) {
        std::memcpy(out, static_cast<Source*>(ctx)->data + offset, n);
        return 0;
    }
};

void load_into(const sgdx_config& config, const uint8_t* data, size_t size) {
    size_t need = 0;
    if (sgdx_model_arena_size(&config, &need) != SGDX_OK || need > (8u << 20)) return;
    std::vector<uint8_t> arena(need);
    sgdx_model* m = nullptr;
    if (sgdx_create_model(arena.data(), need, &config, 0, &m) != SGDX_OK) std::abort();
    static const uint8_t image[65536] = {};
    uint32_t predicted = 0;
    sgdx_status st = sgdx_load(m, data, size);
    require_message(st, m);
    if (st == SGDX_OK) {
        if (config.flags & SGDX_INT8_ONLY) sgdx_predict_int8(m, image, &predicted);
        else sgdx_predict(m, image, &predicted, nullptr);
        if (predicted >= config.classes) std::abort();
    }
    Source src{data};
    require_message(sgdx_load_stream(m, Source::read, &src, size), m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    sgdx_config config;
    const sgdx_status st = sgdx_config_from_weights(data, size, &config);
    require_message(st, nullptr);
    if (st == SGDX_OK) {
        config.max_batch = 1;
        config.flags = SGDX_INFERENCE_ONLY;
        load_into(config, data, size);
        config.flags = SGDX_INT8_ONLY;
        load_into(config, data, size);
    }
    sgdx_config cnn;
    sgdx_config_init(&cnn, "cnn");
    cnn.max_batch = 1;
    cnn.flags = SGDX_INFERENCE_ONLY;
    load_into(cnn, data, size);
    return 0;
}
