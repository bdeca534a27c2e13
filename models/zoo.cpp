#include "zoo.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iterator>

#include "../core/architecture.hpp"
#include "../runtime/error.hpp"
#include "../runtime/file_io.hpp"
#include "mnist_cnn.hpp"
#include "mnist_logistic.hpp"

namespace sgdx {
namespace {

std::vector<size_t> hidden_or_default(const ModelSpec& spec) {
    return spec.hidden.empty() ? std::vector<size_t>{128} : spec.hidden;
}

std::string join(const std::vector<size_t>& v, const char* sep) {
    std::string s;
    for (size_t x : v) s += (s.empty() ? "" : sep) + std::to_string(x);
    return s;
}

// Widths a file may list for an mlp; make_model takes any number.
constexpr size_t kMaxFileHidden = 1024;

// The core's view of a spec; `layers` is room for its layer list (a Sequential's
// metadata is written from it).
core::Spec core_spec(const ModelSpec& s, std::vector<uint64_t>& hidden, LayerList& layers) {
    core::Spec c;
    if (s.architecture == "sequential") {
        c.arch = core::kCustom;
        layers = s.layers;
        c.n_layers = uint32_t(layers.size());
    } else {
        const int id = core::arch_id({s.architecture.data(), s.architecture.size()});
        if (id < 0) throw Error("unknown model '" + s.architecture + "'");
        c.arch = uint32_t(id);
        const std::vector<size_t> widths = hidden_or_default(s);
        hidden.assign(widths.begin(), widths.end());
    }
    c.rows = s.rows, c.cols = s.cols, c.classes = s.classes;
    c.hidden = hidden.data();
    c.hidden_cap = c.n_hidden = uint32_t(hidden.size());
    if (c.arch != core::kCustom) {
        uint32_t n = 0;
        core::model_layers(c, nullptr, 0, n);  // counts them
        layers.resize(n);
    }
    c.layers = layers.data();
    c.layers_cap = uint32_t(layers.size());
    return c;
}

// A named Sequential's layers, as core/architecture lists them.
LayerList zoo_layers(const ModelSpec& s) {
    std::vector<uint64_t> hidden;
    LayerList layers;
    const core::Spec c = core_spec(s, hidden, layers);
    for (size_t h : hidden)
        if (h == 0) throw Error("mlp: a hidden layer needs at least 1 unit");
    uint32_t n = 0;  // into the room core_spec made
    if (!core::model_layers(c, layers.data(), uint32_t(layers.size()), n)) throw Error("too many layers");
    layers.resize(n);
    return layers;
}

}  // namespace

const std::vector<std::string>& model_names() {
    static const std::vector<std::string> names(
        [] {
            std::vector<std::string> v;
            for (uint32_t i = 0; i < core::kArchCount; ++i) v.push_back(core::kArchitectures[i].name);
            return v;
        }());
    return names;
}

std::unique_ptr<Module> make_model(const ModelSpec& spec, uint64_t seed) {
    if (spec.rows == 0 || spec.cols == 0 || spec.classes == 0)
        throw Error("model " + spec.architecture + ": image size and class count must be >= 1");
    const std::string name = spec.architecture == "sequential" ? describe(spec) : "model " + spec.architecture;
    std::unique_ptr<Module> model;
    try {
        if (spec.architecture == "logistic") {
            model = std::make_unique<MnistLogistic>(spec.rows * spec.cols, spec.classes, seed);
        } else if (spec.architecture == "cnn") {
            model = std::make_unique<MnistCNN>(spec.rows, spec.cols, spec.classes, seed);
        } else {
            const bool custom = spec.architecture == "sequential";
            const int id = core::arch_id({spec.architecture.data(), spec.architecture.size()});
            if (!custom && (id < 0 || !core::is_sequential(uint32_t(id)))) {
                std::string names;
                for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
                throw Error("unknown model '" + spec.architecture + "' (choose one of: " + names + ")");
            }
            const size_t side = custom ? 0 : core::kArchitectures[id].min_side;
            if (spec.rows < side || spec.cols < side)
                throw Error("needs images of at least " + std::to_string(side) + "x" + std::to_string(side));
            const LayerList layers = custom ? spec.layers : zoo_layers(spec);
            Rng rng(seed);
            model = build_network(layers, network_input(layers, spec.rows, spec.cols), rng, seed);
        }
    } catch (const Error& e) {
        if (std::string(e.what()).rfind("unknown model", 0) == 0) throw;
        throw Error(name + " for " + std::to_string(spec.rows) + "x" + std::to_string(spec.cols) + " images: " + e.what());
    }
    if (model->out_features() != spec.classes)
        throw Error(name + " for " + std::to_string(spec.rows) + "x" + std::to_string(spec.cols) +
                    " images ends in " + shape_text(model->output_shape()) + ", not one score per class (" +
                    std::to_string(spec.classes) + ")" +
                    (spec.architecture == "sequential" ? "" : ": it is built for 28x28 images"));
    return model;
}

std::string describe(const ModelSpec& s) {
    const std::string in = std::to_string(s.rows * s.cols), out = std::to_string(s.classes);
    if (s.architecture == "sequential")
        return "Sequential of " + std::to_string(s.layers.size()) + " layer" + (s.layers.size() == 1 ? "" : "s");
    if (s.architecture == "logistic") return "MnistLogistic " + in + " -> " + out;
    if (s.architecture == "mlp") return "mlp " + in + "-" + join(hidden_or_default(s), "-") + "-" + out;
    return s.architecture + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " -> " + out;
}

std::map<std::string, std::string> model_metadata(const ModelSpec& s) {
    std::vector<uint64_t> hidden;
    LayerList layers;
    const core::Spec spec = core_spec(s, hidden, layers);
    core::Metadata meta;
    std::vector<char> text;
    for (size_t cap = 256 + 160 * layers.size();; cap *= 2) {  // a printout's length is known once written
        text.assign(cap, '\0');
        if (core::model_metadata(spec, false, true, text.data(), text.size(), meta)) break;
        if (cap > (size_t(1) << 26)) throw Error(describe(s) + ": its metadata cannot be written");
    }
    std::map<std::string, std::string> m;
    for (uint32_t i = 0; i < meta.count; ++i) m[meta.key[i]] = meta.value[i];
    return m;
}

// core/architecture's detection, over the parsed file.
ModelSpec model_spec_of(const SafetensorsFile& f, const std::string& source) {
    std::vector<core::TensorEntry> tensors;
    for (const auto& [name, t] : f.tensors) {
        core::TensorEntry e;
        e.name = {name.data(), name.size()};
        e.rank = uint32_t(std::min(t.shape.size(), core::kMaxRank));
        std::copy(t.shape.begin(), t.shape.begin() + e.rank, e.shape);
        tensors.push_back(e);
    }
    std::vector<core::MetaEntry> meta;
    for (const auto& [k, v] : f.metadata) meta.push_back({{k.data(), k.size()}, {v.data(), v.size()}});
    core::HeaderView view;
    view.tensors = tensors.data(), view.count = tensors.size();
    view.meta = meta.data(), view.meta_count = meta.size();
    std::vector<uint64_t> hidden(kMaxFileHidden);
    core::Spec spec;
    spec.hidden = hidden.data();
    spec.hidden_cap = uint32_t(hidden.size());
    LayerList layers;  // room for a printout's layers: one a line at most
    if (auto it = f.metadata.find("architecture"); it != f.metadata.end())
        layers.resize(std::min<size_t>(1 + std::count(it->second.begin(), it->second.end(), '\n'), 4096));
    spec.layers = layers.data();
    spec.layers_cap = uint32_t(layers.size());
    char message[1024];
    core::Text why(message, sizeof message);
    if (core::detect(view, UINT64_MAX, spec, why) != core::DetectProblem::kNone) throw Error(source + ": " + message);
    ModelSpec s;
    if (spec.arch == core::kCustom) {
        s.architecture = "sequential";
        s.layers.assign(layers.begin(), layers.begin() + spec.n_layers);
    } else {
        s.architecture = core::kArchitectures[spec.arch].name;
    }
    s.rows = size_t(spec.rows), s.cols = size_t(spec.cols), s.classes = size_t(spec.classes);
    s.hidden.assign(hidden.begin(), hidden.begin() + spec.n_hidden);
    return s;
}

ModelSpec model_spec_from_text(const std::string& text, const std::string& source_name) {
    ModelSpec spec;
    for (const auto& n : model_names())
        if (text == n) {
            spec.architecture = text;
            return spec;
        }
    std::string printout = text, source = source_name;
    if (!core::is_printout({text.data(), text.size()})) {
        std::string names;
        for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
        const std::string choices = " (choose one of: " + names + "; or give an nn.Sequential as PyTorch prints it, "
                                    "or the path of a text file holding one)";
        std::error_code ec;
        // A value with a '/' or a '.' is meant as a file: say what is wrong with it.
        const bool path_like = text.find_first_of("/.") != std::string::npos && text.size() < 4096;
        if (!std::filesystem::is_regular_file(text, ec) && !path_like)
            throw Error("unknown model '" + text.substr(0, 60) + (text.size() > 60 ? "..." : "") + "'" + choices);
        std::vector<uint8_t> bytes;
        try {
            bytes = read_file(text);  // names the file and the problem
        } catch (const Error& e) {
            throw Error(std::string("--model ") + e.what());
        }
        printout.assign(bytes.begin(), bytes.end());
        source = text;
        if (!core::is_printout({printout.data(), printout.size()})) {
            if (bytes.size() >= 9 && bytes[8] == '{')  // safetensors: an 8-byte length, then its JSON header
                throw Error("--model " + text + ": a model file, not a printout: start from it with --init " + text +
                            " (its architecture comes with it)");
            throw Error(text + ": does not begin with 'Sequential(': not a printout of an nn.Sequential" + choices);
        }
    }
    spec.architecture = "sequential";
    spec.layers = parse_printout(printout, source);
    return spec;
}

TrainingDefaults default_training(const std::string& architecture) {
    const int id = core::arch_id({architecture.data(), architecture.size()});
    const core::Training& t = id < 0 ? core::kCustomTraining : core::kArchitectures[id].training;
    return {t.optimizer, t.lr, t.momentum, t.lr_gamma, t.schedule, int(t.epochs)};
}

std::string default_help(const std::string& setting) {
    static const char* const kSettings[] = {"optimizer", "lr", "momentum", "lr_gamma", "schedule", "epochs"};
    if (std::find(std::begin(kSettings), std::end(kSettings), setting) == std::end(kSettings))
        throw Error("no training setting '" + setting + "'");
    const auto value = [&](const core::Training& t) -> std::string {
        if (setting == "optimizer") return t.optimizer;
        if (setting == "schedule") return t.schedule;
        if (setting == "epochs") return std::to_string(t.epochs);
        if (setting == "momentum" && std::string(t.optimizer) != "sgd") return "";  // Adam's has none
        char text[32];
        std::snprintf(text, sizeof text, "%g", setting == "lr" ? t.lr : setting == "momentum" ? t.momentum : t.lr_gamma);
        return text;
    };
    const std::string custom = value(core::kCustomTraining);
    std::string help = custom;
    for (uint32_t i = 0; i < core::kArchCount; ++i) {
        const std::string own = value(core::kArchitectures[i].training);
        if (!own.empty() && own != custom)
            help += std::string("; ") + core::kArchitectures[i].name + " " + own;
    }
    return help;
}

SgdOptions default_sgd(const std::string& architecture) {
    const TrainingDefaults d = default_training(architecture);
    SgdOptions o;
    if (d.optimizer == "sgd") o.lr = d.lr, o.momentum = d.momentum;
    else o.lr = 0.1f, o.momentum = 0.9f;
    return o;
}

double default_lr_gamma(const std::string& architecture) { return default_training(architecture).lr_gamma; }

std::unique_ptr<Module> model_from_file(const SafetensorsFile& file, const std::string& source, ModelSpec* spec_out) {
    ModelSpec spec = model_spec_of(file, source);
    std::unique_ptr<Module> model;
    try {
        model = make_model(spec);
    } catch (const Error& e) {
        throw Error(source + ": " + e.what());
    }
    load_model(*model, file, source);  // checks every name and shape first
    if (spec_out) *spec_out = spec;
    return model;
}

std::unique_ptr<Module> load_model_file(const std::string& path, ModelSpec* spec_out) {
    return model_from_file(read_safetensors(path), path, spec_out);
}

}  // namespace sgdx
