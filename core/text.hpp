#pragma once
// Strings without the heap, for the core (core/) and the C API (device/): a span
// of bytes owned by someone else, and a message builder over a fixed buffer.
// Both are header-only and allocation-free; nothing here throws.
#include <cstddef>
#include <cstdint>
#include <cstring>

// Messages are cold: one out-of-line copy of each appender instead of one
// inlined at every call (the firmware's flash: -2.4 KB at -O2).
#if defined(__GNUC__)
#define SGDX_COLD_TEXT __attribute__((noinline, cold))
#else
#define SGDX_COLD_TEXT
#endif

namespace sgdx::core {

// `n` bytes at `p`, not NUL-terminated; p == nullptr means "absent".
struct Span {
    const char* p = nullptr;
    size_t n = 0;
    bool is(const char* lit) const { return p && std::strlen(lit) == n && std::memcmp(p, lit, n) == 0; }
    bool same(Span o) const { return n == o.n && (n == 0 || std::memcmp(p, o.p, n) == 0); }
    // Byte order, as std::string and strcmp compare (unsigned bytes).
    int compare(Span o) const {
        const int c = std::memcmp(p, o.p, n < o.n ? n : o.n);
        return c ? c : (n < o.n ? -1 : n > o.n ? 1 : 0);
    }
};

inline Span span(const char* s) { return {s, std::strlen(s)}; }

// Appends text and numbers to a fixed buffer, truncating; no allocation. The
// buffer is NUL-terminated after every append.
class Text {
public:
    Text(char* buf, size_t cap) : buf_(buf), cap_(cap) { buf_[0] = '\0'; }
    SGDX_COLD_TEXT Text& s(const char* t) {
        while (*t) put(*t++);
        return *this;
    }
    Text& c(char ch) {
        put(ch);
        return *this;
    }
    SGDX_COLD_TEXT Text& u(uint64_t v) {
        char d[20];
        int n = 0;
        do d[n++] = char('0' + v % 10), v /= 10; while (v);
        while (n) put(d[--n]);
        return *this;
    }
    // A name taken from untrusted bytes: printable ASCII only, at most 40 chars.
    SGDX_COLD_TEXT Text& name(const char* p, size_t n) {
        for (size_t i = 0; i < n && i < 40; ++i) put(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
        if (n > 40) s("...");
        return *this;
    }
    Text& name(Span sp) { return name(sp.p, sp.n); }
    // Ends a failing call: the message stays in the buffer, the code is returned.
    template <typename Code>
    Code status(Code code) const {
        return code;
    }
    // Back to its first n characters (a message's prefix kept, what followed dropped).
    void keep(size_t n) {
        if (n < len_) len_ = n, buf_[n] = '\0', overflow_ = false;
    }
    const char* str() const { return buf_; }
    size_t size() const { return len_; }
    bool overflowed() const { return overflow_; }

private:
    void put(char ch) {
        if (len_ + 1 < cap_) {
            buf_[len_++] = ch;
            buf_[len_] = '\0';
        } else {
            overflow_ = true;
        }
    }
    char* buf_;
    size_t cap_, len_ = 0;
    bool overflow_ = false;
};

}  // namespace sgdx::core
