// firmware/print.c, the firmware's printf subset, against the C library's snprintf.
#include <doctest/doctest.h>

#include <climits>
#include <cstdio>
#include <string>

extern "C" {
#include "firmware/print.h"
}

namespace {
template <typename... A>
void same_as_snprintf(const char* fmt, A... args) {
    char ours[64], libc[64];
    const int n = fw_format(ours, sizeof ours, fmt, args...);
    const int m = std::snprintf(libc, sizeof libc, fmt, args...);
    CAPTURE(fmt);
    CHECK(std::string(ours) == std::string(libc));
    CHECK(n == m);
}
}  // namespace

TEST_CASE("fw_format writes the firmware's conversions as snprintf does") {
    same_as_snprintf("plain text, 100%% sure");
    same_as_snprintf("%s: %s", "a", "");
    same_as_snprintf("[%c]", 'x');
    for (int v : {0, 7, -7, 42, -120, INT_MAX, INT_MIN}) {
        same_as_snprintf("%d|%03d|%5d", v, v, v);
        same_as_snprintf("%u|%02u", unsigned(v), unsigned(v));
    }
    for (long v : {0L, 9L, -9L, LONG_MAX, LONG_MIN}) same_as_snprintf("%ld %04ld", v, v);
    for (unsigned long v : {0UL, 5UL, 99UL, 100UL, 12345UL, ULONG_MAX})
        same_as_snprintf("%lu.%02lu.%04lu", v, v % 100, v % 10000);
}

TEST_CASE("fw_format truncates as snprintf does and returns the full length") {
    char buf[8];
    CHECK(fw_format(buf, sizeof buf, "%s-%lu", "abcdef", 12345UL) == 12);
    CHECK(std::string(buf) == "abcdef-");
    CHECK(fw_format(buf, 1, "%d", 5) == 1);
    CHECK(buf[0] == '\0');
}
