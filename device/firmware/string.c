/* strcmp, strlen and strchr for the firmware: byte loops of a few instructions
 * each, instead of newlib's word-at-a-time versions (1,158 bytes of flash for
 * the three). Only set-up code calls them (model names, file headers, the
 * arguments): no training or inference step does. */
#include <string.h>

int strcmp(const char* a, const char* b) {
    const unsigned char* p = (const unsigned char*)a;
    const unsigned char* q = (const unsigned char*)b;
    while (*p && *p == *q) ++p, ++q;
    return (int)*p - (int)*q;
}

size_t strlen(const char* s) {
    const char* p = s;
    while (*p) ++p;
    return (size_t)(p - s);
}

char* strchr(const char* s, int c) {
    for (;; ++s) {
        if (*s == (char)c) return (char*)s;
        if (!*s) return NULL;
    }
}
