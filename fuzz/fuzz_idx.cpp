// libFuzzer target: the IDX reader, images and labels, from memory and from a file.
#include <unistd.h>

#include <cstdlib>

#include "checks.hpp"

namespace {
// Memory-backed /dev/shm where there is one: a disk file per input costs ~6x the executions.
std::string scratch_path() {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
    std::string path = dir + "/sgdx-fuzz-idx-" + std::to_string(::getpid());
    static std::string keep = path;
    std::atexit([] { std::remove(keep.c_str()); });
    return path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string scratch = scratch_path();
    sgdx::fuzz::check_idx(data, size, scratch);
    return 0;
}
