#include "sequential.hpp"

#include <algorithm>
#include <typeinfo>

#include "activation.hpp"
#include "conv2d.hpp"
#include "core/net.hpp"
#include "error.hpp"
#include "pooling.hpp"
#include "reshape.hpp"

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
    choose_layouts();
    fuse_relus();
    return s;
}

// A ReLU straight after a Conv2d (not the last child) runs inside it: the conv
// clamps its output, and in backward the consumer, whose input is that output,
// masks its input gradient (a Conv2d itself, any other child's gradient by the
// ReLU's backward, in place, here: unmasked_). The tutorial CNN's separate ReLU
// passes were 7% of its training step.
void Sequential::fuse_relus() {
    fused_.assign(layers_.size(), false);
    unmasked_.assign(layers_.size(), false);
    for (auto& l : layers_)
        if (auto* c = dynamic_cast<Conv2d*>(l.get())) c->form_.relu_out = c->form_.relu_in = false;
    for (size_t i = 1; i + 1 < layers_.size(); ++i) {
        auto* conv = dynamic_cast<Conv2d*>(layers_[i - 1].get());
        if (!conv || !dynamic_cast<ReLU*>(layers_[i].get())) continue;
        fused_[i] = true;
        conv->form_.relu_out = true;
        if (auto* next = dynamic_cast<Conv2d*>(layers_[i + 1].get())) next->form_.relu_in = true;
        else unmasked_[i + 1] = true;
    }
}

// A Conv2d computes (pixels, channels); PyTorch's (channels, pixels) costs a
// transpose after it and one before the next conv's patches, and the same again
// in backward. So a conv whose output reaches, through ReLUs and pooling only
// (neither minds the layout), another conv or a View/Flatten hands it on
// channels-last, and that consumer takes it so. Everything else, the
// Sequential's own input and output included, stays PyTorch's layout.
void Sequential::choose_layouts() {
    for (auto& l : layers_) {
        if (auto* c = dynamic_cast<Conv2d*>(l.get())) c->form_.in_cl = c->form_.out_cl = false;
        if (auto* p = dynamic_cast<Pool2d*>(l.get())) p->cl_ = false;
        if (auto* v = dynamic_cast<View*>(l.get())) v->cl_in_ = false;
    }
    for (size_t i = 0; i < layers_.size(); ++i) {
        auto* conv = dynamic_cast<Conv2d*>(layers_[i].get());
        if (!conv) continue;
        size_t j = i + 1;
        while (j < layers_.size() &&
               (dynamic_cast<ReLU*>(layers_[j].get()) || dynamic_cast<Pool2d*>(layers_[j].get())))
            ++j;
        if (j == layers_.size()) continue;
        auto* next_conv = dynamic_cast<Conv2d*>(layers_[j].get());
        auto* view = dynamic_cast<View*>(layers_[j].get());
        if (!next_conv && !view) continue;
        conv->form_.out_cl = true;
        for (size_t m = i + 1; m < j; ++m)
            if (auto* p = dynamic_cast<Pool2d*>(layers_[m].get())) p->cl_ = true;
        if (next_conv) next_conv->form_.in_cl = true;
        else view->cl_in_ = true;
    }
}

bool Sequential::channels_last_after(size_t child) const {
    bool cl = false;  // ReLU keeps whatever layout it is given
    for (size_t i = 0; i <= child; ++i) {
        const Module* l = layers_[i].get();
        if (auto* c = dynamic_cast<const Conv2d*>(l)) cl = c->form_.out_cl;
        else if (auto* p = dynamic_cast<const Pool2d*>(l)) cl = p->cl_;
        else if (!dynamic_cast<const ReLU*>(l)) cl = false;
    }
    return cl;
}

void Sequential::activation_after(size_t child, size_t batch, float* out) const {
    if (child + 1 >= layers_.size())
        throw Error("Sequential::activation_after: child " + std::to_string(child) + " is not one before the last of " +
                    std::to_string(layers_.size()));
    const size_t n = layers_[child]->out_features();
    if (acts_[source_of(child)].size() < batch * n)
        throw Error("Sequential::activation_after: no forward of " + std::to_string(batch) + " samples to read");
    const float* a = acts_[source_of(child)].data();
    if (!channels_last_after(child)) {
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
        if (!fused_[i]) layers_[i]->forward(activation_before(i), batch, out);
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
            if (fused_[i]) return false;  // its backward is in child i + 1's (below)
            const float* x = activation_before(i);
            layers_[i]->backward(x, g, batch, gin);
            // The fused ReLU's backward, where child i did not mask gin itself: x is
            // its output, > 0 exactly where its input is.
            if (gin && unmasked_[i]) layers_[i - 1]->backward(x, gin, batch, gin);
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
