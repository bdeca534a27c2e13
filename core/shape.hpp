#pragma once
// Shape inference, one rule per layer kind: what sample a layer gives for the
// sample it is given, or why it cannot take it. The runtime's modules
// (Module::configure: runtime/linear, conv2d, pooling, batchnorm, reshape) and
// the C API's ops (core/ops' infer, through core/plan's Planner) both call
// these, so a shape is accepted, computed and refused in the same words
// everywhere: `sgdx train`, the page and the device. The caller names the layer
// ("Linear(100, 10): ", "line 2: (0): Linear: "); `why` gets the rest.
//
// Allocation-free and exception-free like the rest of core/.
#include <cstdint>

#include "core/text.hpp"

namespace sgdx::core {

// One sample without the batch, as PyTorch shapes it: [784] features, or
// [1, 28, 28] channels, rows, columns (any rank the reshapes make).
constexpr uint32_t kSampleMaxRank = 4;  // PyTorch images are 3: one more for a View of them
struct SampleShape {
    uint32_t rank = 0;
    uint64_t d[kSampleMaxRank] = {};
    uint64_t size() const;  // the values in it (0 for rank 0; UINT64_MAX past 64 bits)
};
// "[1, 28, 28]"
Text& shape_text(Text& t, const SampleShape& s);

// A window layer's output size (Conv2d, and the strided pools with pad 0):
// floor((h + 2 pad - kh) / stride) + 1 rows, the same for columns; false if the
// padded plane is smaller than the window (or stride is 0), or a side would
// not fit 32 bits.
bool window_output_size(uint64_t h, uint64_t w, uint64_t kh, uint64_t kw, uint64_t stride, uint64_t pad, uint32_t& oh,
                        uint32_t& ow);

// Linear flattens its input: any shape of in_features values -> [out_features].
bool infer_linear(uint64_t in_features, uint64_t out_features, const SampleShape& in, SampleShape& out, Text& why);

// Conv2d: [cin, h, w] -> [cout, oh, ow].
struct ConvArgs {
    uint64_t cin, cout, kh, kw, stride, pad;
};
bool infer_conv(const ConvArgs& a, const SampleShape& in, SampleShape& out, Text& why);

// MaxPool2d / AvgPool2d without padding: [c, h, w] -> [c, oh, ow].
bool infer_pool(uint64_t kh, uint64_t kw, uint64_t stride, const SampleShape& in, SampleShape& out, Text& why);
// AdaptiveAvgPool2d((oh, ow)): [c, h, w] -> [c, oh, ow].
bool infer_adaptive_pool(uint64_t oh, uint64_t ow, const SampleShape& in, SampleShape& out, Text& why);

// BatchNorm1d (two_d false: [features] or [features, L]) and BatchNorm2d
// ([features, h, w]): the shape passes unchanged.
bool infer_norm(uint64_t features, bool two_d, const SampleShape& in, SampleShape& out, Text& why);

// View, Flatten, Unflatten: the same values as `target` (one 0 there takes the
// rest, as PyTorch's -1).
bool infer_view(const SampleShape& target, const SampleShape& in, SampleShape& out, Text& why);

}  // namespace sgdx::core
