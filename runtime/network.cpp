#include "network.hpp"

#include "activation.hpp"
#include "batchnorm.hpp"
#include "conv2d.hpp"
#include "dropout.hpp"
#include "error.hpp"
#include "linear.hpp"
#include "pooling.hpp"
#include "reshape.hpp"

namespace sgdx {
namespace {

// A printout of any length leaves room for what PyTorch allows in one Sequential.
constexpr uint32_t kMaxLayers = 4096;

std::string where(const core::LayerSpec& l) {
    std::string s = "layer (" + std::string(l.name) + "): " + core::layer_kind_name(l.kind);
    if (l.line) s = "line " + std::to_string(l.line) + ", " + s;
    return s;
}

[[noreturn]] void refuse(const core::LayerSpec& l, const std::string& why) { throw Error(where(l) + ": " + why); }

size_t square(const core::LayerSpec& l, const uint32_t (&v)[2], const char* what) {
    if (v[0] != v[1])
        refuse(l, std::string(what) + " (" + std::to_string(v[0]) + ", " + std::to_string(v[1]) +
                      ") differs across height and width: sgdx takes equal ones");
    return v[0];
}

std::unique_ptr<Module> make_layer(const core::LayerSpec& l, Rng& rng, uint64_t seed) {
    using K = core::LayerKind;
    switch (l.kind) {
        case K::kLinear:
            return std::make_unique<Linear>(size_t(l.in), size_t(l.out), rng, l.bias);
        case K::kConv2d:
            return std::make_unique<Conv2d>(size_t(l.in), size_t(l.out), square(l, l.kernel, "kernel_size"),
                                            square(l, l.stride, "stride"), square(l, l.padding, "padding"), rng, l.bias);
        case K::kReLU:
            return std::make_unique<ReLU>();
        case K::kMaxPool2d:
        case K::kAvgPool2d: {
            const size_t k = square(l, l.kernel, "kernel_size"), s = square(l, l.stride, "stride");
            if (l.padding[0] || l.padding[1]) refuse(l, "padding other than 0 is not supported for pooling");
            if (l.kind == K::kMaxPool2d) return std::make_unique<MaxPool2d>(k, s);
            return std::make_unique<AvgPool2d>(k, s);
        }
        case K::kAdaptiveAvgPool2d:
            return std::make_unique<AdaptiveAvgPool2d>(1);
        case K::kFlatten:
            return std::make_unique<Flatten>();
        case K::kUnflatten: {
            Shape shape(l.unflatten, l.unflatten + l.unflatten_rank);
            return std::make_unique<Unflatten>(shape);
        }
        case K::kBatchNorm1d:
        case K::kBatchNorm2d: {
            const std::optional<double> momentum = l.cumulative ? std::nullopt : std::optional(l.momentum.value);
            if (l.kind == K::kBatchNorm1d)
                return std::make_unique<BatchNorm1d>(size_t(l.in), l.eps.value, momentum, l.affine,
                                                     l.track_running_stats);
            return std::make_unique<BatchNorm2d>(size_t(l.in), l.eps.value, momentum, l.affine, l.track_running_stats);
        }
        case K::kDropout:
            return std::make_unique<Dropout>(l.p.value, seed);
        default:
            refuse(l, "not a layer sgdx builds");
    }
}

}  // namespace

LayerList parse_printout(const std::string& text, const std::string& source) {
    // Enough room for every layer the text holds: each has a "(name):" (a layer per
    // line would undercount a printout pasted as one line).
    size_t parens = 1;
    for (char c : text) parens += c == '(';
    LayerList layers(std::min<size_t>(parens, kMaxLayers));
    char message[512];
    core::Text why(message, sizeof message);
    uint32_t n = 0;
    if (!core::parse_printout({text.data(), text.size()}, layers.data(), uint32_t(layers.size()), n, why))
        throw Error(source.empty() ? std::string(message) : source + ": " + message);
    layers.resize(n);
    return layers;
}

std::string printout_text(const LayerList& layers) {
    for (size_t cap = 256 + 128 * layers.size();; cap *= 2) {
        std::string buf(cap, '\0');
        core::Text t(buf.data(), buf.size());
        if (core::write_printout(layers.data(), uint32_t(layers.size()), t)) return std::string(t.str(), t.size());
        if (!t.overflowed()) throw Error("these layers cannot be written as one nn.Sequential");
    }
}

Shape network_input(const LayerList& layers, size_t rows, size_t cols) {
    if (core::takes_images(layers.data(), uint32_t(layers.size()))) return {1, rows, cols};
    return {rows * cols};
}

std::unique_ptr<Sequential> build_network(const LayerList& layers, const Shape& input, Rng& rng, uint64_t seed) {
    if (layers.empty()) throw Error("a network needs at least one layer");
    const uint32_t bad = core::unflattened_linear(layers.data(), uint32_t(layers.size()));
    if (bad < layers.size())
        refuse(layers[bad], "its input is still an image (channels, height, width): add Flatten() before it "
                            "(PyTorch's Linear would act on the last axis alone)");
    auto net = std::make_unique<Sequential>();
    uint64_t position = 0;
    for (const core::LayerSpec& l : layers) {
        std::unique_ptr<Module> m;
        ++position;  // each Dropout its own stream: the seed and its place in the network
        try {
            m = make_layer(l, rng, seed + 0x9E3779B97F4A7C15ull * position);
        } catch (const Error& e) {
            const std::string what = e.what();
            if (what.rfind("line ", 0) == 0 || what.rfind("layer (", 0) == 0) throw;
            refuse(l, what);
        }
        net->add(l.name, std::move(m));
    }
    try {
        net->build(input);
    } catch (const Error& e) {
        // "Sequential child 3 (Conv2d): ..." -> the printout's line
        const std::string what = e.what();
        for (const core::LayerSpec& l : layers) {
            const std::string prefix = "Sequential child " + std::string(l.name) + " (";
            if (what.rfind(prefix, 0) == 0) {
                const size_t colon = what.find("): ");
                throw Error(where(l) + ": " + (colon == std::string::npos ? what : what.substr(colon + 3)));
            }
        }
        throw;
    }
    return net;
}

}  // namespace sgdx
