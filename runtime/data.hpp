#pragma once
// TensorDataset + DataLoader. Pixels stay uint8 (4x less memory than float); a
// batch is gathered into buffers the loader owns (or, when its rows come in
// storage order, points at them where they are), so iterating allocates nothing
// after the first batch.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include "rng.hpp"

namespace sgdx {

// Rows [begin, begin + size) of shared uint8 images (N, features) and labels (N).
class TensorDataset {
public:
    // Throws sgdx::Error naming `name` if counts differ, the set is empty, or a
    // label is >= classes (classes = 0: take max label + 1).
    TensorDataset(xt::xtensor<uint8_t, 2> images, xt::xtensor<uint8_t, 1> labels,
                  size_t classes = 0, float scale = 1.f / 255.f, std::string name = "dataset");

    size_t size() const { return size_; }
    size_t features() const { return storage_->images.shape()[1]; }
    size_t classes() const { return classes_; }
    float scale() const { return scale_; }
    const std::string& name() const { return name_; }

    const uint8_t* image(size_t i) const { return storage_->images.data() + (begin_ + i) * features(); }
    uint8_t label(size_t i) const { return storage_->labels(begin_ + i); }

    // A view of rows [begin, end), sharing the pixels (no copy).
    TensorDataset slice(size_t begin, size_t end, std::string name) const;

    // Checks every label is < classes (used when a model fixes the class count).
    void require_classes(size_t classes);

private:
    struct Storage {
        xt::xtensor<uint8_t, 2> images;
        xt::xtensor<uint8_t, 1> labels;
    };
    TensorDataset() = default;
    std::shared_ptr<const Storage> storage_;
    size_t begin_ = 0, size_ = 0, classes_ = 0;
    float scale_ = 1.f / 255.f;
    std::string name_;
};

// One minibatch: pixels (size, features) uint8 with x = scale * pixels, the same
// as floats in x (null if the loader was told not to make them), y (size) classes.
struct Batch {
    const float* x = nullptr;
    const int32_t* y = nullptr;
    size_t size = 0;
    size_t features = 0;
    const uint8_t* pixels = nullptr;
    float scale = 1.f;

    auto xs() const { return xt::adapt(x, size * features, xt::no_ownership(), std::array<size_t, 2>{size, features}); }
    auto ys() const { return xt::adapt(y, size, xt::no_ownership(), std::array<size_t, 1>{size}); }
};

class DataLoader {
public:
    // The last partial batch is kept (PyTorch's drop_last=False). With shuffle, each
    // epoch draws a new order from the loader's own RNG, seeded once here.
    DataLoader(TensorDataset dataset, size_t batch_size, bool shuffle = false, uint64_t seed = 0);

    size_t size() const { return (dataset_.size() + batch_size_ - 1) / batch_size_; }  // batches
    size_t batch_size() const { return batch_size_; }
    bool shuffles() const { return shuffle_; }
    const TensorDataset& dataset() const { return dataset_; }

    // Whether batches also carry float x (on by default). train_epoch and evaluate
    // turn it off while they run when the kernels read the uint8 pixels directly.
    void set_float_inputs(bool on) { float_inputs_ = on; }
    bool float_inputs() const { return float_inputs_; }

    void start_epoch();                // new order if shuffling
    const Batch& batch(size_t index);  // gathers batch `index` of the current epoch
    const std::vector<uint32_t>& order() const { return order_; }

    // State for checkpoints: the RNG that draws the next epoch's order, and the
    // current epoch's order.
    Rng& rng() { return rng_; }
    void set_order(std::vector<uint32_t> order);

    // for (const Batch& b : loader): starts an epoch, then yields every batch.
    class iterator {
    public:
        iterator(DataLoader* dl, size_t i) : dl_(dl), i_(i) {}
        const Batch& operator*() const { return dl_->batch(i_); }
        iterator& operator++() { ++i_; return *this; }
        bool operator!=(const iterator& o) const { return i_ != o.i_; }

    private:
        DataLoader* dl_;
        size_t i_;
    };
    iterator begin() { start_epoch(); return {this, 0}; }
    iterator end() { return {this, size()}; }

private:
    TensorDataset dataset_;
    size_t batch_size_;
    bool shuffle_;
    Rng rng_;
    std::vector<uint32_t> order_;
    bool float_inputs_ = true;
    std::vector<uint8_t> pixels_;
    std::vector<float> x_;
    std::vector<int32_t> y_;
    Batch current_;

    void prefetch_batch(size_t first) const;
};

}  // namespace sgdx
