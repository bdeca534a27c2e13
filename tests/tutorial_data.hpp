#pragma once
// The first rows of the real MNIST training file, for the tests that replay the
// tutorial. ./run installs the data; a missing file fails the test (not a skip).
#include "helpers.hpp"
#include "runtime/data.hpp"
#include "runtime/idx.hpp"
#include "runtime/mnist.hpp"

namespace sgdx::test {

inline TensorDataset mnist_head(size_t begin, size_t end, const char* name) {
    DataFiles f = DataFiles::in_directory(mnist_dir());
    REQUIRE_MESSAGE(file_exists(f.train_images), "MNIST is missing at " << mnist_dir() << ": run ./run setup");
    static TensorDataset all(read_idx_images(f.train_images).pixels, read_idx_labels(f.train_labels), 10,
                             1.f / 255.f, "mnist");
    return all.slice(begin, end, name);
}

}  // namespace sgdx::test
