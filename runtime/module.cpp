#include "module.hpp"

#include "backend.hpp"
#include "error.hpp"

namespace sgdx {

size_t shape_size(const Shape& shape) {
    size_t n = 1;
    for (size_t d : shape) n *= d;
    return shape.empty() ? 0 : n;
}

std::string shape_text(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

void shape_refused(const std::string& who, const char* why) { throw Error(who + ": " + why); }

Shape Module::build(const Shape& input) {
    if (shape_size(input) == 0) throw Error(type_name() + ": input shape " + shape_text(input) + " is empty");
    Shape out = configure(input);
    if (shape_size(out) == 0)
        throw Error(type_name() + ": input shape " + shape_text(input) + " leaves nothing (output " + shape_text(out) + ")");
    in_shape_ = input;
    out_shape_ = out;
    return out;
}

std::string Module::describe() const {
    return type_name() + " " + shape_text(in_shape_) + " -> " + shape_text(out_shape_);
}

xt::xtensor<float, 2> Module::operator()(const xt::xtensor<float, 2>& x) {
    if (x.shape()[1] != in_features())
        throw Error("model input has " + std::to_string(x.shape()[1]) +
                    " features per row, the model expects " + std::to_string(in_features()));
    xt::xtensor<float, 2> y = xt::zeros<float>({x.shape()[0], out_features()});
    forward(x.data(), x.shape()[0], y.data());
    return y;
}

void Module::reserve_converted(size_t max_batch) {
    grow_to(converted_, max_batch * in_features());
}

void Module::reserve(size_t max_batch, bool byte_inputs) {
    if (byte_inputs) reserve_converted(max_batch);
    for (auto& [name, child] : children_) child->reserve(max_batch, false);
}

const float* Module::convert(const uint8_t* x, float scale, size_t batch) {
    const size_t n = batch * in_features();
    grow_to(converted_, n);
    active_kernels().scale_u8(x, scale, converted_.data(), n);
    return converted_.data();
}

void Module::forward(const uint8_t* x, float scale, size_t batch, float* y) {
    forward(convert(x, scale, batch), batch, y);
}

void Module::backward(const uint8_t* x, float scale, const float* dy, size_t batch) {
    backward(convert(x, scale, batch), dy, batch);
}

const char* dtype_name(DType dtype) { return dtype == DType::I64 ? "I64" : "F32"; }

std::vector<size_t> Buffer::shape() const {
    if (dtype == DType::I64) return {};
    return std::vector<size_t>(value.shape().begin(), value.shape().end());
}

template <class T>
void Module::collect(std::vector<std::pair<std::string, T*>> Module::*own, const std::string& prefix,
                     std::vector<std::pair<std::string, T*>>& out) {
    for (auto& [name, p] : this->*own) out.emplace_back(prefix + name, p);
    for (auto& [name, m] : children_) m->collect(own, prefix + name + ".", out);
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
    std::vector<std::pair<std::string, Parameter*>> out;
    collect(&Module::params_, "", out);
    return out;
}

std::vector<std::pair<std::string, Buffer*>> Module::named_buffers() {
    std::vector<std::pair<std::string, Buffer*>> out;
    collect(&Module::buffers_, "", out);
    return out;
}

std::vector<std::pair<std::string, uint64_t*>> Module::named_counters() {
    std::vector<std::pair<std::string, uint64_t*>> out;
    collect(&Module::counters_, "", out);
    return out;
}

std::vector<Parameter*> Module::parameters() {
    std::vector<Parameter*> out;
    for (auto& np : named_parameters()) out.push_back(np.second);
    return out;
}

size_t Module::parameter_count() {
    size_t n = 0;
    for (Parameter* p : parameters()) n += p->value.size();
    return n;
}

void Module::zero_grad() {
    for (Parameter* p : parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.f);
}

void Module::train(bool on) {
    training_ = on;
    for (auto& child : children_) child.second->train(on);
}

void Module::register_parameter(const std::string& name, Parameter& p) {
    params_.emplace_back(name, &p);
}

void Module::register_buffer(const std::string& name, Buffer& b) { buffers_.emplace_back(name, &b); }

void Module::register_counter(const std::string& name, uint64_t& c) { counters_.emplace_back(name, &c); }

void Module::register_module(const std::string& name, Module& m) {
    children_.emplace_back(name, &m);
}

bool Module::separable_by_sample() const {
    for (const auto& child : children_)
        if (!child.second->separable_by_sample()) return false;
    return true;
}

std::unique_ptr<Module> Module::replicate() {
    std::unique_ptr<Module> copy = clone();
    if (!copy) return nullptr;
    copy->build(in_shape_);
    copy->train(training_);
    auto mine = named_parameters(), theirs = copy->named_parameters();
    if (mine.size() != theirs.size())
        throw Error(type_name() + ": its clone has " + std::to_string(theirs.size()) + " parameters, not " +
                    std::to_string(mine.size()));
    for (size_t i = 0; i < mine.size(); ++i) {
        Parameter& a = *mine[i].second;
        Parameter& b = *theirs[i].second;
        if (mine[i].first != theirs[i].first || a.value.shape() != b.value.shape())
            throw Error(type_name() + ": its clone's parameter " + theirs[i].first + " differs from " + mine[i].first);
        std::copy(a.value.begin(), a.value.end(), b.value.begin());
        std::fill(b.grad.begin(), b.grad.end(), 0.f);
    }
    return copy;
}

}  // namespace sgdx
