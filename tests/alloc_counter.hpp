#pragma once
// Counts every operator new in the test binary (defined in alloc_counter.cpp),
// to prove that the training step allocates nothing.
#include <atomic>
#include <cstddef>

namespace sgdx::test {
extern std::atomic<size_t> g_allocations;
}
