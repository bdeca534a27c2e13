#pragma once
// The C API's layer planner (device/sgdx_c.cpp): a network's LayerSpecs (a
// named model's from core/architecture's table, a custom one's from its
// printout) into the shapes of the layers it runs, and what it folds of a
// BatchNorm. Allocation-free and exception-free like the rest of core/; a host
// program can plan (and so size) a model exactly as the device does.
//
//   Linear, Conv2d      a learning layer: weight (cout, patch), bias (cout)
//   ReLU, MaxPool2d,    shapes only (AdaptiveAvgPool2d(1) is an average pool
//   AvgPool2d           over the whole image)
//   BatchNorm1d/2d      kNorm: folded into the Linear or Conv2d directly before
//                       it when the weights load; no buffer of its own
//   Flatten, Unflatten, no layer (activations are NCHW: nothing moves)
//   Dropout
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/printout.hpp"
#include "core/shape.hpp"  // window_output_size, SampleShape

namespace sgdx::core {

// kNorm: an eval-mode BatchNorm, folded into the Linear or Conv2d before it as
// the weights load (a no-op at run time).
enum PlanKind : uint8_t { kLinear, kConv, kRelu, kMaxPool, kAvgPool, kNorm };

constexpr uint32_t kPlanMaxLayers = 12;  // layers kept (Flatten, Unflatten and Dropout do not count)

struct LayerShape {
    PlanKind kind;
    bool nobias;              // Linear, Conv2d: bias=False (the file has no bias; it stays 0 unless folded)
    uint32_t cin, h, w;       // input sample (channels, rows, cols); Linear: (features, 1, 1)
    uint32_t cout, oh, ow;    // output sample
    uint32_t kh, kw, stride, pad;  // Conv: kh == kw; pools: stride is the window; kNorm: kh eps (float bits), kw affine
    char wname[16], bname[16];     // state_dict names of the weight and bias ("conv1.weight")

    bool learns() const { return kind == kLinear || kind == kConv; }
    size_t in_size() const { return size_t(cin) * h * w; }
    size_t out_size() const { return size_t(cout) * oh * ow; }
    size_t positions() const { return size_t(oh) * ow; }
    // Length of a weight row: what one output value sums over.
    size_t patch() const { return kind == kConv ? size_t(cin) * kh * kw : in_size(); }
};

// A layer name the planner keeps: "features" fits, "features.0" not.
constexpr size_t kPlanMaxName = sizeof(LayerShape::wname) - sizeof ".weight";

// What the planner cannot run in a layer, or nullptr.
const char* plan_unsupported(const LayerSpec& s);
// What it runs but cannot train (bias=False, BatchNorm, Dropout), or nullptr.
const char* plan_untrainable(const LayerSpec& s);

// The specs one at a time (each passed by plan_unsupported), for images of
// rows x cols, each a sample [1, rows, cols] or, for a network that does not
// start on images (core/printout's takes_images), [rows x cols]: take() gives the next layer's shape in last(), if the spec makes
// a layer (count() grows). Each layer's shape is inferred by its op (core/ops'
// kOps[kind].infer, over core/shape's rules); Flatten, Unflatten and Dropout
// only reshape or pass.
class Planner {
public:
    Planner(uint32_t rows, uint32_t cols, bool images);
    // False if the spec's shapes do not work: the planner is as it was, and
    // `why` says what is wrong (take(s) alone leaves the words out: a caller
    // that wants them asks again with a Text, as the same spec fails the same way).
    bool take(const LayerSpec& s, Text& why);
    bool take(const LayerSpec& s);
    uint32_t count() const { return n_; }
    const LayerShape& last() const { return last_; }

private:
    uint32_t n_ = 0;    // layers so far
    SampleShape in_;    // the next layer's input sample
    LayerShape last_{};
};

// ---- The tensors of planned layers -----------------------------------------------------
//
// A learning layer's weight, (cout, patch) for a Linear and (cout, cin, kh, kw)
// for a Conv2d, and its bias (cout) unless bias=False, as a state_dict names them.
struct PlanTensor {
    const LayerShape* layer;
    bool is_bias;
    const char* name() const { return is_bias ? layer->bname : layer->wname; }
    size_t count() const { return is_bias ? layer->cout : layer->cout * layer->patch(); }
    // Its shape into dims (4 values at most); returns the rank.
    uint32_t shape(uint32_t* dims) const;
};
constexpr uint32_t kPlanMaxTensors = 2 * kPlanMaxLayers;

// out[0, n) sorted by name (insertion sort, as strcmp orders them).
void sort_by_name(PlanTensor* out, uint32_t n);
// The tensors of layers[0, n) (of a type derived from LayerShape) into out, sorted
// by name as safetensors files list them; returns how many.
template <class L>
uint32_t plan_tensors(const L* layers, uint32_t n, PlanTensor* out) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; ++i)
        if (layers[i].learns()) {
            out[k++] = {&layers[i], false};
            if (!layers[i].nobias) out[k++] = {&layers[i], true};
        }
    sort_by_name(out, k);
    return k;
}

// ---- A folded BatchNorm (kNorm) ------------------------------------------------------
//
// Its tensors in a file: "N.weight" and "N.bias" (if affine), "N.running_mean",
// "N.running_var" and "N.num_batches_tracked" (I64, not read). Per output
// channel c of the layer before: s = weight / sqrt(running_var + eps), that
// layer's weight row times s, its bias (bias - running_mean) * s + bias_bn.
enum NormTensor : uint32_t { kGamma, kBeta, kMean, kVar, kTracked, kNormTensors };

// The name of tensor t of kNorm layer l into buf (32 bytes).
const char* norm_name(const LayerShape& l, uint32_t t, char* buf);
// Whether a file has tensor t of kNorm layer l (the affine ones only if affine).
inline bool norm_has(const LayerShape& l, uint32_t t) { return l.kw || (t != kGamma && t != kBeta); }
float norm_eps(const LayerShape& l);
// s, and a folded bias (a layer without bias folds from 0), in float as the
// device computes them.
inline float fold_scale(float gamma, float running_var, float eps) { return gamma / std::sqrt(running_var + eps); }
inline float fold_bias(float bias, float running_mean, float scale, float beta) {
    return (bias - running_mean) * scale + beta;
}

}  // namespace sgdx::core
