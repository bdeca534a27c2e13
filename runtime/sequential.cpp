#include "sequential.hpp"

#include <algorithm>
#include <typeinfo>

#include "core/layout.hpp"
#include "core/net.hpp"
#include "error.hpp"

namespace sgdx {

Sequential& Sequential::add(std::unique_ptr<Module> child) {
    return add(std::to_string(layers_.size()), std::move(child));
}

Sequential& Sequential::add(const std::string& name, std::unique_ptr<Module> child) {
    if (!child) throw Error("Sequential: child '" + name + "' is null");
    register_module(name, *child);
    layers_.push_back(std::move(child));
    return *this;
}

Shape Sequential::configure(const Shape& input) {
    if (layers_.empty()) throw Error("Sequential: no layers");
    Shape s = input;
    learns_before_.assign(layers_.size(), false);
    bool learns = false;
    for (size_t i = 0; i < layers_.size(); ++i) {
        learns_before_[i] = learns;
        try {
            s = layers_[i]->build(s);
        } catch (const Error& e) {
            throw Error("Sequential child " + children()[i].first + " (" + layers_[i]->type_name() + "): " + e.what());
        }
        learns = learns || !layers_[i]->parameters().empty();
    }
    acts_.resize(layers_.size() - 1);
    widest_input_ = 0;  // the longest input gradient a backward computes, per sample
    for (size_t i = 1; i < layers_.size(); ++i) widest_input_ = std::max(widest_input_, layers_[i]->in_features());
    // Each child's layout, from the children's roles (core/layout says how and why).
    std::vector<core::LayoutRole> roles;
    for (auto& l : layers_) roles.push_back(l->layout_role());
    layouts_.assign(layers_.size(), {});
    core::plan_layouts(roles.data(), uint32_t(roles.size()), layouts_.data());
    for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_layout(layouts_[i]);
    return s;
}

void Sequential::activation_after(size_t child, size_t batch, float* out) const {
    if (child + 1 >= layers_.size())
        throw Error("Sequential::activation_after: child " + std::to_string(child) + " is not one before the last of " +
                    std::to_string(layers_.size()));
    const size_t n = layers_[child]->out_features();
    if (acts_[source_of(child)].size() < batch * n)
        throw Error("Sequential::activation_after: no forward of " + std::to_string(batch) + " samples to read");
    const float* a = acts_[source_of(child)].data();
    if (!layouts_[child].out_cl) {  // else (H, W, C) per sample
        std::copy(a, a + batch * n, out);
        return;
    }
    const Shape& s = layers_[child]->output_shape();  // (C, H, W)
    const size_t C = s[0], P = n / C;
    for (size_t b = 0; b < batch; ++b)
        for (size_t p = 0; p < P; ++p)
            for (size_t c = 0; c < C; ++c) out[b * n + c * P + p] = a[b * n + p * C + c];
}

std::unique_ptr<Module> Sequential::clone() const {
    if (typeid(*this) != typeid(Sequential)) return nullptr;
    auto copy = std::make_unique<Sequential>();
    for (size_t i = 0; i < layers_.size(); ++i) {
        std::unique_ptr<Module> child = layers_[i]->clone();
        if (!child) return nullptr;
        copy->add(children()[i].first, std::move(child));
    }
    return copy;
}

std::string Sequential::describe() const {
    std::string s;
    for (size_t i = 0; i < layers_.size(); ++i)
        s += (i ? "\n" : "") + children()[i].first + ": " + layers_[i]->describe();
    return s;
}

void Sequential::reserve(size_t max_batch, bool byte_inputs) {
    for (size_t i = 0; i + 1 < layers_.size(); ++i) {
        grow_to(acts_[source_of(i)], max_batch * layers_[i]->out_features());
    }
    for (auto& g : grads_) grow_to(g, max_batch * widest_input_);
    for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->reserve(max_batch, i == 0 && byte_inputs);
}

// The buffer child i writes: the caller's y for the last child.
float* Sequential::output_of(size_t i, size_t batch, float* y) {
    if (i + 1 == layers_.size()) return y;
    auto& a = acts_[source_of(i)];
    const size_t n = batch * layers_[i]->out_features();
    if (a.size() < n) a.resize(n);
    return a.data();
}

void Sequential::forward_from(size_t first, size_t batch, float* y) {
    for (size_t i = first; i < layers_.size(); ++i) {
        float* out = output_of(i, batch, y);  // grows the buffer even for a fused ReLU
        if (!layouts_[i].fused) layers_[i]->forward(activation_before(i), batch, out);
    }
}

void Sequential::forward(const float* x, size_t batch, float* y) {
    layers_[0]->forward(x, batch, output_of(0, batch, y));
    forward_from(1, batch, y);
}

void Sequential::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    layers_[0]->forward(x, scale, batch, output_of(0, batch, y));
    forward_from(1, batch, y);
}

// Children last..1, back to front (core/net's backward_walk). Returns the
// gradient of child 0's output, or null if nothing from child 0 on learns and the
// caller wants no dx.
const float* Sequential::backward_children(const float* dy, size_t batch, bool want_dx) {
    for (auto& buf : grads_)
        if (buf.size() < batch * widest_input_) buf.resize(batch * widest_input_);
    float* const grads[2] = {grads_[0].data(), grads_[1].data()};
    return core::backward_walk(
        1, uint32_t(layers_.size()), dy, grads, [&](uint32_t i) { return learns_before_[i] || want_dx; },
        [&](uint32_t i, const float* g, float* gin) {
            if (layouts_[i].fused) return false;  // its backward is in child i + 1's (below)
            const float* x = activation_before(i);
            layers_[i]->backward(x, g, batch, gin);
            // The fused ReLU's backward, where child i did not mask gin itself: x is
            // its output, > 0 exactly where its input is.
            if (gin && layouts_[i].unmasked) layers_[i - 1]->backward(x, gin, batch, gin);
            return gin != nullptr;
        });
}

void Sequential::backward(const float* x, const float* dy, size_t batch, float* dx) {
    const float* g = backward_children(dy, batch, dx != nullptr);
    if (g) layers_[0]->backward(x, g, batch, dx);
}

void Sequential::backward(const uint8_t* x, float scale, const float* dy, size_t batch) {
    const float* g = backward_children(dy, batch, false);
    if (g) layers_[0]->backward(x, scale, g, batch);
}

}  // namespace sgdx
