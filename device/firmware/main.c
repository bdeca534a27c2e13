/* The Cortex-M4F firmware: run_mnist.c's MNIST run, its arguments from QEMU's
 * -append over semihosting, with the heap counted to prove training takes none. */
#include "print.h"
#include <string.h>

#include "board.h"
#include "run_mnist.h"

/* Heap calls, counted through -Wl,--wrap: malloc & co. for our code, the _r
 * versions for newlib's own (stdio). */
static long g_heap_calls;
struct _reent;
void* __real_malloc(size_t n);
void* __real_calloc(size_t n, size_t size);
void* __real_realloc(void* p, size_t n);
void* __real__malloc_r(struct _reent* r, size_t n);
void* __real__calloc_r(struct _reent* r, size_t n, size_t size);
void* __real__realloc_r(struct _reent* r, void* p, size_t n);
void* __wrap_malloc(size_t n) { ++g_heap_calls; return __real_malloc(n); }
void* __wrap_calloc(size_t n, size_t size) { ++g_heap_calls; return __real_calloc(n, size); }
void* __wrap_realloc(void* p, size_t n) { ++g_heap_calls; return __real_realloc(p, n); }
void* __wrap__malloc_r(struct _reent* r, size_t n) { ++g_heap_calls; return __real__malloc_r(r, n); }
void* __wrap__calloc_r(struct _reent* r, size_t n, size_t size) { ++g_heap_calls; return __real__calloc_r(r, n, size); }
void* __wrap__realloc_r(struct _reent* r, void* p, size_t n) { ++g_heap_calls; return __real__realloc_r(r, p, n); }
extern void* _sbrk(ptrdiff_t incr);
extern char __end__[]; /* start of the heap (linker script) */

long board_heap_calls(void) { return g_heap_calls; }
long board_heap_grown(void) { return (long)((char*)_sbrk(0) - __end__); }
uint32_t board_centiseconds(void) { return (uint32_t)semihost(0x10 /* SYS_CLOCK */, NULL); }
int board_is_device(void) { return 1; }

/* QEMU gives "KERNEL ARGS..." as one line; split it in place. */
static int arguments(char** argv, int max) {
    static char line[1024];
    struct { char* buf; int len; } block = {line, (int)sizeof line - 1};
    int argc = 0;
    if (semihost(0x15 /* SYS_GET_CMDLINE */, &block) != 0) return 0;
    line[sizeof line - 1] = '\0';
    /* By hand: newlib's strtok asserts, and its assert links the whole of stdio. */
    for (char* p = line; *p && argc < max;) {
        while (*p == ' ') *p++ = '\0';
        if (!*p) break;
        argv[argc++] = p;
        while (*p && *p != ' ') ++p;
    }
    return argc;
}

int main(void) {
    char* argv[16];
    int argc = arguments(argv, 16);
    if (argc == 2 && strcmp(argv[1], "--fault") == 0)  /* ctest: a fault must end QEMU, not hang it */
        return (int)*(volatile uint32_t*)0xFFFFFFF0u;
    if (argc < 6) {
        fw_print("usage: -append \"DATA_DIR N_TRAIN N_VALID N_TEST MIN_ACCURACY [OUT] [key=value ...]\" (got %d words)\n",
               argc - 1);
        return 2;
    }
    return run_mnist(argc, argv);
}
