// Pooling's forward and backward (core/pool.hpp), channels-first and
// channels-last.
#include "core/pool.hpp"

#include <cstring>

#include "runtime/kernels/kernels.hpp"

namespace sgdx::core {
namespace {

// v takes the place of the window's maximum m so far if it is greater, or if it
// is NaN and m is not: ties keep the first maximum, the first NaN wins and stays.
// (!(v <= m) is v > m or either NaN; PyTorch's (v > m) || isnan(v).)
inline bool max_takes(float v, float m) { return !(v <= m) && m == m; }

inline float area(uint32_t rows, uint32_t cols) { return float(rows) * float(cols); }
inline float area(const PoolWindow& win) { return area(win.h1 - win.h0, win.w1 - win.w0); }

kernels::PoolShape pool_shape(const PoolGeometry& g, size_t n) {
    return {n, g.h, g.w, g.c, g.oh, g.ow, g.kh, g.stride};
}

// One window's first maximum or mean; `first`: its top-left value, rows W apart.
inline float window_value(bool max, const float* first, uint32_t rows, uint32_t cols, size_t W) {
    if (max) {
        float m = first[0];
        for (uint32_t i = 0; i < rows; ++i, first += W)
            for (uint32_t j = 0; j < cols; ++j) m = max_takes(first[j], m) ? first[j] : m;
        return m;
    }
    float sum = 0.f;
    for (uint32_t i = 0; i < rows; ++i, first += W)
        for (uint32_t j = 0; j < cols; ++j) sum += first[j];
    return sum / area(rows, cols);
}

}  // namespace

// ---- Channels-first: (n, c, h, w), a plane at a time ----

void pool_forward(const PoolGeometry& g, const float* x, float* y, size_t n) {
    const size_t W = g.w, plane_size = size_t(g.h) * W;
    for (size_t p = 0; p < n * g.c; ++p) {
        const float* plane = x + p * plane_size;
        if (!g.adaptive) {  // the device's: windows one stride apart, kh x kw each
            for (uint32_t oi = 0; oi < g.oh; ++oi) {
                const float* first = plane + size_t(oi) * g.stride * W;
                for (uint32_t oj = 0; oj < g.ow; ++oj, first += g.stride)
                    *y++ = window_value(g.max, first, g.kh, g.kw, W);
            }
            continue;
        }
        for (uint32_t oi = 0; oi < g.oh; ++oi)
            for (uint32_t oj = 0; oj < g.ow; ++oj) {
                const PoolWindow win = pool_window(g, oi, oj);
                *y++ = window_value(g.max, plane + size_t(win.h0) * W + win.w0, win.h1 - win.h0, win.w1 - win.w0, W);
            }
    }
}

void pool_backward(const PoolGeometry& g, const float* x, const float* dy, float* dx, size_t n) {
    const size_t plane_size = size_t(g.h) * g.w;
    std::memset(dx, 0, n * g.c * plane_size * sizeof(float));
    for (size_t p = 0; p < n * g.c; ++p) {
        const float* plane = x + p * plane_size;
        float* dplane = dx + p * plane_size;
        for (uint32_t oi = 0; oi < g.oh; ++oi)
            for (uint32_t oj = 0; oj < g.ow; ++oj) {
                const PoolWindow win = pool_window(g, oi, oj);
                const size_t at = size_t(win.h0) * g.w + win.w0;
                const uint32_t rows = win.h1 - win.h0, cols = win.w1 - win.w0;
                if (g.max) {
                    size_t arg = at;
                    for (uint32_t i = 0; i < rows; ++i)
                        for (uint32_t j = 0; j < cols; ++j) {
                            const size_t k = at + size_t(i) * g.w + j;
                            if (max_takes(plane[k], plane[arg])) arg = k;
                        }
                    dplane[arg] += *dy++;
                } else {
                    const float share = *dy++ / area(win);
                    for (uint32_t i = 0; i < rows; ++i)
                        for (uint32_t j = 0; j < cols; ++j) dplane[at + size_t(i) * g.w + j] += share;
                }
            }
    }
}

// ---- Channels-last: (n, h, w, c), a pixel's channels innermost ----
// The average's loops keep each channel's running sum in acc, adding its
// window's values in the planes' order (the same results as above).

void pool_forward_cl(const kernels::KernelSet& k, const PoolGeometry& g, const float* x, float* y, size_t n,
                     float* acc) {
    if (g.max) return k.maxpool_forward_cl(x, y, pool_shape(g, n));
    const size_t C = g.c;
    for (size_t b = 0; b < n; ++b)
        for (uint32_t oi = 0; oi < g.oh; ++oi)
            for (uint32_t oj = 0; oj < g.ow; ++oj) {
                const PoolWindow win = pool_window(g, oi, oj);
                for (size_t c = 0; c < C; ++c) acc[c] = 0.f;
                for (uint32_t i = win.h0; i < win.h1; ++i)
                    for (uint32_t j = win.w0; j < win.w1; ++j) {
                        const float* v = x + ((b * g.h + i) * g.w + j) * C;
                        for (size_t c = 0; c < C; ++c) acc[c] += v[c];
                    }
                const float a = area(win);
                float* out = y + ((b * g.oh + oi) * g.ow + oj) * C;
                for (size_t c = 0; c < C; ++c) out[c] = acc[c] / a;
            }
}

void pool_backward_cl(const kernels::KernelSet& k, const PoolGeometry& g, const float* x, const float* dy, float* dx,
                      size_t n, float* acc) {
    if (g.max) return k.maxpool_backward_cl(x, dy, dx, pool_shape(g, n));
    const size_t C = g.c;
    std::memset(dx, 0, n * g.h * g.w * C * sizeof(float));
    for (size_t b = 0; b < n; ++b)
        for (uint32_t oi = 0; oi < g.oh; ++oi)
            for (uint32_t oj = 0; oj < g.ow; ++oj) {
                const PoolWindow win = pool_window(g, oi, oj);
                const float a = area(win);
                const float* g_out = dy + ((b * g.oh + oi) * g.ow + oj) * C;
                for (size_t c = 0; c < C; ++c) acc[c] = g_out[c] / a;
                for (uint32_t i = win.h0; i < win.h1; ++i)
                    for (uint32_t j = win.w0; j < win.w1; ++j) {
                        float* d = dx + ((b * g.h + i) * g.w + j) * C;
                        for (size_t c = 0; c < C; ++c) d[c] += acc[c];
                    }
            }
}

}  // namespace sgdx::core
