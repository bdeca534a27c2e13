// The C API against the host runtime: same initial weights, same training
// steps, byte-identical model files; every bad argument gets its status code and
// a message naming it; no heap use after creation; int8 close to float.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "alloc_count.hpp"
#include "host_support.hpp"
#include "mnist_data.hpp"
#include "models/mnist_logistic.hpp"
#include "models/zoo.hpp"
#include "runtime/backend.hpp"
#include "runtime/idx.hpp"
#include "runtime/rng.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/train.hpp"
#include "sgdx.h"

extern "C" int sgdx_c99_usage(void);

namespace {

// A model in an arena the test owns (an odd offset proves any alignment works).
struct CModel {
    std::vector<uint8_t> arena;
    sgdx_model* m = nullptr;
    size_t in, classes;
    CModel(uint32_t in_, uint32_t classes_, uint32_t max_batch, uint64_t seed) : in(in_), classes(classes_) {
        size_t need = 0;
        REQUIRE(sgdx_arena_size(in_, classes_, max_batch, &need) == SGDX_OK);
        arena.resize(need + 1);
        REQUIRE(sgdx_create(arena.data() + 1, need, in_, classes_, max_batch, seed, &m) == SGDX_OK);
    }
    std::vector<float> weight() const {
        const float *w = nullptr, *b = nullptr;
        REQUIRE(sgdx_parameters(m, &w, &b) == SGDX_OK);
        return {w, w + in * classes};
    }
    std::vector<float> bias() const {
        const float *w = nullptr, *b = nullptr;
        REQUIRE(sgdx_parameters(m, &w, &b) == SGDX_OK);
        return {b, b + classes};
    }
    std::vector<uint8_t> save() const {
        size_t n = 0, written = 0;
        REQUIRE(sgdx_weights_size(m, &n) == SGDX_OK);
        std::vector<uint8_t> out(n);
        REQUIRE(sgdx_save(m, out.data(), out.size(), &written) == SGDX_OK);
        CHECK(written == n);
        return out;
    }
};

std::vector<float> host_values(const sgdx::Parameter& p) { return {p.value.begin(), p.value.end()}; }

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float d = 0.f;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
}

using sgdx_test::Mnist;
using sgdx_test::mnist;
using sgdx_test::BytesReader;
using sgdx_test::contains;
using sgdx_test::host_step;

// The host runtime's loss_batch on the same uint8 rows the C API gets.


}  // namespace

TEST_CASE("the same seed gives sgdx::MnistLogistic's initial weights") {
    struct Dims { uint32_t in, classes; uint64_t seed; };
    for (Dims d : {Dims{784, 10, 0}, Dims{784, 10, 12345}, Dims{5, 3, 7}}) {
        CAPTURE(d.seed);
        CModel c(d.in, d.classes, 4, d.seed);
        sgdx::MnistLogistic host(d.in, d.classes, d.seed);
        CHECK(c.weight() == host_values(host.lin.weight));  // bit-identical
        CHECK(c.bias() == host_values(host.lin.bias));
    }
    // And another seed really gives other weights.
    CHECK(CModel(784, 10, 4, 1).weight() != CModel(784, 10, 4, 2).weight());
}

TEST_CASE("training steps give the host runtime's weights (loss_batch + SGD)") {
    const Mnist& d = mnist();
    const size_t D = 784, B = 64, steps = 8;
    const float lr = 0.5f;
    const auto& saved = sgdx::active_kernels();
    // Reference kernels on both sides: the same arithmetic, so identical up to
    // rounding (tolerance 1e-6). The host's SIMD kernels sum in another order:
    // tolerance 1e-4 after 8 steps (weights are ~0.03-0.3).
    for (bool reference : {true, false}) {
        CAPTURE(reference);
        sgdx::set_kernels(reference ? sgdx::kernels::reference() : sgdx::kernels::best());
        CModel c(784, 10, B, 3);
        sgdx::MnistLogistic host(784, 10, 3);
        sgdx::SgdOptions o;
        o.lr = lr;
        sgdx_test::train_both(c.m, host, d.train.pixels.data(), d.train_labels.data(), B, D, steps, o);
        const float tol = reference ? 1e-6f : 1e-4f;
        CHECK(max_abs_diff(c.weight(), host_values(host.lin.weight)) <= tol);
        CHECK(max_abs_diff(c.bias(), host_values(host.lin.bias)) <= tol);
        // The steps did move the weights (the comparison is not vacuous).
        CHECK(max_abs_diff(c.weight(), CModel(784, 10, 4, 3).weight()) > 1e-3f);
    }
    sgdx::set_kernels(saved);
}

TEST_CASE("save writes the CLI's bytes (encode_model with the zoo's metadata), each side loads the other's") {
    CModel c(784, 10, 8, 5);
    sgdx::MnistLogistic host(784, 10, 5);
    const std::vector<uint8_t> bytes = c.save();
    CHECK(bytes == sgdx::encode_model(host, sgdx::model_metadata(sgdx::ModelSpec{})));

    // The host parses the C API's file into a model with other weights.
    sgdx::MnistLogistic other(784, 10, 99);
    sgdx::load_model(other, sgdx::parse_safetensors(bytes.data(), bytes.size(), "c-api"), "c-api");
    CHECK(host_values(other.lin.weight) == c.weight());
    CHECK(host_values(other.lin.bias) == c.bias());

    // The C API loads the host's file (trained, so unlike its own weights).
    sgdx::SgdOptions o;
    sgdx::SGD opt(other.parameters(), o);
    sgdx::Workspace ws;
    host_step(other, opt, ws, mnist().train.pixels.data(), mnist().train_labels.data(), 32, 784);
    const std::vector<uint8_t> host_bytes = sgdx::encode_model(other);
    REQUIRE(sgdx_load(c.m, host_bytes.data(), host_bytes.size()) == SGDX_OK);
    CHECK(c.weight() == host_values(other.lin.weight));
    CHECK(c.bias() == host_values(other.lin.bias));

    // Without metadata and with lin.weight's data first (another writer's layout).
    sgdx::SafetensorsFile f;
    f.tensors["lin.weight"] = {{10, 784}, host_values(host.lin.weight)};
    f.tensors["lin.bias"] = {{10}, host_values(host.lin.bias)};
    std::vector<uint8_t> plain = sgdx::encode_safetensors(f);
    REQUIRE(sgdx_load(c.m, plain.data(), plain.size()) == SGDX_OK);
    CHECK(c.weight() == host_values(host.lin.weight));
}

TEST_CASE("a corrupt or mismatched weight buffer is refused and the model kept") {
    CModel c(784, 10, 8, 5);
    CModel donor(784, 10, 8, 6);  // loads must not change c to donor's values
    const std::vector<float> before = c.weight();
    sgdx::MnistLogistic host(784, 10, 6);
    auto file_with = [&](auto edit) {
        sgdx::SafetensorsFile f;
        f.tensors["lin.weight"] = {{10, 784}, host_values(host.lin.weight)};
        f.tensors["lin.bias"] = {{10}, host_values(host.lin.bias)};
        edit(f);
        return sgdx::encode_safetensors(f);
    };
    auto header_edit = [&](const std::string& from, const std::string& to) {
        std::vector<uint8_t> b = donor.save();
        std::string text(b.begin(), b.end());
        size_t at = text.find(from);
        REQUIRE(at != std::string::npos);
        REQUIRE(from.size() == to.size());  // keep the header length
        std::copy(to.begin(), to.end(), b.begin() + long(at));
        return b;
    };
    std::vector<uint8_t> truncated = donor.save();
    truncated.pop_back();
    std::vector<uint8_t> trailing = donor.save();
    trailing.push_back(0);
    std::vector<uint8_t> huge_header = donor.save();
    huge_header[6] = 1;

    struct Case {
        const char* what;
        std::vector<uint8_t> bytes;
        sgdx_status status;
        const char* message;
    };
    const Case cases[] = {
        {"too short", {1, 2, 3}, SGDX_ERR_CORRUPT_WEIGHTS, "only 3 bytes"},
        {"header length past the end", huge_header, SGDX_ERR_CORRUPT_WEIGHTS, "header length"},
        {"truncated data", truncated, SGDX_ERR_CORRUPT_WEIGHTS, "truncated"},
        {"trailing bytes", trailing, SGDX_ERR_CORRUPT_WEIGHTS, "1 bytes after the last tensor"},
        {"broken JSON", header_edit("\"dtype\"", "{dtype\""), SGDX_ERR_CORRUPT_WEIGHTS, "corrupt safetensors header"},
        {"unknown field", header_edit("\"dtype\"", "\"dtypo\""), SGDX_ERR_CORRUPT_WEIGHTS, "unknown field"},
        {"offsets with a gap", header_edit("[0,40]", "[0,44]"), SGDX_ERR_CORRUPT_WEIGHTS, "data_offsets"},
        {"other tensor name", header_edit("\"lin.bias\"", "\"lin.bia2\""), SGDX_ERR_SHAPE_MISMATCH,
         "unexpected tensor 'lin.bia2'"},
        {"F16", header_edit("F32", "F16"), SGDX_ERR_SHAPE_MISMATCH, "has dtype F16; only F32 is supported"},
        {"missing tensor", file_with([](auto& f) { f.tensors.erase("lin.bias"); }), SGDX_ERR_SHAPE_MISMATCH,
         "no tensor 'lin.bias'"},
        {"other shape", file_with([&](auto& f) { f.tensors["lin.weight"] = {{10, 783}, std::vector<float>(7830)}; }),
         SGDX_ERR_SHAPE_MISMATCH, "'lin.weight' has shape [10, 783], the model expects [10, 784]"},
        {"extra tensor", file_with([](auto& f) { f.tensors["lin.extra"] = {{1}, {1.f}}; }), SGDX_ERR_SHAPE_MISMATCH,
         "unexpected tensor 'lin.extra'"},
    };
    for (const Case& k : cases) {
        CAPTURE(k.what);
        CHECK(sgdx_load(c.m, k.bytes.data(), k.bytes.size()) == k.status);
        CAPTURE(sgdx_last_error(c.m));
        CHECK(contains(sgdx_last_error(c.m), "sgdx_load: "));
        CHECK(contains(sgdx_last_error(c.m), k.message));
        CHECK(c.weight() == before);
    }
    // The same tensor twice: the host writer cannot produce it, so splice it in.
    {
        const std::vector<uint8_t> b = donor.save();
        std::string text(b.begin(), b.end());
        size_t at = text.find("\"lin.bias\"");
        text.replace(at, 10, "\"lin.weight\"");
        // Header grew by 2: fix the length prefix (the padding need not be exact for parsing).
        uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(text[size_t(i)]);
        n += 2;
        for (int i = 0; i < 8; ++i) text[size_t(i)] = char(n >> (8 * i));
        std::vector<uint8_t> dup(text.begin(), text.end());
        CHECK(sgdx_load(c.m, dup.data(), dup.size()) == SGDX_ERR_CORRUPT_WEIGHTS);
        CHECK(contains(sgdx_last_error(c.m), "appears twice"));
    }
    // And the unedited bytes load (the cases above differ only in their fault).
    std::vector<uint8_t> fine = donor.save();
    CHECK(sgdx_load(c.m, fine.data(), fine.size()) == SGDX_OK);
    CHECK(c.weight() == donor.weight());
}

TEST_CASE("sgdx_load survives random corruption of the header and the length") {
    // Every mutated file is either refused with a load status, model untouched,
    // or (a harmless change, e.g. in padding) accepted. Under ASan this also
    // proves the parser never reads past the buffer.
    CModel c(784, 10, 8, 5);
    const std::vector<uint8_t> good = CModel(784, 10, 8, 6).save();
    size_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | good[size_t(i)];
    sgdx::Rng rng(42);
    const char alphabet[] = "{}[]:,\" 0123456789.-aeFlnrstu\\";
    size_t refused = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::vector<uint8_t> b = good;
        const uint32_t kind = rng.below(3);
        if (kind == 0) {  // overwrite 1-3 header bytes with JSON-ish characters
            for (uint32_t k = 0, n = 1 + rng.below(3); k < n; ++k)
                b[8 + rng.below(uint32_t(header))] = uint8_t(alphabet[rng.below(sizeof alphabet - 1)]);
        } else if (kind == 1) {  // cut the buffer anywhere
            b.resize(rng.below(uint32_t(b.size())));
        } else {  // another header length
            b[rng.below(8)] = uint8_t(rng.below(256));
        }
        const std::vector<float> before = c.weight();
        const sgdx_status st = sgdx_load(c.m, b.data(), b.size());
        CAPTURE(trial);
        REQUIRE((st == SGDX_OK || st == SGDX_ERR_CORRUPT_WEIGHTS || st == SGDX_ERR_SHAPE_MISMATCH));
        if (st != SGDX_OK) {
            ++refused;
            REQUIRE(c.weight() == before);
            REQUIRE(std::strlen(sgdx_last_error(c.m)) > 10);
        }
    }
    CHECK(refused > 2000);  // the mutations do break most files
}

TEST_CASE("bad arguments return their status and a message naming the problem") {
    size_t need = 0;
    CHECK(sgdx_arena_size(784, 10, 32, nullptr) == SGDX_ERR_NULL_ARGUMENT);
    CHECK(contains(sgdx_last_error(nullptr), "bytes is NULL"));
    CHECK(sgdx_arena_size(0, 10, 32, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr), "inputs = 0"));
    CHECK(sgdx_arena_size(784, 1, 32, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(sgdx_arena_size(784, 257, 32, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr), "classes = 257"));
    CHECK(sgdx_arena_size(784, 10, 0, &need) == SGDX_ERR_BAD_DIMENSION);
    CHECK(contains(sgdx_last_error(nullptr), "max_batch = 0"));
    CHECK(sgdx_arena_size(70000, 10, 1, &need) == SGDX_ERR_BAD_DIMENSION);

    REQUIRE(sgdx_arena_size(784, 10, 32, &need) == SGDX_OK);
    std::vector<uint8_t> arena(need);
    sgdx_model* m = reinterpret_cast<sgdx_model*>(1);
    CHECK(sgdx_create(arena.data(), need - 1, 784, 10, 32, 0, &m) == SGDX_ERR_ARENA_TOO_SMALL);
    CHECK(m == nullptr);
    CHECK(contains(sgdx_last_error(nullptr), "too small"));
    CHECK(contains(sgdx_last_error(nullptr), std::to_string(need).c_str()));
    CHECK(sgdx_create(nullptr, need, 784, 10, 32, 0, &m) == SGDX_ERR_NULL_ARGUMENT);
    CHECK(contains(sgdx_last_error(nullptr), "arena is NULL"));
    CHECK(sgdx_create(arena.data(), need, 784, 10, 32, 0, nullptr) == SGDX_ERR_NULL_ARGUMENT);
    REQUIRE(sgdx_create(arena.data(), need, 784, 10, 32, 0, &m) == SGDX_OK);

    std::vector<uint8_t> images(33 * 784, 10), labels(33, 3);
    uint32_t predicted = 0, correct = 0;
    // Handles that are not models go to the global message.
    CHECK(sgdx_predict(nullptr, images.data(), &predicted, nullptr) == SGDX_ERR_NULL_ARGUMENT);
    CHECK(contains(sgdx_last_error(nullptr), "sgdx_predict: model is NULL"));
    std::vector<uint8_t> garbage(need, 0xAB);
    auto* fake = reinterpret_cast<sgdx_model*>(garbage.data());
    CHECK(sgdx_train_step(fake, images.data(), labels.data(), 1, 0.1f, nullptr) == SGDX_ERR_BAD_MODEL);
    CHECK(contains(sgdx_last_error(fake), "not a live sgdx model"));

    CHECK(sgdx_predict(m, nullptr, &predicted, nullptr) == SGDX_ERR_NULL_ARGUMENT);
    CHECK(contains(sgdx_last_error(m), "sgdx_predict: image is NULL"));
    CHECK(sgdx_train_step(m, images.data(), nullptr, 4, 0.1f, nullptr) == SGDX_ERR_NULL_ARGUMENT);
    CHECK(contains(sgdx_last_error(m), "labels is NULL"));
    CHECK(sgdx_train_step(m, images.data(), labels.data(), 33, 0.1f, nullptr) == SGDX_ERR_BAD_BATCH_SIZE);
    CHECK(contains(sgdx_last_error(m), "batch of 33 images: must be in [1, max_batch = 32]"));
    CHECK(sgdx_train_step(m, images.data(), labels.data(), 0, 0.1f, nullptr) == SGDX_ERR_BAD_BATCH_SIZE);
    CHECK(sgdx_train_step(m, images.data(), labels.data(), 4, -1.f, nullptr) == SGDX_ERR_BAD_OPTION);
    CHECK(sgdx_train_step(m, images.data(), labels.data(), 4, NAN, nullptr) == SGDX_ERR_BAD_OPTION);
    CHECK(contains(sgdx_last_error(m), "lr must be a finite number"));
    labels[2] = 10;
    CHECK(sgdx_train_step(m, images.data(), labels.data(), 4, 0.1f, nullptr) == SGDX_ERR_BAD_LABEL);
    CHECK(contains(sgdx_last_error(m), "label 10 at index 2 is not < classes (10)"));
    CHECK(sgdx_evaluate(m, images.data(), labels.data(), 33, &correct, nullptr) == SGDX_ERR_BAD_LABEL);
    CHECK(contains(sgdx_last_error(m), "sgdx_evaluate: label 10 at index 2"));
    labels[2] = 3;
    CHECK(sgdx_evaluate(m, images.data(), labels.data(), 0, &correct, nullptr) == SGDX_ERR_BAD_BATCH_SIZE);
    // Evaluation takes more than max_batch images at once.
    CHECK(sgdx_evaluate(m, images.data(), labels.data(), 33, &correct, nullptr) == SGDX_OK);

    size_t size = 0, written = 1;
    REQUIRE(sgdx_weights_size(m, &size) == SGDX_OK);
    std::vector<uint8_t> file(size);
    CHECK(sgdx_save(m, file.data(), size - 1, &written) == SGDX_ERR_BUFFER_TOO_SMALL);
    CHECK(written == 0);
    CHECK(contains(sgdx_last_error(m), "too small for the"));
    CHECK(sgdx_save(m, file.data(), size, nullptr) == SGDX_ERR_NULL_ARGUMENT);
    CHECK(sgdx_load(m, nullptr, size) == SGDX_ERR_NULL_ARGUMENT);

    CHECK(sgdx_predict_int8(m, images.data(), &predicted) == SGDX_ERR_NOT_QUANTIZED);
    CHECK(contains(sgdx_last_error(m), "call sgdx_quantize"));
    CHECK(sgdx_quantize(m, sgdx_quant_mode(7)) == SGDX_ERR_BAD_OPTION);
    REQUIRE(sgdx_quantize(m, SGDX_QUANT_PER_ROW) == SGDX_OK);
    CHECK(sgdx_predict_int8(m, images.data(), &predicted) == SGDX_OK);
    // Training makes the int8 weights stale: they are refused, not used.
    REQUIRE(sgdx_train_step(m, images.data(), labels.data(), 4, 0.1f, nullptr) == SGDX_OK);
    CHECK(sgdx_evaluate_int8(m, images.data(), labels.data(), 4, &correct) == SGDX_ERR_NOT_QUANTIZED);

    CHECK(std::string(sgdx_status_name(SGDX_ERR_BAD_LABEL)) == "SGDX_ERR_BAD_LABEL");
    CHECK(std::string(sgdx_status_name(SGDX_OK)) == "SGDX_OK");
    CHECK(std::string(sgdx_status_name(sgdx_status(99))) == "unknown status");
}

TEST_CASE("a step whose loss is not finite is refused and not applied") {
    CModel c(784, 10, 16, 0);
    const Mnist& d = mnist();
    float loss = 0.f;
    // lr 1e38 blows the weights up within a few steps until the logits overflow.
    std::vector<float> last_good = c.weight();
    sgdx_status st = SGDX_OK;
    for (int s = 0; s < 10 && st == SGDX_OK; ++s) {
        last_good = c.weight();
        st = sgdx_train_step(c.m, d.train.pixels.data() + s * 16 * 784, d.train_labels.data() + s * 16, 16, 1e38f, &loss);
    }
    REQUIRE(st == SGDX_ERR_DIVERGED);
    CHECK_FALSE(std::isfinite(loss));
    CHECK(contains(sgdx_last_error(c.m), "not finite"));
    const std::vector<float> after = c.weight();
    CHECK(std::memcmp(after.data(), last_good.data(), after.size() * 4) == 0);
}

TEST_CASE("predict agrees with evaluate, probabilities sum to 1") {
    CModel c(784, 10, 32, 1);
    const Mnist& d = mnist();
    for (size_t s = 0; s < 20; ++s)
        REQUIRE(sgdx_train_step(c.m, d.train.pixels.data() + s * 32 * 784, d.train_labels.data() + s * 32, 32, 0.5f,
                                nullptr) == SGDX_OK);
    uint32_t hits = 0, correct = 0;
    float probs[10];
    for (size_t i = 0; i < 200; ++i) {
        uint32_t p = 99;
        REQUIRE(sgdx_predict(c.m, d.test.pixels.data() + i * 784, &p, probs) == SGDX_OK);
        REQUIRE(p < 10);
        float sum = 0.f;
        for (float q : probs) sum += q;
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
        CHECK(*std::max_element(probs, probs + 10) == probs[p]);
        hits += p == d.test_labels(i);
    }
    REQUIRE(sgdx_evaluate(c.m, d.test.pixels.data(), d.test_labels.data(), 200, &correct, nullptr) == SGDX_OK);
    CHECK(hits == correct);
    CHECK(correct > 100);  // 640 training images: ~56%, chance is 10%
}

TEST_CASE("no heap allocation after sgdx_create") {
    const Mnist& d = mnist();
    CModel c(784, 10, 32, 2);
    size_t size = 0, written = 0;
    REQUIRE(sgdx_weights_size(c.m, &size) == SGDX_OK);
    std::vector<uint8_t> file(size);
    std::vector<uint8_t> bad_labels(d.train_labels.data(), d.train_labels.data() + 32);
    bad_labels[5] = 200;
    const uint8_t junk[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'x'};

    const size_t before = sgdx_test::heap_allocations();
    float loss = 0.f, mean = 0.f;
    uint32_t predicted = 0, correct = 0;
    bool ok = true;
    for (size_t s = 0; s < 10; ++s)
        ok &= sgdx_train_step(c.m, d.train.pixels.data() + s * 32 * 784, d.train_labels.data() + s * 32, 32, 0.5f,
                              &loss) == SGDX_OK;
    ok &= sgdx_evaluate(c.m, d.test.pixels.data(), d.test_labels.data(), 100, &correct, &mean) == SGDX_OK;
    ok &= sgdx_predict(c.m, d.test.pixels.data(), &predicted, nullptr) == SGDX_OK;
    ok &= sgdx_save(c.m, file.data(), file.size(), &written) == SGDX_OK;
    ok &= sgdx_load(c.m, file.data(), written) == SGDX_OK;
    ok &= sgdx_quantize(c.m, SGDX_QUANT_PER_TENSOR) == SGDX_OK;
    ok &= sgdx_quantize(c.m, SGDX_QUANT_PER_ROW) == SGDX_OK;
    ok &= sgdx_predict_int8(c.m, d.test.pixels.data(), &predicted) == SGDX_OK;
    ok &= sgdx_evaluate_int8(c.m, d.test.pixels.data(), d.test_labels.data(), 100, &correct) == SGDX_OK;
    // Failures format their messages without the heap too.
    ok &= sgdx_train_step(c.m, d.train.pixels.data(), bad_labels.data(), 32, 0.5f, &loss) == SGDX_ERR_BAD_LABEL;
    ok &= sgdx_load(c.m, junk, sizeof junk) == SGDX_ERR_CORRUPT_WEIGHTS;
    ok &= sgdx_predict(nullptr, d.test.pixels.data(), &predicted, nullptr) == SGDX_ERR_NULL_ARGUMENT;
    const size_t after = sgdx_test::heap_allocations();
    CHECK(ok);
    CHECK(after - before == 0);

    // The counter sees C's malloc and C++'s new (so the check above can fail).
    const size_t base = sgdx_test::heap_allocations();
    void* volatile p = std::malloc(16);  // volatile: GCC may drop an unused malloc
    auto* volatile v = new std::vector<int>(4);
    CHECK(sgdx_test::heap_allocations() - base >= 3);
    delete v;
    std::free(p);
}

TEST_CASE("int8 inference is within 0.5 points of float on real MNIST") {
    // One epoch of the tutorial (50,000 images, batch 64, lr 0.5) through the C API,
    // then the 10,000 test images with float and with int8 weights.
    const Mnist& d = mnist();
    const uint32_t B = 64, N = 50000, T = 10000;
    CModel c(784, 10, B, 0);
    for (uint32_t i = 0; i + B <= N; i += B)
        REQUIRE(sgdx_train_step(c.m, d.train.pixels.data() + size_t(i) * 784, d.train_labels.data() + i, B, 0.5f,
                                nullptr) == SGDX_OK);
    uint32_t float_ok = 0;
    REQUIRE(sgdx_evaluate(c.m, d.test.pixels.data(), d.test_labels.data(), T, &float_ok, nullptr) == SGDX_OK);
    const double float_acc = double(float_ok) / T;
    MESSAGE("float accuracy " << float_acc);
    CHECK(float_acc > 0.89);  // 0.907 here; a broken step stays far below
    for (sgdx_quant_mode mode : {SGDX_QUANT_PER_TENSOR, SGDX_QUANT_PER_ROW}) {
        CAPTURE(int(mode));
        REQUIRE(sgdx_quantize(c.m, mode) == SGDX_OK);
        uint32_t int8_ok = 0;
        REQUIRE(sgdx_evaluate_int8(c.m, d.test.pixels.data(), d.test_labels.data(), T, &int8_ok) == SGDX_OK);
        const double int8_acc = double(int8_ok) / T;
        MESSAGE("int8 accuracy (mode " << int(mode) << ") " << int8_acc);
        CHECK(std::fabs(int8_acc - float_acc) <= 0.005);
        // predict_int8 agrees with evaluate_int8 on a few images.
        uint32_t hits = 0;
        for (uint32_t i = 0; i < 100; ++i) {
            uint32_t p = 0;
            REQUIRE(sgdx_predict_int8(c.m, d.test.pixels.data() + size_t(i) * 784, &p) == SGDX_OK);
            hits += p == d.test_labels(i);
        }
        uint32_t eval_hits = 0;
        REQUIRE(sgdx_evaluate_int8(c.m, d.test.pixels.data(), d.test_labels.data(), 100, &eval_hits) == SGDX_OK);
        CHECK(hits == eval_hits);
    }
}

TEST_CASE("int8 prediction follows the documented quantisation (odd sizes)") {
    // 7 inputs (not a multiple of 4) and 3 classes (an odd last row): the
    // prediction must be the argmax of Σ round(w/scale)·pixel · scale/255 + bias.
    const uint32_t D = 7, C = 3;
    CModel c(D, C, 4, 11);
    const std::vector<float> w = c.weight(), b = c.bias();
    sgdx::Rng rng(5);
    for (sgdx_quant_mode mode : {SGDX_QUANT_PER_TENSOR, SGDX_QUANT_PER_ROW}) {
        CAPTURE(int(mode));
        REQUIRE(sgdx_quantize(c.m, mode) == SGDX_OK);
        float scale[C];
        for (uint32_t r = 0; r < C; ++r) {
            float max = 0.f;
            for (uint32_t k = 0; k < C * D; ++k)
                if (mode == SGDX_QUANT_PER_TENSOR || k / D == r) max = std::max(max, std::fabs(w[k]));
            scale[r] = max / 127.f;
        }
        for (int trial = 0; trial < 300; ++trial) {
            uint8_t image[D];
            for (uint8_t& p : image) p = uint8_t(rng.below(256));
            float best = -1e30f;
            uint32_t expected = 0, got = 99;
            for (uint32_t r = 0; r < C; ++r) {
                int32_t acc = 0;
                for (uint32_t k = 0; k < D; ++k) acc += int32_t(std::lround(w[r * D + k] / scale[r])) * image[k];
                const float logit = float(acc) * (scale[r] / 255.f) + b[r];
                if (logit > best) best = logit, expected = r;
            }
            REQUIRE(sgdx_predict_int8(c.m, image, &got) == SGDX_OK);
            CHECK(got == expected);
        }
    }
}

TEST_CASE("the header works from C99") { CHECK(sgdx_c99_usage() == 0); }
