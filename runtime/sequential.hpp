#pragma once
// nn.Sequential: children run in order, each one's output the next one's input.
// Children are named "0", "1", ... as PyTorch names them (so parameters are
// "0.weight", "2.bias", ...), or by the name given to add(). The activations
// between children and the gradients flowing back are buffers the Sequential
// keeps, sized by reserve() (or grown on the first batch of a size) and reused.
#include <memory>
#include <string>
#include <vector>

#include "module.hpp"

namespace sgdx {

class Sequential : public Module {
public:
    Sequential() = default;

    // Appends a child named after its position (or `name`). The shapes are fixed
    // by build(input shape) once every child is in.
    Sequential& add(std::unique_ptr<Module> child);
    Sequential& add(const std::string& name, std::unique_ptr<Module> child);
    template <class M, class... Args>
    M& emplace(Args&&... args) {
        auto child = std::make_unique<M>(std::forward<Args>(args)...);
        M& ref = *child;
        add(std::move(child));
        return ref;
    }

    size_t size() const { return layers_.size(); }
    Module& operator[](size_t i) { return *layers_[i]; }
    const Module& operator[](size_t i) const { return *layers_[i]; }

    // x: (B, in) -> y: (B, out), through every child
    void forward(const float* x, size_t batch, float* y) override;
    void forward(const uint8_t* x, float scale, size_t batch, float* y) override;
    // dy: (B, out) -> each child's parameter gradients, back to front; dx: (B, in)
    // if not null. A child before which nothing learns is not asked for its dx.
    void backward(const float* x, const float* dy, size_t batch, float* dx = nullptr) override;
    void backward(const uint8_t* x, float scale, const float* dy, size_t batch) override;

    // The input a child saw in the last forward: (B, child's in_features), in the
    // layout the Sequential keeps between the children (see configure). A fused
    // ReLU's input is not kept: for one this is its output (its conv's buffer).
    const float* activation_before(size_t child) const { return acts_[source_of(child - 1)].data(); }

    // Whether child `child` is a ReLU run inside the Conv2d before it (its forward in
    // the conv's store, its backward in the consumer's input gradient): the
    // Sequential then skips it. See configure.
    bool fused(size_t child) const { return layouts_[child].fused; }

    // Child `child`'s output in the last forward (child < size() - 1: the last
    // one's is the caller's y), in PyTorch's layout whatever the Sequential keeps
    // inside: out receives (batch, the child's out_features). For views of what a
    // network sees (the page's activation maps). A Conv2d whose ReLU is fused
    // gives its output after the ReLU (the two show the same maps).
    void activation_after(size_t child, size_t batch, float* out) const;

    // The activations and the two gradient buffers, then the children (the first
    // one gets the uint8 inputs).
    void reserve(size_t max_batch, bool byte_inputs = false) override;

    std::string type_name() const override { return "Sequential"; }
    std::string describe() const override;  // one line per child
    // Its children's clones under their names; null for a class derived from
    // Sequential (it may run differently) unless that class clones itself.
    std::unique_ptr<Module> clone() const override;

protected:
    Shape configure(const Shape& input) override;

private:
    std::vector<std::unique_ptr<Module>> layers_;
    std::vector<std::vector<float>> acts_;  // acts_[i]: output of child i < last
    std::vector<float> grads_[2];           // alternating input gradients
    size_t widest_input_ = 0;               // the most in_features of children 1..: a gradient buffer's per sample
    std::vector<bool> learns_before_;       // learns_before_[i]: a child before i has parameters
    std::vector<core::LayerLayout> layouts_;  // what core/layout decided for each child
    // The activation buffer holding child i's output: a fused ReLU's is its conv's.
    size_t source_of(size_t i) const { return layouts_[i].fused ? i - 1 : i; }

    void forward_from(size_t first, size_t batch, float* y);
    float* output_of(size_t i, size_t batch, float* y);
    const float* backward_children(const float* dy, size_t batch, bool want_dx);
};

}  // namespace sgdx
