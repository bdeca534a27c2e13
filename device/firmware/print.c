#include "print.h"

#include <unistd.h>

/* Where formatted characters go: a caller's buffer, or the output buffer. */
struct sink {
    char* buf;
    size_t cap, len;
    int to_output;
};

static char g_out[128];
static size_t g_out_len;

void fw_flush(void) {
    size_t done = 0;
    while (done < g_out_len) {
        const ssize_t n = write(1, g_out + done, g_out_len - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    g_out_len = 0;
}

static void put(struct sink* s, char c) {
    if (s->to_output) {
        g_out[g_out_len++] = c;
        if (c == '\n' || g_out_len == sizeof g_out) fw_flush();
    } else if (s->len + 1 < s->cap) {
        s->buf[s->len] = c;
    }
    ++s->len;
}

static void format(struct sink* s, const char* fmt, va_list ap) {
    for (; *fmt; ++fmt) {
        if (*fmt != '%') {
            put(s, *fmt);
            continue;
        }
        ++fmt;
        const char pad = *fmt == '0' ? '0' : ' ';
        unsigned width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (unsigned)(*fmt++ - '0');
        const int is_long = *fmt == 'l';
        if (is_long) ++fmt;
        char digits[24];
        unsigned n = 0;
        unsigned long v;
        int negative = 0;
        switch (*fmt) {
            case 's':
                for (const char* t = va_arg(ap, const char*); *t; ++t) put(s, *t);
                continue;
            case 'c':
                put(s, (char)va_arg(ap, int));
                continue;
            case 'd': {
                const long d = is_long ? va_arg(ap, long) : va_arg(ap, int);
                negative = d < 0;
                v = negative ? 0ul - (unsigned long)d : (unsigned long)d;
                break;
            }
            case 'u':
                v = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
                break;
            case '%':
                put(s, '%');
                continue;
            default:  /* not one of ours: shown as is, so a new format is seen at once */
                put(s, '%');
                if (!*fmt) return;
                put(s, *fmt);
                continue;
        }
        do digits[n++] = (char)('0' + v % 10), v /= 10; while (v);
        if (negative && pad == '0') put(s, '-');
        for (unsigned k = n + (unsigned)negative; k < width; ++k) put(s, pad);
        if (negative && pad != '0') put(s, '-');
        while (n) put(s, digits[--n]);
    }
}

int fw_print(const char* fmt, ...) {
    struct sink s = {0, 0, 0, 1};
    va_list ap;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
    return (int)s.len;
}

int fw_format(char* buf, size_t cap, const char* fmt, ...) {
    struct sink s = {buf, cap, 0, 0};
    va_list ap;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
    if (cap) buf[s.len < cap ? s.len : cap - 1] = '\0';
    return (int)s.len;
}
