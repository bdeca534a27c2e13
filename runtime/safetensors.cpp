#include "safetensors.hpp"

#include <cstring>
#include <limits>

#include "error.hpp"
#include "file_io.hpp"

namespace sgdx {
namespace {

constexpr size_t kMaxHeader = 100 * 1000 * 1000;  // the reference implementation's limit

// A strict reader for the JSON subset a safetensors header uses: objects, arrays,
// strings, non-negative integers (and, for metadata robustness, true/false/null).
class HeaderParser {
public:
    HeaderParser(const char* p, size_t n, const std::string& source) : p_(p), end_(p + n), source_(source) {}

    SafetensorsFile parse() {
        SafetensorsFile out;
        expect('{');
        if (peek() == '}') { ++p_; finish(); return out; }
        for (;;) {
            std::string key = string();
            expect(':');
            if (key == "__metadata__") {
                expect('{');
                if (peek() != '}')
                    for (;;) {
                        std::string k = string();
                        expect(':');
                        out.metadata[k] = string();
                        if (peek() == ',') { ++p_; continue; }
                        break;
                    }
                expect('}');
            } else {
                if (out.tensors.count(key)) fail("tensor '" + key + "' appears twice");
                entries_.push_back(tensor_entry(key));
                out.tensors[key];
            }
            if (peek() == ',') { ++p_; continue; }
            expect('}');
            break;
        }
        finish();
        return out;
    }

    struct Entry {
        std::string name, dtype;
        std::vector<uint64_t> shape;
        uint64_t begin = 0, end = 0;
        bool has_dtype = false, has_shape = false, has_offsets = false;
    };
    std::vector<Entry> entries_;

private:
    Entry tensor_entry(const std::string& name) {
        Entry e;
        e.name = name;
        expect('{');
        for (;;) {
            std::string field = string();
            expect(':');
            if (field == "dtype") {
                e.dtype = string();
                e.has_dtype = true;
            } else if (field == "shape") {
                e.shape = int_array();
                e.has_shape = true;
            } else if (field == "data_offsets") {
                auto off = int_array();
                if (off.size() != 2) fail("tensor '" + name + "': data_offsets must hold 2 numbers");
                e.begin = off[0];
                e.end = off[1];
                e.has_offsets = true;
            } else {
                fail("tensor '" + name + "': unknown field '" + field + "'");
            }
            if (peek() == ',') { ++p_; continue; }
            expect('}');
            break;
        }
        if (!e.has_dtype || !e.has_shape || !e.has_offsets)
            fail("tensor '" + name + "' lacks dtype, shape or data_offsets");
        return e;
    }

    std::vector<uint64_t> int_array() {
        std::vector<uint64_t> v;
        expect('[');
        if (peek() == ']') { ++p_; return v; }
        for (;;) {
            v.push_back(integer());
            if (v.size() > 64) fail("array too long");
            if (peek() == ',') { ++p_; continue; }
            expect(']');
            return v;
        }
    }

    uint64_t integer() {
        skip_ws();
        if (p_ >= end_ || *p_ < '0' || *p_ > '9') fail("expected a non-negative integer");
        uint64_t v = 0;
        while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
            if (v > (std::numeric_limits<uint64_t>::max() - 9) / 10) fail("number too large");
            v = v * 10 + uint64_t(*p_++ - '0');
        }
        return v;
    }

    std::string string() {
        expect('"');
        std::string s;
        while (p_ < end_ && *p_ != '"') {
            char c = *p_++;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
            if (c == '\\') {
                if (p_ >= end_) break;
                char esc = *p_++;
                switch (esc) {
                    case '"': case '\\': case '/': s += esc; break;
                    case 'n': s += '\n'; break;
                    case 't': s += '\t'; break;
                    case 'r': s += '\r'; break;
                    case 'b': s += '\b'; break;
                    case 'f': s += '\f'; break;
                    case 'u': {
                        if (end_ - p_ < 4) fail("bad \\u escape");
                        unsigned cp = 0;
                        for (int i = 0; i < 4; ++i) {
                            char h = *p_++;
                            cp <<= 4;
                            if (h >= '0' && h <= '9') cp |= unsigned(h - '0');
                            else if (h >= 'a' && h <= 'f') cp |= unsigned(h - 'a' + 10);
                            else if (h >= 'A' && h <= 'F') cp |= unsigned(h - 'A' + 10);
                            else fail("bad \\u escape");
                        }
                        if (cp < 0x80) s += char(cp);
                        else if (cp < 0x800) { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
                        else { s += char(0xE0 | (cp >> 12)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F)); }
                        break;
                    }
                    default: fail("bad escape in a string");
                }
            } else {
                s += c;
            }
        }
        if (p_ >= end_) fail("unterminated string");
        ++p_;
        return s;
    }

    void skip_ws() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }
    char peek() {
        skip_ws();
        return p_ < end_ ? *p_ : '\0';
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++p_;
    }
    void finish() {
        skip_ws();  // the format pads the header with spaces
        if (p_ != end_) fail("unexpected bytes after the JSON header");
    }
    [[noreturn]] void fail(const std::string& what) {
        throw Error(source_ + ": corrupt safetensors header: " + what);
    }

    const char* p_;
    const char* end_;
    const std::string& source_;
};


void append_json_string(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += char(c); }
        else if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
        else out += char(c);
    }
    out += '"';
}

}  // namespace

SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& source) {
    if (size < 8) throw Error(source + ": not a safetensors model file (only " + std::to_string(size) + " bytes)");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
    if (n > kMaxHeader)
        throw Error(source + ": not a safetensors model file (header length " + std::to_string(n) +
                    " is larger than the format allows)");
    if (n > size - 8)  // a plausible length: most likely a file cut short
        throw Error(source + ": truncated, or not a safetensors model file: the header length says " +
                    std::to_string(n) + " bytes, the file has " + std::to_string(size - 8) + " after it");
    HeaderParser parser(reinterpret_cast<const char*>(bytes + 8), size_t(n), source);
    SafetensorsFile file = parser.parse();
    const uint8_t* data = bytes + 8 + n;
    const uint64_t data_size = size - 8 - n;
    // Offsets must tile the data section exactly, in order, as the format requires.
    std::vector<const HeaderParser::Entry*> order;
    for (const auto& e : parser.entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    uint64_t expected_begin = 0;
    for (const auto* e : order) {
        if (e->dtype != "F32")
            throw Error(source + ": tensor '" + e->name + "' has dtype " + e->dtype + "; only F32 is supported");
        uint64_t count = 1;
        for (uint64_t d : e->shape) {
            if (d != 0 && count > (uint64_t(1) << 40) / d)
                throw Error(source + ": tensor '" + e->name + "' has an absurd shape");
            count *= d;
        }
        if (e->end < e->begin || e->end - e->begin != count * 4)
            throw Error(source + ": tensor '" + e->name + "': data_offsets [" + std::to_string(e->begin) +
                        ", " + std::to_string(e->end) + "] do not match its shape (" +
                        std::to_string(count * 4) + " bytes)");
        if (e->begin != expected_begin)
            throw Error(source + ": tensor '" + e->name + "': data_offsets overlap or leave a gap");
        if (e->end > data_size)
            throw Error(source + ": truncated: tensor '" + e->name + "' ends at byte " +
                        std::to_string(e->end) + " of a " + std::to_string(data_size) + "-byte data section");
        expected_begin = e->end;
        TensorData& t = file.tensors[e->name];
        t.shape.assign(e->shape.begin(), e->shape.end());
        t.values.resize(size_t(count));
        for (size_t i = 0; i < count; ++i) {  // little-endian on every host
            const uint8_t* q = data + e->begin + 4 * i;
            uint32_t u = uint32_t(q[0]) | uint32_t(q[1]) << 8 | uint32_t(q[2]) << 16 | uint32_t(q[3]) << 24;
            std::memcpy(&t.values[i], &u, 4);
        }
    }
    if (expected_begin != data_size)
        throw Error(source + ": " + std::to_string(data_size - expected_begin) +
                    " bytes after the last tensor (corrupt or not a safetensors file)");
    return file;
}

std::vector<uint8_t> encode_safetensors(const SafetensorsFile& file) {
    std::string header = "{";
    if (!file.metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : file.metadata) {
            if (!first) header += ',';
            first = false;
            append_json_string(header, k);
            header += ':';
            append_json_string(header, v);
        }
        header += "}";
    }
    uint64_t offset = 0;
    for (const auto& [name, t] : file.tensors) {
        if (header.size() > 1) header += ',';
        append_json_string(header, name);
        header += ":{\"dtype\":\"F32\",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
                  std::to_string(offset + 4 * t.values.size()) + "]}";
        offset += 4 * t.values.size();
    }
    header += "}";
    while ((8 + header.size()) % 8) header += ' ';  // data starts 8-byte aligned
    std::vector<uint8_t> out(8 + header.size() + offset);
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
    std::memcpy(out.data() + 8, header.data(), header.size());
    uint8_t* q = out.data() + 8 + header.size();
    for (const auto& [name, t] : file.tensors)
        for (float v : t.values) {
            uint32_t u;
            std::memcpy(&u, &v, 4);
            for (int i = 0; i < 4; ++i) *q++ = uint8_t(u >> (8 * i));
        }
    return out;
}

std::vector<uint8_t> encode_model(Module& model, const std::map<std::string, std::string>& metadata) {
    SafetensorsFile file;
    file.metadata = metadata;
    file.metadata["format"] = "pt";
    for (auto& [name, p] : model.named_parameters()) {
        TensorData& t = file.tensors[name];
        t.shape.assign(p->value.shape().begin(), p->value.shape().end());
        t.values.assign(p->value.begin(), p->value.end());
    }
    return encode_safetensors(file);
}

void save_model(Module& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
    std::vector<uint8_t> bytes = encode_model(model, metadata);
    write_file_atomic(path, bytes.data(), bytes.size());
}

void load_model(Module& model, const SafetensorsFile& file, const std::string& source) {
    auto params = model.named_parameters();
    for (auto& [name, p] : params) {
        auto it = file.tensors.find(name);
        if (it == file.tensors.end()) throw Error(source + ": the model file has no tensor '" + name + "'");
        std::vector<size_t> want(p->value.shape().begin(), p->value.shape().end());
        if (it->second.shape != want)
            throw Error(source + ": tensor '" + name + "' has shape " + shape_text(it->second.shape) +
                        ", the model expects " + shape_text(want));
    }
    for (const auto& [name, t] : file.tensors) {
        bool known = false;
        for (auto& np : params) known = known || np.first == name;
        if (!known) throw Error(source + ": unexpected tensor '" + name + "' for this model");
    }
    for (auto& [name, p] : params) {  // all checked: now copy
        const auto& values = file.tensors.at(name).values;
        std::copy(values.begin(), values.end(), p->value.begin());
    }
}

SafetensorsFile read_safetensors(const std::string& path) {
    std::vector<uint8_t> bytes = read_file(path);
    return parse_safetensors(bytes.data(), bytes.size(), path);
}

}  // namespace sgdx
