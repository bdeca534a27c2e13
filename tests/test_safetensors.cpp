#include <doctest/doctest.h>

#include <cstring>

#include "core/safetensors.hpp"
#include "helpers.hpp"
#include "models/mnist_logistic.hpp"
#include "runtime/error.hpp"
#include "runtime/file_io.hpp"
#include "runtime/safetensors.hpp"

using namespace sgdx;
using namespace sgdx::test;

TEST_CASE("a saved model has the safetensors layout PyTorch expects") {
    MnistLogistic model(784, 10, 3);
    auto bytes = encode_model(model, {{"model", "MnistLogistic"}});
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);  // little-endian host
    REQUIRE(8 + n <= bytes.size());
    std::string header(reinterpret_cast<const char*>(bytes.data() + 8), n);
    CHECK((8 + n) % 8 == 0);
    CHECK(header.find("\"lin.weight\":{\"dtype\":\"F32\",\"shape\":[10,784],\"data_offsets\":[") != std::string::npos);
    CHECK(header.find("\"lin.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,40]}") != std::string::npos);
    CHECK(header.find("\"__metadata__\":{\"format\":\"pt\",\"model\":\"MnistLogistic\"}") != std::string::npos);
    CHECK(bytes.size() == 8 + n + 4 * (7840 + 10));
    float w0;
    std::memcpy(&w0, bytes.data() + 8 + n + 40, 4);  // weight data follows bias
    CHECK(w0 == model.lin.weight.value(0, 0));
}

TEST_CASE("save then load gives the same parameters bit for bit") {
    MnistLogistic a(784, 10, 1), b(784, 10, 2);
    CHECK(a.lin.weight.value != b.lin.weight.value);
    std::string path = temp_path("model.safetensors");
    save_model(a, path);
    CHECK(!file_exists(path + ".tmp." + std::to_string(::getpid())));  // temp file renamed away
    load_model(b, read_safetensors(path), path);
    CHECK(a.lin.weight.value == b.lin.weight.value);
    CHECK(a.lin.bias.value == b.lin.bias.value);
}

TEST_CASE("corrupt or mismatched model files get a clear error and leave the model unchanged") {
    MnistLogistic a(784, 10, 1), target(784, 10, 2);
    const auto before = target.lin.weight.value;
    auto good = encode_model(a);
    auto fails = [&](std::vector<uint8_t> bytes, const char* fragment) {
        CAPTURE(fragment);
        CHECK_THROWS_WITH_AS(load_model(target, parse_safetensors(bytes.data(), bytes.size(), "m.st"), "m.st"),
                             doctest::Contains(fragment), Error);
        CHECK(target.lin.weight.value == before);
    };
    fails({1, 2, 3}, "only 3 bytes");
    auto cut = good;  // cut inside the JSON header, as `head -c 100` does
    cut.resize(100);
    fails(cut, "truncated, or not a safetensors model file: the header length says");
    auto huge = good;
    huge[6] = 0x7f;
    fails(huge, "header length");
    auto truncated = good;
    truncated.resize(good.size() - 4);
    fails(truncated, "truncated");
    auto longer = good;
    longer.push_back(0);
    fails(longer, "1 bytes after the last tensor");
    auto garbage = good;
    garbage[9] = '[';
    fails(garbage, "corrupt safetensors header");
    std::string text(good.begin(), good.end());
    auto replaced = [&](const std::string& from, const std::string& to) {
        std::string t = text;
        size_t at = t.find(from);
        REQUIRE(at != std::string::npos);
        t.replace(at, from.size(), to);
        return std::vector<uint8_t>(t.begin(), t.end());
    };
    fails(replaced("\"F32\",\"shape\":[10]", "\"F16\",\"shape\":[10]"), "dtype F16");
    fails(replaced("[10,784]", "[10,783]"), "do not match its shape");
    fails(replaced("lin.bias", "lin.bais"), "no tensor 'lin.bias'");
    MnistLogistic wide(785, 10, 1);
    auto other = encode_model(wide);
    fails(other, "has shape [10, 785], the model expects [10, 784]");
    CHECK_THROWS_WITH_AS(read_safetensors(temp_path("missing.safetensors")), doctest::Contains("cannot open"), Error);
}

TEST_CASE("every truncation of a model file is rejected, never accepted or crashed on") {
    MnistLogistic a(20, 3, 1);
    auto good = encode_model(a);
    for (size_t n = 0; n < good.size(); ++n)
        CHECK_THROWS_AS(parse_safetensors(good.data(), n, "cut"), Error);
    CHECK_NOTHROW(parse_safetensors(good.data(), good.size(), "whole"));
}

TEST_CASE("an atomic write never follows or truncates what sits at its temporary name") {
    // A stale temporary file, or a link planted at the name, must not be written
    // through: the write makes a file of its own and renames it into place.
    const std::string path = temp_path("excl.safetensors");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const std::string victim = temp_path("victim.txt");
    const std::vector<uint8_t> kept{'k', 'e', 'e', 'p'};
    write_bytes(victim, kept);
    std::remove(tmp.c_str());
    REQUIRE(::symlink(victim.c_str(), tmp.c_str()) == 0);
    MnistLogistic a(784, 10, 1), b(784, 10, 2);
    save_model(a, path);
    CHECK(read_file(victim) == kept);
    CHECK(!file_exists(tmp));
    load_model(b, read_safetensors(path), path);
    CHECK(a.lin.weight.value == b.lin.weight.value);
    std::remove(victim.c_str());
    std::remove(path.c_str());
}

TEST_CASE("I64 tensors and 0-d shapes: parsed, written and read back exactly") {
    SafetensorsFile f;
    f.metadata["format"] = "pt";
    TensorData& count = f.tensors["bn.num_batches_tracked"];
    count.dtype = DType::I64;
    count.ints = {(int64_t(1) << 53) + 1};  // no float or double holds it
    TensorData& many = f.tensors["ids"];
    many.dtype = DType::I64;
    many.shape = {2, 2};
    many.ints = {-1, 0, INT64_MAX, INT64_MIN};
    TensorData& scalar = f.tensors["scale"];  // an F32 0-d tensor
    scalar.values = {0.5f};
    auto bytes = encode_safetensors(f);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    const std::string header(reinterpret_cast<const char*>(bytes.data() + 8), n);
    CHECK(header.find("\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}") !=
          std::string::npos);
    CHECK(header.find("\"ids\":{\"dtype\":\"I64\",\"shape\":[2,2],\"data_offsets\":[8,40]}") != std::string::npos);
    CHECK(header.find("\"scale\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}") != std::string::npos);
    CHECK(bytes.size() == 8 + n + 44);
    CHECK(bytes[8 + n] == 1);  // little-endian: 2^53 + 1 starts with byte 1 ...
    CHECK(bytes[8 + n + 6] == 0x20);  // ... and has bit 53 in byte 6
    SafetensorsFile back = parse_safetensors(bytes.data(), bytes.size(), "i64.st");
    CHECK(back.tensors.at("bn.num_batches_tracked").dtype == DType::I64);
    CHECK(back.tensors.at("bn.num_batches_tracked").shape.empty());
    CHECK(back.tensors.at("bn.num_batches_tracked").ints == count.ints);
    CHECK(back.tensors.at("ids").ints == many.ints);
    CHECK(back.tensors.at("ids").values.empty());
    CHECK(back.tensors.at("scale").dtype == DType::F32);
    CHECK(back.tensors.at("scale").shape.empty());
    CHECK(back.tensors.at("scale").values == scalar.values);
    CHECK(encode_safetensors(back) == bytes);

    // The I64 data must span 8 bytes per value, and other dtypes are still refused.
    std::string text(bytes.begin(), bytes.end());
    auto parse = [&](const std::string& from, const std::string& to) {
        std::string t = text;
        const size_t at = t.find(from);
        REQUIRE(at != std::string::npos);
        t.replace(at, from.size(), to);
        return parse_safetensors(reinterpret_cast<const uint8_t*>(t.data()), t.size(), "i64.st");
    };
    CHECK_THROWS_WITH_AS(parse("\"I64\",\"shape\":[2,2]", "\"I64\",\"shape\":[2,3]"),
                         doctest::Contains("do not match its shape (48 bytes)"), Error);
    CHECK_THROWS_WITH_AS(parse("\"I64\",\"shape\":[2,2]", "\"I32\",\"shape\":[2,2]"),
                         doctest::Contains("has dtype I32; only F32 and I64 are supported"), Error);
}

TEST_CASE("a model without buffers is written as before: parameters only, all F32") {
    MnistLogistic a(20, 3, 1);
    auto bytes = encode_model(a);
    SafetensorsFile f;
    f.metadata["format"] = "pt";
    for (auto& [name, p] : a.named_parameters()) {
        TensorData& t = f.tensors[name];
        t.shape.assign(p->value.shape().begin(), p->value.shape().end());
        t.values.assign(p->value.begin(), p->value.end());
    }
    CHECK(encode_safetensors(f) == bytes);
    const std::string text(bytes.begin(), bytes.end());
    CHECK(text.find("I64") == std::string::npos);
}

// core/safetensors' walk over a header without an array of its entries (the C
// API's reader), and its check of an expected F32 tensor, against the same header.
TEST_CASE("core: Entries walks a header again, and check_names, check_data and expect_f32 over it") {
    using namespace sgdx::core;
    char header[512];
    HeaderWriter w(header, sizeof header);
    w.meta(span("architecture"), span("logistic"));
    const uint64_t weight[2] = {10, 784}, bias[1] = {10};
    w.tensor(span("lin.bias"), bias, 1, 40);
    w.tensor(span("lin.weight"), weight, 2, 4 * 7840);
    w.tensor(span("steps"), nullptr, 0, 8, "I64");
    const size_t n = w.finish();
    REQUIRE(w.fits());

    Entries entries(header, n);
    size_t count = 0;
    for (const TensorEntry* e = entries.next(); e; e = entries.next()) ++count;
    CHECK(count == 3);
    REQUIRE(entries.find("lin.weight"));
    CHECK(entries.find("lin.weight")->rank == 2);
    CHECK(entries.find("lin.weight")->begin == 40);
    CHECK(!entries.find("lin"));

    char why[200];
    Text t(why, sizeof why);
    CHECK(check_names(entries, t));
    CHECK(check_data(entries, 40 + 4 * 7840 + 8, t, Dtypes::kF32OrI64) == DataProblem::kNone);
    CHECK(check_data(entries, 40 + 4 * 7840 + 8, t) == DataProblem::kDtype);
    CHECK(std::string(why) == "tensor 'steps' has dtype I64; only F32 is supported");

    Text e(why, sizeof why);
    CHECK(expect_f32(entries, "lin.weight", weight, 2, e) == entries.find("lin.weight"));
    const uint64_t other[2] = {10, 100};
    CHECK(!expect_f32(entries, "lin.weight", other, 2, e));
    CHECK(std::string(why) == "tensor 'lin.weight' has shape [10, 784], the model expects [10, 100]");
    Text f(why, sizeof why);
    CHECK(!expect_f32(entries, "lin.bias", other + 1, 1, f, Expect::kVector));
    CHECK(std::string(why) == "tensor 'lin.bias' is not of shape [100]");
    Text g(why, sizeof why);
    CHECK(!expect_f32(entries, "steps", nullptr, 0, g));
    CHECK(std::string(why) == "tensor 'steps' has dtype I64; the C API reads it as F32");
    Text h(why, sizeof why);
    CHECK(!expect_f32(entries, "conv1.weight", weight, 2, h));
    CHECK(std::string(why) == "the weights have no tensor 'conv1.weight'");

    // The same entries as an array: the same verdicts.
    TensorEntry list[3];
    size_t k = 0;
    entries.rewind();
    for (const TensorEntry* x = entries.next(); x; x = entries.next()) list[k++] = *x;
    Text a(why, sizeof why);
    CHECK(check_data(list, 3, 40 + 4 * 7840 + 8, a, Dtypes::kF32OrI64) == DataProblem::kNone);
    CHECK(check_data(list, 3, 40 + 4 * 7840 + 16, a, Dtypes::kF32OrI64) == DataProblem::kLayout);
    CHECK(std::string(why) == "8 bytes after the last tensor (corrupt or not a safetensors file)");
}
