// Shape inference, one rule per layer kind (core/shape.hpp).
#include "core/shape.hpp"

#include "core/pool.hpp"  // adaptive_fits
#include "core/setup.hpp"

namespace sgdx::core {

SGDX_SETUP_BEGIN

uint64_t SampleShape::size() const {
    uint64_t n = rank ? 1 : 0;
    for (uint32_t i = 0; i < rank; ++i)
        if (__builtin_mul_overflow(n, d[i], &n)) return UINT64_MAX;
    return n;
}

Text& shape_text(Text& t, const SampleShape& s) {
    t.c('[');
    for (uint32_t i = 0; i < s.rank; ++i) (i ? t.s(", ") : t).u(s.d[i]);
    return t.c(']');
}

bool window_output_size(uint64_t h, uint64_t w, uint64_t kh, uint64_t kw, uint64_t stride, uint64_t pad, uint32_t& oh,
                        uint32_t& ow) {
    if (stride == 0 || h + 2 * pad < kh || w + 2 * pad < kw) return false;
    const uint64_t rows = (h + 2 * pad - kh) / stride + 1, cols = (w + 2 * pad - kw) / stride + 1;
    if (rows > UINT32_MAX || cols > UINT32_MAX) return false;
    oh = uint32_t(rows), ow = uint32_t(cols);
    return true;
}

namespace {

SampleShape image(uint64_t c, uint64_t h, uint64_t w) {
    SampleShape s;
    s.rank = 3, s.d[0] = c, s.d[1] = h, s.d[2] = w;
    return s;
}

// An image sample whose sides the window layers' 32-bit geometry holds, or why not.
bool image_in(const SampleShape& in, const char* channels, uint64_t cin, Text& why) {
    if (in.rank != 3 || (cin && in.d[0] != cin)) {
        why.s("wants a sample of shape [");
        (cin ? why.u(cin) : why.s(channels)).s(", height, width], got ");
        return shape_text(why, in), false;
    }
    for (uint32_t i = 0; i < 3; ++i)
        if (in.d[i] > UINT32_MAX) return shape_text(why.s("input shape "), in).s(" is too large"), false;
    return true;
}

Text& plane(Text& t, uint64_t h, uint64_t w) { return t.u(h).c('x').u(w); }

}  // namespace

bool infer_linear(uint64_t in_features, uint64_t out_features, const SampleShape& in, SampleShape& out, Text& why) {
    if (in.size() != in_features) {
        shape_text(why.s("input shape "), in).s(" has ").u(in.size()).s(" values, not ").u(in_features);
        return why.s(" (in_features)"), false;
    }
    out = SampleShape{};
    out.rank = 1, out.d[0] = out_features;
    return true;
}

bool infer_conv(const ConvArgs& a, const SampleShape& in, SampleShape& out, Text& why) {
    if (!image_in(in, nullptr, a.cin, why)) return false;
    const uint64_t h = in.d[1], w = in.d[2];
    uint32_t oh, ow;
    if (!window_output_size(h, w, a.kh, a.kw, a.stride, a.pad, oh, ow)) {
        plane(why.s("a "), h, w).s(" input is ");
        if (h + 2 * a.pad >= a.kh && w + 2 * a.pad >= a.kw) return why.s("too large"), false;
        plane(why.s("smaller than the "), a.kh, a.kw).s(" kernel");
        if (a.pad) why.s(" with padding ").u(a.pad);
        return false;
    }
    return out = image(a.cout, oh, ow), true;
}

bool infer_pool(uint64_t kh, uint64_t kw, uint64_t stride, const SampleShape& in, SampleShape& out, Text& why) {
    if (!image_in(in, "channels", 0, why)) return false;
    uint32_t oh, ow;
    if (!window_output_size(in.d[1], in.d[2], kh, kw, stride, 0, oh, ow))
        return plane(plane(why.s("a "), in.d[1], in.d[2]).s(" plane is smaller than the "), kh, kw).s(" window"), false;
    return out = image(in.d[0], oh, ow), true;
}

bool infer_adaptive_pool(uint64_t oh, uint64_t ow, const SampleShape& in, SampleShape& out, Text& why) {
    if (!image_in(in, "channels", 0, why)) return false;
    const uint64_t h = in.d[1], w = in.d[2];
    if (h == 0 || w == 0) return why.s("the input plane is empty"), false;
    if (!adaptive_fits(h, w, oh, ow))
        return plane(plane(why, oh, ow).s(" outputs over a "), h, w)
                   .s(" plane: too large (input size times output size must stay below 2^32 on each side)"),
               false;
    return out = image(in.d[0], oh, ow), true;
}

bool infer_norm(uint64_t features, bool two_d, const SampleShape& in, SampleShape& out, Text& why) {
    const bool fits = two_d ? in.rank == 3 : in.rank == 1 || in.rank == 2;
    if (!fits || in.d[0] != features) {
        shape_text(why.s("input shape "), in).s(" is not (").u(features);
        if (two_d) return why.s(", H, W)"), false;
        return why.s(") or (").u(features).s(", L)"), false;
    }
    return out = in, true;
}

bool infer_view(const SampleShape& target, const SampleShape& in, SampleShape& out, Text& why) {
    const uint64_t n = in.size();
    uint64_t known = 1;
    uint32_t free_dims = 0, free_at = 0;
    bool wraps = n == UINT64_MAX;  // a product past 64 bits never matches
    for (uint32_t i = 0; i < target.rank; ++i) {
        if (target.d[i] == 0) ++free_dims, free_at = i;
        else wraps |= __builtin_mul_overflow(known, target.d[i], &known);
    }
    if (free_dims > 1) return shape_text(why.s("at most one free dimension in "), target), false;
    SampleShape s = target;
    if (free_dims && !wraps && n % known == 0) s.d[free_at] = n / known;
    if (target.rank == 0 || wraps || s.size() != n) {
        shape_text(why.s("cannot view a sample of shape "), in).s(" (").u(n).s(" values) as ");
        return shape_text(why, target), false;
    }
    return out = s, true;
}

SGDX_SETUP_END

}  // namespace sgdx::core
