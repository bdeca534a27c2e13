// The installed C++ runtime: build a network from models/zoo, take a few SGD
// steps on a learnable pattern; prints "cpp_consumer: ok" and exits 0 if the loss fell.
#include <cstdio>
#include <vector>

#include "models/zoo.hpp"
#include "runtime/optim.hpp"
#include "runtime/train.hpp"

int main() {
    sgdx::ModelSpec spec;
    spec.architecture = "mlp";
    spec.rows = spec.cols = 8;
    spec.classes = 2;
    spec.hidden = {16};
    auto model = sgdx::make_model(spec, 1);
    const size_t B = 8, D = 64;
    std::vector<float> x(B * D);
    std::vector<int32_t> y(B);
    for (size_t i = 0; i < B; ++i) {
        y[i] = int32_t(i % 2);
        for (size_t k = 0; k < D; ++k) x[i * D + k] = (k < D / 2) == (y[i] == 0) ? 0.9f : 0.1f;
    }
    sgdx::SGD opt(model->parameters(), sgdx::default_sgd("mlp"));
    sgdx::Workspace ws;
    sgdx::Batch batch{x.data(), y.data(), B, D};
    const float first = sgdx::loss_batch(*model, batch, ws, &opt).loss;
    float last = first;
    for (int step = 0; step < 30; ++step) last = sgdx::loss_batch(*model, batch, ws, &opt).loss;
    std::printf("cpp_consumer: %s (%s: loss %.4f -> %.4f)\n", last < first / 2 ? "ok" : "FAIL",
                sgdx::describe(spec).c_str(), first, last);
    return last < first / 2 ? 0 : 1;
}
