#pragma once
// Reading an image/label IDX set (MNIST or any other) into datasets.
#include <string>

#include "data.hpp"
#include "idx.hpp"

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

// An image/label IDX pair as a dataset (pixels scaled by 1/255, labels < classes;
// classes = 0: the largest label + 1). The two must hold as many items: the
// error names both sources. For the CLI's files and the page's bytes alike.
TensorDataset labelled_images(IdxImages images, xt::xtensor<uint8_t, 1> labels, const std::string& images_name,
                              const std::string& labels_name, size_t classes = 0);

// "<source>: images have N pixels, <taker> takes M" unless `images` has `pixels`
// per image (taker: "the model", "the model model.safetensors", "the page's model").
void check_image_pixels(const IdxImages& images, size_t pixels, const std::string& source, const std::string& taker);

// train = first (N - valid_size) training rows, valid = the last valid_size,
// test = the test files. The class count comes from the training labels unless
// `classes` is given; the test set must fit it. Errors name the file at fault.
Splits load_splits(const DataFiles& files, size_t valid_size, size_t classes = 0);

}  // namespace sgdx
