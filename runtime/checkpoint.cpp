#include "checkpoint.hpp"

#include <cstdio>
#include <cstdlib>

#include "error.hpp"
#include "file_io.hpp"

namespace sgdx {
namespace {

const char* kKind = "sgdx-checkpoint";
const char* kMomentumPrefix = "optimizer.momentum.";
const char* kSettingPrefix = "setting.";

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

void save_checkpoint(const std::string& path, Module& model, SGD& opt, const TrainingState& st,
                     const std::map<std::string, std::string>& settings) {
    SafetensorsFile file;
    auto params = model.named_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
        const Parameter& p = *params[i].second;
        TensorData& t = file.tensors[params[i].first];
        t.shape.assign(p.value.shape().begin(), p.value.shape().end());
        t.values.assign(p.value.begin(), p.value.end());
        if (!opt.momentum_buffers().empty()) {
            TensorData& m = file.tensors[kMomentumPrefix + params[i].first];
            m.shape = t.shape;
            m.values.assign(opt.momentum_buffers()[i].begin(), opt.momentum_buffers()[i].end());
        }
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
    meta["has_momentum"] = opt.has_momentum() ? "1" : "0";
    meta["history"] = history_text(st.history);
    for (const auto& [k, v] : settings) meta[kSettingPrefix + k] = v;
    std::vector<uint8_t> bytes = encode_safetensors(file);
    write_file_atomic(path, bytes.data(), bytes.size());
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
                                 SGD& opt, std::map<std::string, std::string>* settings) {
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

    // Split the model's tensors from the optimiser's, check both, then copy.
    SafetensorsFile weights;
    std::map<std::string, const TensorData*> momentum;
    for (const auto& [name, t] : file.tensors) {
        if (name.rfind(kMomentumPrefix, 0) == 0) momentum[name.substr(std::string(kMomentumPrefix).size())] = &t;
        else weights.tensors[name] = t;
    }
    auto params = model.named_parameters();
    const bool wants_momentum = !opt.momentum_buffers().empty();
    if (wants_momentum != !momentum.empty())
        throw Error(source + (momentum.empty() ? ": checkpoint has no momentum buffers but SGD uses momentum"
                                               : ": checkpoint has momentum buffers but SGD uses none"));
    for (auto& [name, p] : params)
        if (wants_momentum && (!momentum.count(name) || momentum[name]->values.size() != p->value.size()))
            throw Error(source + ": checkpoint lacks a fitting momentum buffer for '" + name + "'");
    load_model(model, weights, source);  // checks names and shapes before copying
    if (wants_momentum) {
        for (size_t i = 0; i < params.size(); ++i) {
            const auto& values = momentum[params[i].first]->values;
            std::copy(values.begin(), values.end(), opt.momentum_buffers()[i].begin());
        }
        opt.has_momentum() = r.text("has_momentum") == "1";
    }
    if (settings) *settings = std::move(saved_settings);
    return st;
}

}  // namespace sgdx
