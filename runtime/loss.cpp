#include "loss.hpp"

#include <string>

#include "backend.hpp"
#include "core/net.hpp"
#include "error.hpp"

namespace sgdx {

void check_targets(const int32_t* targets, size_t n, size_t classes, const char* what) {
    for (size_t i = 0; i < n; ++i)
        if (targets[i] < 0 || size_t(targets[i]) >= classes)
            throw Error(std::string(what) + ": target " + std::to_string(targets[i]) +
                        " at index " + std::to_string(i) + " is outside [0, " +
                        std::to_string(classes) + ")");
}

namespace {
void check_shapes(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets) {
    if (logits.shape()[0] != targets.shape()[0])
        throw Error("cross_entropy: " + std::to_string(logits.shape()[0]) + " rows of logits but " +
                    std::to_string(targets.shape()[0]) + " targets");
    if (logits.shape()[0] == 0) throw Error("cross_entropy: empty batch");
    check_targets(targets.data(), targets.size(), logits.shape()[1], "cross_entropy");
}
}  // namespace

float cross_entropy(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets) {
    check_shapes(logits, targets);
    const size_t B = logits.shape()[0], C = logits.shape()[1];
    return float(active_kernels().softmax_xent(logits.data(), targets.data(), nullptr, 0.f, B, C,
                                               nullptr) / double(B));
}

float cross_entropy(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets,
                    xt::xtensor<float, 2>& dlogits) {
    check_shapes(logits, targets);
    const size_t B = logits.shape()[0], C = logits.shape()[1];
    if (dlogits.shape() != logits.shape()) dlogits.resize({B, C});
    return float(active_kernels().softmax_xent(logits.data(), targets.data(), dlogits.data(),
                                               1.f / float(B), B, C, nullptr) / double(B));
}

float accuracy(const xt::xtensor<float, 2>& logits, const xt::xtensor<int32_t, 1>& targets) {
    check_shapes(logits, targets);
    const size_t B = logits.shape()[0], C = logits.shape()[1];
    size_t hits = 0;
    for (size_t i = 0; i < B; ++i) hits += argmax(logits.data() + i * C, C) == size_t(targets(i));
    return float(hits) / float(B);
}

size_t argmax(const float* z, size_t n) { return core::argmax(z, uint32_t(n)); }  // the C API's too

}  // namespace sgdx
