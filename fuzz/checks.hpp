#pragma once
// One input through a parser, plus checks of what it accepted. Shared by the
// libFuzzer targets (fuzz_*.cpp) and the regression test that replays committed
// inputs (tests/test_fuzz_regressions.cpp), so both judge an input the same way.
//
// Each check_* returns true when the parser accepted the input and false when it
// rejected it with sgdx::Error, or with false and a message for core/'s parsers
// (the expected outcome for bad bytes). Any other exception escapes:
// OracleFailure when an accepted result is inconsistent with its bytes,
// std::bad_alloc etc. when a parser misbehaves.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/printout.hpp"
#include "models/mnist_logistic.hpp"
#include "models/zoo.hpp"
#include "native/pgm.hpp"
#include "runtime/error.hpp"
#include "runtime/idx.hpp"
#include "runtime/safetensors.hpp"

namespace sgdx::fuzz {

// A parser accepted bytes but its result breaks an invariant: a bug, not bad input.
class OracleFailure : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

inline void require(bool ok, const std::string& what) {
    if (!ok) throw OracleFailure(what);
}

inline uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Writes bytes to `path` for the file readers (which have their own code path).
inline void write_scratch(const std::string& path, const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    require(f != nullptr, "cannot write the scratch file " + path);
    size_t put = size ? std::fwrite(data, 1, size, f) : 0;
    std::fclose(f);
    require(put == size, "short write to " + path);
}

// --- IDX -------------------------------------------------------------------------
// Accepted images: the header's dimensions, checked without overflow, must account
// for every byte, and the pixels must be the bytes after the 16-byte header.
inline void require_images_match(const IdxImages& img, const uint8_t* data, size_t size) {
    require(size >= 16 && data[3] == 3, "accepted images without a rank-3 header");
    const uint64_t n = be32(data + 4), rows = be32(data + 8), cols = be32(data + 12);
    require(img.rows == rows && img.cols == cols, "rows/cols differ from the header");
    require(img.pixels.shape()[0] == n && img.pixels.shape()[1] == rows * cols, "pixel shape differs from the header");
    // 128-bit: n * rows * cols may exceed 64 bits for a header that should be rejected
    const unsigned __int128 want = (unsigned __int128)n * rows * cols;
    require(want == size - 16, "header dimensions do not account for the file's bytes");
    require(img.pixels.size() == size - 16, "pixel count differs from the data size");
    require(std::memcmp(img.pixels.data(), data + 16, size - 16) == 0, "pixels differ from the file's data");
}

inline void require_labels_match(const xt::xtensor<uint8_t, 1>& labels, const uint8_t* data, size_t size) {
    require(size >= 8 && data[3] == 1, "accepted labels without a rank-1 header");
    require(labels.shape()[0] == be32(data + 4) && labels.size() == size - 8, "label count differs from the header");
    require(std::memcmp(labels.data(), data + 8, size - 8) == 0, "labels differ from the file's data");
}

// parse_idx_* (memory) and, when `scratch` names a file, read_idx_* (a separate
// code path: fopen, a fixed header buffer) must agree on accept/reject and result.
inline bool check_idx(const uint8_t* data, size_t size, const std::string& scratch = "") {
    bool images_ok = false, labels_ok = false;
    IdxImages img;
    xt::xtensor<uint8_t, 1> labels;
    try {
        img = parse_idx_images(data, size, "fuzz");
        require_images_match(img, data, size);
        images_ok = true;
    } catch (const Error&) {
    }
    try {
        labels = parse_idx_labels(data, size, "fuzz");
        require_labels_match(labels, data, size);
        labels_ok = true;
    } catch (const Error&) {
    }
    require(!(images_ok && labels_ok), "the same bytes parsed as both images and labels");
    if (!scratch.empty()) {
        write_scratch(scratch, data, size);
        bool file_images_ok = false, file_labels_ok = false;
        try {
            IdxImages f = read_idx_images(scratch);
            require_images_match(f, data, size);
            file_images_ok = true;
        } catch (const Error&) {
        }
        try {
            auto f = read_idx_labels(scratch);
            require_labels_match(f, data, size);
            file_labels_ok = true;
        } catch (const Error&) {
        }
        require(file_images_ok == images_ok && file_labels_ok == labels_ok,
                "read_idx_* and parse_idx_* disagree on whether the bytes are valid");
    }
    return images_ok || labels_ok;
}

// --- safetensors -------------------------------------------------------------------
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

inline bool same_tensors(const SafetensorsFile& a, const SafetensorsFile& b) {
    if (a.tensors.size() != b.tensors.size()) return false;
    for (const auto& [name, t] : a.tensors) {
        auto it = b.tensors.find(name);
        if (it == b.tensors.end() || it->second.shape != t.shape || !same_bits(it->second.values, t.values))
            return false;
    }
    return true;
}

inline std::vector<std::vector<float>> snapshot(Module& m) {
    std::vector<std::vector<float>> out;
    for (auto& [name, p] : m.named_parameters()) out.emplace_back(p->value.begin(), p->value.end());
    return out;
}

inline bool same_snapshot(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (!same_bits(a[i], b[i])) return false;  // bits: NaN weights compare equal to themselves
    return true;
}

// load_model either copies every tensor exactly (true) or leaves the model untouched.
inline bool check_load(Module& model, const SafetensorsFile& file) {
    const auto before = snapshot(model);
    try {
        load_model(model, file, "fuzz");
    } catch (const Error&) {
        require(same_snapshot(snapshot(model), before), "load_model changed the model and then failed");
        return false;
    }
    for (auto& [name, p] : model.named_parameters()) {
        const TensorData& t = file.tensors.at(name);
        require(same_bits(std::vector<float>(p->value.begin(), p->value.end()), t.values),
                "load_model did not copy '" + name + "' exactly");
    }
    // what the runtime writes back must parse to the same tensors
    std::vector<uint8_t> again = encode_model(model);
    SafetensorsFile reread = parse_safetensors(again.data(), again.size(), "re-encoded");
    require(same_tensors(reread, file), "encode_model of a loaded model does not round-trip");
    return true;
}

// Parse, then load into the tutorial's 784->10 model and a small 4->3 one (small
// seeds reach it), plus one sized from a 2-D lin.weight when that is small, so any
// shape can load. True when the file loads into the 784->10 or the 4->3 model.
inline bool check_safetensors(const uint8_t* data, size_t size) {
    SafetensorsFile file;
    try {
        file = parse_safetensors(data, size, "fuzz");
    } catch (const Error&) {
        return false;
    }
    std::vector<uint8_t> bytes = encode_safetensors(file);
    SafetensorsFile again = parse_safetensors(bytes.data(), bytes.size(), "re-encoded");
    require(same_tensors(again, file) && again.metadata == file.metadata, "encode/parse does not round-trip");
    try {  // the detection of the file's model (core/architecture): an answer or sgdx::Error
        model_spec_of(file, "fuzz");
    } catch (const Error&) {
    }

    static MnistLogistic tutorial(784, 10), small(4, 3);
    const bool loads_tutorial = check_load(tutorial, file);
    const bool loads_small = check_load(small, file);
    auto w = file.tensors.find("lin.weight");
    if (w != file.tensors.end() && w->second.shape.size() == 2) {
        const size_t out = w->second.shape[0], in = w->second.shape[1];
        if (out >= 1 && in >= 1 && out <= 4096 && in <= 4096 && out * in <= (size_t(1) << 16)) {
            MnistLogistic sized(in, out);
            check_load(sized, file);
        }
    }
    return loads_tutorial || loads_small;
}

// --- PGM ---------------------------------------------------------------------------
// An accepted image is width*height pixels, and written back as P5 (maxval 255)
// it parses to the same image.
inline bool check_pgm(const uint8_t* data, size_t size) {
    GrayImage img;
    try {
        img = parse_pgm(data, size, "fuzz");
    } catch (const Error&) {
        return false;
    }
    require(img.width >= 1 && img.height >= 1 && img.pixels.size() == img.width * img.height,
            "pixel count differs from width x height");
    require(img.pixels.size() <= size, "more pixels than input bytes");
    std::string header = "P5\n" + std::to_string(img.width) + " " + std::to_string(img.height) + "\n255\n";
    std::vector<uint8_t> p5(header.begin(), header.end());
    p5.insert(p5.end(), img.pixels.begin(), img.pixels.end());
    GrayImage again = parse_pgm(p5.data(), p5.size(), "re-encoded");
    require(again.width == img.width && again.height == img.height && again.pixels == img.pixels,
            "P5 written from a parsed image does not parse back the same");
    return true;
}

// --- printout ------------------------------------------------------------------------
// The same layer, field by field (the line it came from aside; doubles by their bits).
inline bool same_layer(const core::LayerSpec& a, const core::LayerSpec& b) {
    auto same_real = [](core::Real x, core::Real y) {
        return std::memcmp(&x.value, &y.value, sizeof x.value) == 0 && x.integer == y.integer;
    };
    return a.kind == b.kind && std::strcmp(a.name, b.name) == 0 && a.in == b.in && a.out == b.out &&
           std::memcmp(a.kernel, b.kernel, sizeof a.kernel) == 0 && std::memcmp(a.stride, b.stride, sizeof a.stride) == 0 &&
           std::memcmp(a.padding, b.padding, sizeof a.padding) == 0 && a.kernel_form == b.kernel_form &&
           a.stride_form == b.stride_form && a.padding_form == b.padding_form && a.dilation_form == b.dilation_form &&
           a.bias == b.bias && a.inplace == b.inplace && same_real(a.eps, b.eps) && same_real(a.momentum, b.momentum) &&
           a.cumulative == b.cumulative && a.affine == b.affine && a.track_running_stats == b.track_running_stats &&
           same_real(a.p, b.p) && a.output_form == b.output_form && a.unflatten_rank == b.unflatten_rank &&
           std::memcmp(a.unflatten, b.unflatten, sizeof a.unflatten) == 0 && a.unflatten_form == b.unflatten_form;
}

// The bytes as a network's printout (core/printout): a refusal is one line of a
// few hundred characters whatever the input; an accepted printout is written
// back as torch prints it, which parses to the same layers and is written again
// unchanged. The bytes as one number (read_real) are written and read back bit-exact.
inline bool check_printout(const uint8_t* data, size_t size) {
    const core::Span text{reinterpret_cast<const char*>(data), size};
    double v = 0;
    if (core::read_real(text, v)) {
        char buf[64];
        core::Text w(buf, sizeof buf);
        double back = 0;
        require(core::write_real(v, w) && core::read_real(core::span(buf), back) && std::memcmp(&v, &back, 8) == 0,
                "read_real's value does not write and read back the same");
    }
    constexpr uint32_t kCap = 64;
    static core::LayerSpec layers[kCap], again[kCap];
    char why[1024];
    core::Text t(why, sizeof why);
    uint32_t n = 7;
    if (!core::parse_printout(text, layers, kCap, n, t)) {
        require(n == 0, "a refused printout left a layer count");
        require(t.size() > 0 && t.size() < 512 && !std::strchr(why, '\n'), "a refusal is not one short line: " +
                std::string(why));
        return false;
    }
    require(t.size() == 0, "an accepted printout left a message");
    require(n >= 1 && n <= kCap && core::is_printout(text), "accepted text is not a printout of 1 to 64 layers");
    static char out[1 << 16], out2[1 << 16];
    core::Text o(out, sizeof out), o2(out2, sizeof out2);
    require(core::write_printout(layers, n, o), "an accepted printout cannot be written back");
    uint32_t m = 0;
    core::Text t2(why, sizeof why);
    require(core::parse_printout(core::span(out), again, kCap, m, t2), "the written printout is refused: " +
            std::string(why) + "\n" + out);
    require(m == n, "the written printout has another number of layers");
    for (uint32_t i = 0; i < n; ++i) require(same_layer(layers[i], again[i]), "layer " + std::to_string(i) + " differs");
    require(core::write_printout(again, m, o2) && std::strcmp(out, out2) == 0, "writing it again changes the text");
    return true;
}

}  // namespace sgdx::fuzz
