#include "core/plan.hpp"

#include <cstring>

namespace sgdx::core {

const char* plan_unsupported(const LayerSpec& s) {
    switch (s.kind) {
        case LayerKind::kLinear:
        case LayerKind::kConv2d:
            if (s.kind == LayerKind::kConv2d && (s.stride[0] != s.stride[1] || s.padding[0] != s.padding[1]))
                return "the C API takes only square strides and paddings";
            break;
        case LayerKind::kMaxPool2d:
        case LayerKind::kAvgPool2d:
            if (s.padding[0] || s.padding[1]) return "pool padding is not supported by the C API";
            if (s.stride[0] != s.stride[1]) return "the C API takes only square pool strides";
            break;
        case LayerKind::kUnflatten:
            if (s.unflatten_rank != 3) return "the C API unflattens only to (C, H, W)";
            break;
        case LayerKind::kBatchNorm1d:
        case LayerKind::kBatchNorm2d:
            if (!s.track_running_stats)
                return "without running statistics (track_running_stats=False) a BatchNorm normalises by the batch: "
                       "the C API folds only running statistics";
            break;
        case LayerKind::kReLU:
        case LayerKind::kAdaptiveAvgPool2d:  // to 1x1, as the parser ensures
        case LayerKind::kFlatten:
        case LayerKind::kDropout:  // identity in inference
            break;
        default:
            return "the C API runs Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, "
                   "Unflatten, BatchNorm1d/2d and Dropout (the last two in inference only)";
    }
    const bool named = s.kind == LayerKind::kLinear || s.kind == LayerKind::kConv2d ||
                       s.kind == LayerKind::kBatchNorm1d || s.kind == LayerKind::kBatchNorm2d;
    if (named && std::strlen(s.name) > kPlanMaxName) return "the C API keeps layer names of at most 8 characters";
    return nullptr;
}

const char* plan_untrainable(const LayerSpec& s) {
    switch (s.kind) {
        case LayerKind::kLinear:
        case LayerKind::kConv2d:
            return s.bias ? nullptr
                          : "bias=False: the C API trains only layers with a bias; create the model SGDX_INFERENCE_ONLY "
                            "to run it";
        case LayerKind::kBatchNorm1d:
        case LayerKind::kBatchNorm2d:
            return "the C API trains without BatchNorm (it folds it into the layer before at load); create the model "
                   "SGDX_INFERENCE_ONLY to run it";
        case LayerKind::kDropout:
            return "the C API trains without Dropout; create the model SGDX_INFERENCE_ONLY to run it";
        default:
            return nullptr;
    }
}

LayerShape& Planner::add(PlanKind kind, const LayerSpec& s) {
    LayerShape& l = last_;
    ++n_;
    std::memset(&l, 0, sizeof l);
    l.kind = kind, l.cin = c_, l.h = h_, l.w = w_;
    Text(l.wname, sizeof l.wname).s(s.name).s(".weight");
    Text(l.bname, sizeof l.bname).s(s.name).s(".bias");
    return l;
}

// Pools: stride s, no padding, PyTorch's floor mode.
void Planner::pool(PlanKind kind, uint32_t kh, uint32_t kw, uint32_t s, const LayerSpec& spec) {
    if (h_ < kh || w_ < kw) { problem_ = "the image is too small for a pooling window"; return; }
    LayerShape& l = add(kind, spec);
    l.kh = kh, l.kw = kw, l.stride = s;
    l.cout = c_, l.oh = (h_ - kh) / s + 1, l.ow = (w_ - kw) / s + 1;
    h_ = l.oh, w_ = l.ow;
}

bool Planner::take(const LayerSpec& s) {
    if (n_ == kPlanMaxLayers && s.kind != LayerKind::kFlatten && s.kind != LayerKind::kUnflatten)
        return problem_ = "more layers than the C API keeps (12)", false;
    switch (s.kind) {
        case LayerKind::kLinear: {  // flattens its input
            if (s.in != uint64_t(c_) * h_ * w_) return problem_ = "in_features is not the size of its input", false;
            c_ = c_ * h_ * w_, h_ = w_ = 1;
            LayerShape& l = add(kLinear, s);
            l.cout = uint32_t(s.out), l.oh = l.ow = 1, l.nobias = !s.bias;
            c_ = l.cout;
            break;
        }
        case LayerKind::kConv2d: {
            const uint32_t kh = s.kernel[0], kw = s.kernel[1], st = s.stride[0], pad = s.padding[0];
            if (s.in != c_) return problem_ = "in_channels is not its input's channels", false;
            if (h_ + 2 * pad < kh || w_ + 2 * pad < kw) return problem_ = "the image is too small for a convolution", false;
            LayerShape& l = add(kConv, s);
            l.cout = uint32_t(s.out), l.kh = kh, l.kw = kw, l.stride = st, l.pad = pad, l.nobias = !s.bias;
            l.oh = (h_ + 2 * pad - kh) / st + 1, l.ow = (w_ + 2 * pad - kw) / st + 1;
            c_ = l.cout, h_ = l.oh, w_ = l.ow;
            break;
        }
        case LayerKind::kReLU: {
            LayerShape& l = add(kRelu, s);
            l.cout = c_, l.oh = h_, l.ow = w_;
            break;
        }
        case LayerKind::kMaxPool2d:
        case LayerKind::kAvgPool2d:
            pool(s.kind == LayerKind::kMaxPool2d ? kMaxPool : kAvgPool, s.kernel[0], s.kernel[1], s.stride[0], s);
            break;
        case LayerKind::kAdaptiveAvgPool2d:  // to 1x1
            pool(kAvgPool, h_, w_, h_, s);
            break;
        case LayerKind::kFlatten:  // activations are NCHW: nothing moves
            c_ = c_ * h_ * w_, h_ = w_ = 1;
            break;
        case LayerKind::kDropout:  // identity in inference
            break;
        case LayerKind::kBatchNorm1d:
        case LayerKind::kBatchNorm2d: {  // folded into the layer before: it must be a Linear or Conv2d's output
            const LayerShape* prev = n_ == 0 ? nullptr : &last_;
            if (!prev || !prev->learns() || c_ != prev->cout || h_ != prev->oh || w_ != prev->ow)
                return problem_ = "the C API folds a BatchNorm into a Linear or Conv2d directly before it", false;
            if (s.in != c_) return problem_ = "num_features is not its input's channels", false;
            LayerShape& l = add(kNorm, s);
            l.cout = c_, l.oh = h_, l.ow = w_;
            const float eps = float(s.eps.value);
            std::memcpy(&l.kh, &eps, 4);
            l.kw = s.affine;
            break;
        }
        case LayerKind::kUnflatten:
            if (s.unflatten[0] * s.unflatten[1] * s.unflatten[2] != uint64_t(c_) * h_ * w_)
                return problem_ = "Unflatten's sizes do not multiply to its input's", false;
            c_ = uint32_t(s.unflatten[0]), h_ = uint32_t(s.unflatten[1]), w_ = uint32_t(s.unflatten[2]);
            break;
        default:
            return problem_ = "not a layer the C API runs", false;
    }
    return !problem_;
}


uint32_t PlanTensor::shape(uint32_t* dims) const {
    dims[0] = layer->cout;
    if (is_bias) return 1;
    if (layer->kind == kLinear) return dims[1] = uint32_t(layer->patch()), 2;
    dims[1] = layer->cin, dims[2] = layer->kh, dims[3] = layer->kw;
    return 4;
}

void sort_by_name(PlanTensor* out, uint32_t n) {
    for (uint32_t i = 1; i < n; ++i)  // at most kPlanMaxTensors entries
        for (uint32_t j = i; j > 0 && std::strcmp(out[j - 1].name(), out[j].name()) > 0; --j) {
            const PlanTensor t = out[j];
            out[j] = out[j - 1], out[j - 1] = t;
        }
}

const char* norm_name(const LayerShape& l, uint32_t t, char* buf) {
    static const char* const kSuffix[kNormTensors] = {".weight", ".bias", ".running_mean", ".running_var",
                                                      ".num_batches_tracked"};
    Text(buf, 32).name(l.wname, std::strlen(l.wname) - 7).s(kSuffix[t]);
    return buf;
}

float norm_eps(const LayerShape& l) {
    float eps;
    std::memcpy(&eps, &l.kh, 4);
    return eps;
}

}  // namespace sgdx::core
