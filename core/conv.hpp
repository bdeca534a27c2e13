#pragma once
// nn.Conv2d's forward and backward, written once: the runtime's layer
// (runtime/conv2d: its PyTorch face, buffers and thread split) and the C API's
// op (core/ops) both call these. A sample is (cin, h, w) -> (cout, oh, ow); the
// weight (cout, cin, kh, kw) is PyTorch's.
//
// Two strategies, both a gemm over patch matrices from a kernel set:
// - Per image, by patch (the device's): cols (patch, positions), y = bias +
//   weight · cols, each output summed in one fixed order (the Cortex-M4 set's
//   gemm), so a PC computes the firmware's bits. Channels-first, any kh x kw.
// - By position (the host's): a chunk of samples as (samples x positions, patch)
//   rows, the gemm putting channels along the vector lanes; channels-first or
//   channels-last in and out (a Sequential's layout between convolutions), a
//   ReLU fused before or after, the patches kept for backward where the caller
//   wants; or the kernel set's direct channels-last kernels with no patch
//   matrix. Square kernels (the runtime's Conv2d).
//
// No allocation, no exceptions (core/): the caller sizes every buffer.
#include <cstddef>
#include <cstdint>

namespace sgdx::kernels {
struct KernelSet;
struct ConvShape;
}  // namespace sgdx::kernels

namespace sgdx::core {

// One sample: (cin, h, w) -> (cout, oh, ow); a kh x kw window every `stride`
// pixels over the input padded by `pad` zeros each side (core/shape's
// window_output_size gives oh, ow).
struct ConvGeometry {
    uint32_t cin, h, w, cout, kh, kw, stride, pad, oh, ow;
    size_t patch() const { return size_t(cin) * kh * kw; }  // one window's values
    size_t positions() const { return size_t(oh) * ow; }  // output pixels per channel
    size_t in_size() const { return size_t(cin) * h * w; }
    size_t out_size() const { return size_t(cout) * oh * ow; }
};

// ---- Per image, by patch: the device's strategy ---------------------------------

// x: (cin, h, w) -> cols: (patch, positions), zero where a window leaves the image
void im2col(const ConvGeometry& g, const float* x, float* cols);
// cols: (patch, positions) -> dx: (cin, h, w) overwritten, the sum of every window's share
void col2im(const ConvGeometry& g, const float* cols, float* dx);
// x: (cin, h, w) uint8 -> rows: (positions, patch), a window per row (contiguous,
// like a weight row: the int8 dot products' input), zero where it leaves the image
void im2row_u8(const ConvGeometry& g, const uint8_t* x, uint8_t* rows);

// x: (n, cin, h, w), weight: (cout, patch), bias: (cout) -> y: (n, cout, oh, ow);
// y = bias, then += weight · cols. cols: patch x positions floats of scratch.
void conv_forward_images(const kernels::KernelSet& k, const ConvGeometry& g, const float* weight, const float* bias,
                         const float* x, float* y, size_t n, float* cols);
// x: (n, cin, h, w), dy: (n, cout, oh, ow) -> gweight: (cout, patch) and gbias:
// (cout) overwritten with the sums over the n images; dx: (n, cin, h, w) from
// the weight as it is (if not null). cols: as conv_forward_images.
void conv_backward_images(const kernels::KernelSet& k, const ConvGeometry& g, const float* weight, const float* x,
                          const float* dy, float* dx, size_t n, float* gweight, float* gbias, float* cols);

// ---- By position: the host's strategy ------------------------------------------

// How the host runs a layer, set by its Sequential's layout pass (core/layout).
struct ConvForm {
    bool in_cl = false, out_cl = false;  // channels-last (n, h, w, c) input / output
    bool relu_out = false;  // a ReLU after it, fused: y = max(y, 0)
    bool relu_in = false;   // a ReLU before it, fused: dx masked where x <= 0 (x is the ReLU's output)
    // A channels-last input with several channels builds its patches in (ki, kj,
    // ci) order, one contiguous span per kernel row (with one channel both orders
    // are the same bytes): the weight is then used in that column order.
    bool cl_patches(const ConvGeometry& g) const { return in_cl && g.cin > 1; }
};

// Whether the set's direct channels-last kernels run the layer (no patch matrix):
// where it has them, for a channels-last output and input (one input channel is
// either layout).
bool conv_direct(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f);
// Whether backward computes the input gradient by conv_input_grad_cl (no dcols,
// no col2im): for a channels-last input, directly at any stride, by patches from
// stride 2 (conv.cpp says why).
bool conv_input_grad_by_phase(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f);
// The kernels' shape for n samples, the fused ReLU's mask being x (dx's input).
kernels::ConvShape conv_shape(const ConvGeometry& g, const ConvForm& f, size_t n, const float* x);

// One zero-padded sample, the patch builders' scratch: (cin, h + 2 pad, w + 2 pad + 1).
size_t padded_size(const ConvGeometry& g);
// weight: (cout, cin, k, k) -> w_out: (cout, patch) in the patch matrix's column
// order (a copy only for cl_patches; else returns weight itself).
const float* weight_in_patch_order(const ConvGeometry& g, const ConvForm& f, const float* weight, float* w_out);

// A part's working buffers (runtime/conv2d keeps them: Conv2d::reserve).
struct ConvScratch {
    float* cols;          // (chunk·positions, patch), unless the patches were saved
    float* by_pixel;      // (chunk·positions, cout): the gemm's output, or dy transposed
    float* padded;        // padded_size()
    float* dcols;         // (rows·positions, patch): dx by gemm + col2im (rows: chunk, or n when direct)
    float* dwt;           // (patch·cout): the weight gradient in the gemm's layout
    float* channel_sums;  // (cout)
};
// How many floats each of them needs for n samples a call (a chunk of the patch
// path, a whole part of the direct one), for a forward or a backward with or
// without dx; 0 where the call does not touch it.
struct ConvScratchSizes {
    size_t cols, by_pixel, padded, dcols, dwt, channel_sums;
};
ConvScratchSizes conv_scratch_sizes(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, size_t n,
                                    bool backward, bool dx);

// The per-image strategy's scratch: one image's patches, (patch, positions).
inline size_t conv_images_scratch(const ConvGeometry& g) { return g.patch() * g.positions(); }

// x: n samples, `chunk` at a time -> y; wt: weight_in_patch_order. saved: (n·positions, patch)
// to keep the patches in for backward, or null (then s.cols).
void conv_forward_rows(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                       size_t n, size_t chunk, const float* wt, const float* bias, float* y, float* saved,
                       const ConvScratch& s);
// dy -> dw: (cout, patch) and db: (cout) added into; dx (if not null); saved: the
// forward's patches of these n samples, or null (built again).
void conv_backward_rows(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                        const float* dy, float* dx, size_t n, size_t chunk, const float* wt, const float* saved,
                        float* dw, float* db, const ConvScratch& s);

// The direct kernels (conv_direct): n whole samples, nothing saved.
void conv_forward_direct(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                         size_t n, const float* weight, const float* bias, float* y);
void conv_backward_direct(const kernels::KernelSet& k, const ConvGeometry& g, const ConvForm& f, const float* x,
                          const float* dy, float* dx, size_t n, const float* wt, float* dw, float* db,
                          const ConvScratch& s);

}  // namespace sgdx::core
