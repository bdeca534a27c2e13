#pragma once
// Pooling over each channel's (H, W) plane: nn.MaxPool2d, nn.AvgPool2d (the
// tutorial's F.avg_pool2d(xb, 4)) and nn.AdaptiveAvgPool2d. A sample is
// (C, H, W) -> (C, OH, OW); every output reads one window of its plane. Inside a
// Sequential the planes may be channels-last (see Sequential::configure).
//
// The layers are PyTorch-facing shells: their forward and backward are
// core/pool's, the C API's too; here are their arguments, shapes and the
// thread split.
#include <vector>

#include "core/pool.hpp"
#include "module.hpp"

namespace sgdx {

class Pool2d : public Module {
public:
    // The window of output (oi, oj): rows [h0, h1), columns [w0, w1).
    struct Window {
        size_t h0, h1, w0, w1;
    };
    Window window(size_t oi, size_t oj) const {
        const core::PoolWindow w = core::pool_window(g_, uint32_t(oi), uint32_t(oj));
        return {w.h0, w.h1, w.w0, w.w1};
    }

    // x: (B, C, H, W) -> y: (B, C, OH, OW): each window's first maximum (a NaN
    // wins, as in PyTorch) or mean
    void forward(const float* x, size_t batch, float* y) override;
    // x: (B, C, H, W), dy: (B, C, OH, OW) -> dx: (B, C, H, W), dy routed to each
    // window's first maximum, or spread evenly over the window
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;

    core::LayoutRole layout_role() const override { return core::LayoutRole::kPool; }
    void set_layout(const core::LayerLayout& l) override { cl_ = l.in_cl; }

protected:
    explicit Pool2d(bool max) { g_.max = max; }
    // (C, H, W) -> (C, OH, OW) by the kind's core/shape rule (infer); sets g_'s
    // planes, then its windows (set_windows).
    Shape configure(const Shape& input) override;
    virtual bool infer(const core::SampleShape& in, core::SampleShape& out, core::Text& why) const = 0;
    virtual void set_windows(core::PoolGeometry& g) const = 0;
    core::PoolGeometry g_{};

    // Set by a Sequential's layout pass between convolutions: input and output
    // channels-last, (B, H, W, C).
    bool cl_ = false;
    // A C-long slice for the average pooling's channels-last loops.
    std::vector<float> channel_acc_;
};

// Windows of kernel x kernel every `stride` (default: kernel), no padding; the
// output size is floor((H - kernel) / stride) + 1.
class StridedPool2d : public Pool2d {
public:
    StridedPool2d(bool max, size_t kernel, size_t stride);
    std::string describe() const override;

protected:
    bool infer(const core::SampleShape& in, core::SampleShape& out, core::Text& why) const override;
    void set_windows(core::PoolGeometry& g) const override;
    size_t kernel_, stride_;
};

class MaxPool2d : public StridedPool2d {
public:
    explicit MaxPool2d(size_t kernel, size_t stride = 0) : StridedPool2d(true, kernel, stride) {}
    std::string type_name() const override { return "MaxPool2d"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<MaxPool2d>(kernel_, stride_); }
};

class AvgPool2d : public StridedPool2d {
public:
    explicit AvgPool2d(size_t kernel, size_t stride = 0) : StridedPool2d(false, kernel, stride) {}
    std::string type_name() const override { return "AvgPool2d"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<AvgPool2d>(kernel_, stride_); }
};

// Output (OH, OW) whatever the input size: window i covers rows
// [floor(i H / OH), ceil((i + 1) H / OH)), as PyTorch's adaptive pooling.
class AdaptiveAvgPool2d : public Pool2d {
public:
    explicit AdaptiveAvgPool2d(size_t out) : AdaptiveAvgPool2d(out, out) {}
    AdaptiveAvgPool2d(size_t out_h, size_t out_w);
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<AdaptiveAvgPool2d>(out_h_, out_w_); }

protected:
    bool infer(const core::SampleShape& in, core::SampleShape& out, core::Text& why) const override;
    void set_windows(core::PoolGeometry& g) const override;
    size_t out_h_, out_w_;
};

}  // namespace sgdx
