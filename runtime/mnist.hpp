#pragma once
// Reading an image/label IDX set (MNIST or any other) into datasets.
#include <string>

#include "data.hpp"

namespace sgdx {

struct DataFiles {
    std::string train_images, train_labels, test_images, test_labels;
    // The four standard MNIST names inside `dir` (train-images-idx3-ubyte, ...).
    static DataFiles in_directory(const std::string& dir);
};

struct Splits {
    TensorDataset train, valid, test;
    size_t rows = 0, cols = 0;
};

// train = first (N - valid_size) training rows, valid = the last valid_size,
// test = the test files. The class count comes from the training labels unless
// `classes` is given; the test set must fit it. Errors name the file at fault.
Splits load_splits(const DataFiles& files, size_t valid_size, size_t classes = 0);

}  // namespace sgdx
