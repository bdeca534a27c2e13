#include <doctest/doctest.h>

#include "helpers.hpp"
#include "runtime/error.hpp"
#include "runtime/idx.hpp"
#include "runtime/mnist.hpp"

using namespace sgdx;
using namespace sgdx::test;

namespace {
std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
    std::vector<uint8_t> b{0, 0, 8, 3};
    for (uint32_t v : {n, rows, cols})
        for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
    for (uint32_t i = 0; i < n * rows * cols; ++i) b.push_back(uint8_t(i * 7));
    return b;
}
std::vector<uint8_t> idx_labels(std::vector<uint8_t> labels) {
    std::vector<uint8_t> b{0, 0, 8, 1, 0, 0, 0, uint8_t(labels.size())};
    for (uint8_t l : labels) b.push_back(l);  // (insert of an empty range: a GCC 12 false warning)
    return b;
}
void expect_error(std::vector<uint8_t> bytes, const char* fragment, bool labels = false) {
    std::string path = temp_path("bad.idx");
    write_bytes(path, bytes);
    if (labels) {
        CHECK_THROWS_WITH_AS(read_idx_labels(path), doctest::Contains(fragment), Error);
    } else {
        CHECK_THROWS_WITH_AS(read_idx_images(path), doctest::Contains(fragment), Error);
        CHECK_THROWS_WITH_AS(read_idx_images(path), doctest::Contains(path.c_str()), Error);  // names the file
    }
    // and the in-memory parser agrees
    if (labels) CHECK_THROWS_WITH_AS(parse_idx_labels(bytes.data(), bytes.size(), "mem"), doctest::Contains(fragment), Error);
    else CHECK_THROWS_WITH_AS(parse_idx_images(bytes.data(), bytes.size(), "mem"), doctest::Contains(fragment), Error);
}
}  // namespace

TEST_CASE("IDX images and labels round-trip") {
    auto bytes = idx_images(3, 2, 5);
    std::string path = temp_path("ok-images.idx");
    write_bytes(path, bytes);
    IdxImages img = read_idx_images(path);
    CHECK(img.rows == 2);
    CHECK(img.cols == 5);
    REQUIRE(img.pixels.shape()[0] == 3);
    CHECK(img.pixels(2, 9) == uint8_t(29 * 7));
    std::string again = temp_path("again.idx");
    write_idx_images(again, img.pixels.data(), 3, 2, 5);
    CHECK(read_idx_images(again).pixels == img.pixels);
    auto lb = idx_labels({3, 1, 4});
    auto labels = parse_idx_labels(lb.data(), lb.size(), "mem");
    CHECK(labels == xt::xtensor<uint8_t, 1>{3, 1, 4});
}

TEST_CASE("bad IDX files get a clear error naming the file") {
    CHECK_THROWS_WITH_AS(read_idx_images(temp_path("does-not-exist")), doctest::Contains("cannot open"), Error);
    expect_error({0, 0}, "only 2 bytes");
    auto gzipped = idx_images(1, 2, 2);
    gzipped[0] = 0x1f;  // how MNIST is downloaded
    gzipped[1] = 0x8b;
    expect_error(gzipped, "gzip-compressed: gunzip it first");
    auto wrong_magic = idx_images(1, 2, 2);
    wrong_magic[0] = 0x50;  // e.g. a zip file
    wrong_magic[1] = 0x4b;
    expect_error(wrong_magic, "wrong magic 0x504B");
    auto floats = idx_images(1, 2, 2);
    floats[2] = 0x0D;
    expect_error(floats, "0x0D (float) is not supported");
    expect_error(idx_labels({1, 2}), "rank is 1, expected 3");  // labels given as images
    expect_error(idx_images(1, 2, 2), "rank is 3, expected 1", true);
    auto truncated = idx_images(4, 3, 3);
    truncated.resize(truncated.size() - 5);
    expect_error(truncated, "truncated");
    auto trailing = idx_images(1, 2, 2);
    trailing.push_back(0);
    expect_error(trailing, "1 unexpected bytes after the data");
    expect_error(idx_images(0, 2, 2), "dimension 0 is 0");
    auto header_only = idx_images(1, 1, 1);
    header_only.resize(10);
    expect_error(header_only, "truncated IDX header");
}

TEST_CASE("an absurd IDX header is rejected before allocating") {
    std::vector<uint8_t> b{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_error(b, "absurd size");
    std::vector<uint8_t> big{0, 0, 8, 3, 0, 0x10, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};  // 1M images, no data
    expect_error(big, "truncated: the header promises");
}

TEST_CASE("load_splits checks the image/label pairing and sizes") {
    std::string dir = temp_path("set");
    ::mkdir(dir.c_str(), 0755);
    DataFiles f = DataFiles::in_directory(dir);
    write_bytes(f.train_images, idx_images(5, 2, 2));
    write_bytes(f.train_labels, idx_labels({0, 1, 2, 1, 0}));
    write_bytes(f.test_images, idx_images(2, 2, 2));
    write_bytes(f.test_labels, idx_labels({1, 2}));
    Splits s = load_splits(f, 2);
    CHECK(s.train.size() == 3);
    CHECK(s.valid.size() == 2);
    CHECK(s.test.size() == 2);
    CHECK(s.train.classes() == 3);
    CHECK_THROWS_WITH_AS(load_splits(f, 5), doctest::Contains("--valid-size 5 leaves no training data"), Error);
    write_bytes(f.test_labels, idx_labels({1, 7}));
    CHECK_THROWS_WITH_AS(load_splits(f, 2), doctest::Contains("label 7 at index 1 is >= the number of classes (3)"), Error);
    write_bytes(f.test_labels, idx_labels({1, 2, 0}));
    CHECK_THROWS_WITH_AS(load_splits(f, 2), doctest::Contains("holds 2 images but"), Error);
    write_bytes(f.test_labels, idx_labels({1, 2}));
    write_bytes(f.test_images, idx_images(2, 3, 3));
    CHECK_THROWS_WITH_AS(load_splits(f, 2), doctest::Contains("images are 3x3, the training images are 2x2"), Error);
}

TEST_CASE("labelled_images and check_image_pixels: one check of an image/label pair for the CLI and the page") {
    const auto images = idx_images(3, 2, 2), labels = idx_labels({2, 0, 1});
    TensorDataset set = labelled_images(parse_idx_images(images.data(), images.size(), "imgs"),
                                        parse_idx_labels(labels.data(), labels.size(), "lbls"), "imgs", "lbls", 4);
    CHECK(set.size() == 3);
    CHECK(set.classes() == 4);
    CHECK(set.label(0) == 2);
    CHECK(set.name() == "lbls");
    CHECK(set.scale() == doctest::Approx(1.0 / 255));
    const auto two = idx_labels({2, 0});
    CHECK_THROWS_WITH_AS(labelled_images(parse_idx_images(images.data(), images.size(), "imgs"),
                                         parse_idx_labels(two.data(), two.size(), "lbls"), "imgs", "lbls"),
                         "imgs holds 3 images but lbls holds 2 labels", Error);
    const IdxImages img = parse_idx_images(images.data(), images.size(), "imgs");
    CHECK_NOTHROW(check_image_pixels(img, 4, "imgs", "the model"));
    CHECK_THROWS_WITH_AS(check_image_pixels(img, 784, "imgs", "the page's model"),
                         "imgs: images have 4 pixels, the page's model takes 784", Error);
}
