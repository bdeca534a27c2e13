#include "reshape.hpp"

#include <cstring>

#include "backend.hpp"
#include "error.hpp"

namespace sgdx {

Shape View::configure(const Shape& input) {
    const size_t n = shape_size(input);
    size_t known = 1, free_dims = 0;
    for (size_t d : target_) {
        if (d == 0) ++free_dims;
        else known *= d;
    }
    Shape out = target_;
    if (free_dims > 1) throw Error(type_name() + ": at most one free dimension in " + shape_text(target_));
    if (free_dims == 1 && known && n % known == 0)
        for (size_t& d : out)
            if (d == 0) d = n / known;
    if (shape_size(out) != n || free_dims > 0 && n % known)
        throw Error(type_name() + ": cannot view a sample of shape " + shape_text(input) + " (" + std::to_string(n) +
                    " values) as " + shape_text(target_));
    return out;
}

void View::forward(const float* x, size_t batch, float* y) {
    std::memcpy(y, x, batch * in_features() * sizeof(float));
}

void View::backward(const float*, const float* dy, size_t batch, float* dx) {
    if (dx) std::memcpy(dx, dy, batch * in_features() * sizeof(float));
}

void View::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    active_kernels().scale_u8(x, scale, y, batch * in_features());
}

}  // namespace sgdx
