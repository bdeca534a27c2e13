/* The firmware's output: printf's %s %c %d %ld %u %lu and %%, with a 0 flag and a
 * width, and nothing else. newlib's printf would link its whole stdio (about 5 KB
 * of flash, and a heap buffer); this writes to file descriptor 1 (semihosting's
 * stdout on the device, the terminal on a PC) with one 128-byte buffer. */
#ifndef SGDX_FIRMWARE_PRINT_H
#define SGDX_FIRMWARE_PRINT_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define SGDX_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define SGDX_PRINTF_LIKE(f, a)
#endif

/* printf into the output; flushed at each newline and by fw_flush(). */
int fw_print(const char* fmt, ...) SGDX_PRINTF_LIKE(1, 2);
/* snprintf: at most cap - 1 characters and a NUL; returns the length written. */
int fw_format(char* buf, size_t cap, const char* fmt, ...) SGDX_PRINTF_LIKE(3, 4);
void fw_flush(void);

#endif
