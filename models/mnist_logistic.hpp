#pragma once
// The tutorial's Mnist_Logistic: a Module holding one Linear called `lin`.
// Sized from the data, so any IDX image/label set trains the same model.
#include <memory>

#include "../runtime/linear.hpp"
#include "../runtime/optim.hpp"

namespace sgdx {

class MnistLogistic : public Module {
public:
    explicit MnistLogistic(size_t in = 784, size_t classes = 10, uint64_t seed = 0)
        : rng_(seed), lin(in, classes, rng_) {
        register_module("lin", lin);
        build({in});
    }

    // xb: (B, in) -> logits: (B, classes)
    void forward(const float* xb, size_t batch, float* y) override { lin.forward(xb, batch, y); }
    void backward(const float* xb, const float* dy, size_t batch, float* dx = nullptr) override {
        lin.backward(xb, dy, batch, dx);
    }
    void forward(const uint8_t* xb, float scale, size_t batch, float* y) override { lin.forward(xb, scale, batch, y); }
    void backward(const uint8_t* xb, float scale, const float* dy, size_t batch) override {
        lin.backward(xb, scale, dy, batch);
    }
    void reserve(size_t max_batch, bool byte_inputs = false) override { lin.reserve(max_batch, byte_inputs); }
    std::string type_name() const override { return "Mnist_Logistic"; }
    std::unique_ptr<Module> clone() const override {
        return std::make_unique<MnistLogistic>(in_features(), out_features());
    }

protected:
    Shape configure(const Shape& input) override { return lin.build(input); }

private:
    Rng rng_;  // declared before lin: it draws lin's initial weights

public:
    Linear lin;
};

// The tutorial's get_model: the model and SGD over its parameters.
struct ModelAndOptimizer {
    std::unique_ptr<MnistLogistic> model;
    std::unique_ptr<SGD> opt;
};

inline ModelAndOptimizer get_model(size_t in = 784, size_t classes = 10, SgdOptions options = {},
                                   uint64_t seed = 0) {
    validate(options);
    auto model = std::make_unique<MnistLogistic>(in, classes, seed);
    auto opt = std::make_unique<SGD>(model->parameters(), options);
    return {std::move(model), std::move(opt)};
}

}  // namespace sgdx
