#pragma once
// The layers the C API (device/sgdx_c.cpp) runs, as ops: a planned layer
// (core/plan's LayerShape) with its slices of an arena, and one constexpr table
// entry per PlanKind holding its shape inference (called by core/plan's
// Planner), what it asks of the arena (OpNeeds: read by core/net's NetArena)
// and what it does — its float forward, its backward (a learning layer's SGD
// update fused into it: Linear's row by row, its weight gradient never stored
// whole) and its int8 forward.
//
// A plain table of function pointers, not classes: no virtuals, no static
// constructors, no heap, no exceptions, so the firmware and the host run the
// same object code (compiled once in sgdx_core). The products are the
// Cortex-M4 kernel set's (runtime/kernels/cortex_m4, kernels::m4::kernel_set()):
// every output is summed in one fixed order, so a PC computes the firmware's
// bits. Linear is core/linear's, pooling core/pool's and Conv2d core/conv's,
// which the runtime's layers run too.
//
// Activations are NCHW like PyTorch's, so View and Flatten move nothing and are
// no op (core/plan drops them); a kNorm (a BatchNorm folded into the layer
// before as the weights load) is an op that does nothing.
#include <cstddef>
#include <cstdint>

#include "core/conv.hpp"    // ConvGeometry
#include "core/linear.hpp"  // SgdStep
#include "core/plan.hpp"

namespace sgdx::core {

// A planned layer (a kNorm's out is its input's buffer) and its buffers in the arena.
struct Layer : LayerShape {
    float *weight, *bias;          // (cout, patch), (cout)
    float *vweight, *vbias;        // momentum, if any
    float *gweight, *gbias;        // Conv only: gradients summed over the batch's images
    int8_t* qweight;               // (cout, patch)
    float* qscale;                 // (cout)
    float* out;                    // (max_batch, out_size); a ReLU's is its input's
};

// Buffers the layers share (the net's, in the arena).
struct OpScratch {
    float* patches;  // (largest patch * positions) one image's patches: Conv
    float* row;      // (longest Linear row) one row's weight gradient: Linear
};

// What an op asks of the arena besides its output (NetArena, core/net, reads it).
enum OpNeeds : uint8_t {
    kWeights = 1,    // weight (cout, patch) and bias (cout), with their momentum and int8 copies
    kGradSums = 2,   // training: weight and bias gradients summed over the batch (Conv2d)
    kRow = 4,        // the net's row buffer, one weight row long (Linear's row-wise update)
    kPatches = 8,    // the net's patch buffers, float and int8: patch x positions (Conv2d)
    kInPlace = 16,   // no output buffer: it works in its input's (ReLU, kNorm)
};

struct OpImpl {
    // l arrives with its kind, its input sample (cin, h, w; `in` as PyTorch
    // shapes it) and its names: the output sample into `out` (core/shape's rule
    // for the kind) and its window into l, or false with why it does not work.
    // prev: the layer planned before it, or nullptr.
    bool (*infer)(LayerShape& l, const LayerSpec& s, const SampleShape& in, SampleShape& out, const LayerShape* prev,
                  Text& why);
    uint8_t needs;  // OpNeeds
    // x: (n, in_size) -> l.out: (n, out_size)
    void (*forward)(const Layer& l, const float* x, uint32_t n, const OpScratch& s);
    // dy: (n, out_size) -> dx: (n, in_size) unless dx is null (no input gradient
    // wanted); a learning layer's weights are updated by `sgd` after its dx is
    // computed. Returns whether the input gradient is now in dx (false: there is
    // none, or it was computed in place in dy).
    bool (*backward)(const Layer& l, const float* x, float* dy, float* dx, uint32_t n, const OpScratch& s,
                     const SgdStep& sgd);
    // One image, int8 weights: a learning layer reads q (its input quantised at
    // q_scale), any other `cur` (the previous layer's floats); the result goes to
    // `next`, or stays in `cur` (returns false). qcols: (positions, patch) scratch.
    bool (*forward_int8)(const Layer& l, const uint8_t* q, float q_scale, float* cur, float* next, uint8_t* qcols);
};

// Indexed by PlanKind.
constexpr uint32_t kOpCount = kNorm + 1;
extern const OpImpl kOps[kOpCount];

inline const OpImpl& op(const LayerShape& l) { return kOps[l.kind]; }

// A planned Conv2d's geometry for core/conv.
ConvGeometry conv_geometry(const LayerShape& l);

}  // namespace sgdx::core
