// Writes the committed seed corpus: a few small valid files, written by the
// runtime's own writers from real MNIST digits, and near-misses of each.
//   fuzz_make_seeds OUT_DIR MNIST_DIR     (OUT_DIR gets idx/, safetensors/, pgm/)
// scripts/fuzz.sh --seeds runs it; the output is committed, so fuzzing needs no MNIST.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "models/mnist_logistic.hpp"
#include "native/pgm.hpp"
#include "runtime/error.hpp"
#include "runtime/file_io.hpp"
#include "runtime/idx.hpp"
#include "runtime/safetensors.hpp"

using namespace sgdx;
using Bytes = std::vector<uint8_t>;

namespace {

std::string out_dir;

void put(const std::string& sub, const std::string& name, const Bytes& b) {
    std::string dir = out_dir + "/" + sub;
    ::mkdir(dir.c_str(), 0755);
    write_file_atomic(dir + "/" + name, b.data(), b.size());
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

void be32(Bytes& b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

Bytes idx(uint8_t dtype, std::vector<uint32_t> dims, const uint8_t* data, size_t n) {
    Bytes b{0, 0, dtype, uint8_t(dims.size())};
    for (uint32_t d : dims) be32(b, d);
    b.insert(b.end(), data, data + n);
    return b;
}

Bytes truncate(Bytes b, size_t drop) {
    b.resize(b.size() - drop);
    return b;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s OUT_DIR MNIST_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    const std::string mnist = argv[2];
    ::mkdir(out_dir.c_str(), 0755);

    // --- IDX: the first real digits and labels, small synthetic ones, near-misses
    IdxImages train = read_idx_images(mnist + "/train-images-idx3-ubyte");
    auto labels = read_idx_labels(mnist + "/train-labels-idx1-ubyte");
    const uint8_t* px = train.pixels.data();
    const uint32_t r = uint32_t(train.rows), c = uint32_t(train.cols);
    Bytes two = idx(8, {2, r, c}, px, 2 * r * c);
    put("idx", "mnist-images-2", two);
    put("idx", "mnist-labels-8", idx(8, {8}, labels.data(), 8));
    const uint8_t tiny[] = {0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126};
    put("idx", "images-3x1x5", idx(8, {3, 1, 5}, tiny, 15));
    put("idx", "labels-1", idx(8, {1}, tiny + 1, 1));
    put("idx", "near-truncated-images", truncate(two, 7));
    Bytes trailing = idx(8, {3}, labels.data(), 3);
    trailing.push_back(0);
    put("idx", "near-trailing-byte-labels", trailing);
    put("idx", "near-float-dtype", idx(0x0D, {1, 1, 1}, tiny, 4));
    put("idx", "near-rank-2", idx(8, {2, 2}, tiny, 4));
    put("idx", "near-zero-count", idx(8, {0, 28, 28}, tiny, 0));
    put("idx", "near-header-only", truncate(idx(8, {1, 1, 1}, tiny, 1), 7));
    put("idx", "near-absurd-size", idx(8, {0xffffffff, 0xffffffff, 0xffffffff}, tiny, 0));

    // --- PGM: a real 28x28 digit as P5 and as commented P2, a rescaled one, near-misses
    GrayImage digit{train.cols, train.rows, Bytes(px, px + r * c)};
    std::string p5h = "P5\n" + std::to_string(c) + " " + std::to_string(r) + "\n255\n";
    Bytes p5 = text(p5h);
    p5.insert(p5.end(), digit.pixels.begin(), digit.pixels.end());
    put("pgm", "mnist-digit-p5.pgm", p5);
    std::string p2 = "P2\n# MNIST training image 0\n" + std::to_string(c) + " " + std::to_string(r) + "\n255\n";
    for (size_t y = 0; y < r; ++y) {
        for (size_t x = 0; x < c; ++x) p2 += (x ? " " : "") + std::to_string(digit.pixels[y * c + x]);
        p2 += "\n";
    }
    put("pgm", "mnist-digit-p2.pgm", text(p2));
    put("pgm", "p2-maxval-15.pgm", text("P2 2 2 15  0 15 5 10\n"));
    put("pgm", "p5-maxval-3-comment.pgm", text(std::string("P5 #c\n3 1\n3\n") + '\0' + '\1' + '\3'));
    put("pgm", "near-truncated-p5.pgm", truncate(p5, 9));
    put("pgm", "near-maxval-0.pgm", text("P2 1 1 0 0"));
    put("pgm", "near-over-maxval.pgm", text("P2 1 1 10 11"));
    put("pgm", "near-p6.pgm", text("P6 1 1 255\nabc"));
    put("pgm", "near-no-space-before-data.pgm", text("P5 1 1 255"));

    // --- safetensors: models the runtime writes, and near-misses of them
    MnistLogistic tutorial(784, 10, 1), small(4, 3, 2);
    put("safetensors", "model-784x10.safetensors", encode_model(tutorial, {{"epochs", "1"}}));
    Bytes s = encode_model(small);
    put("safetensors", "model-4x3.safetensors", s);
    put("safetensors", "model-4x3-escaped-metadata.safetensors",
        encode_model(small, {{"note", "quote \" backslash \\ tab \t\x01 \xc3\xa9"}}));
    put("safetensors", "near-empty.safetensors", encode_safetensors({}));
    put("safetensors", "near-truncated.safetensors", truncate(s, 4));
    Bytes long_header = s;
    long_header[2] = 0x10;  // header length past the end of the file
    put("safetensors", "near-header-too-long.safetensors", long_header);
    Bytes f16 = s;
    std::string as_text(f16.begin(), f16.end());
    f16[as_text.find("F32") + 1] = '1';
    f16[as_text.find("F32") + 2] = '6';
    put("safetensors", "near-dtype-f16.safetensors", f16);
    SafetensorsFile wrong;  // parses, but its shapes fit neither a 784->10 nor a 4->3 model
    wrong.tensors["lin.weight"] = {{3, 5}, std::vector<float>(15, 0.5f)};
    wrong.tensors["lin.bias"] = {{3}, {1.f, 2.f, 3.f}};
    put("safetensors", "near-wrong-shape.safetensors", encode_safetensors(wrong));
    SafetensorsFile extra = parse_safetensors(s.data(), s.size(), "small");
    extra.tensors["lin.extra"] = {{1}, {0.f}};
    put("safetensors", "near-extra-tensor.safetensors", encode_safetensors(extra));
    put("safetensors", "near-offsets-gap.safetensors",
        [] {
            std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
            Bytes b(8, 0);
            b[0] = uint8_t(h.size());
            b.insert(b.end(), h.begin(), h.end());
            b.resize(b.size() + 8, 0);
            return b;
        }());
    std::puts("seeds written");
    return 0;
} catch (const Error& e) {
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
    return 1;
}
