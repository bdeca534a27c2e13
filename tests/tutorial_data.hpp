#pragma once
// The first rows of the real MNIST training file, for the tests that replay the
// tutorial. ./run installs the data; a missing file fails the test (not a skip).
#include "helpers.hpp"
#include "runtime/data.hpp"
#include "runtime/idx.hpp"
#include "runtime/mnist.hpp"
#include "runtime/optim.hpp"

namespace sgdx::test {

inline TensorDataset mnist_head(size_t begin, size_t end, const char* name) {
    DataFiles f = DataFiles::in_directory(mnist_dir());
    REQUIRE_MESSAGE(file_exists(f.train_images), "MNIST is missing at " << mnist_dir() << ": run ./run setup");
    static TensorDataset all(read_idx_images(f.train_images).pixels, read_idx_labels(f.train_labels), 10,
                             1.f / 255.f, "mnist");
    return all.slice(begin, end, name);
}

// The tutorial's CNN chapter's SGD (lr 0.1, momentum 0.9) with a little weight decay,
// so every part of the update and its state is exercised.
inline SgdOptions with_momentum() {
    SgdOptions o;
    o.lr = 0.1f;
    o.momentum = 0.9f;
    o.weight_decay = 1e-4f;
    return o;
}

}  // namespace sgdx::test
