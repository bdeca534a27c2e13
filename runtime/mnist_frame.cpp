#include "mnist_frame.hpp"

#include <algorithm>
#include <cmath>

namespace sgdx {

namespace {
// JavaScript's Math.round (halves towards +infinity), so the page and the CLI agree.
long js_round(double x) { return long(std::floor(x + 0.5)); }
}  // namespace

std::vector<uint8_t> mnist_frame(const uint8_t* grey, size_t width, size_t height) {
    std::vector<uint8_t> out(kMnistSide * kMnistSide, 0);
    size_t x0 = width, y0 = height, x1 = 0, y1 = 0;
    bool ink = false;
    for (size_t y = 0; y < height; ++y)
        for (size_t x = 0; x < width; ++x)
            if (grey[y * width + x] > 0) {
                ink = true;
                x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
            }
    if (!ink) return out;
    const long bw = long(x1 - x0 + 1), bh = long(y1 - y0 + 1);
    const double scale = double(kMnistBox) / double(std::max(bw, bh));  // target pixels per source pixel
    const long tw = std::max(1L, js_round(double(bw) * scale)), th = std::max(1L, js_round(double(bh) * scale));
    // Each target pixel is the mean of the source pixels it covers (at least one, so
    // a digit smaller than 20 px is enlarged without holes).
    auto span = [scale](long t, long n, long& lo, long& hi) {
        lo = std::min(n - 1, long(std::floor(double(t) / scale)));
        hi = std::max(lo + 1, std::min(n, long(std::ceil(double(t + 1) / scale))));
    };
    std::vector<float> small(size_t(tw * th));
    for (long ty = 0; ty < th; ++ty) {
        long sy0, sy1;
        span(ty, bh, sy0, sy1);
        for (long tx = 0; tx < tw; ++tx) {
            long sx0, sx1;
            span(tx, bw, sx0, sx1);
            double sum = 0;
            for (long y = sy0; y < sy1; ++y)
                for (long x = sx0; x < sx1; ++x) sum += grey[(y0 + size_t(y)) * width + x0 + size_t(x)];
            small[size_t(ty * tw + tx)] = float(sum / double((sy1 - sy0) * (sx1 - sx0)));
        }
    }
    double mass = 0, mx = 0, my = 0;
    for (long y = 0; y < th; ++y)
        for (long x = 0; x < tw; ++x) {
            const double v = small[size_t(y * tw + x)];
            mass += v;
            mx += v * (double(x) + 0.5);
            my += v * (double(y) + 0.5);
        }
    // Shift so the centre of mass lands on the frame's centre (14, 14).
    const long side = long(kMnistSide);
    const long ox = js_round(double(side) / 2 - mx / mass), oy = js_round(double(side) / 2 - my / mass);
    for (long y = 0; y < th; ++y)
        for (long x = 0; x < tw; ++x) {
            const long X = x + ox, Y = y + oy;
            if (X >= 0 && X < side && Y >= 0 && Y < side)
                out[size_t(Y * side + X)] = uint8_t(js_round(std::min(255.0, double(small[size_t(y * tw + x)]))));
        }
    return out;
}

}  // namespace sgdx
