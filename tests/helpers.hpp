#pragma once
// Shared test helpers: random data, tolerant comparison, temp paths, real MNIST.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "runtime/rng.hpp"

namespace sgdx::test {

inline std::vector<float> random_floats(Rng& rng, size_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.uniform(lo, hi);
    return v;
}

inline std::vector<uint8_t> random_bytes(Rng& rng, size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& x : v) x = uint8_t(rng.next_u32());
    return v;
}

// Like an MNIST image: runs of zeros (1-40 long) between short nonzero runs
// (1-8 long), starting at any offset, so about 80% of the bytes are zero.
inline std::vector<uint8_t> mostly_zero_bytes(Rng& rng, size_t n) {
    std::vector<uint8_t> v(n, 0);
    size_t i = rng.below(8);
    while (i < n) {
        i += 1 + rng.below(40);
        for (size_t run = 1 + rng.below(8); run > 0 && i < n; --run, ++i) v[i] = uint8_t(1 + rng.below(255));
    }
    return v;
}

// max |a - b| / (abs_floor + |b|) over all elements.
inline double max_rel_error(const float* a, const float* b, size_t n, double abs_floor = 1.0) {
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        double e = std::fabs(double(a[i]) - double(b[i])) / (abs_floor + std::fabs(double(b[i])));
        if (!(e <= worst)) worst = e;  // NaN counts as worst
    }
    return worst;
}

// Central differences of loss() in each v[i] against analytic[i] (d loss / d v[i]):
// v[i] -> v[i] ± h, divided by the step actually taken in float.
template <class Loss>
void check_finite_differences(float* v, const float* analytic, size_t n, Loss&& loss, float h, double tolerance,
                              const std::string& what) {
    CAPTURE(what);
    for (size_t i = 0; i < n; ++i) {
        CAPTURE(i);
        const float saved = v[i];
        v[i] = saved + h;
        const float up_at = v[i];
        const double up = loss();
        v[i] = saved - h;
        const float down_at = v[i];
        const double down = loss();
        v[i] = saved;
        const double numeric = (up - down) / (double(up_at) - double(down_at));
        CHECK(analytic[i] == doctest::Approx(numeric).epsilon(tolerance).scale(1.0));
    }
}

// A folder of this process's own: ctest runs test cases as parallel processes,
// and getpid() is constant under Emscripten, so the clock makes it unique too.
inline std::string temp_path(const std::string& name) {
    static const std::string dir = [] {
        std::string root = SGDX_TEST_TMP;
        ::mkdir(root.c_str(), 0755);
        std::string d = root + "/" + std::to_string(::getpid()) + "-" +
                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
        ::mkdir(d.c_str(), 0755);
        return d;
    }();
    return dir + "/" + name;
}

inline std::string mnist_dir() { return SGDX_MNIST_DIR; }

inline bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
}

}  // namespace sgdx::test
