#pragma once
// What the C API's tests share: the runtime's step on the same uint8 batch the
// C API trains on (and both trained side by side), a message check, and an
// in-memory source for sgdx_load_stream.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/module.hpp"
#include "runtime/optim.hpp"
#include "runtime/train.hpp"
#include "sgdx.h"

namespace sgdx_test {

// images: (B, D) uint8 pixels, labels: (B) -> the runtime's loss_batch with opt,
// on pixels scaled by 1/255 as the C API scales them.
inline sgdx::BatchLoss host_step(sgdx::Module& model, sgdx::Optimizer& opt, sgdx::Workspace& ws,
                                 const uint8_t* images, const uint8_t* labels, size_t B, size_t D) {
    std::vector<float> x(B * D);
    std::vector<int32_t> y(labels, labels + B);
    for (size_t i = 0; i < B * D; ++i) x[i] = float(images[i]) * (1.f / 255.f);
    sgdx::Batch b{x.data(), y.data(), B, D};
    return sgdx::loss_batch(model, b, ws, &opt);
}

// `steps` batches of B images (D pixels each) from images/labels, each trained by
// the C API (sgdx_train_step at o.lr; its momentum is the model's) and by the
// runtime's loss_batch with SGD(o): the losses agree step by step.
inline void train_both(sgdx_model* m, sgdx::Module& host, const uint8_t* images, const uint8_t* labels, size_t B,
                       size_t D, size_t steps, const sgdx::SgdOptions& o) {
    sgdx::SGD opt(host.parameters(), o);
    sgdx::Workspace ws;
    for (size_t s = 0; s < steps; ++s) {
        const uint8_t* x = images + s * B * D;
        const uint8_t* y = labels + s * B;
        float loss = 0.f;
        REQUIRE(sgdx_train_step(m, x, y, B, o.lr, &loss) == SGDX_OK);
        CHECK(loss == doctest::Approx(host_step(host, opt, ws, x, y, B, D).loss).epsilon(1e-5));
    }
}

inline bool contains(const char* text, const char* part) { return std::strstr(text, part) != nullptr; }

// sgdx_load_stream's reader over bytes in memory: `BytesReader r{&bytes};
// sgdx_load_stream(m, BytesReader::read, &r, bytes.size())`.
struct BytesReader {
    const std::vector<uint8_t>* bytes;
    static int read(void* ctx, size_t offset, uint8_t* p, size_t n) {
        std::memcpy(p, static_cast<BytesReader*>(ctx)->bytes->data() + offset, n);
        return 0;
    }
};

}  // namespace sgdx_test
