#pragma once
// The device's int8 inference on the host: a model file run through the C API
// (device/sgdx.h) with int8 weights alone, quantised row by row as it loads, as
// the Cortex-M4 firmware runs it. `sgdx eval --int8` and `predict --int8` use it, so
// the host shows the quantised model's accuracy and guesses without a device.
#include <cstdint>
#include <string>
#include <vector>

struct sgdx_model;

namespace sgdx {

class Int8Model {
public:
    // Throws sgdx::Error naming `path` and the C API's message.
    explicit Int8Model(const std::string& path);
    size_t inputs() const { return inputs_; }
    size_t classes() const { return classes_; }
    // One image of uint8 pixels (inputs() of them) -> its class.
    uint32_t predict(const uint8_t* image);

private:
    std::string path_;
    std::vector<uint8_t> arena_;
    sgdx_model* model_ = nullptr;
    size_t inputs_ = 0, classes_ = 0;
};

}  // namespace sgdx
