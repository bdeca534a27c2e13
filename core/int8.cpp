// int8 inference (core/int8.hpp) over the ops' int8 forwards (core/ops).
#include "core/int8.hpp"

#include <cmath>

#include "core/setup.hpp"
#include "runtime/kernels/cortex_m4.hpp"

namespace sgdx::core {

namespace m4 = sgdx::kernels::m4;

uint32_t predict_int8(const Layer* layers, uint32_t count, const NetBuffers& b, const uint8_t* image,
                      uint32_t classes) {
    const uint8_t* q = image;  // the first layer reads the pixels themselves
    float q_scale = kPixelScale;
    float* cur = b.qact[0];
    float* next = b.qact[1];
    for (uint32_t i = 0; i < count; ++i) {
        const Layer& l = layers[i];
        if (l.learns() && q != image) q_scale = m4::quantize_input(cur, l.in_size(), b.qin), q = b.qin;
        if (!op(l).forward_int8(l, q, q_scale, cur, next, b.qcols)) continue;  // in place
        float* t = cur;
        cur = next, next = t;
        q = nullptr;
    }
    return argmax(cur, classes);
}

SGDX_SETUP_BEGIN
bool quantize(const Layer* layers, uint32_t count, bool per_row) {
    for (uint32_t i = 0; i < count; ++i) {
        const Layer& l = layers[i];
        if (!l.learns()) continue;
        const size_t D = l.patch(), C = l.cout;
        const float tensor_max = m4::max_abs(l.weight, C * D);
        for (size_t c = 0; c < C; ++c) {
            const float* w = l.weight + c * D;
            const float max = per_row ? m4::max_abs(w, D) : tensor_max;
            if (!std::isfinite(max)) return false;
            m4::quantize_row(w, D, max, l.qweight + c * D, &l.qscale[c]);
        }
    }
    return true;
}
SGDX_SETUP_END

}  // namespace sgdx::core
