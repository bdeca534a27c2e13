// The ops' table (core/ops.hpp): each layer kind's float forward, backward with
// the fused SGD update, and int8 forward, over the Cortex-M4 kernel set.
#include "core/ops.hpp"

#include <cstring>

#include "core/conv.hpp"
#include "core/linear.hpp"
#include "core/pool.hpp"
#include "core/setup.hpp"

#include "runtime/kernels/cortex_m4.hpp"
#include "runtime/kernels/kernels.hpp"

namespace sgdx::core {

// One copy, not one per op: -128 bytes of the firmware's flash.
__attribute__((noinline)) ConvGeometry conv_geometry(const LayerShape& l) {
    return {l.cin, l.h, l.w, l.cout, l.kh, l.kw, l.stride, l.pad, l.oh, l.ow};
}

namespace {

namespace m4 = sgdx::kernels::m4;  // the Cortex-M4 set (kernel_set()) and its int8 loops

// Every output row against each of the P patches in `in`: y: (cout, P).
void rows_i8(const Layer& l, const uint8_t* in, size_t P, float in_scale, float* y) {
    m4::rows_i8(l.qweight, l.qscale, l.bias, l.cout, l.patch(), in, P, in_scale, y);
}

SGDX_SETUP_BEGIN
// ---- Shape inference: core/shape's rules; l.cin, l.h, l.w are its input's, and
// the planner takes cout, oh, ow from `out`. Here what the op keeps besides.

// Linear flattens its input.
bool linear_infer(LayerShape& l, const LayerSpec& s, const SampleShape& in, SampleShape& out, const LayerShape*,
                  Text& why) {
    if (!infer_linear(s.in, s.out, in, out, why)) return false;
    l.cin = uint32_t(s.in), l.h = l.w = 1, l.nobias = !s.bias;
    return true;
}

bool conv_infer(LayerShape& l, const LayerSpec& s, const SampleShape& in, SampleShape& out, const LayerShape*,
                Text& why) {
    const uint32_t kh = s.kernel[0], kw = s.kernel[1], st = s.stride[0], pad = s.padding[0];
    if (!infer_conv({s.in, s.out, kh, kw, st, pad}, in, out, why)) return false;
    l.kh = kh, l.kw = kw, l.stride = st, l.pad = pad, l.nobias = !s.bias;
    return true;
}

// ReLU: the output is the input's shape.
bool same_infer(LayerShape&, const LayerSpec&, const SampleShape& in, SampleShape& out, const LayerShape*, Text&) {
    out = in;
    return true;
}

// Pools: stride s, no padding, PyTorch's floor mode; AdaptiveAvgPool2d(1) is
// an average pool over the whole image.
bool pool_infer(LayerShape& l, const LayerSpec& spec, const SampleShape& in, SampleShape& out, const LayerShape*,
                Text& why) {
    if (spec.kind == LayerKind::kAdaptiveAvgPool2d) {
        if (!infer_adaptive_pool(1, 1, in, out, why)) return false;
        l.kh = l.stride = l.h, l.kw = l.w;
        return true;
    }
    if (!infer_pool(spec.kernel[0], spec.kernel[1], spec.stride[0], in, out, why)) return false;
    l.kh = spec.kernel[0], l.kw = spec.kernel[1], l.stride = spec.stride[0];
    return true;
}

// Folded into the layer before: it must be a Linear or Conv2d's output. Keeps
// eps (float bits) in kh, affine in kw (core/plan's norm_eps).
bool norm_infer(LayerShape& l, const LayerSpec& s, const SampleShape& in, SampleShape& out, const LayerShape* prev,
                Text& why) {
    if (!prev || !prev->learns() || l.cin != prev->cout || l.h != prev->oh || l.w != prev->ow)
        return why.s("the C API folds a BatchNorm into a Linear or Conv2d directly before it"), false;
    if (!infer_norm(s.in, s.kind == LayerKind::kBatchNorm2d, in, out, why)) return false;
    const float eps = float(s.eps.value);
    std::memcpy(&l.kh, &eps, 4);
    l.kw = s.affine;
    return true;
}
SGDX_SETUP_END

// ---- Linear: in (n, D), weight (C, D) -> out (n, C): core/linear, as the runtime's ----

void linear_forward(const Layer& l, const float* in, uint32_t n, const OpScratch&) {
    core::linear_forward(m4::kernel_set(), in, l.weight, l.bias, l.out, n, l.patch(), l.cout);
}

// Updated row by row, so its gradient is never stored whole; dx first, from the
// weights before the step.
bool linear_backward(const Layer& l, const float* in, float* dy, float* dx, uint32_t n, const OpScratch& s,
                     const SgdStep& step) {
    const auto& k = m4::kernel_set();
    const size_t D = l.patch(), C = l.cout;
    if (dx) linear_input_grad(k, dy, l.weight, dx, n, D, C);
    linear_sgd_rows(k, in, dy, l.weight, l.bias, l.vweight, l.vbias, s.row, n, D, C, step);
    return dx != nullptr;
}

bool linear_int8(const Layer& l, const uint8_t* q, float q_scale, float*, float* next, uint8_t*) {
    rows_i8(l, q, 1, q_scale, next);
    return true;
}

// ---- Conv2d: core/conv's per-image strategy (the runtime's layer: its by-position one) ----

void conv_forward(const Layer& l, const float* in, uint32_t n, const OpScratch& s) {
    core::conv_forward_images(m4::kernel_set(), conv_geometry(l), l.weight, l.bias, in, l.out, n, s.patches);
}

// The gradients summed over the batch's images, then one step.
bool conv_backward(const Layer& l, const float* in, float* dy, float* dx, uint32_t n, const OpScratch& s,
                   const SgdStep& step) {
    const auto& k = m4::kernel_set();
    core::conv_backward_images(k, conv_geometry(l), l.weight, in, dy, dx, n, l.gweight, l.gbias, s.patches);
    sgd_step(k, step, l.weight, l.gweight, l.vweight, l.cout * l.patch());
    sgd_step(k, step, l.bias, l.gbias, l.vbias, l.cout);
    return dx != nullptr;
}

// Patches by position, so each is contiguous like a weight row.
bool conv_int8(const Layer& l, const uint8_t* q, float q_scale, float*, float* next, uint8_t* qcols) {
    im2row_u8(conv_geometry(l), q, qcols);
    rows_i8(l, qcols, l.positions(), q_scale, next);
    return true;
}

// ---- ReLU: in place, its output is its input's buffer ----

void relu_forward(const Layer& l, const float* in, uint32_t n, const OpScratch&) {
    m4::kernel_set().relu_forward(in, l.out, n * l.out_size());
}

// y > 0 exactly where x > 0: the gradient stays in dy.
bool relu_backward(const Layer& l, const float*, float* dy, float* dx, uint32_t n, const OpScratch&, const SgdStep&) {
    if (dx) m4::kernel_set().relu_backward(l.out, dy, dy, n * l.out_size());
    return false;
}

bool relu_int8(const Layer& l, const uint8_t*, float, float* cur, float*, uint8_t*) {
    m4::kernel_set().relu_forward(cur, cur, l.out_size());
    return false;
}

// ---- MaxPool2d, AvgPool2d (and AdaptiveAvgPool2d(1)): core/pool, as the runtime's layers ----

// One copy, not one per op (as conv_geometry() above).
__attribute__((noinline)) PoolGeometry pool_geometry(const Layer& l) {
    return {l.cin, l.h, l.w, l.oh, l.ow, l.kh, l.kw, l.stride, false, l.kind == kMaxPool};
}

void pool_forward(const Layer& l, const float* in, uint32_t n, const OpScratch&) {
    core::pool_forward(pool_geometry(l), in, l.out, n);
}

bool pool_backward(const Layer& l, const float* in, float* dy, float* dx, uint32_t n, const OpScratch&,
                   const SgdStep&) {
    if (dx) core::pool_backward(pool_geometry(l), in, dy, dx, n);
    return dx != nullptr;
}

bool pool_int8(const Layer& l, const uint8_t*, float, float* cur, float* next, uint8_t*) {
    core::pool_forward(pool_geometry(l), cur, next, 1);
    return true;
}

// ---- kNorm: folded into the layer before as the weights load (inference-only models) ----

void norm_forward(const Layer&, const float*, uint32_t, const OpScratch&) {}
bool norm_backward(const Layer&, const float*, float*, float*, uint32_t, const OpScratch&, const SgdStep&) {
    return false;
}
bool norm_int8(const Layer&, const uint8_t*, float, float*, float*, uint8_t*) { return false; }

}  // namespace

constexpr OpImpl kOps[kOpCount] = {
    /* kLinear  */ {linear_infer, kWeights | kRow, linear_forward, linear_backward, linear_int8},
    /* kConv    */ {conv_infer, kWeights | kGradSums | kPatches, conv_forward, conv_backward, conv_int8},
    /* kRelu    */ {same_infer, kInPlace, relu_forward, relu_backward, relu_int8},
    /* kMaxPool */ {pool_infer, 0, pool_forward, pool_backward, pool_int8},
    /* kAvgPool */ {pool_infer, 0, pool_forward, pool_backward, pool_int8},
    /* kNorm    */ {norm_infer, kInPlace, norm_forward, norm_backward, norm_int8},
};

}  // namespace sgdx::core
