#include "sequential.hpp"

#include <algorithm>

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
    return s;
}

std::string Sequential::describe() const {
    std::string s;
    for (size_t i = 0; i < layers_.size(); ++i)
        s += (i ? "\n" : "") + children()[i].first + ": " + layers_[i]->describe();
    return s;
}

// The buffer child i writes: the caller's y for the last child.
float* Sequential::output_of(size_t i, size_t batch, float* y) {
    if (i + 1 == layers_.size()) return y;
    auto& a = acts_[i];
    const size_t n = batch * layers_[i]->out_features();
    if (a.size() < n) a.resize(n);
    return a.data();
}

void Sequential::forward_from(size_t first, size_t batch, float* y) {
    for (size_t i = first; i < layers_.size(); ++i)
        layers_[i]->forward(acts_[i - 1].data(), batch, output_of(i, batch, y));
}

void Sequential::forward(const float* x, size_t batch, float* y) {
    layers_[0]->forward(x, batch, output_of(0, batch, y));
    forward_from(1, batch, y);
}

void Sequential::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    layers_[0]->forward(x, scale, batch, output_of(0, batch, y));
    forward_from(1, batch, y);
}

// Children last..1, back to front. Returns the gradient of child 0's output, or
// null if nothing from child 0 on learns and the caller wants no dx.
const float* Sequential::backward_children(const float* dy, size_t batch, bool want_dx) {
    const float* g = dy;
    size_t turn = 0;
    for (size_t i = layers_.size() - 1; i >= 1; --i) {
        float* gin = nullptr;
        if (learns_before_[i] || want_dx) {
            auto& buf = grads_[turn];
            turn ^= 1;
            const size_t n = batch * layers_[i]->in_features();
            if (buf.size() < n) buf.resize(n);
            gin = buf.data();
        }
        layers_[i]->backward(acts_[i - 1].data(), g, batch, gin);
        if (!gin) return nullptr;
        g = gin;
    }
    return g;
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
