#include "mnist.hpp"

#include "error.hpp"
#include "idx.hpp"

namespace sgdx {

DataFiles DataFiles::in_directory(const std::string& dir) {
    std::string d = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    return {d + "train-images-idx3-ubyte", d + "train-labels-idx1-ubyte",
            d + "t10k-images-idx3-ubyte", d + "t10k-labels-idx1-ubyte"};
}

TensorDataset labelled_images(IdxImages images, xt::xtensor<uint8_t, 1> labels, const std::string& images_name,
                              const std::string& labels_name, size_t classes) {
    if (images.pixels.shape()[0] != labels.shape()[0])
        throw Error(images_name + " holds " + std::to_string(images.pixels.shape()[0]) + " images but " +
                    labels_name + " holds " + std::to_string(labels.shape()[0]) + " labels");
    return TensorDataset(std::move(images.pixels), std::move(labels), classes, 1.f / 255.f, labels_name);
}

void check_image_pixels(const IdxImages& images, size_t pixels, const std::string& source, const std::string& taker) {
    const size_t have = images.pixels.shape()[1];
    if (have != pixels)
        throw Error(source + ": images have " + std::to_string(have) + " pixels, " + taker + " takes " +
                    std::to_string(pixels));
}

namespace {
TensorDataset load_pair(const std::string& images_path, const std::string& labels_path,
                        size_t classes, IdxImages* shape_out) {
    IdxImages images = read_idx_images(images_path);
    if (shape_out) {
        shape_out->rows = images.rows;
        shape_out->cols = images.cols;
    }
    return labelled_images(std::move(images), read_idx_labels(labels_path), images_path, labels_path, classes);
}
}  // namespace

Splits load_splits(const DataFiles& files, size_t valid_size, size_t classes) {
    IdxImages train_shape, test_shape;
    TensorDataset all = load_pair(files.train_images, files.train_labels, classes, &train_shape);
    TensorDataset test = load_pair(files.test_images, files.test_labels, all.classes(), &test_shape);
    if (train_shape.rows != test_shape.rows || train_shape.cols != test_shape.cols)
        throw Error(files.test_images + ": images are " + std::to_string(test_shape.rows) + "x" +
                    std::to_string(test_shape.cols) + ", the training images are " +
                    std::to_string(train_shape.rows) + "x" + std::to_string(train_shape.cols));
    if (valid_size >= all.size())
        throw Error("--valid-size " + std::to_string(valid_size) + " leaves no training data (" +
                    files.train_images + " holds " + std::to_string(all.size()) + " images)");
    const size_t n_train = all.size() - valid_size;
    // Without held-out rows the test set stands in for validation.
    TensorDataset valid = valid_size ? all.slice(n_train, all.size(), files.train_labels + " [validation rows]") : test;
    Splits s{all.slice(0, n_train, files.train_labels + " [training rows]"), valid, test, train_shape.rows, train_shape.cols};
    return s;
}

}  // namespace sgdx
