#include "core/plan.hpp"

#include <cstring>

#include "core/ops.hpp"

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

namespace {
// The op a spec plans into (its shape inferred by the op: core/ops), or -1 for
// the specs that plan no layer.
int plan_kind(LayerKind k) {
    switch (k) {
        case LayerKind::kLinear: return kLinear;
        case LayerKind::kConv2d: return kConv;
        case LayerKind::kReLU: return kRelu;
        case LayerKind::kMaxPool2d: return kMaxPool;
        case LayerKind::kAvgPool2d:
        case LayerKind::kAdaptiveAvgPool2d: return kAvgPool;  // to 1x1: over the whole image
        case LayerKind::kBatchNorm1d:
        case LayerKind::kBatchNorm2d: return kNorm;  // folded into the layer before
        default: return -1;
    }
}

// A sample of rank 1 or 3 as a LayerShape's (c, h, w): [features] is (features, 1, 1).
void sample_dims(const SampleShape& s, uint32_t& c, uint32_t& h, uint32_t& w) {
    c = uint32_t(s.d[0]), h = s.rank == 3 ? uint32_t(s.d[1]) : 1, w = s.rank == 3 ? uint32_t(s.d[2]) : 1;
}

// The device's layers keep each size in 32 bits.
bool fits_32_bits(const SampleShape& s, Text& why) {
    for (uint32_t i = 0; i < s.rank; ++i)
        if (s.d[i] > UINT32_MAX) return shape_text(why.s("a sample of shape "), s).s(" is too large for the C API"), false;
    return true;
}
}  // namespace

Planner::Planner(uint32_t rows, uint32_t cols, bool images) {
    if (images) in_.rank = 3, in_.d[0] = 1, in_.d[1] = rows, in_.d[2] = cols;
    else in_.rank = 1, in_.d[0] = uint64_t(rows) * cols;
}

bool Planner::take(const LayerSpec& s) {
    char none[1];
    Text quiet(none, sizeof none);
    return take(s, quiet);
}

bool Planner::take(const LayerSpec& s, Text& why) {
    SampleShape out;
    switch (s.kind) {
        case LayerKind::kFlatten:  // activations are NCHW: nothing moves
            out.rank = 1, out.d[0] = in_.size();
            if (!fits_32_bits(out, why)) return false;
            break;
        case LayerKind::kDropout:  // identity in inference
            return true;
        case LayerKind::kUnflatten: {
            SampleShape target;
            target.rank = s.unflatten_rank;
            for (uint32_t i = 0; i < target.rank; ++i) target.d[i] = s.unflatten[i];
            if (!infer_view(target, in_, out, why) || !fits_32_bits(out, why)) return false;
            break;
        }
        default: {
            if (n_ == kPlanMaxLayers) return why.s("more layers than the C API keeps (").u(kPlanMaxLayers).c(')'), false;
            const int kind = plan_kind(s.kind);
            if (kind < 0) return why.s("not a layer the C API runs"), false;
            if (in_.rank != 1 && in_.rank != 3)  // a LayerShape is (features) or (channels, rows, cols)
                return shape_text(why.s("the C API's layers take [features] or [channels, height, width], not "), in_),
                       false;
            LayerShape l;
            std::memset(&l, 0, sizeof l);
            l.kind = PlanKind(kind);
            sample_dims(in_, l.cin, l.h, l.w);
            Text(l.wname, sizeof l.wname).s(s.name).s(".weight");
            Text(l.bname, sizeof l.bname).s(s.name).s(".bias");
            if (!kOps[kind].infer(l, s, in_, out, n_ ? &last_ : nullptr, why)) return false;
            if (!fits_32_bits(out, why)) return false;
            sample_dims(out, l.cout, l.oh, l.ow);
            ++n_;
            last_ = l;
            break;
        }
    }
    in_ = out;
    return true;
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
