#include "native/int8.hpp"

#include "device/sgdx.h"
#include "runtime/error.hpp"
#include "runtime/file_io.hpp"

namespace sgdx {

namespace {
void check(sgdx_status st, const sgdx_model* m, const std::string& path) {
    if (st != SGDX_OK) throw Error(path + ": int8: " + sgdx_last_error(m));
}
}  // namespace

Int8Model::Int8Model(const std::string& path) : path_(path) {
    const std::vector<uint8_t> file = read_file(path);
    sgdx_config config;
    check(sgdx_config_from_weights(file.data(), file.size(), &config), nullptr, path);
    config.max_batch = 1;
    config.flags = SGDX_INT8_ONLY;  // as the device runs a model whose float weights do not fit
    size_t bytes = 0;
    check(sgdx_model_arena_size(&config, &bytes), nullptr, path);
    arena_.resize(bytes);
    check(sgdx_create_model(arena_.data(), arena_.size(), &config, 0, &model_), nullptr, path);
    check(sgdx_load(model_, file.data(), file.size()), model_, path);
    inputs_ = size_t(config.image_rows) * config.image_cols;
    classes_ = config.classes;
}

uint32_t Int8Model::predict(const uint8_t* image) {
    uint32_t predicted = 0;
    check(sgdx_predict_int8(model_, image, &predicted), model_, path_);
    return predicted;
}

}  // namespace sgdx
