#include "safetensors.hpp"

#include <cstring>

#include "core/safetensors.hpp"

#include "checkpoint.hpp"
#include "error.hpp"
#include "file_io.hpp"

namespace sgdx {
namespace {

core::Span span_of(const std::string& s) { return {s.data(), s.size()}; }

std::string decoded(core::Span raw) {
    std::string s(raw.n, '\0');
    s.resize(core::decode_string(raw, &s[0]));
    return s;
}

uint64_t data_bytes(const TensorData& t) {
    return t.dtype == DType::I64 ? 8 * uint64_t(t.ints.size()) : 4 * uint64_t(t.values.size());
}

// The header of `file`, unpadded, into buf[0, cap); returns its length.
size_t write_header(const SafetensorsFile& file, char* buf, size_t cap) {
    core::HeaderWriter w(buf, cap);
    for (const auto& [k, v] : file.metadata) w.meta(span_of(k), span_of(v));
    std::vector<uint64_t> shape;
    for (const auto& [name, t] : file.tensors) {
        shape.assign(t.shape.begin(), t.shape.end());
        w.tensor(span_of(name), shape.data(), shape.size(), data_bytes(t), dtype_name(t.dtype));
    }
    return w.finish();
}

// Little-endian on every host.
void put_le(uint64_t u, int bytes, uint8_t*& q) {
    for (int i = 0; i < bytes; ++i) *q++ = uint8_t(u >> (8 * i));
}

uint64_t get_le(const uint8_t* q, int bytes) {
    uint64_t u = 0;
    for (int i = 0; i < bytes; ++i) u |= uint64_t(q[i]) << (8 * i);
    return u;
}

}  // namespace

// The format's checks are core/safetensors' (shared with the C API); this adds
// the std::map, the decoded strings and the values.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& source) {
    char message[320];
    core::Text why(message, sizeof message);
    auto fail = [&]() { throw Error(source + ": " + message); };
    uint64_t n = 0;
    if (!core::header_length(bytes, size, n, why)) fail();
    core::HeaderReader reader(reinterpret_cast<const char*>(bytes + 8), size_t(n), why);
    SafetensorsFile file;
    std::vector<core::TensorEntry> entries;
    for (auto item = reader.next(); item != core::HeaderReader::kEnd; item = reader.next()) {
        if (item == core::HeaderReader::kError) fail();
        if (item == core::HeaderReader::kMeta) file.metadata[decoded(reader.meta().key)] = decoded(reader.meta().value);
        else entries.push_back(reader.tensor());
    }
    if (!core::check_names(entries.data(), entries.size(), why)) fail();
    if (core::check_data(entries.data(), entries.size(), size - 8 - n, why, core::Dtypes::kF32OrI64) !=
        core::DataProblem::kNone)
        fail();
    const uint8_t* data = bytes + 8 + n;
    for (const core::TensorEntry& e : entries) {
        const std::string name = decoded(e.name);
        if (file.tensors.count(name))  // the same name, escaped two ways
            throw Error(source + ": corrupt safetensors header: tensor '" + name + "' appears twice");
        TensorData& t = file.tensors[name];
        t.shape.assign(e.shape, e.shape + e.rank);
        if (e.dtype.is("I64")) {
            t.dtype = DType::I64;
            t.ints.resize(size_t((e.end - e.begin) / 8));
            for (size_t i = 0; i < t.ints.size(); ++i) t.ints[i] = int64_t(get_le(data + e.begin + 8 * i, 8));
            continue;
        }
        t.values.resize(size_t((e.end - e.begin) / 4));
        for (size_t i = 0; i < t.values.size(); ++i) {
            const uint32_t u = uint32_t(get_le(data + e.begin + 4 * i, 4));
            std::memcpy(&t.values[i], &u, 4);
        }
    }
    return file;
}

std::vector<uint8_t> encode_safetensors(const SafetensorsFile& file) {
    const size_t length = write_header(file, nullptr, 0), padded = core::HeaderWriter::padded(length);
    uint64_t data = 0;
    for (const auto& [name, t] : file.tensors) data += data_bytes(t);
    std::vector<uint8_t> out(8 + padded + data, uint8_t(' '));
    uint8_t* q = out.data();
    put_le(padded, 8, q);
    write_header(file, reinterpret_cast<char*>(out.data() + 8), length);  // the data starts 8-byte aligned
    q = out.data() + 8 + padded;
    for (const auto& [name, t] : file.tensors) {
        if (t.dtype == DType::I64) {
            for (int64_t v : t.ints) put_le(uint64_t(v), 8, q);
            continue;
        }
        for (float v : t.values) {
            uint32_t u;
            std::memcpy(&u, &v, 4);
            put_le(u, 4, q);
        }
    }
    return out;
}

void model_tensors(Module& model, SafetensorsFile& file) {
    for (auto& [name, p] : model.named_parameters()) {
        TensorData& t = file.tensors[name];
        t.shape.assign(p->value.shape().begin(), p->value.shape().end());
        t.values.assign(p->value.begin(), p->value.end());
    }
    for (auto& [name, b] : model.named_buffers()) {
        TensorData& t = file.tensors[name];
        t.shape = b->shape();
        t.dtype = b->dtype;
        if (b->dtype == DType::I64) t.ints.assign(1, b->count);
        else t.values.assign(b->value.begin(), b->value.end());
    }
}

std::vector<uint8_t> encode_model(Module& model, const std::map<std::string, std::string>& metadata) {
    SafetensorsFile file;
    file.metadata = metadata;
    file.metadata["format"] = "pt";
    model_tensors(model, file);
    return encode_safetensors(file);
}

void save_model(Module& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
    std::vector<uint8_t> bytes = encode_model(model, metadata);
    write_file_atomic(path, bytes.data(), bytes.size());
}

void load_model(Module& model, const SafetensorsFile& file, const std::string& source) {
    struct Wanted {
        std::vector<size_t> shape;
        DType dtype;
    };
    std::map<std::string, Wanted> wanted;
    auto params = model.named_parameters();
    auto buffers = model.named_buffers();
    for (auto& [name, p] : params) wanted[name] = {std::vector<size_t>(p->value.shape().begin(), p->value.shape().end()), DType::F32};
    for (auto& [name, b] : buffers) wanted[name] = {b->shape(), b->dtype};
    for (const auto& [name, want] : wanted) {
        auto it = file.tensors.find(name);
        if (it == file.tensors.end()) throw Error(source + ": the model file has no tensor '" + name + "'");
        if (it->second.shape != want.shape)
            throw Error(source + ": tensor '" + name + "' has shape " + shape_text(it->second.shape) +
                        ", the model expects " + shape_text(want.shape));
        if (it->second.dtype != want.dtype)
            throw Error(source + ": tensor '" + name + "' has dtype " + dtype_name(it->second.dtype) +
                        ", the model expects " + dtype_name(want.dtype));
    }
    for (const auto& [name, t] : file.tensors)
        if (!wanted.count(name) && !is_optimizer_state(file, name))
            throw Error(source + ": unexpected tensor '" + name + "' for this model");
    for (auto& [name, p] : params) {  // all checked: now copy
        const auto& values = file.tensors.at(name).values;
        std::copy(values.begin(), values.end(), p->value.begin());
    }
    for (auto& [name, b] : buffers) {
        const TensorData& t = file.tensors.at(name);
        if (b->dtype == DType::I64) b->count = t.ints.at(0);
        else std::copy(t.values.begin(), t.values.end(), b->value.begin());
    }
}

SafetensorsFile read_safetensors(const std::string& path) {
    std::vector<uint8_t> bytes = read_file(path);
    return parse_safetensors(bytes.data(), bytes.size(), path);
}

}  // namespace sgdx
