#pragma once
// The IDX format of the MNIST files: magic 0x00 0x00 <dtype> <rank>, then rank
// big-endian uint32 dimensions, then the data. Only dtype 0x08 (uint8) is read.
#include <cstdint>
#include <string>
#include <vector>
#include <xtensor/xtensor.hpp>

namespace sgdx {

struct IdxImages {
    xt::xtensor<uint8_t, 2> pixels;  // (N, rows * cols)
    size_t rows = 0, cols = 0;
};

// Each throws sgdx::Error naming `source` (the file) and the problem: missing
// file, wrong magic, unsupported dtype, wrong rank, zero or absurd dimensions,
// truncated or over-long data. Sizes are checked against the file length before
// anything is allocated.
IdxImages read_idx_images(const std::string& path);
xt::xtensor<uint8_t, 1> read_idx_labels(const std::string& path);

// The same from bytes in memory (the browser, fuzzing).
IdxImages parse_idx_images(const uint8_t* data, size_t size, const std::string& source);
xt::xtensor<uint8_t, 1> parse_idx_labels(const uint8_t* data, size_t size, const std::string& source);

// Writers (tests, tools): atomic.
void write_idx_images(const std::string& path, const uint8_t* pixels, size_t n, size_t rows, size_t cols);
void write_idx_labels(const std::string& path, const uint8_t* labels, size_t n);

}  // namespace sgdx
