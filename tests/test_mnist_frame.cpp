// MNIST's framing of a digit (runtime/mnist_frame.hpp): what predict applies to a
// PGM and the page to a drawing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "runtime/mnist_frame.hpp"

using namespace sgdx;

namespace {
struct Moments {
    double mass = 0, cx = 0, cy = 0;
    size_t x0 = 99, y0 = 99, x1 = 0, y1 = 0;  // ink's bounding box
};
Moments moments(const std::vector<uint8_t>& f) {
    Moments m;
    for (size_t y = 0; y < kMnistSide; ++y)
        for (size_t x = 0; x < kMnistSide; ++x) {
            const double v = f[y * kMnistSide + x];
            if (v == 0) continue;
            m.mass += v, m.cx += v * (double(x) + 0.5), m.cy += v * (double(y) + 0.5);
            m.x0 = std::min(m.x0, x), m.x1 = std::max(m.x1, x), m.y0 = std::min(m.y0, y), m.y1 = std::max(m.y1, y);
        }
    m.cx /= m.mass, m.cy /= m.mass;
    return m;
}

// A filled 3x7 bar (a "1") at (x, y) of a w x h black image.
std::vector<uint8_t> bar_at(size_t w, size_t h, size_t x, size_t y) {
    std::vector<uint8_t> img(w * h, 0);
    for (size_t j = y; j < y + 7; ++j)
        for (size_t i = x; i < x + 3; ++i) img[j * w + i] = 255;
    return img;
}
}  // namespace

TEST_CASE("mnist_frame scales a small digit in a corner to 20 px and centres its mass") {
    const auto img = bar_at(28, 28, 0, 0);  // top-left corner, 3x7
    const auto f = mnist_frame(img.data(), 28, 28);
    REQUIRE(f.size() == kMnistSide * kMnistSide);
    const Moments m = moments(f);
    CHECK(m.y1 - m.y0 + 1 == kMnistBox);  // the longer side is 20 px
    CHECK(std::fabs(m.cx - 14.0) <= 0.5);
    CHECK(std::fabs(m.cy - 14.0) <= 0.5);
}

TEST_CASE("mnist_frame takes images of any size, and the same digit anywhere gives the same frame") {
    const auto a = mnist_frame(bar_at(28, 28, 0, 0).data(), 28, 28);
    const auto b = mnist_frame(bar_at(100, 60, 70, 40).data(), 100, 60);
    CHECK(a == b);
}

TEST_CASE("mnist_frame of an image without ink is all zero") {
    std::vector<uint8_t> black(50 * 30, 0);
    const auto f = mnist_frame(black.data(), 50, 30);
    CHECK(f == std::vector<uint8_t>(kMnistSide * kMnistSide, 0));
}

#if !defined(__EMSCRIPTEN__)  // the page's own code runs in node, outside the wasm test's sandbox
TEST_CASE("mnist_frame gives the page's framing (web/drawing.js) byte for byte") {
    Rng rng(11);
    const std::string input = test::temp_path("frame_input.raw");
    for (int trial = 0; trial < 12; ++trial) {
        const size_t w = 5 + rng.below(120), h = 5 + rng.below(120);
        CAPTURE(w);
        CAPTURE(h);
        std::vector<uint8_t> img = trial % 2 ? test::mostly_zero_bytes(rng, w * h) : std::vector<uint8_t>(w * h, 0);
        if (trial % 2 == 0)  // a blob with grey edges somewhere
            for (size_t y = rng.below(h / 2), n = 0; y < h && n < 1 + rng.below(h); ++y, ++n)
                for (size_t x = rng.below(w / 2), k = 0; x < w && k < 1 + rng.below(w); ++x, ++k)
                    img[y * w + x] = uint8_t(1 + rng.below(255));
        std::FILE* f = std::fopen(input.c_str(), "wb");
        REQUIRE(f);
        REQUIRE(std::fwrite(img.data(), 1, img.size(), f) == img.size());
        std::fclose(f);
        const std::string cmd = "node " + std::string(SGDX_SOURCE_DIR) + "/tests/mnist_frame.mjs " + std::to_string(w) +
                                " " + std::to_string(h) + " " + input;
        std::FILE* p = popen(cmd.c_str(), "r");
        REQUIRE(p);
        std::string text;
        char buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
        REQUIRE(pclose(p) == 0);
        std::vector<uint8_t> page;
        for (size_t at = 0; at < text.size();) {
            const size_t comma = text.find(',', at);
            page.push_back(uint8_t(std::stoi(text.substr(at, comma - at))));
            at = comma == std::string::npos ? text.size() : comma + 1;
        }
        CHECK(mnist_frame(img.data(), w, h) == page);
    }
}
#endif
