#include "data.hpp"

#include <cstring>
#include <numeric>

#include "backend.hpp"
#include "error.hpp"

namespace sgdx {

TensorDataset::TensorDataset(xt::xtensor<uint8_t, 2> images, xt::xtensor<uint8_t, 1> labels,
                             size_t classes, float scale, std::string name)
    : size_(images.shape()[0]), scale_(scale), name_(std::move(name)) {
    if (images.shape()[0] != labels.shape()[0])
        throw Error(name_ + ": " + std::to_string(images.shape()[0]) + " images but " +
                    std::to_string(labels.shape()[0]) + " labels");
    if (size_ == 0) throw Error(name_ + ": the dataset is empty");
    if (images.shape()[1] == 0) throw Error(name_ + ": images have no pixels");
    if (!(scale > 0.f) || !std::isfinite(scale)) throw Error(name_ + ": pixel scale must be > 0");
    auto storage = std::make_shared<Storage>();
    storage->images = std::move(images);
    storage->labels = std::move(labels);
    storage_ = std::move(storage);
    if (classes == 0) {
        uint8_t top = 0;
        for (uint8_t l : storage_->labels) top = l > top ? l : top;
        classes_ = size_t(top) + 1;
    } else {
        require_classes(classes);
    }
}

void TensorDataset::require_classes(size_t classes) {
    for (size_t i = 0; i < size_; ++i)
        if (label(i) >= classes)
            throw Error(name_ + ": label " + std::to_string(label(i)) + " at index " +
                        std::to_string(i) + " is >= the number of classes (" +
                        std::to_string(classes) + ")");
    classes_ = classes;
}

TensorDataset TensorDataset::slice(size_t begin, size_t end, std::string name) const {
    if (begin >= end || end > size_)
        throw Error(name + ": rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") are not a non-empty part of " + name_ + " (" + std::to_string(size_) +
                    " rows)");
    TensorDataset out;
    out.storage_ = storage_;
    out.begin_ = begin_ + begin;
    out.size_ = end - begin;
    out.classes_ = classes_;
    out.scale_ = scale_;
    out.name_ = std::move(name);
    return out;
}

DataLoader::DataLoader(TensorDataset dataset, size_t batch_size, bool shuffle, uint64_t seed)
    : dataset_(std::move(dataset)), batch_size_(batch_size), shuffle_(shuffle), rng_(seed) {
    if (batch_size == 0) throw Error("batch size must be at least 1");
    order_.resize(dataset_.size());
    std::iota(order_.begin(), order_.end(), 0u);
    const size_t rows = batch_size_ < dataset_.size() ? batch_size_ : dataset_.size();
    pixels_.resize(rows * dataset_.features());
    x_.resize(rows * dataset_.features());
    y_.resize(rows);
}

void DataLoader::start_epoch() {
    if (!shuffle_) return;
    std::iota(order_.begin(), order_.end(), 0u);
    for (size_t i = order_.size() - 1; i > 0; --i)  // Fisher-Yates
        std::swap(order_[i], order_[rng_.below(uint32_t(i + 1))]);
}

void DataLoader::set_order(std::vector<uint32_t> order) {
    if (order.size() != dataset_.size()) throw Error("data loader order has the wrong length");
    for (uint32_t i : order)
        if (i >= dataset_.size()) throw Error("data loader order refers past the dataset");
    order_ = std::move(order);
}

const Batch& DataLoader::batch(size_t index) {
    if (index >= size()) throw Error("batch index " + std::to_string(index) + " out of range");
    const auto& k = active_kernels();
    const size_t first = index * batch_size_;
    const size_t rows = std::min(batch_size_, dataset_.size() - first);
    const size_t d = dataset_.features();
    // Rows that follow each other in storage (any loader that does not shuffle)
    // are already one block: the batch points into the dataset instead of copying
    // it (evaluation loaders, 20,000 rows of MNIST per epoch).
    bool contiguous = true;
    for (size_t r = 1; r < rows && contiguous; ++r) contiguous = order_[first + r] == order_[first] + r;
    const uint8_t* pixels = contiguous ? dataset_.image(order_[first]) : pixels_.data();
    for (size_t r = 0; r < rows; ++r) {
        const uint32_t src = order_[first + r];
        if (!contiguous) std::memcpy(pixels_.data() + r * d, dataset_.image(src), d);
        y_[r] = dataset_.label(src);
    }
    if (float_inputs_) k.scale_u8(pixels, dataset_.scale(), x_.data(), rows * d);
    if (shuffle_ || !contiguous) prefetch_batch(first + rows);
    current_ = Batch{float_inputs_ ? x_.data() : nullptr, y_.data(), rows, d, pixels, dataset_.scale()};
    return current_;
}

// Shuffled rows are scattered over the whole set: start fetching the rows of the
// batch that begins at `first` now, so they arrive while this batch is computed.
void DataLoader::prefetch_batch(size_t first) const {
    const size_t rows = first < dataset_.size() ? std::min(batch_size_, dataset_.size() - first) : 0;
    const size_t d = dataset_.features();
#if defined(__wasm__)
    // WebAssembly has no prefetch (the builtin compiles to nothing). A plain load
    // of one byte per cache line starts the same fetches: the loads do not depend
    // on each other, so the CPU keeps many misses in flight at once.
    uint32_t touched = 0;
    for (size_t r = 0; r < rows; ++r) {
        const uint8_t* row = dataset_.image(order_[first + r]);
        for (size_t off = 0; off < d; off += 64) touched += row[off];
    }
    volatile uint32_t keep = touched;  // so the loads are not optimised away
    (void)keep;
#else
    for (size_t r = 0; r < rows; ++r) {
        const auto* row = reinterpret_cast<const char*>(dataset_.image(order_[first + r]));
        for (size_t off = 0; off < d; off += 64) __builtin_prefetch(row + off);
    }
#endif
}

}  // namespace sgdx
