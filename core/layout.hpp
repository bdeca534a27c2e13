#pragma once
// How the host runs a chain of layers (the runtime's Sequential): which
// activations stay channels-last between convolutions, and which ReLUs run
// inside the Conv2d before them. Decided here from the layers' roles alone, as
// data each layer is handed (runtime/sequential: Module::set_layout), not by the
// container reaching into its layers. The device plans neither (its activations
// are NCHW and its ReLU an op of its own: core/ops).
//
// Channels-last: a Conv2d computes (pixels, channels); PyTorch's (channels,
// pixels) costs a transpose after it and one before the next conv's patches,
// and the same again in backward. So a conv whose output reaches, through ReLUs
// and pools only (neither minds the layout), another conv or a view hands it on
// channels-last, and that consumer takes it so. Everything else, the chain's own
// input and output included, stays PyTorch's layout.
//
// Fused ReLU: a ReLU straight after a Conv2d (not the last layer) runs inside
// it: the conv clamps its output, and in backward the consumer, whose input is
// that output, masks its input gradient (a Conv2d itself; any other layer's by
// the ReLU's backward, which the chain runs in place: `unmasked`). The tutorial
// CNN's separate ReLU passes were 7% of its training step.
#include <cstdint>

namespace sgdx::core {

// What the layout pass needs to know of a layer.
enum class LayoutRole : uint8_t {
    kOther,  // any other layer: PyTorch's layout in and out
    kConv,   // Conv2d: either layout in and out, a ReLU fused before or after
    kRelu,   // keeps whatever layout it is given
    kPool,   // MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: the same layout in and out
    kView,   // View, Flatten, Unflatten: may take a channels-last input
};

// What it decides for each layer.
struct LayerLayout {
    bool in_cl = false, out_cl = false;       // channels-last input / output, (n, h, w, c)
    bool relu_out = false, relu_in = false;   // kConv: a ReLU fused after it / before it
    bool fused = false;     // a kRelu run inside the conv before it: the chain skips it
    bool unmasked = false;  // its input gradient still needs the fused ReLU's mask (applied by the chain)
};

// roles[0, n) -> out[0, n).
void plan_layouts(const LayoutRole* roles, uint32_t n, LayerLayout* out);

}  // namespace sgdx::core
