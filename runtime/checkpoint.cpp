#include "checkpoint.hpp"

#include <cstdio>
#include <cstdlib>

#include "error.hpp"
#include "file_io.hpp"

namespace sgdx {
namespace {

const char* kKind = "sgdx-checkpoint";
const char* kStatePrefix = "optimizer.";  // + state name + "." + parameter name
const char* kOptimizerKey = "optimizer";
const char* kSettingPrefix = "setting.";
const char* kCounterPrefix = "module.";  // + a module counter's dotted name (Dropout's "3.calls")

// %.17g round-trips every double exactly.
std::string exact(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string history_text(const std::vector<EpochRecord>& history) {
    std::string s;
    for (const auto& r : history)
        s += (s.empty() ? "" : ";") + std::to_string(r.epoch) + "," + exact(r.train_loss) + "," +
             exact(r.valid_loss) + "," + exact(r.valid_acc) + "," + exact(r.seconds);
    return s;
}

struct Reader {
    const std::map<std::string, std::string>& meta;
    const std::string& source;

    const std::string& text(const std::string& key) const {
        auto it = meta.find(key);
        if (it == meta.end()) throw Error(source + ": checkpoint lacks '" + key + "'");
        return it->second;
    }
    uint64_t u64(const std::string& key) const {
        const std::string& t = text(key);
        char* end = nullptr;
        unsigned long long v = std::strtoull(t.c_str(), &end, 10);
        if (t.empty() || *end) throw Error(source + ": checkpoint field '" + key + "' is not a number: " + t);
        return v;
    }
    double f64(const std::string& t, const std::string& key) const {
        char* end = nullptr;
        double v = std::strtod(t.c_str(), &end);
        if (t.empty() || *end) throw Error(source + ": checkpoint field '" + key + "' is not a number: " + t);
        return v;
    }
};

std::vector<EpochRecord> parse_history(const Reader& r) {
    std::vector<EpochRecord> out;
    const std::string& t = r.text("history");
    size_t pos = 0;
    while (pos < t.size()) {
        size_t end = t.find(';', pos);
        if (end == std::string::npos) end = t.size();
        std::string item = t.substr(pos, end - pos);
        std::vector<std::string> f;
        size_t p = 0;
        for (size_t q; (q = item.find(',', p)) != std::string::npos; p = q + 1) f.push_back(item.substr(p, q - p));
        f.push_back(item.substr(p));
        if (f.size() != 5) throw Error(r.source + ": checkpoint history is malformed");
        EpochRecord rec;
        rec.epoch = int(r.f64(f[0], "history"));
        rec.train_loss = r.f64(f[1], "history");
        rec.valid_loss = r.f64(f[2], "history");
        rec.valid_acc = r.f64(f[3], "history");
        rec.seconds = r.f64(f[4], "history");
        out.push_back(rec);
        pos = end + 1;
    }
    return out;
}

}  // namespace

void save_checkpoint(const std::string& path, Module& model, Optimizer& opt, const TrainingState& st,
                     const std::map<std::string, std::string>& settings) {
    SafetensorsFile file;
    auto params = model.named_parameters();
    const auto state = opt.state_tensors();
    for (const auto& s : state)
        if (s.buffers->size() != params.size())
            throw Error(std::string("save_checkpoint: the ") + opt.name() + "'s " + s.name +
                        " buffers are not one per model parameter");
    model_tensors(model, file);  // parameters and buffers, as in a model file
    for (size_t i = 0; i < params.size(); ++i)
        for (const auto& s : state) {
            TensorData& m = file.tensors[kStatePrefix + s.name + "." + params[i].first];
            m.shape = file.tensors.at(params[i].first).shape;
            m.values.assign((*s.buffers)[i].begin(), (*s.buffers)[i].end());
        }
    auto& meta = file.metadata;
    meta["format"] = "pt";
    meta["kind"] = kKind;
    meta["epoch"] = std::to_string(st.epoch);
    meta["next_batch"] = std::to_string(st.next_batch);
    meta["loss_sum"] = exact(st.loss_sum);
    meta["samples"] = std::to_string(st.samples);
    meta["rng_state"] = std::to_string(st.rng_state);
    meta["rng_inc"] = std::to_string(st.rng_inc);
    meta[kOptimizerKey] = opt.name();
    for (const auto& [key, value] : opt.counters()) meta[key] = std::to_string(value);
    for (const auto& [name, value] : model.named_counters()) meta[kCounterPrefix + name] = std::to_string(*value);
    meta["history"] = history_text(st.history);
    for (const auto& [k, v] : settings) meta[kSettingPrefix + k] = v;
    std::vector<uint8_t> bytes = encode_safetensors(file);
    write_file_atomic(path, bytes.data(), bytes.size());
}

bool is_optimizer_state(const SafetensorsFile& file, const std::string& name) {
    const auto kind = file.metadata.find("kind");
    return kind != file.metadata.end() && kind->second == kKind && name.rfind(kStatePrefix, 0) == 0;
}

std::map<std::string, std::string> checkpoint_settings(const SafetensorsFile& file, const std::string& source) {
    auto kind = file.metadata.find("kind");
    if (kind == file.metadata.end() || kind->second != kKind)
        throw Error(source + ": not an sgdx checkpoint (a model file? use --init for those)");
    std::map<std::string, std::string> settings;
    for (const auto& [k, v] : file.metadata)
        if (k.rfind(kSettingPrefix, 0) == 0) settings[k.substr(std::string(kSettingPrefix).size())] = v;
    return settings;
}

TrainingState restore_checkpoint(const SafetensorsFile& file, const std::string& source, Module& model,
                                 Optimizer& opt, std::map<std::string, std::string>* settings) {
    Reader r{file.metadata, source};
    auto saved_settings = checkpoint_settings(file, source);  // also: is it a checkpoint at all
    TrainingState st;
    st.epoch = int(r.u64("epoch"));
    st.next_batch = size_t(r.u64("next_batch"));
    st.loss_sum = r.f64(r.text("loss_sum"), "loss_sum");
    st.samples = size_t(r.u64("samples"));
    st.rng_state = r.u64("rng_state");
    st.rng_inc = r.u64("rng_inc");
    st.history = parse_history(r);
    if (st.epoch < 1) throw Error(source + ": checkpoint epoch must be >= 1");

    // Older checkpoints name no optimiser: SGD made them.
    const std::string made_by = file.metadata.count(kOptimizerKey) ? r.text(kOptimizerKey) : "SGD";
    if (made_by != opt.name())
        throw Error(source + ": checkpoint was made with " + made_by + ", not " + opt.name());

    // Split the model's tensors from the optimiser's ("optimizer.<state>.<parameter>"),
    // check both, then copy.
    SafetensorsFile weights;
    std::map<std::string, std::map<std::string, const TensorData*>> saved;  // state -> parameter -> tensor
    for (const auto& [name, t] : file.tensors) {
        if (name.rfind(kStatePrefix, 0) == 0) {
            const std::string rest = name.substr(std::string(kStatePrefix).size());
            const size_t dot = rest.find('.');
            saved[rest.substr(0, dot)][dot == std::string::npos ? "" : rest.substr(dot + 1)] = &t;
        } else {
            weights.tensors[name] = t;
        }
    }
    auto params = model.named_parameters();
    auto state = opt.state_tensors();
    for (const auto& s : state)
        if (!saved.count(s.name))
            throw Error(source + ": checkpoint has no " + s.name + " buffers but " + opt.name() + " uses " + s.name);
    // A state the optimiser takes on (momentum a schedule cycled for an SGD made
    // without it): checked like the others, adopted once nothing can throw.
    std::vector<std::string> adopt;
    for (const auto& [name, tensors] : saved) {
        bool wanted = false;
        for (const auto& s : state) wanted = wanted || s.name == name;
        if (!wanted && opt.can_adopt_state(name)) adopt.push_back(name), wanted = true;
        if (!wanted) throw Error(source + ": checkpoint has " + name + " buffers but " + opt.name() + " uses none");
    }
    auto fits = [&](const std::string& name, size_t i, const std::vector<xt::xarray<float>>* buffers) {
        const auto& have = saved[name];
        const auto it = have.find(params[i].first);
        const size_t n = params[i].second->value.size();
        return it != have.end() && it->second->values.size() == n &&
               (!buffers || (i < buffers->size() && (*buffers)[i].size() == n));
    };
    for (size_t i = 0; i < params.size(); ++i) {
        for (const auto& s : state)
            if (!fits(s.name, i, s.buffers))
                throw Error(source + ": checkpoint lacks a fitting " + s.name + " buffer for '" + params[i].first + "'");
        for (const auto& name : adopt)
            if (!fits(name, i, nullptr))
                throw Error(source + ": checkpoint lacks a fitting " + name + " buffer for '" + params[i].first + "'");
    }
    std::vector<std::pair<std::string, uint64_t>> counters = opt.counters();
    for (auto& [key, value] : counters) {
        // An SGD without momentum never reads has_momentum; older files may lack it then.
        if (!file.metadata.count(key) && state.empty()) continue;
        value = r.u64(key);
    }
    // The model's counters: each one the model has, and none it has not.
    auto module_counters = model.named_counters();
    std::vector<uint64_t> module_values;
    for (const auto& [name, value] : module_counters) module_values.push_back(r.u64(kCounterPrefix + name));
    for (const auto& [key, value] : file.metadata) {
        if (key.rfind(kCounterPrefix, 0) != 0) continue;
        bool known = false;
        for (const auto& c : module_counters) known = known || kCounterPrefix + c.first == key;
        if (!known) throw Error(source + ": checkpoint has a counter '" + key + "' this model does not have");
    }
    // The optimiser's counters first (set_counter checks their values), then the model
    // (load_model checks names, shapes and dtypes before copying): if either throws,
    // nothing has changed.
    const auto before = opt.counters();
    try {
        for (const auto& [key, value] : counters)
            if (file.metadata.count(key)) opt.set_counter(key, value);
        load_model(model, weights, source);
    } catch (...) {
        for (const auto& [key, value] : before) opt.set_counter(key, value);
        throw;
    }
    for (size_t i = 0; i < module_counters.size(); ++i) *module_counters[i].second = module_values[i];
    if (!adopt.empty()) {
        for (const auto& name : adopt) opt.adopt_state(name);
        state = opt.state_tensors();
    }
    for (const auto& s : state) {
        const auto& have = saved[s.name];
        for (size_t i = 0; i < params.size(); ++i) {
            const auto& values = have.at(params[i].first)->values;
            std::copy(values.begin(), values.end(), (*s.buffers)[i].begin());
        }
    }
    if (settings) *settings = std::move(saved_settings);
    return st;
}

}  // namespace sgdx
