// The C API's networks against the host runtime's models/zoo: the same initial
// weights by name and shape, the same SGD steps (momentum included), the CLI's
// file bytes both ways, clear refusals, arena sizes that are exact, no heap use,
// and int8 inference close to float.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "alloc_count.hpp"
#include "core/architecture.hpp"
#include "host_support.hpp"
#include "mnist_data.hpp"
#include "models/zoo.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"
#include "runtime/idx.hpp"
#include "runtime/optim.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/train.hpp"
#include "sgdx.h"

namespace {

// Every named model the C API runs: core's table less those it refuses for their size
// (bncnn, 18 layers), so a new table entry is covered here with no list to update.
const std::vector<const char*>& runnable_architectures() {
    static const std::vector<const char*> names = [] {
        std::vector<const char*> v;
        for (uint32_t i = 0; i < sgdx::core::kArchCount; ++i) {
            sgdx_config c;
            size_t bytes = 0;
            if (sgdx_config_init(&c, sgdx::core::kArchitectures[i].name) == SGDX_OK &&
                sgdx_model_arena_size(&c, &bytes) == SGDX_OK)
                v.push_back(sgdx::core::kArchitectures[i].name);
        }
        return v;
    }();
    return names;
}

sgdx_config config_of(const char* arch, uint32_t max_batch = 16, float momentum = 0.f) {
    sgdx_config c;
    REQUIRE(sgdx_config_init(&c, arch) == SGDX_OK);
    c.max_batch = max_batch;
    c.momentum = momentum;
    if (std::string(arch) == "mlp") c.hidden[0] = 48, c.hidden[1] = 24;  // two hidden layers
    return c;
}

sgdx::ModelSpec spec_of(const sgdx_config& c) {
    sgdx::ModelSpec s;
    s.architecture = c.architecture;
    for (uint32_t h : c.hidden)
        if (h) s.hidden.push_back(h);
    s.rows = c.image_rows, s.cols = c.image_cols, s.classes = c.classes;
    return s;
}

// A model in an arena the test owns, one byte off alignment.
struct Net {
    std::vector<uint8_t> arena;
    sgdx_model* m = nullptr;
    explicit Net(const sgdx_config& c, uint64_t seed = 0) {
        size_t need = 0;
        REQUIRE(sgdx_model_arena_size(&c, &need) == SGDX_OK);
        arena.resize(need + 1);
        REQUIRE(sgdx_create_model(arena.data() + 1, need, &c, seed, &m) == SGDX_OK);
    }
    std::map<std::string, std::vector<float>> tensors() const {
        uint32_t n = 0;
        REQUIRE(sgdx_tensor_count(m, &n) == SGDX_OK);
        std::map<std::string, std::vector<float>> out;
        for (uint32_t i = 0; i < n; ++i) {
            sgdx_tensor t;
            REQUIRE(sgdx_tensor_at(m, i, &t) == SGDX_OK);
            // An SGDX_INT8_ONLY model's weights have no floats (data NULL).
            out[t.name] = t.data ? std::vector<float>(t.data, t.data + t.count) : std::vector<float>();
        }
        return out;
    }
    std::vector<uint8_t> save() const {
        size_t n = 0, written = 0;
        REQUIRE(sgdx_weights_size(m, &n) == SGDX_OK);
        std::vector<uint8_t> out(n);
        REQUIRE(sgdx_save(m, out.data(), n, &written) == SGDX_OK);
        REQUIRE(written == n);
        return out;
    }
};

std::map<std::string, std::vector<float>> host_tensors(sgdx::Module& model) {
    std::map<std::string, std::vector<float>> out;
    for (auto& [name, p] : model.named_parameters()) out[name] = std::vector<float>(p->value.begin(), p->value.end());
    return out;
}

float max_abs_diff(const std::map<std::string, std::vector<float>>& a,
                   const std::map<std::string, std::vector<float>>& b) {
    REQUIRE(a.size() == b.size());
    float d = 0.f;
    for (const auto& entry : a) {
        const std::vector<float>& v = entry.second;
        auto it = b.find(entry.first);
        REQUIRE_MESSAGE(it != b.end(), entry.first);
        REQUIRE(it->second.size() == v.size());
        for (size_t i = 0; i < v.size(); ++i) d = std::max(d, std::fabs(v[i] - it->second[i]));
    }
    return d;
}

using sgdx_test::Mnist;
using sgdx_test::mnist;
using sgdx_test::BytesReader;
using sgdx_test::contains;

// `steps` batches of B training images through the C API's SGD step and the
// runtime's loss_batch with SGD (lr 0.05, momentum 0.9, as the net was made):
// the losses agree step by step.
void train_both(Net& net, sgdx::Module& host, const Mnist& d, size_t B, size_t steps) {
    sgdx::SgdOptions o;
    o.lr = 0.05f, o.momentum = 0.9f;
    sgdx_test::train_both(net.m, host, d.train.pixels.data(), d.train_labels.data(), B, 784, steps, o);
}

}  // namespace

TEST_CASE("every architecture: the same seed gives make_model's weights, names and shapes") {
    for (const char* arch : runnable_architectures()) {
        CAPTURE(std::string(arch));
        const sgdx_config c = config_of(arch);
        Net net(c, 11);
        auto host = sgdx::make_model(spec_of(c), 11);
        CHECK(net.tensors() == host_tensors(*host));  // bit-identical, same names
        uint32_t n = 0;
        REQUIRE(sgdx_tensor_count(net.m, &n) == SGDX_OK);
        for (uint32_t i = 0; i < n; ++i) {
            sgdx_tensor t;
            REQUIRE(sgdx_tensor_at(net.m, i, &t) == SGDX_OK);
            sgdx::Parameter* p = nullptr;
            for (auto& [name, q] : host->named_parameters())
                if (name == t.name) p = q;
            REQUIRE(p != nullptr);
            REQUIRE(p->value.dimension() == t.rank);
            for (uint32_t d = 0; d < t.rank; ++d) CHECK(p->value.shape()[d] == t.shape[d]);
        }
        CHECK(Net(c, 12).tensors() != net.tensors());
    }
}

TEST_CASE("every architecture: SGD steps with momentum follow the host runtime's") {
    const Mnist& d = mnist();
    const size_t B = 16, steps = 4, D = 784;
    const auto& saved = sgdx::active_kernels();
    sgdx::set_kernels(sgdx::kernels::reference());  // the host's scalar arithmetic
    for (const char* arch : runnable_architectures()) {
        CAPTURE(std::string(arch));
        const sgdx_config c = config_of(arch, B, 0.9f);
        Net net(c, 5);
        auto host = sgdx::make_model(spec_of(c), 5);
        const auto start = host_tensors(*host);
        train_both(net, *host, d, B, steps);
        // The layers sum in other orders (gemm tiles, channels-last), so equal
        // to rounding; the steps themselves moved the weights by far more.
        CHECK(max_abs_diff(net.tensors(), host_tensors(*host)) <= 2e-5f);
        CHECK(max_abs_diff(net.tensors(), start) > 1e-3f);
    }
    sgdx::set_kernels(saved);
}

TEST_CASE("every architecture: save writes the CLI's bytes and each side reads the other's") {
    for (const char* arch : runnable_architectures()) {
        CAPTURE(std::string(arch));
        const sgdx_config c = config_of(arch);
        Net net(c, 3);
        auto host = sgdx::make_model(spec_of(c), 3);
        const std::vector<uint8_t> bytes = net.save();
        CHECK(bytes == sgdx::encode_model(*host, sgdx::model_metadata(spec_of(c))));

        // The architecture comes back from the file, with or without metadata.
        for (bool with_metadata : {true, false}) {
            CAPTURE(with_metadata);
            const std::vector<uint8_t> file =
                with_metadata ? bytes : sgdx::encode_model(*host);  // PyTorch's names only
            sgdx_config got;
            REQUIRE(sgdx_config_from_weights(file.data(), file.size(), &got) == SGDX_OK);
            CHECK(std::string(got.architecture) == arch);
            CHECK(std::equal(got.hidden, got.hidden + SGDX_MAX_HIDDEN, c.hidden));
            CHECK(got.image_rows == c.image_rows);
            CHECK(got.image_cols == c.image_cols);
            CHECK(got.classes == c.classes);
        }
        // Only the header is needed.
        sgdx_config got;
        uint64_t hlen = 0;
        std::memcpy(&hlen, bytes.data(), 8);
        CHECK(sgdx_config_from_weights(bytes.data(), size_t(8 + hlen), &got) == SGDX_OK);
        CHECK(sgdx_config_from_weights(bytes.data(), size_t(8 + hlen - 1), &got) == SGDX_ERR_CORRUPT_WEIGHTS);

        // Host -> C: other weights, trained a step so unlike any initialisation.
        auto other = sgdx::make_model(spec_of(c), 77);
        sgdx::load_model(*other, sgdx::parse_safetensors(bytes.data(), bytes.size(), "c-api"), "c-api");
        CHECK(host_tensors(*other) == net.tensors());
        auto donor = sgdx::make_model(spec_of(c), 78);
        const std::vector<uint8_t> donor_bytes = sgdx::encode_model(*donor, sgdx::model_metadata(spec_of(c)));
        REQUIRE(sgdx_load(net.m, donor_bytes.data(), donor_bytes.size()) == SGDX_OK);
        CHECK(net.tensors() == host_tensors(*donor));
        // And predictions agree with the host's forward pass.
        const Mnist& d = mnist();
        const size_t n = 64;
        auto& model = *donor;
        model.train(false);
        std::vector<float> x(n * 784), logits(n * 10);
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(d.test.pixels.data()[i]) * (1.f / 255.f);
        model.forward(x.data(), n, logits.data());
        for (size_t i = 0; i < n; ++i) {
            uint32_t predicted = 99;
            float probs[10];
            REQUIRE(sgdx_predict(net.m, d.test.pixels.data() + i * 784, &predicted, probs) == SGDX_OK);
            const float* z = logits.data() + i * 10;
            CHECK(predicted == uint32_t(std::max_element(z, z + 10) - z));
        }
    }
}

TEST_CASE("a file for another architecture is refused and the model kept") {
    Net cnn(config_of("cnn"), 1);
    const auto before = cnn.tensors();
    const std::vector<uint8_t> mlp = Net(config_of("mlp"), 1).save();
    CHECK(sgdx_load(cnn.m, mlp.data(), mlp.size()) == SGDX_ERR_SHAPE_MISMATCH);
    CHECK(contains(sgdx_last_error(cnn.m), "the file holds a 'mlp' model, this model is 'cnn'"));
    CHECK(cnn.tensors() == before);

    // Without metadata, the tensor names tell.
    auto seq = sgdx::make_model(spec_of(config_of("cnn_sequential")), 2);
    const std::vector<uint8_t> plain = sgdx::encode_model(*seq);
    CHECK(sgdx_load(cnn.m, plain.data(), plain.size()) == SGDX_ERR_SHAPE_MISMATCH);
    CHECK(contains(sgdx_last_error(cnn.m), "unexpected tensor '1.bias' for this cnn model (want conv1.bias"));
    CHECK(cnn.tensors() == before);

    // Same architecture, other widths: the shapes tell.
    sgdx_config wide = config_of("mlp");
    wide.hidden[0] = 64;
    Net small(config_of("mlp"));
    const std::vector<uint8_t> wide_bytes = Net(wide).save();
    CHECK(sgdx_load(small.m, wide_bytes.data(), wide_bytes.size()) == SGDX_ERR_SHAPE_MISMATCH);
    CHECK(contains(sgdx_last_error(small.m), "tensor '0.bias' has shape [64], the model expects [48]"));

    // Truncated: the data section is short.
    std::vector<uint8_t> cut(mlp.begin(), mlp.end() - 4);
    Net again(config_of("mlp"));
    CHECK(sgdx_load(again.m, cut.data(), cut.size()) == SGDX_ERR_CORRUPT_WEIGHTS);
    CHECK(contains(sgdx_last_error(again.m), "truncated: tensor"));
}

TEST_CASE("arena sizes are exact, smaller configurations need less") {
    for (const char* arch : runnable_architectures()) {
        CAPTURE(std::string(arch));
        for (float momentum : {0.f, 0.9f}) {
            sgdx_config c = config_of(arch, 8, momentum);
            size_t need = 0;
            REQUIRE(sgdx_model_arena_size(&c, &need) == SGDX_OK);
            std::vector<uint8_t> arena(need);
            sgdx_model* m = nullptr;
            CHECK(sgdx_create_model(arena.data(), need - 1, &c, 0, &m) == SGDX_ERR_ARENA_TOO_SMALL);
            CHECK(m == nullptr);
            CHECK(contains(sgdx_last_error(nullptr), "sgdx_create_model: arena of"));
            CHECK(sgdx_create_model(arena.data(), need, &c, 0, &m) == SGDX_OK);

            sgdx_config inference = c;
            inference.flags = SGDX_INFERENCE_ONLY;
            size_t small = 0;
            REQUIRE(sgdx_model_arena_size(&inference, &small) == SGDX_OK);
            CHECK(small < need);
            sgdx_config no_int8 = c;
            no_int8.flags = SGDX_NO_INT8;
            size_t smaller = 0;
            REQUIRE(sgdx_model_arena_size(&no_int8, &smaller) == SGDX_OK);
            CHECK(smaller < need);
        }
        sgdx_config plain = config_of(arch, 8, 0.f), with = config_of(arch, 8, 0.9f);
        size_t a = 0, b = 0;
        sgdx_model_arena_size(&plain, &a);
        sgdx_model_arena_size(&with, &b);
        CHECK(b > a);  // the velocity
    }
    // What the refusals say.
    sgdx_config c = config_of("cnn", 4);
    c.flags = SGDX_INFERENCE_ONLY;
    Net net(c);
    const Mnist& d = mnist();
    CHECK(sgdx_train_step(net.m, d.train.pixels.data(), d.train_labels.data(), 4, 0.1f, nullptr) == SGDX_ERR_NOT_TRAINABLE);
    c.flags = SGDX_NO_INT8;
    Net no_int8(c);
    CHECK(sgdx_quantize(no_int8.m, SGDX_QUANT_PER_ROW) == SGDX_ERR_NOT_QUANTIZED);
    CHECK(contains(sgdx_last_error(no_int8.m), "SGDX_NO_INT8"));
}

TEST_CASE("bad configurations get their status and a message naming the problem") {
    size_t need = 0;
    sgdx_config c;
    CHECK(sgdx_config_init(&c, "resnet") == SGDX_ERR_UNKNOWN_MODEL);
    CHECK(contains(sgdx_last_error(nullptr), "unknown architecture 'resnet' (choose one of: logistic, cnn, cnn_sequential, mlp, lenet, bncnn)"));
    CHECK(sgdx_config_init(nullptr, "mlp") == SGDX_ERR_NULL_ARGUMENT);
    CHECK(sgdx_model_arena_size(nullptr, &need) == SGDX_ERR_NULL_ARGUMENT);
    struct Case {
        const char* arch;
        void (*change)(sgdx_config&);
        sgdx_status status;
        const char* message;
    };
    const Case cases[] = {
        {"mlp", [](sgdx_config& x) { x.hidden[0] = 0; }, SGDX_ERR_BAD_DIMENSION, "mlp needs at least one hidden width"},
        {"mlp", [](sgdx_config& x) { x.hidden[0] = 8, x.hidden[1] = 0, x.hidden[2] = 8; }, SGDX_ERR_BAD_DIMENSION, "hidden[2] follows a 0"},
        {"mlp", [](sgdx_config& x) { x.hidden[0] = 70000; }, SGDX_ERR_BAD_DIMENSION, "hidden width 70000"},
        {"cnn", [](sgdx_config& x) { x.image_rows = 0; }, SGDX_ERR_BAD_DIMENSION, "image of 0x28 pixels"},
        {"cnn", [](sgdx_config& x) { x.classes = 1; }, SGDX_ERR_BAD_DIMENSION, "classes = 1"},
        {"cnn", [](sgdx_config& x) { x.max_batch = 0; }, SGDX_ERR_BAD_DIMENSION, "max_batch = 0"},
        {"cnn", [](sgdx_config& x) { x.momentum = 1.f; }, SGDX_ERR_BAD_OPTION, "momentum must be a number in [0, 1)"},
        {"cnn", [](sgdx_config& x) { x.momentum = NAN; }, SGDX_ERR_BAD_OPTION, "momentum"},
        {"cnn", [](sgdx_config& x) { x.flags = 8; }, SGDX_ERR_BAD_OPTION, "flags 8"},
        {"cnn", [](sgdx_config& x) { x.architecture = "vgg"; }, SGDX_ERR_UNKNOWN_MODEL, "unknown architecture 'vgg'"},
        {"cnn", [](sgdx_config& x) { x.architecture = nullptr; }, SGDX_ERR_NULL_ARGUMENT, "architecture is NULL"},
        {"cnn", [](sgdx_config& x) { x.image_rows = x.image_cols = 64; }, SGDX_ERR_BAD_DIMENSION, "cnn for 64x64 images ends in 10x2x2 values"},
        {"lenet", [](sgdx_config& x) { x.image_rows = x.image_cols = 10; }, SGDX_ERR_BAD_DIMENSION, "lenet for 10x10 images: the image is too small: (4): Conv2d: a 3x3 input is smaller than the 5x5 kernel"},
    };
    for (const Case& k : cases) {
        CAPTURE(k.message);
        sgdx_config x = config_of(k.arch);
        k.change(x);
        CHECK(sgdx_model_arena_size(&x, &need) == k.status);
        CHECK(contains(sgdx_last_error(nullptr), k.message));
        std::vector<uint8_t> arena(1 << 20);
        sgdx_model* m = nullptr;
        CHECK(sgdx_create_model(arena.data(), arena.size(), &x, 0, &m) == k.status);
        CHECK(contains(sgdx_last_error(nullptr), "sgdx_create_model"));
        CHECK(m == nullptr);
    }
    // A file the runtime does not know.
    sgdx::SafetensorsFile f;
    f.metadata["architecture"] = "transformer";
    const auto bytes = sgdx::encode_safetensors(f);
    CHECK(sgdx_config_from_weights(bytes.data(), bytes.size(), &c) == SGDX_ERR_UNKNOWN_MODEL);
    CHECK(contains(sgdx_last_error(nullptr), "sgdx_config_from_weights: its architecture 'transformer' is not one sgdx knows (logistic, cnn, "
                                                   "cnn_sequential, mlp, lenet, bncnn)"));
    // Neither metadata nor known tensor names: the runtime's message (one detection,
    // core/architecture), cut to the C API's 200-byte message buffer.
    sgdx::SafetensorsFile g;
    g.tensors["fc.weight"] = {{2, 3}, std::vector<float>(6)};
    const auto unknown = sgdx::encode_safetensors(g);
    CHECK(sgdx_config_from_weights(unknown.data(), unknown.size(), &c) == SGDX_ERR_UNKNOWN_MODEL);
    const char* why = "cannot tell which model this is: its metadata names no architecture, and its tensors "
                      "(fc.weight [2, 3]) are none of sgdx's models' (";
    CHECK(contains(sgdx_last_error(nullptr), (std::string("sgdx_config_from_weights: ") + why).c_str()));
    const std::string host_why = std::string("g.safetensors: ") + why;
    CHECK_THROWS_WITH_AS(sgdx::model_spec_of(g, "g.safetensors"), doctest::Contains(host_why.c_str()), sgdx::Error);
}

TEST_CASE("no heap allocation after sgdx_create_model, for every architecture") {
    const Mnist& d = mnist();
    struct Buffer {
        std::vector<uint8_t> bytes;
        size_t at = 0;
        static int write(void* ctx, const uint8_t* p, size_t n) {
            auto* b = static_cast<Buffer*>(ctx);
            std::memcpy(b->bytes.data() + b->at, p, n);
            b->at += n;
            return 0;
        }
        static int read(void* ctx, size_t offset, uint8_t* p, size_t n) {
            std::memcpy(p, static_cast<Buffer*>(ctx)->bytes.data() + offset, n);
            return 0;
        }
    };
    for (const char* arch : runnable_architectures()) {
        CAPTURE(std::string(arch));
        Net net(config_of(arch, 8, 0.9f), 4);
        size_t size = 0, written = 0;
        REQUIRE(sgdx_weights_size(net.m, &size) == SGDX_OK);
        std::vector<uint8_t> file(size);
        Buffer stream{std::vector<uint8_t>(size)};
        float loss = 0.f, mean = 0.f;
        uint32_t predicted = 0, correct = 0;
        bool ok = true;
        const size_t before = sgdx_test::heap_allocations();
        for (size_t s = 0; s < 3; ++s)
            ok &= sgdx_train_step(net.m, d.train.pixels.data() + s * 8 * 784, d.train_labels.data() + s * 8, 8, 0.05f,
                                  &loss) == SGDX_OK;
        ok &= sgdx_evaluate(net.m, d.test.pixels.data(), d.test_labels.data(), 20, &correct, &mean) == SGDX_OK;
        ok &= sgdx_predict(net.m, d.test.pixels.data(), &predicted, nullptr) == SGDX_OK;
        ok &= sgdx_save(net.m, file.data(), file.size(), &written) == SGDX_OK;
        ok &= sgdx_save_stream(net.m, Buffer::write, &stream) == SGDX_OK;
        ok &= sgdx_load(net.m, file.data(), written) == SGDX_OK;
        ok &= sgdx_load_stream(net.m, Buffer::read, &stream, stream.bytes.size()) == SGDX_OK;
        ok &= sgdx_quantize(net.m, SGDX_QUANT_PER_ROW) == SGDX_OK;
        ok &= sgdx_predict_int8(net.m, d.test.pixels.data(), &predicted) == SGDX_OK;
        ok &= sgdx_evaluate_int8(net.m, d.test.pixels.data(), d.test_labels.data(), 20, &correct) == SGDX_OK;
        ok &= sgdx_load(net.m, file.data(), 12) == SGDX_ERR_CORRUPT_WEIGHTS;
        const size_t after = sgdx_test::heap_allocations();
        CHECK(ok);
        CHECK(after - before == 0);
        CHECK(stream.bytes == file);  // the stream writes the buffer's bytes
    }
}

TEST_CASE("stream load checks the header first, a failing callback is SGDX_ERR_IO") {
    Net net(config_of("cnn"), 1);
    const auto before = net.tensors();
    const std::vector<uint8_t> other = Net(config_of("cnn"), 2).save();
    struct Source {
        const std::vector<uint8_t>* bytes;
        size_t fail_from;  // reads at or past this offset fail
        static int read(void* ctx, size_t offset, uint8_t* p, size_t n) {
            auto* s = static_cast<Source*>(ctx);
            if (offset + n > s->fail_from) return 1;
            std::memcpy(p, s->bytes->data() + offset, n);
            return 0;
        }
    };
    Source header_fails{&other, 20};
    CHECK(sgdx_load_stream(net.m, Source::read, &header_fails, other.size()) == SGDX_ERR_IO);
    CHECK(net.tensors() == before);
    const std::vector<uint8_t> mlp = Net(config_of("mlp")).save();
    Source wrong{&mlp, mlp.size()};
    CHECK(sgdx_load_stream(net.m, Source::read, &wrong, mlp.size()) == SGDX_ERR_SHAPE_MISMATCH);
    CHECK(net.tensors() == before);
    Source data_fails{&other, other.size() - 100};
    CHECK(sgdx_load_stream(net.m, Source::read, &data_fails, other.size()) == SGDX_ERR_IO);
    CHECK(contains(sgdx_last_error(net.m), "partly loaded"));
    Source fine{&other, other.size()};
    CHECK(sgdx_load_stream(net.m, Source::read, &fine, other.size()) == SGDX_OK);
    CHECK(net.tensors() == Net(config_of("cnn"), 2).tensors());
    auto fails = [](void*, const uint8_t*, size_t) { return 1; };
    CHECK(sgdx_save_stream(net.m, fails, nullptr) == SGDX_ERR_IO);
}

TEST_CASE("mlp and cnn trained through the C API: int8 within 0.5 points of float") {
    const Mnist& d = mnist();
    for (const char* arch : {"mlp", "cnn", "lenet"}) {
        CAPTURE(std::string(arch));
        Net net(config_of(arch, 32, 0.9f), 0);
        const size_t n_train = std::string(arch) == "lenet" ? 2048 : 6400, n_test = 2000;
        for (size_t s = 0; s < n_train / 32; ++s)
            REQUIRE(sgdx_train_step(net.m, d.train.pixels.data() + s * 32 * 784, d.train_labels.data() + s * 32, 32,
                                    std::string(arch) == "lenet" ? 0.05f : 0.1f, nullptr) == SGDX_OK);
        uint32_t float_ok = 0, int8_ok = 0;
        REQUIRE(sgdx_evaluate(net.m, d.test.pixels.data(), d.test_labels.data(), n_test, &float_ok, nullptr) == SGDX_OK);
        REQUIRE(sgdx_quantize(net.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
        REQUIRE(sgdx_evaluate_int8(net.m, d.test.pixels.data(), d.test_labels.data(), n_test, &int8_ok) == SGDX_OK);
        MESSAGE(std::string(arch) << ": float " << float_ok / double(n_test) << ", int8 " << int8_ok / double(n_test));
        CHECK(float_ok > n_test / 2);  // measured 0.65-0.86 after these few steps; a broken model sits near 10%
        CHECK(std::abs(int(float_ok) - int(int8_ok)) * 200 <= int(n_test));
    }
}

TEST_CASE("SGDX_INT8_ONLY: a quarter of the weights' RAM, the same int8 predictions as a float model's") {
    const Mnist& d = mnist();
    for (const char* arch : {"lenet", "cnn", "mlp"}) {
        CAPTURE(std::string(arch));
        sgdx_config full = config_of(arch, 8);
        full.flags = SGDX_INFERENCE_ONLY;
        sgdx_config small = full;
        small.flags = SGDX_INT8_ONLY;
        size_t full_bytes = 0, small_bytes = 0;
        REQUIRE(sgdx_model_arena_size(&full, &full_bytes) == SGDX_OK);
        REQUIRE(sgdx_model_arena_size(&small, &small_bytes) == SGDX_OK);
        MESSAGE(std::string(arch) << ": inference arena " << full_bytes << " bytes with float weights, " << small_bytes
                     << " int8 only");
        CHECK(small_bytes < full_bytes);

        // A file as sgdx train writes it, trained a little on the host so it is not an initialisation.
        auto host = sgdx::make_model(spec_of(full), 21);
        sgdx::SGD opt(host->parameters(), sgdx::default_sgd(arch));
        sgdx::Workspace ws;
        std::vector<float> x(64 * 784);
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(d.train.pixels.data()[i]) * (1.f / 255.f);
        std::vector<int32_t> y(d.train_labels.data(), d.train_labels.data() + 64);
        sgdx::Batch b{x.data(), y.data(), 64, 784};
        sgdx::loss_batch(*host, b, ws, &opt);
        const std::vector<uint8_t> file = sgdx::encode_model(*host, sgdx::model_metadata(spec_of(full)));

        Net reference(full), int8(small);
        REQUIRE(sgdx_load(reference.m, file.data(), file.size()) == SGDX_OK);
        REQUIRE(sgdx_quantize(reference.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
        REQUIRE(sgdx_load(int8.m, file.data(), file.size()) == SGDX_OK);
        for (size_t i = 0; i < 200; ++i) {
            uint32_t a = 99, c = 98;
            REQUIRE(sgdx_predict_int8(reference.m, d.test.pixels.data() + i * 784, &a) == SGDX_OK);
            REQUIRE(sgdx_predict_int8(int8.m, d.test.pixels.data() + i * 784, &c) == SGDX_OK);
            CHECK(a == c);
        }
        uint32_t ok_a = 0, ok_b = 0;
        REQUIRE(sgdx_evaluate_int8(reference.m, d.test.pixels.data(), d.test_labels.data(), 300, &ok_a) == SGDX_OK);
        REQUIRE(sgdx_evaluate_int8(int8.m, d.test.pixels.data(), d.test_labels.data(), 300, &ok_b) == SGDX_OK);
        CHECK(ok_a == ok_b);

        // What it refuses, and why.
        uint32_t predicted = 0, correct = 0;
        CHECK(sgdx_predict(int8.m, d.test.pixels.data(), &predicted, nullptr) == SGDX_ERR_NOT_QUANTIZED);
        CHECK(contains(sgdx_last_error(int8.m), "SGDX_INT8_ONLY (no float weights): use the _int8 calls"));
        CHECK(sgdx_evaluate(int8.m, d.test.pixels.data(), d.test_labels.data(), 8, &correct, nullptr) ==
              SGDX_ERR_NOT_QUANTIZED);
        std::vector<uint8_t> out(file.size() + 4096);
        size_t written = 0;
        CHECK(sgdx_save(int8.m, out.data(), out.size(), &written) == SGDX_ERR_NOT_QUANTIZED);
        CHECK(sgdx_quantize(int8.m, SGDX_QUANT_PER_TENSOR) == SGDX_ERR_BAD_OPTION);
        CHECK(sgdx_quantize(int8.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
        CHECK(sgdx_train_step(int8.m, d.train.pixels.data(), d.train_labels.data(), 8, 0.1f, nullptr) ==
              SGDX_ERR_NOT_TRAINABLE);
    }
    // Created from a seed, it holds the float model's weights quantised.
    sgdx_config full = config_of("cnn", 4), small = config_of("cnn", 4);
    small.flags = SGDX_INT8_ONLY;
    Net a(full, 9), b(small, 9);
    REQUIRE(sgdx_quantize(a.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
    for (size_t i = 0; i < 50; ++i) {
        uint32_t pa = 99, pb = 98;
        REQUIRE(sgdx_predict_int8(a.m, mnist().test.pixels.data() + i * 784, &pa) == SGDX_OK);
        REQUIRE(sgdx_predict_int8(b.m, mnist().test.pixels.data() + i * 784, &pb) == SGDX_OK);
        CHECK(pa == pb);
    }
    sgdx_config both = small;
    both.flags = SGDX_INT8_ONLY | SGDX_NO_INT8;
    size_t need = 0;
    CHECK(sgdx_model_arena_size(&both, &need) == SGDX_ERR_BAD_OPTION);
}

TEST_CASE("weights that are not finite: quantising refuses, an int8-only load refuses") {
    sgdx_config c = config_of("cnn", 2);
    auto host = sgdx::make_model(spec_of(c), 1);
    host->named_parameters()[2].second->value.data()[5] = NAN;  // conv2.weight
    const std::vector<uint8_t> file = sgdx::encode_model(*host, sgdx::model_metadata(spec_of(c)));
    Net net(c);
    REQUIRE(sgdx_load(net.m, file.data(), file.size()) == SGDX_OK);  // floats may be anything
    CHECK(sgdx_quantize(net.m, SGDX_QUANT_PER_ROW) == SGDX_ERR_DIVERGED);
    CHECK(sgdx_quantize(net.m, SGDX_QUANT_PER_TENSOR) == SGDX_ERR_DIVERGED);
    c.flags = SGDX_INT8_ONLY;
    Net int8(c);
    uint32_t before = 99, after = 98;
    REQUIRE(sgdx_predict_int8(int8.m, mnist().test.pixels.data(), &before) == SGDX_OK);
    CHECK(sgdx_load(int8.m, file.data(), file.size()) == SGDX_ERR_CORRUPT_WEIGHTS);
    CHECK(contains(sgdx_last_error(int8.m), "holds values that are not finite; the model is unchanged"));
    CHECK(sgdx_predict_int8(int8.m, mnist().test.pixels.data(), &after) == SGDX_OK);
    CHECK(after == before);
    CHECK(int8.tensors().at("conv1.bias") == Net(c).tensors().at("conv1.bias"));  // the floats too

    // A row whose largest weight is subnormal (max / 127 rounds to 0) quantises to zeros.
    auto tiny = sgdx::make_model(spec_of(c), 1);
    float* w = tiny->named_parameters()[0].second->value.data();  // conv1.weight
    for (size_t i = 0; i < 9; ++i) w[i] = i == 0 ? 1e-45f : 0.f;
    const std::vector<uint8_t> tiny_file = sgdx::encode_model(*tiny, sgdx::model_metadata(spec_of(c)));
    CHECK(sgdx_load(int8.m, tiny_file.data(), tiny_file.size()) == SGDX_OK);
    CHECK(sgdx_predict_int8(int8.m, mnist().test.pixels.data(), &after) == SGDX_OK);
    Net floats(config_of("cnn", 2));
    REQUIRE(sgdx_load(floats.m, tiny_file.data(), tiny_file.size()) == SGDX_OK);
    CHECK(sgdx_quantize(floats.m, SGDX_QUANT_PER_TENSOR) == SGDX_OK);
    CHECK(sgdx_quantize(floats.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
}

TEST_CASE("max pooling: a NaN anywhere in a window makes its output NaN, as in the runtime and PyTorch") {
    // lenet is conv 1 (16 5x5 filters) -> ReLU -> MaxPool2d(2) -> ... Filter 0
    // keeps one tap, -inf at its corner, and no bias: its output at (y, x) is
    // -inf (0 after ReLU) where pixel (y, x) is lit and NaN (-inf * 0) where it
    // is dark. A white image with one dark pixel puts one NaN into one pooling
    // window, at the pixel's place in it; the window's other values are 0. The
    // NaN reaches every logit only if the pooling keeps it.
    const sgdx_config c = config_of("lenet", 1);
    auto host = sgdx::make_model(spec_of(c), 3);
    for (auto& [name, p] : host->named_parameters()) {
        float* v = p->value.data();
        if (name == "1.weight") std::fill(v, v + 25, 0.f), v[0] = -INFINITY;
        if (name == "1.bias") v[0] = 0.f;
    }
    const std::vector<uint8_t> file = sgdx::encode_model(*host, sgdx::model_metadata(spec_of(c)));
    Net net(c);
    REQUIRE(sgdx_load(net.m, file.data(), file.size()) == SGDX_OK);
    struct Out {
        std::vector<float> probs, host_logits;
        bool all_nan() const {
            auto nan = [](float v) { return std::isnan(v); };
            return std::all_of(probs.begin(), probs.end(), nan) &&
                   std::all_of(host_logits.begin(), host_logits.end(), nan);
        }
        bool all_finite() const {
            auto finite = [](float v) { return std::isfinite(v); };
            return std::all_of(probs.begin(), probs.end(), finite) &&
                   std::all_of(host_logits.begin(), host_logits.end(), finite);
        }
    };
    auto run = [&](int dark_row, int dark_col) {  // -1: no dark pixel
        std::vector<uint8_t> image(784, 255);
        if (dark_row >= 0) image[size_t(dark_row) * 28 + size_t(dark_col)] = 0;
        Out out{std::vector<float>(10), std::vector<float>(10)};
        uint32_t digit = 99;
        REQUIRE(sgdx_predict(net.m, image.data(), &digit, out.probs.data()) == SGDX_OK);
        std::vector<float> x(784);
        for (size_t i = 0; i < x.size(); ++i) x[i] = float(image[i]) * (1.f / 255.f);
        host->forward(x.data(), 1, out.host_logits.data());
        return out;
    };
    CHECK(run(-1, -1).all_finite());  // no NaN: every number finite, both sides
    // The window at (0, 0), the NaN at each of its 4 places (C API before the
    // fix: NaN only at (0, 0), the window's first value), and windows elsewhere:
    // (2, 4) with the NaN bottom-left, (11, 11) (the last) with it bottom-right.
    const int darks[][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {5, 8}, {23, 23}};
    for (const auto& d : darks) {
        CAPTURE(d[0]);
        CAPTURE(d[1]);
        CHECK(run(d[0], d[1]).all_nan());
    }
    // The corner tap reads rows and columns 0..23 only: a dark pixel beyond
    // makes no NaN, and every number stays finite.
    CHECK(run(27, 27).all_finite());
}

TEST_CASE("files and configs at the edges: long rows, many metadata keys, long headers") {
    // lenet on 256x256 images: its first Linear layer would sum 119,072 inputs, past
    // what an int8 x uint8 sum in int32 holds.
    sgdx_config big = config_of("lenet");
    big.image_rows = big.image_cols = 256;
    size_t need = 0;
    CHECK(sgdx_model_arena_size(&big, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr), "layer 8 sums over 119072 inputs, more than 65536"));

    // The architecture is found after any number of other metadata keys.
    const sgdx_config c = config_of("mlp");
    auto host = sgdx::make_model(spec_of(c), 1);
    auto meta = sgdx::model_metadata(spec_of(c));
    for (int i = 0; i < 40; ++i) meta["a" + std::to_string(100 + i)] = "x";  // sorted before "architecture"
    const std::vector<uint8_t> many = sgdx::encode_model(*host, meta);
    sgdx_config got;
    REQUIRE(sgdx_config_from_weights(many.data(), many.size(), &got) == SGDX_OK);
    CHECK(std::string(got.architecture) == "mlp");
    CHECK(got.hidden[0] == 48);

    // A header longer than sgdx_load_stream's buffer: refused as a limit of the call,
    // while sgdx_load takes the file.
    meta["comment"] = std::string(3000, 'z');
    const std::vector<uint8_t> long_header = sgdx::encode_model(*host, meta);
    Net net(c);
    BytesReader src{&long_header};
    CHECK(sgdx_load_stream(net.m, BytesReader::read, &src, long_header.size()) == SGDX_ERR_BUFFER_TOO_SMALL);
    CHECK(contains(sgdx_last_error(net.m), "use sgdx_load"));
    CHECK(sgdx_load(net.m, long_header.data(), long_header.size()) == SGDX_OK);

    // A tensor-name-only file claiming 2^32 + 785 inputs is refused, not truncated to 785.
    sgdx::SafetensorsFile f;
    f.tensors["lin.weight"] = {{10, 4294967296ull + 785}, {}};
    f.tensors["lin.bias"] = {{10}, std::vector<float>(10)};
    const std::vector<uint8_t> huge = sgdx::encode_safetensors(f);
    CHECK(sgdx_config_from_weights(huge.data(), huge.size(), &got) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr), "images must have 1 to 65536 pixels"));
}

// ---- Networks outside the zoo: a printout ------------------------------------------

namespace {

// Unflatten, Conv2d 5x5 pad 2, ReLU, MaxPool2d, AvgPool2d, Flatten, Linear, ReLU, Linear.
const char* const kCustomNet =
    "Sequential(\n"
    "  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
    "  (1): Conv2d(1, 8, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
    "  (2): ReLU()\n"
    "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
    "  (4): AvgPool2d(kernel_size=2, stride=2, padding=0)\n"
    "  (5): Flatten(start_dim=1, end_dim=-1)\n"
    "  (6): Linear(in_features=392, out_features=32, bias=True)\n"
    "  (7): ReLU()\n"
    "  (8): Linear(in_features=32, out_features=10, bias=True)\n"
    ")";

sgdx_config custom_config(const char* printout, uint32_t max_batch = 16, float momentum = 0.f) {
    sgdx_config c;
    REQUIRE(sgdx_config_init(&c, "logistic") == SGDX_OK);
    c.architecture = printout;
    c.max_batch = max_batch, c.momentum = momentum;
    return c;
}

}  // namespace

TEST_CASE("a network outside the zoo, given as a printout: the runtime's weights, steps, files and predictions") {
    const sgdx::ModelSpec spec = sgdx::model_spec_from_text(kCustomNet);
    // The host writes the printout as torch prints it: the config takes that text.
    const std::string text = sgdx::model_metadata(spec).at("architecture");
    const sgdx_config c = custom_config(text.c_str(), 16, 0.9f);
    Net net(c, 5);
    auto host = sgdx::make_model(spec, 5);
    CHECK(net.tensors() == host_tensors(*host));  // PyTorch's initialisation, the same names

    sgdx_config back;
    REQUIRE(sgdx_model_config(net.m, &back) == SGDX_OK);
    CHECK(std::string(back.architecture) == text);  // the model keeps its own copy

    // Files both ways: the CLI's bytes, and a host file read back by the C API.
    const std::vector<uint8_t> bytes = net.save();
    CHECK(bytes == sgdx::encode_model(*host, sgdx::model_metadata(spec)));
    auto donor = sgdx::make_model(spec, 78);
    const std::vector<uint8_t> file = sgdx::encode_model(*donor, sgdx::model_metadata(spec));
    sgdx_config got;
    REQUIRE(sgdx_config_from_weights(file.data(), file.size(), &got) == SGDX_OK);
    CHECK(got.architecture[0] == '"');  // the printout in the file's header, as JSON
    CHECK(got.image_rows == 28);
    CHECK(got.image_cols == 28);
    CHECK(got.classes == 10);
    got.flags = SGDX_INFERENCE_ONLY;
    Net loaded(got, 1);
    REQUIRE(sgdx_load(loaded.m, file.data(), file.size()) == SGDX_OK);
    CHECK(loaded.tensors() == host_tensors(*donor));
    REQUIRE(sgdx_model_config(loaded.m, &back) == SGDX_OK);
    CHECK(std::string(back.architecture) == text);

    // Predictions: the runtime's within rounding (its layers sum in other orders).
    const Mnist& d = mnist();
    const size_t n = 64;
    donor->train(false);
    std::vector<float> x(n * 784), logits(n * 10);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(d.test.pixels.data()[i]) * (1.f / 255.f);
    donor->forward(x.data(), n, logits.data());
    for (size_t i = 0; i < n; ++i) {
        uint32_t predicted = 99;
        float probs[10];
        REQUIRE(sgdx_predict(loaded.m, d.test.pixels.data() + i * 784, &predicted, probs) == SGDX_OK);
        const float* z = logits.data() + i * 10;
        CHECK(predicted == uint32_t(std::max_element(z, z + 10) - z));
        float sum = 0.f, host_probs[10];
        for (int k = 0; k < 10; ++k) sum += host_probs[k] = std::exp(z[k] - z[predicted]);
        for (int k = 0; k < 10; ++k) CHECK(std::fabs(probs[k] - host_probs[k] / sum) <= 1e-5f);
    }
    uint32_t correct = 0;
    REQUIRE(sgdx_evaluate(loaded.m, d.test.pixels.data(), d.test_labels.data(), 100, &correct, nullptr) == SGDX_OK);
    REQUIRE(sgdx_quantize(loaded.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
    uint32_t correct8 = 0;
    REQUIRE(sgdx_evaluate_int8(loaded.m, d.test.pixels.data(), d.test_labels.data(), 100, &correct8) == SGDX_OK);

    // A file of another network is refused; so is the zoo's lenet file.
    const std::vector<uint8_t> lenet = Net(config_of("lenet"), 1).save();
    CHECK(sgdx_load(loaded.m, lenet.data(), lenet.size()) == SGDX_ERR_SHAPE_MISMATCH);
    CHECK(contains(sgdx_last_error(loaded.m), "the file holds a 'lenet' model, this model is 'Sequential'"));

    // SGD steps with momentum follow the runtime's.
    const auto& saved = sgdx::active_kernels();
    sgdx::set_kernels(sgdx::kernels::reference());
    const auto start = host_tensors(*host);
    train_both(net, *host, d, 16, 4);
    CHECK(max_abs_diff(net.tensors(), host_tensors(*host)) <= 2e-5f);
    CHECK(max_abs_diff(net.tensors(), start) > 1e-3f);
    sgdx::set_kernels(saved);

    // The exact bytes, and the model's own copy of its printout in them.
    size_t need = 0;
    REQUIRE(sgdx_model_arena_size(&c, &need) == SGDX_OK);
    std::vector<uint8_t> arena(need);
    sgdx_model* m = nullptr;
    CHECK(sgdx_create_model(arena.data(), need - 1, &c, 0, &m) == SGDX_ERR_ARENA_TOO_SMALL);
    CHECK(contains(sgdx_last_error(nullptr), ("this Sequential model (max_batch 16) needs " + std::to_string(need)).c_str()));
    CHECK(sgdx_create_model(arena.data(), need, &c, 0, &m) == SGDX_OK);
}

TEST_CASE("a printout's layers the C API cannot run are refused with the line and what it runs") {
    struct Case {
        const char* layer;
        const char* message;
        sgdx_status status = SGDX_ERR_UNKNOWN_MODEL;
    };
    // BatchNorm, Dropout and bias=False run in inference-only models: a model
    // that trains is told so (a file's config is SGDX_INFERENCE_ONLY).
    const Case cases[] = {
        {"BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)",
         "line 4: (2): BatchNorm2d: the C API trains without BatchNorm (it folds it into the layer before at load); "
         "create the model SGDX_INFERENCE_ONLY to run it",
         SGDX_ERR_NOT_TRAINABLE},
        {"Dropout(p=0.5, inplace=False)",
         "line 4: (2): Dropout: the C API trains without Dropout; create the model SGDX_INFERENCE_ONLY to run it",
         SGDX_ERR_NOT_TRAINABLE},
        {"MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)",
         "line 4: (2): MaxPool2d: pool padding is not supported by the C API"},
        {"Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)",
         "line 4: (2): Conv2d: bias=False: the C API trains only layers with a bias; create the model "
         "SGDX_INFERENCE_ONLY to run it",
         SGDX_ERR_NOT_TRAINABLE},
        {"Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 2), padding=(1, 1))",
         "line 4: (2): Conv2d: the C API takes only square strides and paddings"},
        {"BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=False)",
         "line 4: (2): BatchNorm2d: without running statistics (track_running_stats=False) a BatchNorm normalises "
         "by the batch: the C API folds only running statistics"},
    };
    for (const Case& k : cases) {
        CAPTURE(std::string(k.layer));
        const std::string text = std::string("Sequential(\n  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
                                             "  (1): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
                                             "  (2): ") + k.layer +
                                 "\n  (3): Flatten(start_dim=1, end_dim=-1)\n"
                                 "  (4): Linear(in_features=6272, out_features=10, bias=True)\n)";
        const sgdx_config c = custom_config(text.c_str());
        size_t need = 0;
        CHECK(sgdx_model_arena_size(&c, &need) == k.status);
        CHECK(contains(sgdx_last_error(nullptr), (std::string("sgdx_model_arena_size: ") + k.message).c_str()));
        // The same network in a file the host wrote: its config runs it
        // (SGDX_INFERENCE_ONLY), or it is refused as it is read.
        if (std::string(k.layer).rfind("BatchNorm", 0) == 0 || std::string(k.layer).rfind("Dropout", 0) == 0) {
            const sgdx::ModelSpec spec = sgdx::model_spec_from_text(text);
            auto host = sgdx::make_model(spec, 1);
            const std::vector<uint8_t> file = sgdx::encode_model(*host, sgdx::model_metadata(spec));
            sgdx_config got;
            if (k.status == SGDX_ERR_NOT_TRAINABLE) {
                REQUIRE(sgdx_config_from_weights(file.data(), file.size(), &got) == SGDX_OK);
                CHECK(got.flags == SGDX_INFERENCE_ONLY);
                CHECK(sgdx_model_arena_size(&got, &need) == SGDX_OK);
            } else {
                CHECK(sgdx_config_from_weights(file.data(), file.size(), &got) == k.status);
                CHECK(contains(sgdx_last_error(nullptr), (std::string("sgdx_config_from_weights: ") + k.message).c_str()));
            }
        }
    }
    // Shapes that do not fit: the layer and the problem.
    const sgdx_config wrong = custom_config(
        "Sequential(\n  (0): Linear(in_features=700, out_features=10, bias=True)\n)");
    size_t need = 0;
    CHECK(sgdx_model_arena_size(&wrong, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr), "Sequential for 28x28 images: line 2: (0): Linear: input shape [784] has 784 values, not 700 (in_features)"));
    // A Linear on an image (no Flatten after the Conv2d): refused as the runtime refuses it.
    const sgdx_config image_linear = custom_config(
        "Sequential(\n  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (1): Linear(in_features=5408, out_features=10, bias=True)\n)");
    CHECK(sgdx_model_arena_size(&image_linear, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr),
                   "sgdx_model_arena_size: line 3: (1): Linear: its input is still an image: add Flatten() before it"));
    // A printout that does not parse: core's message with the line.
    const sgdx_config bad = custom_config("Sequential(\n  (0): Linear(in_features=784, out_features=10, bias=True)\n  (1): Transformer()\n)");
    CHECK(sgdx_model_arena_size(&bad, &need) == SGDX_ERR_UNKNOWN_MODEL);
    CHECK(contains(sgdx_last_error(nullptr), "sgdx_model_arena_size: line 3"));
    MESSAGE(std::string(sgdx_last_error(nullptr)));
}

TEST_CASE("host files of every zoo model (their printouts in the metadata) are read by the C API") {
    for (const char* arch : runnable_architectures()) {
        CAPTURE(std::string(arch));
        const sgdx_config c = config_of(arch);
        auto host = sgdx::make_model(spec_of(c), 9);
        const std::vector<uint8_t> file = sgdx::encode_model(*host, sgdx::model_metadata(spec_of(c)));
        uint64_t hlen = 0;
        std::memcpy(&hlen, file.data(), 8);
        MESSAGE(std::string(arch) << ": header " << hlen << " bytes");
        CHECK(hlen <= 2048);  // sgdx_load_stream's header buffer
        sgdx_config got;
        REQUIRE(sgdx_config_from_weights(file.data(), size_t(8 + hlen), &got) == SGDX_OK);
        CHECK(std::string(got.architecture) == arch);
        CHECK(std::equal(got.hidden, got.hidden + SGDX_MAX_HIDDEN, c.hidden));
        got.max_batch = 16;
        Net net(got, 1);
        BytesReader r{&file};
        REQUIRE(sgdx_load_stream(net.m, BytesReader::read, &r, file.size()) == SGDX_OK);
        CHECK(net.tensors() == host_tensors(*host));
    }
}

namespace {

// Issue 19: a network outside the zoo with BatchNorm, Dropout and layers
// without bias, as PyTorch prints it.
const char* const kBnNet =
    "Sequential(\n"
    "  (0): Unflatten(dim=1, unflattened_size=(1, 28, 28))\n"
    "  (1): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
    "  (2): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
    "  (3): ReLU()\n"
    "  (4): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
    "  (5): Flatten(start_dim=1, end_dim=-1)\n"
    "  (6): Dropout(p=0.5, inplace=False)\n"
    "  (7): Linear(in_features=1568, out_features=32, bias=False)\n"
    "  (8): BatchNorm1d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
    "  (9): ReLU()\n"
    "  (10): Linear(in_features=32, out_features=10, bias=True)\n"
    ")";

// The host model after a few SGD steps in training mode (running statistics,
// BatchNorm's weight and bias all moved), and its file.
struct BnHost {
    sgdx::ModelSpec spec = sgdx::model_spec_from_text(kBnNet);
    std::unique_ptr<sgdx::Module> model = sgdx::make_model(spec, 3);
    std::vector<uint8_t> file;
    BnHost() {
        const Mnist& d = mnist();
        sgdx::SgdOptions o;
        o.lr = 0.05f, o.momentum = 0.9f;
        sgdx::SGD opt(model->parameters(), o);
        sgdx::Workspace ws;
        const size_t B = 32, D = 784;
        for (size_t s = 0; s < 8; ++s) {
            std::vector<float> xf(B * D);
            for (size_t i = 0; i < B * D; ++i) xf[i] = float(d.train.pixels.data()[s * B * D + i]) * (1.f / 255.f);
            std::vector<int32_t> yi(d.train_labels.data() + s * B, d.train_labels.data() + (s + 1) * B);
            sgdx::Batch b{xf.data(), yi.data(), B, D};
            sgdx::loss_batch(*model, b, ws, &opt);
        }
        model->train(false);
        file = sgdx::encode_model(*model, sgdx::model_metadata(spec));
    }
};

}  // namespace

TEST_CASE("BatchNorm, Dropout and bias=False from a host file: inference-only models predict what the runtime does") {
    BnHost host;
    sgdx_config got;
    REQUIRE(sgdx_config_from_weights(host.file.data(), host.file.size(), &got) == SGDX_OK);
    CHECK(got.flags == SGDX_INFERENCE_ONLY);  // a network the C API runs but does not train
    Net net(got, 1);
    REQUIRE(sgdx_load(net.m, host.file.data(), host.file.size()) == SGDX_OK);
    // The file's tensors: weights, the last Linear's bias, BatchNorm's five each (I64 num_batches_tracked).
    uint32_t count = 0;
    REQUIRE(sgdx_tensor_count(net.m, &count) == SGDX_OK);
    CHECK(count == 4);  // 1.weight, 10.bias, 10.weight, 7.weight: no bias for bias=False
    const auto folded = net.tensors();
    CHECK(folded.count("1.weight") == 1);
    CHECK(folded.count("1.bias") == 0);

    const Mnist& d = mnist();
    const size_t n = 100;
    std::vector<float> x(n * 784), logits(n * 10);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(d.test.pixels.data()[i]) * (1.f / 255.f);
    host.model->forward(x.data(), n, logits.data());
    uint32_t hits = 0;
    for (size_t i = 0; i < n; ++i) {
        uint32_t predicted = 99;
        float probs[10];
        REQUIRE(sgdx_predict(net.m, d.test.pixels.data() + i * 784, &predicted, probs) == SGDX_OK);
        const float* z = logits.data() + i * 10;
        CHECK(predicted == uint32_t(std::max_element(z, z + 10) - z));
        hits += predicted == d.test_labels[i];
        float sum = 0.f, host_probs[10];
        for (int k = 0; k < 10; ++k) sum += host_probs[k] = std::exp(z[k] - z[predicted]);
        for (int k = 0; k < 10; ++k) CHECK(std::fabs(probs[k] - host_probs[k] / sum) <= 1e-5f);
    }
    uint32_t correct = 0;
    REQUIRE(sgdx_evaluate(net.m, d.test.pixels.data(), d.test_labels.data(), uint32_t(n), &correct, nullptr) == SGDX_OK);
    CHECK(correct == hits);
    MESSAGE("BatchNorm network, 8 host steps: " << correct << "/" << n);

    // A second load folds from the file again (not into the last fold).
    REQUIRE(sgdx_load(net.m, host.file.data(), host.file.size()) == SGDX_OK);
    CHECK(net.tensors() == folded);
    // Through the stream reader too.
    BytesReader r{&host.file};
    Net streamed(got, 2);
    REQUIRE(sgdx_load_stream(streamed.m, BytesReader::read, &r, host.file.size()) == SGDX_OK);
    CHECK(streamed.tensors() == folded);

    // int8: per-row scales of the folded rows; an int8-only model folds each row
    // before quantising it, and predicts the same.
    REQUIRE(sgdx_quantize(net.m, SGDX_QUANT_PER_ROW) == SGDX_OK);
    sgdx_config c8 = got;
    c8.flags = SGDX_INT8_ONLY;
    Net only8(c8, 1);
    REQUIRE(sgdx_load(only8.m, host.file.data(), host.file.size()) == SGDX_OK);
    uint32_t agree = 0;
    for (size_t i = 0; i < n; ++i) {
        uint32_t a = 99, b = 98, f = 97;
        REQUIRE(sgdx_predict_int8(net.m, d.test.pixels.data() + i * 784, &a) == SGDX_OK);
        REQUIRE(sgdx_predict_int8(only8.m, d.test.pixels.data() + i * 784, &b) == SGDX_OK);
        REQUIRE(sgdx_predict(net.m, d.test.pixels.data() + i * 784, &f, nullptr) == SGDX_OK);
        CHECK(a == b);
        agree += a == f;
    }
    CHECK(agree >= 95);
    uint32_t correct8 = 0;
    REQUIRE(sgdx_evaluate_int8(only8.m, d.test.pixels.data(), d.test_labels.data(), uint32_t(n), &correct8) == SGDX_OK);
    MESSAGE("int8: " << correct8 << "/" << n << ", agreeing with float on " << agree);

    // Saving a folded model is refused: the file it loaded holds the BatchNorms.
    size_t bytes = 0;
    CHECK(sgdx_weights_size(net.m, &bytes) == SGDX_ERR_BAD_OPTION);
    CHECK(contains(sgdx_last_error(net.m), "sgdx_weights_size: the model's BatchNorm layers are folded"));
    std::vector<uint8_t> out(1 << 16);
    CHECK(sgdx_save(net.m, out.data(), out.size(), &bytes) == SGDX_ERR_BAD_OPTION);
    CHECK(contains(sgdx_last_error(net.m), "the C API does not save such a model"));
}

TEST_CASE("BatchNorm, Dropout and bias=False: training models are refused, a BatchNorm after a ReLU too") {
    const std::string text = sgdx::model_metadata(sgdx::model_spec_from_text(kBnNet)).at("architecture");
    sgdx_config c = custom_config(text.c_str());
    size_t need = 0;
    CHECK(sgdx_model_arena_size(&c, &need) == SGDX_ERR_NOT_TRAINABLE);
    CHECK(contains(sgdx_last_error(nullptr), "line 3: (1): Conv2d: bias=False: the C API trains only layers with a bias"));
    c.flags = SGDX_INFERENCE_ONLY;
    CHECK(sgdx_model_arena_size(&c, &need) == SGDX_OK);

    const std::string dropout = "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n"
                                "  (1): Dropout(p=0.2, inplace=False)\n"
                                "  (2): Linear(in_features=784, out_features=10, bias=True)\n)";
    sgdx_config cd = custom_config(dropout.c_str());
    sgdx_model* m = nullptr;
    std::vector<uint8_t> arena(1 << 20);
    CHECK(sgdx_create_model(arena.data(), arena.size(), &cd, 0, &m) == SGDX_ERR_NOT_TRAINABLE);
    CHECK(contains(sgdx_last_error(nullptr),
                   "sgdx_create_model: line 3: (1): Dropout: the C API trains without Dropout; create the model "
                   "SGDX_INFERENCE_ONLY to run it"));
    cd.flags = SGDX_INFERENCE_ONLY;
    CHECK(sgdx_create_model(arena.data(), arena.size(), &cd, 0, &m) == SGDX_OK);
    // Dropout takes no arena: the same bytes as the network without it.
    const std::string plain = "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n"
                              "  (1): Linear(in_features=784, out_features=10, bias=True)\n)";
    sgdx_config cp = custom_config(plain.c_str());
    cp.flags = SGDX_INFERENCE_ONLY;
    size_t with = 0, without = 0;
    REQUIRE(sgdx_model_arena_size(&cd, &with) == SGDX_OK);
    REQUIRE(sgdx_model_arena_size(&cp, &without) == SGDX_OK);
    CHECK(with == without + (dropout.size() + 8) / 8 * 8 - (plain.size() + 8) / 8 * 8);  // only the longer printout

    const std::string after_relu = "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n"
                                   "  (1): Linear(in_features=784, out_features=32, bias=True)\n"
                                   "  (2): ReLU()\n"
                                   "  (3): BatchNorm1d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
                                   "  (4): Linear(in_features=32, out_features=10, bias=True)\n)";
    sgdx_config cr = custom_config(after_relu.c_str());
    cr.flags = SGDX_INFERENCE_ONLY;
    CHECK(sgdx_model_arena_size(&cr, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr),
                   "line 5: (3): BatchNorm1d: the C API folds a BatchNorm into a Linear or Conv2d directly before it"));
}

TEST_CASE("networks larger than the C API runs are refused saying so, with the limit") {
    // bncnn (18 layers) by name: config_init knows it, the plan says it is too large.
    sgdx_config c;
    REQUIRE(sgdx_config_init(&c, "bncnn") == SGDX_OK);
    size_t need = 0;
    CHECK(sgdx_model_arena_size(&c, &need) == SGDX_ERR_UNKNOWN_MODEL);
    CHECK(contains(sgdx_last_error(nullptr), "sgdx_model_arena_size: bncnn has more layers than the 12 the C API runs"));
    // A host file of it: its printout alone is over the C API's reading limit.
    sgdx::ModelSpec spec;
    spec.architecture = "bncnn";
    auto host = sgdx::make_model(spec, 1);
    const std::vector<uint8_t> file = sgdx::encode_model(*host, sgdx::model_metadata(spec));
    sgdx_config got;
    CHECK(sgdx_config_from_weights(file.data(), file.size(), &got) == SGDX_ERR_UNKNOWN_MODEL);
    CHECK(contains(sgdx_last_error(nullptr), "sgdx_config_from_weights: the file's network is larger than the C API "
                                             "runs: its printout is "));
    CHECK(contains(sgdx_last_error(nullptr), " bytes, the C API reads at most 1023 and runs at most 12 layers"));
    // 13 Linear/ReLU layers in a short printout: the plan's limit.
    std::string text = "Sequential(\n  (0): Flatten(start_dim=1, end_dim=-1)\n";
    for (int i = 1; i <= 13; ++i)
        text += "  (" + std::to_string(i) + "): " +
                (i % 2 ? "Linear(in_features=" + std::string(i == 1 ? "784" : "10") + ", out_features=10, bias=True)"
                       : std::string("ReLU()")) + "\n";
    text += ")";
    const sgdx_config deep = custom_config(text.c_str());
    CHECK(sgdx_model_arena_size(&deep, &need) == SGDX_ERR_UNKNOWN_MODEL);
    CHECK(contains(sgdx_last_error(nullptr), "sgdx_model_arena_size: line 14: ReLU(): more than 12 layers"));
}

TEST_CASE("the C API runs every named model of core's table but those over its size limits, which it refuses saying so") {
    CHECK(runnable_architectures().size() >= 5);  // logistic, cnn, cnn_sequential, mlp, lenet at least
    for (uint32_t i = 0; i < sgdx::core::kArchCount; ++i) {
        const char* name = sgdx::core::kArchitectures[i].name;
        CAPTURE(std::string(name));
        if (std::find_if(runnable_architectures().begin(), runnable_architectures().end(), [&](const char* n) {
                return std::strcmp(n, name) == 0;
            }) != runnable_architectures().end())
            continue;
        sgdx_config c;
        REQUIRE(sgdx_config_init(&c, name) == SGDX_OK);
        size_t bytes = 0;
        CHECK(sgdx_model_arena_size(&c, &bytes) == SGDX_ERR_UNKNOWN_MODEL);
        CHECK(contains(sgdx_last_error(nullptr), "more layers than the 12 the C API runs"));
    }
}
