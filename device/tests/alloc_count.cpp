#include "alloc_count.hpp"

#include <atomic>
#include <cstdlib>

namespace {
std::atomic<size_t> g_count{0};
void counted() { g_count.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

namespace sgdx_test {
size_t heap_allocations() { return g_count.load(); }
}  // namespace sgdx_test

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SGDX_SANITIZER_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SGDX_SANITIZER_HOOKS 1
#endif
#endif

#ifdef SGDX_SANITIZER_HOOKS
// Sanitizers own malloc: count through their hook instead of replacing it.
// (Declared here: GCC does not install <sanitizer/allocator_interface.h>.)
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void*, size_t),
                                                         void (*)(const volatile void*));
namespace {
void on_malloc(const volatile void*, size_t) { counted(); }
void on_free(const volatile void*) {}
const int g_hooks = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace
#else
// glibc lets a program replace malloc; these forward to glibc's own allocator,
// so memory from either side can be freed by the other.
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);

void* malloc(size_t n) { counted(); return __libc_malloc(n); }
void* calloc(size_t n, size_t size) { counted(); return __libc_calloc(n, size); }
void* realloc(void* p, size_t n) { counted(); return __libc_realloc(p, n); }
void* memalign(size_t align, size_t n) { counted(); return __libc_memalign(align, n); }
void* aligned_alloc(size_t align, size_t n) { counted(); return __libc_memalign(align, n); }
int posix_memalign(void** out, size_t align, size_t n) {
    counted();
    void* p = __libc_memalign(align, n);
    if (!p) return 12;  // ENOMEM
    *out = p;
    return 0;
}
void free(void* p) { __libc_free(p); }
}
#endif
