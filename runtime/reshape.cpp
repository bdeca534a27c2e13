#include "reshape.hpp"

#include <cstring>

#include "backend.hpp"
#include "error.hpp"

namespace sgdx {

Shape View::configure(const Shape& input) {
    return inferred_shape(type_name(), input, [&](auto& in, auto& out, auto& why) {
        core::SampleShape target;
        if (target_.size() > core::kSampleMaxRank) return why.s("a target of more than ").u(core::kSampleMaxRank).s(" dimensions"), false;
        target.rank = uint32_t(target_.size());
        for (size_t i = 0; i < target_.size(); ++i) target.d[i] = target_[i];
        return core::infer_view(target, in, out, why);
    });
}

// Between (C, H, W) and (H, W, C) a sample at a time; a copy when either side
// is a single plane or pixel (the same bytes).
void View::transpose(const float* x, size_t batch, float* y, bool to_cl) const {
    const Shape& in = input_shape();  // (C, H, W) when cl_in_: a convolution's output
    if (!cl_in_ || in[0] == 1 || in[1] * in[2] == 1) {
        std::memcpy(y, x, batch * in_features() * sizeof(float));
        return;
    }
    const size_t c = in[0], p = in[1] * in[2];
    for (size_t b = 0; b < batch; ++b) {
        const float* xb = x + b * c * p;
        float* yb = y + b * c * p;
        for (size_t ci = 0; ci < c; ++ci)
            for (size_t i = 0; i < p; ++i) {
                if (to_cl) yb[i * c + ci] = xb[ci * p + i];
                else yb[ci * p + i] = xb[i * c + ci];
            }
    }
}

void View::forward(const float* x, size_t batch, float* y) { transpose(x, batch, y, false); }

void View::backward(const float*, const float* dy, size_t batch, float* dx) {
    if (dx) transpose(dy, batch, dx, true);
}

void View::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    active_kernels().scale_u8(x, scale, y, batch * in_features());
}

}  // namespace sgdx
