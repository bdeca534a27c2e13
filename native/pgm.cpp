#include "pgm.hpp"

#include <cctype>

#include "runtime/error.hpp"
#include "runtime/file_io.hpp"

namespace sgdx {
namespace {

struct Cursor {
    const uint8_t* p;
    const uint8_t* end;
    const std::string& source;

    void skip_space_and_comments() {
        for (;;) {
            while (p < end && std::isspace(*p)) ++p;
            if (p < end && *p == '#') {
                while (p < end && *p != '\n') ++p;
                continue;
            }
            return;
        }
    }
    size_t number(const char* what) {
        skip_space_and_comments();
        if (p >= end || !std::isdigit(*p)) throw Error(source + ": PGM header: expected the " + std::string(what));
        size_t v = 0;
        while (p < end && std::isdigit(*p)) {
            v = v * 10 + size_t(*p++ - '0');
            if (v > 1000000) throw Error(source + ": PGM " + what + " is absurdly large");
        }
        return v;
    }
};

}  // namespace

GrayImage parse_pgm(const uint8_t* data, size_t size, const std::string& source) {
    if (size < 2 || data[0] != 'P' || (data[1] != '5' && data[1] != '2'))
        throw Error(source + ": not a PGM image (expected P5 or P2 at the start)");
    const bool binary = data[1] == '5';
    Cursor c{data + 2, data + size, source};
    GrayImage img;
    img.width = c.number("width");
    img.height = c.number("height");
    const size_t maxval = c.number("maximum value");
    if (img.width == 0 || img.height == 0 || img.width * img.height > (size_t(1) << 26))
        throw Error(source + ": PGM size " + std::to_string(img.width) + "x" + std::to_string(img.height) + " is not usable");
    if (maxval == 0 || maxval > 255)
        throw Error(source + ": PGM maximum value " + std::to_string(maxval) + " is not supported (1..255)");
    const size_t n = img.width * img.height;
    if (binary) {
        if (c.p >= c.end || !std::isspace(*c.p)) throw Error(source + ": PGM header: missing whitespace before the data");
        ++c.p;
        const size_t have = size_t(c.end - c.p);
        if (have < n)
            throw Error(source + ": truncated PGM: " + std::to_string(have) + " of " + std::to_string(n) + " pixel bytes");
        img.pixels.assign(c.p, c.p + n);
    } else {
        // Each value takes at least one byte: check before allocating what the header claims.
        const size_t have = size_t(c.end - c.p);
        if (have < n)
            throw Error(source + ": truncated PGM: " + std::to_string(have) + " bytes left for " + std::to_string(n) + " pixel values");
        img.pixels.resize(n);
        for (size_t i = 0; i < n; ++i) {
            size_t v = c.number("pixel value");
            if (v > maxval) throw Error(source + ": PGM pixel value " + std::to_string(v) + " exceeds the maximum " + std::to_string(maxval));
            img.pixels[i] = uint8_t(v);
        }
    }
    for (auto& px : img.pixels) {
        if (px > maxval) throw Error(source + ": PGM pixel value " + std::to_string(px) + " exceeds the maximum " + std::to_string(maxval));
        if (maxval != 255) px = uint8_t((size_t(px) * 255 + maxval / 2) / maxval);
    }
    return img;
}

GrayImage read_pgm(const std::string& path) {
    std::vector<uint8_t> bytes = read_file(path);
    return parse_pgm(bytes.data(), bytes.size(), path);
}

void write_pgm(const std::string& path, const GrayImage& image) {
    std::string header = "P5\n" + std::to_string(image.width) + " " + std::to_string(image.height) + "\n255\n";
    std::vector<uint8_t> bytes(header.begin(), header.end());
    bytes.insert(bytes.end(), image.pixels.begin(), image.pixels.end());
    write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace sgdx
