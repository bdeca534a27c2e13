#pragma once
// int8 inference over a net of core/ops layers (core/net's buffers), as the C
// API's _int8 calls and the firmware run it: each learning layer's weights
// int8 with a float scale per row, its input quantised to uint8 per image (the
// first layer reads the pixels themselves), products summed in int32 (SMLAD
// on a Cortex-M4: runtime/kernels/cortex_m4), the rest of each layer in float.
// One image at a time, in the net's two qact buffers. No heap, no exceptions.
#include <cstdint>

#include "core/net.hpp"

namespace sgdx::core {

// One image (pixels, uint8) through the layers' int8 weights -> its class (the
// first maximum); the logits stay in one of b.qact.
uint32_t predict_int8(const Layer* layers, uint32_t count, const NetBuffers& b, const uint8_t* image,
                      uint32_t classes);

// Every learning layer's float weights into its int8 ones: a scale per row
// (per_row) or one for the whole tensor, max |w| / 127. False at the first row
// whose weights are not all finite (the layers before it are quantised).
bool quantize(const Layer* layers, uint32_t count, bool per_row);

}  // namespace sgdx::core
