// The host's layout pass over a chain of layers (core/layout.hpp).
#include "core/layout.hpp"

namespace sgdx::core {

void plan_layouts(const LayoutRole* roles, uint32_t n, LayerLayout* out) {
    for (uint32_t i = 0; i < n; ++i) out[i] = LayerLayout{};
    // Channels-last runs: from a conv through ReLUs and pools to a conv or a view.
    for (uint32_t i = 0; i < n; ++i) {
        if (roles[i] != LayoutRole::kConv) continue;
        uint32_t j = i + 1;
        while (j < n && (roles[j] == LayoutRole::kRelu || roles[j] == LayoutRole::kPool)) ++j;
        if (j == n || (roles[j] != LayoutRole::kConv && roles[j] != LayoutRole::kView)) continue;
        out[i].out_cl = true;
        for (uint32_t m = i + 1; m < j; ++m) out[m].in_cl = out[m].out_cl = true;
        out[j].in_cl = true;
    }
    // ReLUs fused into the conv before them.
    for (uint32_t i = 1; i + 1 < n; ++i) {
        if (roles[i - 1] != LayoutRole::kConv || roles[i] != LayoutRole::kRelu) continue;
        out[i].fused = true;
        out[i - 1].relu_out = true;
        if (roles[i + 1] == LayoutRole::kConv) out[i + 1].relu_in = true;
        else out[i + 1].unmasked = true;
    }
}

}  // namespace sgdx::core
