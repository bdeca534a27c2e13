#pragma once
// Pooling over each channel's (h, w) plane — nn.MaxPool2d, nn.AvgPool2d and
// nn.AdaptiveAvgPool2d — written once: the runtime's layers (runtime/pooling)
// and the C API's ops (core/ops) both call these. A sample is (c, h, w) ->
// (c, oh, ow); each output reads one window of its plane.
//
// Channels-first (NCHW, PyTorch's and the device's layout) and channels-last
// (NHWC, the host's layout between convolutions: runtime/sequential) forms;
// each channel's windows are read in the same order in both, so both give the
// same values. The channels-last max pool is the kernel set's
// (maxpool_forward_cl / maxpool_backward_cl, SIMD on the host).
//
// Rules, PyTorch's: a max pool's window yields its first maximum, a NaN
// anywhere in it wins (the first NaN stays); its gradient goes to that element.
// An average is the window's sum divided by its area; its gradient dy / area
// goes to each element of the window.
//
// No allocation, no exceptions (core/).
#include <cstddef>
#include <cstdint>

namespace sgdx::kernels {
struct KernelSet;
}

namespace sgdx::core {

// Strided windows' output size: core/shape's window_output_size with pad 0.
struct PoolGeometry {
    uint32_t c, h, w;   // input sample (channels, rows, cols)
    uint32_t oh, ow;    // output plane
    uint32_t kh, kw;    // strided windows: kh x kw ...
    uint32_t stride;    // ... every stride pixels, no padding
    bool adaptive;      // instead PyTorch's adaptive windows: rows [floor(i h / oh), ceil((i + 1) h / oh))
    bool max;           // max pool, else average
};

// Output (oi, oj)'s window: rows [h0, h1), columns [w0, w1).
struct PoolWindow {
    uint32_t h0, h1, w0, w1;
};

// In 32 bits (64-bit divisions cost the firmware 700 bytes of flash): adaptive
// windows need h·oh + oh and w·ow + ow below 2^32 (adaptive_fits).
inline PoolWindow pool_window(const PoolGeometry& g, uint32_t oi, uint32_t oj) {
    if (g.adaptive)
        return {oi * g.h / g.oh, ((oi + 1) * g.h + g.oh - 1) / g.oh, oj * g.w / g.ow, ((oj + 1) * g.w + g.ow - 1) / g.ow};
    return {oi * g.stride, oi * g.stride + g.kh, oj * g.stride, oj * g.stride + g.kw};
}

// Whether pool_window's adaptive bounds stay within 32 bits for this plane.
inline bool adaptive_fits(uint64_t h, uint64_t w, uint64_t oh, uint64_t ow) {
    return h * oh + oh <= UINT32_MAX && w * ow + ow <= UINT32_MAX;
}

// x: (n, c, h, w) -> y: (n, c, oh, ow)
void pool_forward(const PoolGeometry& g, const float* x, float* y, size_t n);
// x: (n, c, h, w), dy: (n, c, oh, ow) -> dx: (n, c, h, w), overwritten
void pool_backward(const PoolGeometry& g, const float* x, const float* dy, float* dx, size_t n);

// The same on channels-last samples: x: (n, h, w, c) -> y: (n, oh, ow, c).
// A max pool takes strided square windows (kh == kw) and the set's kernels;
// an average uses acc: (c) scratch.
void pool_forward_cl(const kernels::KernelSet& k, const PoolGeometry& g, const float* x, float* y, size_t n,
                     float* acc);
// x: (n, h, w, c), dy: (n, oh, ow, c) -> dx: (n, h, w, c), overwritten
void pool_backward_cl(const kernels::KernelSet& k, const PoolGeometry& g, const float* x, const float* dy, float* dx,
                      size_t n, float* acc);

}  // namespace sgdx::core
