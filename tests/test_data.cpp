#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "helpers.hpp"
#include "runtime/data.hpp"
#include "runtime/error.hpp"

using namespace sgdx;

namespace {
// Image i has every pixel equal to i, so a batch row tells which image it is.
TensorDataset numbered(size_t n, size_t d = 3) {
    auto images = xt::xtensor<uint8_t, 2>::from_shape({n, d});
    auto labels = xt::xtensor<uint8_t, 1>::from_shape({n});
    for (size_t i = 0; i < n; ++i) {
        for (size_t k = 0; k < d; ++k) images(i, k) = uint8_t(i);
        labels(i) = uint8_t(i % 10);
    }
    return TensorDataset(images, labels, 10, 1.f, "numbered");
}

std::vector<size_t> epoch_indices(DataLoader& dl, std::vector<size_t>* sizes = nullptr) {
    std::vector<size_t> seen;
    for (const Batch& b : dl) {
        if (sizes) sizes->push_back(b.size);
        for (size_t r = 0; r < b.size; ++r) {
            seen.push_back(size_t(b.x[r * b.features]));
            CHECK(b.y[r] == int32_t(seen.back() % 10));  // label travels with its image
        }
    }
    return seen;
}
}  // namespace

TEST_CASE("DataLoader without shuffle is the tutorial's manual slicing") {
    TensorDataset ds = numbered(10);
    DataLoader dl(ds, 4);
    CHECK(dl.size() == 3);  // (n - 1) // bs + 1
    std::vector<size_t> sizes;
    auto seen = epoch_indices(dl, &sizes);
    CHECK(sizes == std::vector<size_t>{4, 4, 2});  // last partial batch kept
    for (size_t i = 0; i < 10; ++i) CHECK(seen[i] == i);  // x_train[i*bs : i*bs+bs]
}

TEST_CASE("shuffled DataLoader: each index once per epoch, seeded, new order each epoch") {
    TensorDataset ds = numbered(101);
    DataLoader a(ds, 16, true, 42), b(ds, 16, true, 42), c(ds, 16, true, 43);
    auto a1 = epoch_indices(a), a2 = epoch_indices(a);
    auto b1 = epoch_indices(b), c1 = epoch_indices(c);
    for (auto* order : {&a1, &a2, &c1}) {
        auto sorted = *order;
        std::sort(sorted.begin(), sorted.end());
        for (size_t i = 0; i < 101; ++i) CHECK(sorted[i] == i);
    }
    CHECK(a1 == b1);  // same seed, same order
    CHECK(a1 != a2);  // a new order every epoch
    CHECK(a1 != c1);  // another seed, another order
    std::vector<size_t> identity(101);
    for (size_t i = 0; i < 101; ++i) identity[i] = i;
    CHECK(a1 != identity);
}

TEST_CASE("batches are scaled floats and the views have the right shapes") {
    auto images = xt::xtensor<uint8_t, 2>{{0, 255}, {51, 102}};
    auto labels = xt::xtensor<uint8_t, 1>{1, 0};
    TensorDataset ds(images, labels, 0, 1.f / 255.f, "tiny");
    CHECK(ds.classes() == 2);
    DataLoader dl(ds, 8);
    const Batch& b = dl.batch(0);
    CHECK(b.size == 2);
    CHECK(b.xs().shape()[0] == 2);
    CHECK(b.xs()(0, 1) == doctest::Approx(1.0));
    CHECK(b.xs()(1, 0) == doctest::Approx(0.2));
    CHECK(b.ys()(0) == 1);
    CHECK_THROWS_AS(dl.batch(1), Error);
}

TEST_CASE("datasets reject bad input with a clear message") {
    auto images = xt::xtensor<uint8_t, 2>::from_shape({3, 4});
    auto two_labels = xt::xtensor<uint8_t, 1>{1, 2};
    CHECK_THROWS_WITH_AS(TensorDataset(images, two_labels, 0, 1.f, "set A"), doctest::Contains("set A: 3 images but 2 labels"), Error);
    auto empty = xt::xtensor<uint8_t, 2>::from_shape({0, 4});
    auto no_labels = xt::xtensor<uint8_t, 1>::from_shape({0});
    CHECK_THROWS_WITH_AS(TensorDataset(empty, no_labels, 0, 1.f, "set B"), doctest::Contains("set B: the dataset is empty"), Error);
    auto labels = xt::xtensor<uint8_t, 1>{0, 9, 12};
    CHECK_THROWS_WITH_AS(TensorDataset(images, labels, 10, 1.f, "set C"), doctest::Contains("set C: label 12 at index 2 is >= the number of classes (10)"), Error);
    TensorDataset ok(images, labels, 0, 1.f, "set D");
    CHECK(ok.classes() == 13);
    CHECK_THROWS_WITH_AS(DataLoader(ok, 0), doctest::Contains("batch size must be at least 1"), Error);
    CHECK_THROWS_AS(ok.slice(2, 2, "nothing"), Error);
    CHECK_THROWS_AS(ok.slice(0, 4, "too much"), Error);
}

TEST_CASE("slices share rows without copying") {
    TensorDataset ds = numbered(10);
    TensorDataset tail = ds.slice(7, 10, "tail");
    CHECK(tail.size() == 3);
    CHECK(tail.image(0) == ds.image(7));
    CHECK(tail.label(2) == ds.label(9));
}

TEST_CASE("in storage order a batch points into the dataset, any other order is gathered") {
    TensorDataset ds = numbered(10, 5);
    DataLoader in_order(ds.slice(2, 10, "rows 2..9"), 3);
    in_order.set_float_inputs(false);
    const Batch& b = in_order.batch(1);
    CHECK(b.pixels == ds.image(5));  // rows 5, 6, 7 of the parent: no copy
    CHECK(b.x == nullptr);
    CHECK(b.y[2] == 7);

    // A restored order that is not the identity gathers, even without shuffling.
    DataLoader restored(ds, 4);
    restored.set_order({9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    const Batch& r = restored.batch(0);
    CHECK(r.pixels != ds.image(0));
    for (size_t i = 0; i < 4; ++i) {
        CHECK(r.pixels[i * 5] == 9 - i);
        CHECK(r.pixels[i * 5 + 4] == 9 - i);
        CHECK(r.x[i * 5] == doctest::Approx(9 - i));
        CHECK(r.y[i] == int32_t(9 - i));
    }
    // ... and back in storage order it points into the dataset again.
    restored.set_order({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(restored.batch(2).pixels == ds.image(8));
    CHECK(restored.batch(2).size == 2);

    // A shuffled loader gathers its rows: every image once, each row whole.
    DataLoader shuffled(ds, 10, true, 7);
    shuffled.start_epoch();
    const Batch& s = shuffled.batch(0);
    CHECK(s.pixels != ds.image(0));
    std::set<int> seen;
    for (size_t i = 0; i < 10; ++i) {
        for (size_t k = 1; k < 5; ++k) CHECK(s.pixels[i * 5 + k] == s.pixels[i * 5]);
        CHECK(s.y[i] == int32_t(s.pixels[i * 5] % 10));
        seen.insert(s.pixels[i * 5]);
    }
    CHECK(seen.size() == 10);
}
