#pragma once
// The safetensors format, for every part of sgdx that reads or writes a model
// file: the runtime (runtime/safetensors.cpp, and through it the CLI and the web
// page), the C API and the firmware (device/sgdx_c.cpp).
//
//   8 bytes    N, the header's length, little-endian
//   N bytes    JSON: {"__metadata__": {string: string, ...},
//                     "name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
//              in any order, padded with spaces
//   the rest   the tensors' data; [b, e) is a tensor's byte range in it
//
// Nothing here allocates or throws: the reader hands out spans into the caller's
// bytes, the writer writes into the caller's buffer, and a problem is reported
// as false plus a sentence appended to the caller's Text. Callers keep what
// they need of the entries (a std::map in the runtime, a fixed array on the
// device) and then run the checks below over them.
#include <cstddef>
#include <cstdint>

#include "core/text.hpp"

namespace sgdx::core {

constexpr size_t kMaxRank = 6;                 // longer shapes are refused as corrupt
constexpr uint64_t kMaxHeader = 100000000;     // the reference implementation's limit

struct TensorEntry {
    Span name;   // raw: JSON escapes not decoded
    Span dtype;
    uint64_t shape[kMaxRank] = {};
    uint32_t rank = 0;
    uint64_t begin = 0, end = 0;  // data_offsets
};

struct MetaEntry {
    Span key, value;  // raw
};

// The header's length from a file's first 8 bytes, checked against the file's
// `size` (which may be < 8: then `first8` is not read).
bool header_length(const uint8_t* first8, uint64_t size, uint64_t& length, Text& why);

// A strict, bounded pull reader for the JSON header: each next() parses one
// metadata pair or one tensor entry. A string holds no escapes the format does
// not allow; numbers are non-negative integers below 2^64.
class HeaderReader {
public:
    enum Item { kEnd, kMeta, kTensor, kError };
    HeaderReader(const char* p, size_t n, Text& why) : begin_(p), p_(p), end_(p + n), why_(why) {}
    // kMeta: meta() holds the pair. kTensor: tensor() holds the entry. kEnd: the
    // header is complete (nothing but padding after it). kError: `why` says
    // "corrupt safetensors header: ...", and every later call is kError too.
    Item next();
    const MetaEntry& meta() const { return meta_; }
    const TensorEntry& tensor() const { return tensor_; }
    // Back to the header's start, to read it again.
    void rewind() {
        p_ = begin_, state_ = kStart, first_ = true;
    }

private:
    bool fail(const char* what);
    bool fail_in(Span tensor, const char* what);
    void skip_ws();
    char peek();
    bool expect(char c);
    bool string(Span& s);
    bool integer(uint64_t& v);
    bool int_array(uint64_t* out, size_t cap, uint32_t& n, Span tensor, const char* field);
    bool entry(Span name);
    bool after_member();  // ',' or the object's '}'

    const char* begin_;
    const char* p_;
    const char* end_;
    Text& why_;
    enum State : uint8_t { kStart, kTop, kMetadata, kDone, kFailed } state_ = kStart;
    bool first_ = true;  // no member read yet in the current object
    MetaEntry meta_;
    TensorEntry tensor_;
};

// The decoded bytes of a raw JSON string: at most raw.n of them (a \uXXXX escape
// becomes 1 to 3 bytes of UTF-8). Returns how many were written to `out`.
size_t decode_string(Span raw, char* out);

// The number of values a tensor holds; false (and `why` says) if it is absurd
// (more than 2^40).
bool element_count(const TensorEntry& t, uint64_t& count, Text& why);

// A header's tensor entries, walked in file order as often as a check needs, by
// parsing its bytes again at every walk: for a reader that keeps no array of
// them (the device: 50 entries would take 4.4 KB of the firmware's 8 KB stack;
// a walk over a 2 KB header is a few thousand steps).
class Entries {
public:
    // A header that a HeaderReader has read to kEnd, so it parses again without error.
    Entries(const char* header, size_t n) : header_(header), size_(n), reader_(header, n, quiet_) {}
    Entries(const Entries&) = delete;
    Entries& operator=(const Entries&) = delete;
    const char* header() const { return header_; }
    size_t header_size() const { return size_; }
    void rewind() { reader_.rewind(); }
    // The next entry in file order, or nullptr after the last; valid until the next call.
    const TensorEntry* next();
    // The first entry named `name`, or nullptr (a walk of its own).
    const TensorEntry* find(const char* name);

private:
    const char* header_;
    size_t size_;
    char quiet_buf_[1];
    Text quiet_{quiet_buf_, sizeof quiet_buf_};
    HeaderReader reader_;
};

// No tensor name twice (given as an array, or as a header's entries).
bool check_names(const TensorEntry* t, size_t n, Text& why);
bool check_names(const Entries& entries, Text& why);

// A reader's check of a tensor it expects: the first entry named `name`, of
// dtype F32 and of shape dims[0, rank). Returns it, or nullptr with `why` saying
// "the weights have no tensor 'N'", "tensor 'N' has dtype D; the C API reads it
// as F32" or "tensor 'N' has shape [..], the model expects [..]" (with kVector
// "tensor 'N' is not of shape [n]", for a rank-1 tensor of n values).
enum class Expect { kShape, kVector };
const TensorEntry* expect_f32(Entries& entries, const char* name, const uint64_t* dims, uint32_t rank, Text& why,
                              Expect form = Expect::kShape);

enum class DataProblem { kNone, kDtype, kLayout };
// The dtypes a reader takes: the device and the C API only F32; the runtime also
// I64 (BatchNorm's num_batches_tracked, as PyTorch writes it).
enum class Dtypes { kF32, kF32OrI64 };
// Bytes per value of dtype F32 (4) or I64 (8); 0 for any other.
uint64_t dtype_bytes(Span dtype, Dtypes accepted);
// Every tensor has an accepted dtype, its data_offsets span exactly its values,
// and in offset order they tile the data section of `data_size` bytes: no gap,
// no overlap, nothing past the end or after the last tensor. Checked in offset
// order, so the first problem in the file is the one reported.
DataProblem check_data(const TensorEntry* t, size_t n, uint64_t data_size, Text& why,
                       Dtypes accepted = Dtypes::kF32);
DataProblem check_data(const Entries& entries, uint64_t data_size, Text& why, Dtypes accepted = Dtypes::kF32);

// Writes a header into buf[0, cap) without a terminating NUL: the metadata (in
// the order given, all before the first tensor), then the tensors, whose
// data_offsets follow one another in the order given. With cap 0 it only
// measures. JSON strings are escaped (", \ and control characters).
class HeaderWriter {
public:
    HeaderWriter(char* buf, size_t cap) : buf_(buf), cap_(cap) { put('{'); }
    void meta(Span key, Span value);
    void tensor(Span name, const uint64_t* shape, size_t rank, uint64_t bytes, const char* dtype = "F32");
    // Closes the JSON; returns its length (whether or not it fitted).
    size_t finish();
    bool fits() const { return len_ <= cap_; }
    uint64_t data_bytes() const { return offset_; }
    // The header's length once padded with spaces so the data starts 8-byte aligned.
    static size_t padded(size_t n) { return (8 + n + 7) / 8 * 8 - 8; }

private:
    void put(char c) {
        if (len_ < cap_) buf_[len_] = c;
        ++len_;
    }
    void puts(const char* s) {
        while (*s) put(*s++);
    }
    void number(uint64_t v);
    void string(Span s);
    void separator();

    char* buf_;
    size_t cap_, len_ = 0;
    uint64_t offset_ = 0;
    enum State : uint8_t { kEmpty, kInMetadata, kTensors } state_ = kEmpty;
};

}  // namespace sgdx::core
