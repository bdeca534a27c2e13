#pragma once
// nn.Module: a tree of named parameters with train/eval mode. Forward and
// backward are explicit (no autograd tape): a module's backward accumulates into
// its parameters' grad from the input it saw and the gradient of its output, and
// returns the gradient of its input, so modules stack (Sequential).
//
// Buffers are flat and row-major: a batch of B samples of shape (C, H, W) is
// (B, C, H, W), PyTorch's layout. A module learns the shape of one input sample
// when it is built (a layer's constructor, or Sequential in order).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include "../core/layout.hpp"
#include "../core/shape.hpp"

namespace sgdx {

// One sample's shape, without the batch: {784}, or {channels, height, width}.
using Shape = std::vector<size_t>;
size_t shape_size(const Shape& shape);
std::string shape_text(const Shape& shape);  // "[1, 28, 28]"

// A layer's output shape by core/shape's rule for its kind (the C API's ops
// apply the same one): rule(in, out, why) with `input` as core's SampleShape.
// Throws sgdx::Error "<who>: <why>" if the rule refuses it.
[[noreturn]] void shape_refused(const std::string& who, const char* why);
template <class Rule>
Shape inferred_shape(const std::string& who, const Shape& input, Rule&& rule) {
    core::SampleShape in, out;
    if (input.size() > core::kSampleMaxRank) shape_refused(who, ("a sample of rank " + std::to_string(input.size()) + " (at most " +
                                                            std::to_string(core::kSampleMaxRank) + ")").c_str());
    in.rank = uint32_t(input.size());
    for (size_t i = 0; i < input.size(); ++i) in.d[i] = input[i];
    char buf[256];
    core::Text why(buf, sizeof buf);
    if (!rule(in, out, why)) shape_refused(who, buf);
    return Shape(out.d, out.d + out.rank);
}

// v grown to at least n values (never shrunk): the buffers reserve() sizes ahead
// and a step then finds large enough.
inline void grow_to(std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n);
}

struct Parameter {
    xt::xarray<float> value;  // PyTorch's layout: Linear.weight is (out, in)
    xt::xarray<float> grad;   // same shape, zeroed by zero_grad()
};

// The element types of a model file's tensors: parameters are F32; a buffer may
// be an I64 scalar (BatchNorm's num_batches_tracked, as PyTorch writes it).
enum class DType { F32, I64 };
const char* dtype_name(DType dtype);  // "F32", "I64": the safetensors spelling

// State that PyTorch keeps in the state_dict but no optimiser changes
// (register_buffer): BatchNorm's running_mean (F32, any shape) or its
// num_batches_tracked (I64, shape [], held exactly as an int64).
struct Buffer {
    DType dtype = DType::F32;
    xt::xarray<float> value;  // F32
    int64_t count = 0;        // I64: a 0-d tensor
    // The shape as PyTorch sees it: value's, or [] for an I64 scalar.
    std::vector<size_t> shape() const;
};

class Module {
public:
    Module() = default;
    Module(const Module&) = delete;  // parameters are referred to by address
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    // x: (B, in_features()) -> y: (B, out_features())
    virtual void forward(const float* x, size_t batch, float* y) = 0;
    // x: (B, in), dy: (B, out) -> grads += d(loss)/d(parameters), and
    // dx: (B, in) = d(loss)/dx unless dx is null (a first layer skips that work).
    // x is the input of the last forward.
    virtual void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) = 0;
    // The same on uint8 inputs x = scale * x_u8 (image batches). The default
    // converts into a buffer kept by the module; Linear reads the bytes directly.
    // No dx: pixels have no gradient.
    virtual void forward(const uint8_t* x, float scale, size_t batch, float* y);
    virtual void backward(const uint8_t* x, float scale, const float* dy, size_t batch);

    // Fixes the shape of one input sample and returns the output's. Throws
    // sgdx::Error naming the module if it cannot take that shape.
    Shape build(const Shape& input);
    const Shape& input_shape() const { return in_shape_; }
    const Shape& output_shape() const { return out_shape_; }
    size_t in_features() const { return shape_size(in_shape_); }
    size_t out_features() const { return shape_size(out_shape_); }
    // The class name PyTorch prints ("Conv2d"), and a description of the layer and
    // its shapes (a line per child for containers) for `sgdx train`'s summary.
    virtual std::string type_name() const = 0;
    virtual std::string describe() const;

    // Sizes every buffer that forward and backward of up to max_batch samples keep
    // (uint8 samples if byte_inputs: the loader's pixels), for the thread pool as it
    // is now, each thread's kernel scratch included (KernelSet::reserve_scratch):
    // after it, no step of at most max_batch samples allocates. prepare() (fit's
    // set-up) calls it; the host's counterpart of the device's planned arena. A
    // container reserves its children; this default sizes the uint8 conversion
    // buffer if asked to, then the children (for float inputs), and a layer with
    // buffers of its own overrides it. Allocates.
    virtual void reserve(size_t max_batch, bool byte_inputs = false);

    // Allocating convenience for tests and prediction: x: (B, in) -> (B, out).
    xt::xtensor<float, 2> operator()(const xt::xtensor<float, 2>& x);

    // Names as in PyTorch's state_dict: "lin.weight", "lin.bias".
    std::vector<std::pair<std::string, Parameter*>> named_parameters();
    std::vector<Parameter*> parameters();
    // Learnable values in all: PyTorch's sum(p.numel() for p in model.parameters()).
    size_t parameter_count();
    void zero_grad();
    // Buffers, named the same way: "bn.running_mean", "1.num_batches_tracked".
    std::vector<std::pair<std::string, Buffer*>> named_buffers();
    // Counters that are neither parameters nor buffers (not in model files, which
    // PyTorch loads) but that a resumed run needs to go on bit for bit, e.g. how
    // many training forwards a Dropout has made; checkpoints save them. Dotted names.
    std::vector<std::pair<std::string, uint64_t*>> named_counters();

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // A chain's layout pass (core/layout, run by Sequential) asks each child
    // its role and hands it what it decided: channels-last planes between
    // convolutions, a ReLU fused into the Conv2d before it. Layers the pass does
    // not concern keep the defaults (kOther, nothing to set).
    virtual core::LayoutRole layout_role() const { return core::LayoutRole::kOther; }
    virtual void set_layout(const core::LayerLayout&) {}

    // The direct children, in order, with their names.
    const std::vector<std::pair<std::string, Module*>>& children() const { return children_; }

    // Data-parallel training (runtime/data_parallel.hpp) runs parts of a batch on
    // replicas of the model and sums their gradients. That is the batch's gradient
    // only if each sample's contribution depends on that sample alone: not with a
    // BatchNorm in training mode (batch statistics) or a Dropout in training mode
    // (one mask stream over the whole batch), which say false then. A module with
    // children asks them; a leaf says true unless it overrides this.
    virtual bool separable_by_sample() const;
    // A new module of the same kind and settings, not yet built, whose parameters
    // are the same tensors by name and shape (their values need not be); null when
    // the module cannot make one (the default: such a model trains undivided).
    virtual std::unique_ptr<Module> clone() const { return nullptr; }
    // clone(), built for this module's input shape, in its mode, with a copy of its
    // parameter values and zero gradients: a replica for a data-parallel step. Null
    // if some part of the model cannot be cloned. Allocates.
    std::unique_ptr<Module> replicate();

protected:
    void register_parameter(const std::string& name, Parameter& p);
    void register_buffer(const std::string& name, Buffer& b);
    void register_counter(const std::string& name, uint64_t& c);
    void register_module(const std::string& name, Module& m);
    // The output shape for this input shape (build's work): a layer checks it and
    // keeps what its kernels need (e.g. height and width).
    virtual Shape configure(const Shape& input) = 0;
    // The default uint8 path's buffer, for max_batch samples (reserve's part).
    void reserve_converted(size_t max_batch);
    // How many parameters this module registered itself (not its children's): a
    // clone() tells a layer built without its bias by it.
    size_t own_parameter_count() const { return params_.size(); }

private:
    // This module's own entries of one kind (params_, buffers_ or counters_), then
    // its children's, their names prefixed with the path.
    template <class T>
    void collect(std::vector<std::pair<std::string, T*>> Module::*own, const std::string& prefix,
                 std::vector<std::pair<std::string, T*>>& out);
    std::vector<std::pair<std::string, Parameter*>> params_;
    std::vector<std::pair<std::string, Buffer*>> buffers_;
    std::vector<std::pair<std::string, uint64_t*>> counters_;
    std::vector<std::pair<std::string, Module*>> children_;
    bool training_ = true;
    Shape in_shape_, out_shape_;
    std::vector<float> converted_;  // for the default uint8 path
    const float* convert(const uint8_t* x, float scale, size_t batch);
};

}  // namespace sgdx
