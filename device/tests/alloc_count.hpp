#pragma once
// Counts every heap allocation in the test binary (malloc, calloc, realloc and
// everything built on them: operator new, strdup, ...), to prove that the C API
// allocates nothing after sgdx_create.
#include <cstddef>

namespace sgdx_test {
size_t heap_allocations();
}
