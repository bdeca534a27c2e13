#include "core/safetensors.hpp"

namespace sgdx::core {
namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
unsigned hex_value(char c) { return c <= '9' ? unsigned(c - '0') : unsigned((c | 0x20) - 'a' + 10); }

Text& tensor_named(Text& why, Span name) { return why.s("tensor '").name(name).s("'"); }

}  // namespace

bool header_length(const uint8_t* first8, uint64_t size, uint64_t& length, Text& why) {
    if (size < 8) return why.s("not a safetensors model file (only ").u(size).s(" bytes)"), false;
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | first8[i];
    if (n > kMaxHeader)
        return why.s("not a safetensors model file (header length ").u(n).s(" is larger than the format allows)"), false;
    if (n > size - 8)  // a plausible length: most likely a file cut short
        return why.s("truncated, or not a safetensors model file: the header length says ").u(n)
                   .s(" bytes, the file has ").u(size - 8).s(" after it"), false;
    length = n;
    return true;
}

// ---- HeaderReader ------------------------------------------------------------------

bool HeaderReader::fail(const char* what) {
    if (state_ != kFailed) why_.s("corrupt safetensors header: ").s(what);
    state_ = kFailed;
    return false;
}

bool HeaderReader::fail_in(Span tensor, const char* what) {
    if (state_ != kFailed) tensor_named(why_.s("corrupt safetensors header: "), tensor).s(what);
    state_ = kFailed;
    return false;
}

void HeaderReader::skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
}

char HeaderReader::peek() {
    skip_ws();
    return p_ < end_ ? *p_ : '\0';
}

bool HeaderReader::expect(char c) {
    if (peek() == c) return ++p_, true;
    if (state_ != kFailed) why_.s("corrupt safetensors header: expected '").c(c).s("'");
    state_ = kFailed;
    return false;
}

// The raw (still escaped) contents of a JSON string.
bool HeaderReader::string(Span& s) {
    if (!expect('"')) return false;
    s.p = p_;
    while (p_ < end_ && *p_ != '"') {
        if (static_cast<unsigned char>(*p_) < 0x20) return fail("control character in a string");
        if (*p_ == '\\') {
            if (++p_ >= end_) break;
            if (*p_ == 'u') {
                if (end_ - p_ < 5) return fail("bad \\u escape");
                for (int i = 1; i <= 4; ++i)
                    if (!is_hex(p_[i])) return fail("bad \\u escape");
                p_ += 4;
            } else if (!std::strchr("\"\\/bfnrt", *p_)) {
                return fail("bad escape in a string");
            }
        }
        ++p_;
    }
    if (p_ >= end_) return fail("unterminated string");
    s.n = size_t(p_ - s.p);
    ++p_;
    return true;
}

bool HeaderReader::integer(uint64_t& v) {
    skip_ws();
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') return fail("expected a non-negative integer");
    v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
        if (v > (UINT64_MAX - 9) / 10) return fail("number too large");
        v = v * 10 + uint64_t(*p_++ - '0');
    }
    return true;
}

bool HeaderReader::int_array(uint64_t* out, size_t cap, uint32_t& n, Span tensor, const char* field) {
    n = 0;
    if (!expect('[')) return false;
    if (peek() == ']') return ++p_, true;
    for (;;) {
        if (n == cap) {
            if (state_ != kFailed)
                tensor_named(why_.s("corrupt safetensors header: "), tensor).s(": ").s(field).s(" has more than ")
                    .u(cap).s(" numbers");
            state_ = kFailed;
            return false;
        }
        if (!integer(out[n++])) return false;
        if (peek() == ',') {
            ++p_;
            continue;
        }
        return expect(']');
    }
}

bool HeaderReader::entry(Span name) {
    tensor_ = TensorEntry{};
    tensor_.name = name;
    bool dtype = false, shape = false, offsets = false;
    if (!expect('{')) return false;
    for (;;) {
        Span key;
        if (!string(key) || !expect(':')) return false;
        if (key.is("dtype")) {
            if (!string(tensor_.dtype)) return false;
            dtype = true;
        } else if (key.is("shape")) {
            if (!int_array(tensor_.shape, kMaxRank, tensor_.rank, name, "shape")) return false;
            shape = true;
        } else if (key.is("data_offsets")) {
            uint64_t off[2];
            uint32_t n = 0;
            if (!int_array(off, 2, n, name, "data_offsets")) return false;
            if (n != 2) return fail_in(name, ": data_offsets must hold 2 numbers");
            tensor_.begin = off[0], tensor_.end = off[1];
            offsets = true;
        } else {
            if (state_ != kFailed)
                tensor_named(why_.s("corrupt safetensors header: "), name).s(": unknown field '").name(key).s("'");
            state_ = kFailed;
            return false;
        }
        if (peek() == ',') {
            ++p_;
            continue;
        }
        if (!expect('}')) return false;
        break;
    }
    if (!dtype || !shape || !offsets) return fail_in(name, " lacks dtype, shape or data_offsets");
    return true;
}

bool HeaderReader::after_member() {
    if (peek() == ',') return ++p_, true;
    if (!expect('}')) return false;
    skip_ws();  // the format pads with spaces
    if (p_ != end_) return fail("unexpected bytes after the JSON header");
    state_ = kDone;
    return true;
}

HeaderReader::Item HeaderReader::next() {
    for (;;) {
        switch (state_) {
            case kFailed:
                return kError;
            case kDone:
                return kEnd;
            case kStart:
                if (!expect('{')) return kError;
                state_ = kTop;
                if (peek() == '}') {
                    ++p_;
                    skip_ws();
                    if (p_ != end_) return fail("unexpected bytes after the JSON header"), kError;
                    state_ = kDone;
                }
                continue;
            case kMetadata: {
                Span k, v;
                if (!string(k) || !expect(':') || !string(v)) return kError;
                meta_ = {k, v};
                if (peek() == ',') {
                    ++p_;
                } else {
                    if (!expect('}')) return kError;
                    state_ = kTop;
                    if (!after_member()) return kError;
                }
                return kMeta;
            }
            case kTop: {
                Span key;
                if (!string(key) || !expect(':')) return kError;
                if (key.is("__metadata__")) {
                    if (!expect('{')) return kError;
                    if (peek() == '}') {
                        ++p_;
                        if (!after_member()) return kError;
                    } else {
                        state_ = kMetadata;
                    }
                    continue;
                }
                if (!entry(key) || !after_member()) return kError;
                return kTensor;
            }
        }
    }
}

// ---- Decoding and checks -------------------------------------------------------------

size_t decode_string(Span raw, char* out) {
    size_t n = 0;
    for (size_t i = 0; i < raw.n; ++i) {
        const char c = raw.p[i];
        if (c != '\\' || i + 1 >= raw.n) {
            out[n++] = c;
            continue;
        }
        const char esc = raw.p[++i];
        switch (esc) {
            case 'n': out[n++] = '\n'; break;
            case 't': out[n++] = '\t'; break;
            case 'r': out[n++] = '\r'; break;
            case 'b': out[n++] = '\b'; break;
            case 'f': out[n++] = '\f'; break;
            case 'u': {
                unsigned cp = 0;
                for (int k = 0; k < 4 && i + 1 < raw.n; ++k) cp = cp << 4 | hex_value(raw.p[++i]);
                if (cp < 0x80) {
                    out[n++] = char(cp);
                } else if (cp < 0x800) {
                    out[n++] = char(0xC0 | (cp >> 6));
                    out[n++] = char(0x80 | (cp & 0x3F));
                } else {
                    out[n++] = char(0xE0 | (cp >> 12));
                    out[n++] = char(0x80 | ((cp >> 6) & 0x3F));
                    out[n++] = char(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: out[n++] = esc; break;  // " \ /
        }
    }
    return n;
}

bool element_count(const TensorEntry& t, uint64_t& count, Text& why) {
    count = 1;
    for (uint32_t d = 0; d < t.rank; ++d) {
        if (t.shape[d] != 0 && count > (uint64_t(1) << 40) / t.shape[d])
            return tensor_named(why, t.name).s(" has an absurd shape"), false;
        count *= t.shape[d];
    }
    return true;
}

// ---- Entries, and the checks over them -----------------------------------------------

const TensorEntry* Entries::next() {
    for (;;) {
        switch (reader_.next()) {
            case HeaderReader::kTensor: return &reader_.tensor();
            case HeaderReader::kMeta: continue;
            default: return nullptr;
        }
    }
}

const TensorEntry* Entries::find(const char* name) {
    rewind();
    for (const TensorEntry* e = next(); e; e = next())
        if (e->name.is(name)) return e;
    return nullptr;
}

namespace {

// The checks walk entries through rewind() and next(): an array's here, a
// header's (Entries) on the device.
struct ArrayWalk {
    const TensorEntry* t;
    size_t n, at = 0;
    void rewind() { at = 0; }
    const TensorEntry* next() { return at < n ? &t[at++] : nullptr; }
};

template <class Walk>
bool names_differ(Walk& later, Walk& earlier, Text& why) {
    size_t i = 0;
    for (const TensorEntry* e = later.next(); e; e = later.next(), ++i) {
        earlier.rewind();
        for (size_t j = 0; j < i; ++j)
            if (e->name.same(earlier.next()->name))
                return tensor_named(why.s("corrupt safetensors header: "), e->name).s(" appears twice"), false;
    }
    return true;
}

}  // namespace

bool check_names(const TensorEntry* t, size_t n, Text& why) {
    ArrayWalk later{t, n}, earlier{t, n};
    return names_differ(later, earlier, why);
}

bool check_names(const Entries& entries, Text& why) {
    Entries later(entries.header(), entries.header_size()), earlier(entries.header(), entries.header_size());
    return names_differ(later, earlier, why);
}

const TensorEntry* expect_f32(Entries& entries, const char* name, const uint64_t* dims, uint32_t rank, Text& why,
                              Expect form) {
    const TensorEntry* t = entries.find(name);
    if (!t) return why.s("the weights have no tensor '").s(name).s("'"), nullptr;
    if (!t->dtype.is("F32"))
        return why.s("tensor '").s(name).s("' has dtype ").name(t->dtype).s("; the C API reads it as F32"), nullptr;
    bool fits = t->rank == rank;
    for (uint32_t d = 0; fits && d < rank; ++d) fits = t->shape[d] == dims[d];
    if (fits) return t;
    why.s("tensor '").s(name);
    if (form == Expect::kVector) return why.s("' is not of shape [").u(dims[0]).s("]"), nullptr;
    why.s("' has shape [");
    for (uint32_t d = 0; d < t->rank; ++d) (d ? why.s(", ") : why).u(t->shape[d]);
    why.s("], the model expects [");
    for (uint32_t d = 0; d < rank; ++d) (d ? why.s(", ") : why).u(dims[d]);
    return why.s("]"), nullptr;
}

uint64_t dtype_bytes(Span dtype, Dtypes accepted) {
    if (dtype.is("F32")) return 4;
    return accepted == Dtypes::kF32OrI64 && dtype.is("I64") ? 8 : 0;
}

namespace {

template <class Walk>
DataProblem data_tiles(Walk& walk, uint64_t data_size, Text& why, Dtypes accepted) {
    // Visit the entries by (begin, end, index) without sorting them: each step
    // walks them all for the least entry after the previous one, then to it.
    struct Key {
        uint64_t begin, end;
        size_t index;
        bool before(const Key& o) const {
            if (begin != o.begin) return begin < o.begin;
            if (end != o.end) return end < o.end;
            return index < o.index;
        }
    };
    uint64_t expected = 0;
    Key prev{};
    for (bool first = true;; first = false) {
        walk.rewind();
        Key least{};
        bool found = false;
        size_t j = 0;
        for (const TensorEntry* t = walk.next(); t; t = walk.next(), ++j) {
            const Key k{t->begin, t->end, j};
            if ((first || prev.before(k)) && (!found || k.before(least))) least = k, found = true;
        }
        if (!found) break;
        prev = least;
        walk.rewind();
        const TensorEntry* at = walk.next();
        for (size_t k = 0; k < least.index; ++k) at = walk.next();
        const TensorEntry& e = *at;
        const uint64_t size = dtype_bytes(e.dtype, accepted);
        if (!size)
            return tensor_named(why, e.name).s(" has dtype ").name(e.dtype)
                       .s(accepted == Dtypes::kF32 ? "; only F32 is supported" : "; only F32 and I64 are supported"),
                   DataProblem::kDtype;
        uint64_t count = 0;
        if (!element_count(e, count, why)) return DataProblem::kLayout;
        if (e.end < e.begin || e.end - e.begin != count * size)
            return tensor_named(why, e.name).s(": data_offsets [").u(e.begin).s(", ").u(e.end)
                       .s("] do not match its shape (").u(count * size).s(" bytes)"), DataProblem::kLayout;
        if (e.begin != expected)
            return tensor_named(why, e.name).s(": data_offsets overlap or leave a gap"), DataProblem::kLayout;
        if (e.end > data_size)
            return tensor_named(why.s("truncated: "), e.name).s(" ends at byte ").u(e.end).s(" of a ").u(data_size)
                       .s("-byte data section"), DataProblem::kLayout;
        expected = e.end;
    }
    if (expected != data_size)
        return why.u(data_size - expected).s(" bytes after the last tensor (corrupt or not a safetensors file)"),
               DataProblem::kLayout;
    return DataProblem::kNone;
}

}  // namespace

DataProblem check_data(const TensorEntry* t, size_t n, uint64_t data_size, Text& why, Dtypes accepted) {
    ArrayWalk walk{t, n};
    return data_tiles(walk, data_size, why, accepted);
}

DataProblem check_data(const Entries& entries, uint64_t data_size, Text& why, Dtypes accepted) {
    Entries walk(entries.header(), entries.header_size());
    return data_tiles(walk, data_size, why, accepted);
}

// ---- HeaderWriter --------------------------------------------------------------------

void HeaderWriter::number(uint64_t v) {
    char d[20];
    int n = 0;
    do d[n++] = char('0' + v % 10), v /= 10; while (v);
    while (n) put(d[--n]);
}

void HeaderWriter::string(Span s) {
    static const char kHex[] = "0123456789abcdef";
    put('"');
    for (size_t i = 0; i < s.n; ++i) {
        const unsigned char c = static_cast<unsigned char>(s.p[i]);
        if (c == '"' || c == '\\') {
            put('\\');
            put(char(c));
        } else if (c < 0x20) {
            puts("\\u00");
            put(kHex[c >> 4]);
            put(kHex[c & 15]);
        } else {
            put(char(c));
        }
    }
    put('"');
}

void HeaderWriter::meta(Span key, Span value) {
    if (state_ == kEmpty) puts("\"__metadata__\":{");
    else put(',');
    state_ = kInMetadata;
    string(key);
    put(':');
    string(value);
}

void HeaderWriter::tensor(Span name, const uint64_t* shape, size_t rank, uint64_t bytes, const char* dtype) {
    if (state_ == kInMetadata) put('}');
    if (state_ != kEmpty) put(',');
    state_ = kTensors;
    string(name);
    puts(":{\"dtype\":\"");
    puts(dtype);
    puts("\",\"shape\":[");
    for (size_t d = 0; d < rank; ++d) {
        if (d) put(',');
        number(shape[d]);
    }
    puts("],\"data_offsets\":[");
    number(offset_);
    put(',');
    number(offset_ + bytes);
    puts("]}");
    offset_ += bytes;
}

size_t HeaderWriter::finish() {
    if (state_ == kInMetadata) put('}');
    put('}');
    return len_;
}

}  // namespace sgdx::core
