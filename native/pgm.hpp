#pragma once
// Binary (P5) and plain (P2) PGM images, 8-bit.
#include <cstdint>
#include <string>
#include <vector>

namespace sgdx {

struct GrayImage {
    size_t width = 0, height = 0;
    std::vector<uint8_t> pixels;  // row-major, rescaled to 0..255
};

// Throws sgdx::Error naming `source` for a bad magic, header, size or length.
GrayImage parse_pgm(const uint8_t* data, size_t size, const std::string& source);
GrayImage read_pgm(const std::string& path);
void write_pgm(const std::string& path, const GrayImage& image);

}  // namespace sgdx
