#pragma once
// Pooling over each channel's (H, W) plane: nn.MaxPool2d, nn.AvgPool2d (the
// tutorial's F.avg_pool2d(xb, 4)) and nn.AdaptiveAvgPool2d. A sample is
// (C, H, W) -> (C, OH, OW); every output reads one window of its plane. Inside a
// Sequential the planes may be channels-last (see Sequential::configure).
#include <vector>

#include "kernels/kernels.hpp"
#include "module.hpp"

namespace sgdx {

class Pool2d : public Module {
public:
    // The window of output (oi, oj): rows [h0, h1), columns [w0, w1).
    struct Window {
        size_t h0, h1, w0, w1;
    };
    virtual Window window(size_t oi, size_t oj) const = 0;

protected:
    // (C, H, W) -> (C, OH, OW) with OH, OW from output_size.
    Shape configure(const Shape& input) override;
    virtual void output_size(size_t h, size_t w, size_t& oh, size_t& ow) const = 0;
    // The mean of each window; backward spreads its gradient evenly over the window.
    // x: (B, C, H, W) -> y: (B, C, OH, OW); dy: (B, C, OH, OW) -> dx: (B, C, H, W)
    void average_forward(const float* x, size_t batch, float* y) const;
    void average_backward(const float* dy, size_t batch, float* dx) const;
    size_t c_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;

    // Set by a Sequential between convolutions: input and output channels-last,
    // (B, H, W, C). Those loops run over a pixel's channels innermost
    // (contiguous), each channel's windows in the same order as the planes' loops
    // (the same results), keeping each channel's running max / sum here.
    bool cl_ = false;
    // A c_-long slice for the average pooling's channels-last loops.
    mutable std::vector<float> channel_acc_;

private:
    friend class Sequential;
};

// Windows of kernel x kernel every `stride` (default: kernel), no padding; the
// output size is floor((H - kernel) / stride) + 1.
class StridedPool2d : public Pool2d {
public:
    StridedPool2d(size_t kernel, size_t stride);
    Window window(size_t oi, size_t oj) const override {
        return {oi * stride_, oi * stride_ + kernel_, oj * stride_, oj * stride_ + kernel_};
    }
    std::string describe() const override;

protected:
    void output_size(size_t h, size_t w, size_t& oh, size_t& ow) const override;
    size_t kernel_, stride_;
};

class MaxPool2d : public StridedPool2d {
public:
    explicit MaxPool2d(size_t kernel, size_t stride = 0) : StridedPool2d(kernel, stride) {}
    // x: (B, C, H, W) -> y: (B, C, OH, OW), the window's maximum (NaN wins, as in PyTorch)
    void forward(const float* x, size_t batch, float* y) override;
    // dx: (B, C, H, W) = dy routed to each window's first maximum
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;
    std::string type_name() const override { return "MaxPool2d"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<MaxPool2d>(kernel_, stride_); }

private:
    void forward_samples(const float* x, size_t b0, size_t b1, float* y) const;
    // n samples' shape for the kernel sets' channels-last pool
    kernels::PoolShape shape_cl(size_t n) const { return {n, h_, w_, c_, oh_, ow_, kernel_, stride_}; }
};

class AvgPool2d : public StridedPool2d {
public:
    explicit AvgPool2d(size_t kernel, size_t stride = 0) : StridedPool2d(kernel, stride) {}
    // x: (B, C, H, W) -> y: (B, C, OH, OW), each window's mean
    void forward(const float* x, size_t batch, float* y) override { average_forward(x, batch, y); }
    // dx: (B, C, H, W) = dy / window size, spread over each window
    void backward(const float*, const float* dy, size_t batch, float* dx = nullptr) override {
        if (dx) average_backward(dy, batch, dx);
    }
    std::string type_name() const override { return "AvgPool2d"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<AvgPool2d>(kernel_, stride_); }
};

// Output (OH, OW) whatever the input size: window i covers rows
// [floor(i H / OH), ceil((i + 1) H / OH)), as PyTorch's adaptive pooling.
class AdaptiveAvgPool2d : public Pool2d {
public:
    explicit AdaptiveAvgPool2d(size_t out) : AdaptiveAvgPool2d(out, out) {}
    AdaptiveAvgPool2d(size_t out_h, size_t out_w);
    Window window(size_t oi, size_t oj) const override {
        return {oi * h_ / oh_, ((oi + 1) * h_ + oh_ - 1) / oh_, oj * w_ / ow_, ((oj + 1) * w_ + ow_ - 1) / ow_};
    }
    void forward(const float* x, size_t batch, float* y) override { average_forward(x, batch, y); }
    void backward(const float*, const float* dy, size_t batch, float* dx = nullptr) override {
        if (dx) average_backward(dy, batch, dx);
    }
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::unique_ptr<Module> clone() const override { return std::make_unique<AdaptiveAvgPool2d>(out_h_, out_w_); }

protected:
    void output_size(size_t, size_t, size_t& oh, size_t& ow) const override { oh = out_h_, ow = out_w_; }
    size_t out_h_, out_w_;
};

}  // namespace sgdx
