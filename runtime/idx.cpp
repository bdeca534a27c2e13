#include "idx.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.hpp"
#include "file_io.hpp"

namespace sgdx {
namespace {

constexpr uint64_t kMaxBytes = uint64_t(1) << 34;  // 16 GiB: anything above is a corrupt header

struct Header {
    std::vector<uint32_t> dims;
    size_t header_bytes = 0;
    uint64_t data_bytes = 0;
};

uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

const char* dtype_name(uint8_t t) {
    switch (t) {
        case 0x08: return "unsigned byte";
        case 0x09: return "signed byte";
        case 0x0B: return "short";
        case 0x0C: return "int";
        case 0x0D: return "float";
        case 0x0E: return "double";
        default: return "unknown";
    }
}

// `head` holds the first bytes of the file (at least min(size, 4 + 4*rank)).
Header parse_header(const uint8_t* head, size_t head_size, uint64_t file_size, size_t want_rank,
                    const std::string& source) {
    if (file_size < 4)
        throw Error(source + ": not an IDX file: only " + std::to_string(file_size) + " bytes");
    if (head[0] == 0x1F && head[1] == 0x8B)  // how MNIST is usually downloaded
        throw Error(source + ": gzip-compressed: gunzip it first (gunzip -k " + source + ")");
    if (head[0] != 0 || head[1] != 0) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "wrong magic 0x%02X%02X%02X%02X (IDX starts with 0x0000)",
                      head[0], head[1], head[2], head[3]);
        throw Error(source + ": not an IDX file: " + buf);
    }
    if (head[2] != 0x08)
        throw Error(source + ": IDX data type 0x" + (head[2] < 16 ? "0" : std::string()) +
                    [&] { char b[4]; std::snprintf(b, 4, "%X", head[2]); return std::string(b); }() +
                    " (" + dtype_name(head[2]) + ") is not supported; only 0x08 (unsigned byte)");
    const size_t rank = head[3];
    if (rank != want_rank)
        throw Error(source + ": IDX rank is " + std::to_string(rank) + ", expected " +
                    std::to_string(want_rank) + (want_rank == 1 ? " (labels)" : " (images: count, rows, cols)") +
                    " — is this the right file?");
    Header h;
    h.header_bytes = 4 + 4 * rank;
    if (file_size < h.header_bytes || head_size < h.header_bytes)
        throw Error(source + ": truncated IDX header");
    uint64_t total = 1;
    for (size_t i = 0; i < rank; ++i) {
        uint32_t d = be32(head + 4 + 4 * i);
        if (d == 0) throw Error(source + ": IDX dimension " + std::to_string(i) + " is 0 (no data)");
        h.dims.push_back(d);
        if (total > kMaxBytes / d)  // checked before multiplying: three uint32 can pass 2^64 and wrap
            throw Error(source + ": IDX header claims an absurd size (over 16 GiB); the file is corrupt");
        total *= d;
    }
    h.data_bytes = total;
    const uint64_t expected = h.header_bytes + total;
    if (file_size < expected)
        throw Error(source + ": truncated: the header promises " + std::to_string(expected) +
                    " bytes, the file has " + std::to_string(file_size));
    if (file_size > expected)
        throw Error(source + ": " + std::to_string(file_size - expected) +
                    " unexpected bytes after the data (the header promises " +
                    std::to_string(expected) + " bytes)");
    return h;
}

// Reads header and data of a file straight into the destination buffer.
template <class MakeDest>
void read_idx(const std::string& path, size_t rank, MakeDest make_dest) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        const int err = errno;
        if (std::FILE* gz = std::fopen((path + ".gz").c_str(), "rb")) {  // a downloaded, still gzipped set
            std::fclose(gz);
            throw Error(path + ": cannot open: " + std::strerror(err) + " (" + path + ".gz is there: gunzip it first)");
        }
        throw Error(path + ": cannot open: " + std::strerror(err));
    }
    struct Closer { std::FILE* f; ~Closer() { std::fclose(f); } } closer{f};
    if (std::fseek(f, 0, SEEK_END) != 0) throw Error(path + ": cannot seek (not a regular file?)");
    long end = std::ftell(f);
    if (end < 0) throw Error(path + ": cannot tell the file size");
    std::rewind(f);
    uint8_t head[4 + 4 * 255];
    size_t got = std::fread(head, 1, std::min<size_t>(sizeof head, size_t(end)), f);
    Header h = parse_header(head, got, uint64_t(end), rank, path);
    uint8_t* dest = make_dest(h);
    if (std::fseek(f, long(h.header_bytes), SEEK_SET) != 0 ||
        std::fread(dest, 1, h.data_bytes, f) != h.data_bytes)
        throw Error(path + ": read error in the data");
}

IdxImages images_from(const Header& h) {
    IdxImages out;
    out.rows = h.dims[1];
    out.cols = h.dims[2];
    out.pixels = xt::xtensor<uint8_t, 2>::from_shape({size_t(h.dims[0]), out.rows * out.cols});
    return out;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
    IdxImages out;
    read_idx(path, 3, [&](const Header& h) {
        out = images_from(h);
        return out.pixels.data();
    });
    return out;
}

xt::xtensor<uint8_t, 1> read_idx_labels(const std::string& path) {
    xt::xtensor<uint8_t, 1> out;
    read_idx(path, 1, [&](const Header& h) {
        out = xt::xtensor<uint8_t, 1>::from_shape({size_t(h.dims[0])});
        return out.data();
    });
    return out;
}

IdxImages parse_idx_images(const uint8_t* data, size_t size, const std::string& source) {
    Header h = parse_header(data, size, size, 3, source);
    IdxImages out = images_from(h);
    std::memcpy(out.pixels.data(), data + h.header_bytes, h.data_bytes);
    return out;
}

xt::xtensor<uint8_t, 1> parse_idx_labels(const uint8_t* data, size_t size, const std::string& source) {
    Header h = parse_header(data, size, size, 1, source);
    auto out = xt::xtensor<uint8_t, 1>::from_shape({size_t(h.dims[0])});
    std::memcpy(out.data(), data + h.header_bytes, h.data_bytes);
    return out;
}

namespace {
void put_be32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}
}  // namespace

void write_idx_images(const std::string& path, const uint8_t* pixels, size_t n, size_t rows, size_t cols) {
    std::vector<uint8_t> out{0, 0, 0x08, 3};
    put_be32(out, uint32_t(n));
    put_be32(out, uint32_t(rows));
    put_be32(out, uint32_t(cols));
    out.insert(out.end(), pixels, pixels + n * rows * cols);
    write_file_atomic(path, out.data(), out.size());
}

void write_idx_labels(const std::string& path, const uint8_t* labels, size_t n) {
    std::vector<uint8_t> out{0, 0, 0x08, 1};
    put_be32(out, uint32_t(n));
    out.insert(out.end(), labels, labels + n);
    write_file_atomic(path, out.data(), out.size());
}

}  // namespace sgdx
