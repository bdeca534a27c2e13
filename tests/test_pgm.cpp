#include <doctest/doctest.h>

#include "helpers.hpp"
#include "native/pgm.hpp"
#include "runtime/error.hpp"

using namespace sgdx;

static GrayImage parse(const std::string& s) {
    return parse_pgm(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "img.pgm");
}

TEST_CASE("PGM P5 and P2 with comments and rescaling") {
    GrayImage a = parse(std::string("P5\n# a comment\n2 1\n255\n") + char(0) + char(200));
    CHECK(a.width == 2);
    CHECK(a.pixels == std::vector<uint8_t>{0, 200});
    GrayImage b = parse("P2 2 2 15  0 15 5 10");
    CHECK(b.pixels == std::vector<uint8_t>{0, 255, 85, 170});
}

TEST_CASE("bad PGM files get a clear error") {
    CHECK_THROWS_WITH_AS(parse("P6 1 1 255 abc"), doctest::Contains("img.pgm: not a PGM image"), Error);
    CHECK_THROWS_WITH_AS(parse("P5 2 2 255\nab"), doctest::Contains("truncated PGM: 2 of 4"), Error);
    CHECK_THROWS_WITH_AS(parse("P5 0 2 255\n"), doctest::Contains("not usable"), Error);
    CHECK_THROWS_WITH_AS(parse("P5 2 2 65535\n"), doctest::Contains("maximum value 65535 is not supported"), Error);
    CHECK_THROWS_WITH_AS(parse("P2 1 1 10 11"), doctest::Contains("exceeds the maximum"), Error);
    CHECK_THROWS_WITH_AS(parse("P5 x"), doctest::Contains("expected the width"), Error);
}
