#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sgdx {

// Whole file into memory; throws sgdx::Error naming the path.
std::vector<uint8_t> read_file(const std::string& path);

// Throws sgdx::Error naming `path` if write_file_atomic could not write it (its
// folder is missing or read-only, or the path is a folder): checked before a long
// run, so a typo does not cost the run. Creates only a file of its own, and removes it.
void check_writable(const std::string& path);

// Writes `path` atomically: a temporary file in the same folder, flushed to disk,
// then renamed over the target. A crash leaves the old file or the new, never half.
void write_file_atomic(const std::string& path, const void* data, size_t size);

}  // namespace sgdx
