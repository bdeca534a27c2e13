#pragma once
// MNIST for the C API's tests, read once per test binary with the runtime's IDX reader.
#include <string>

#include "runtime/idx.hpp"

namespace sgdx_test {

struct Mnist {
    sgdx::IdxImages train, test;
    xt::xtensor<uint8_t, 1> train_labels, test_labels;
};

inline const Mnist& mnist() {
    static const Mnist data = [] {
        const std::string dir = SGDX_MNIST_DIR;
        Mnist d;
        d.train = sgdx::read_idx_images(dir + "/train-images-idx3-ubyte");
        d.train_labels = sgdx::read_idx_labels(dir + "/train-labels-idx1-ubyte");
        d.test = sgdx::read_idx_images(dir + "/t10k-images-idx3-ubyte");
        d.test_labels = sgdx::read_idx_labels(dir + "/t10k-labels-idx1-ubyte");
        return d;
    }();
    return data;
}

}  // namespace sgdx_test
