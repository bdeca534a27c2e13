#include "file_io.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.hpp"

#if defined(_WIN32)
#include <io.h>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace sgdx {

std::vector<uint8_t> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::vector<uint8_t> bytes;
    uint8_t chunk[1 << 16];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
    const int err = errno;
    bool failed = std::ferror(f);
    std::fclose(f);
    if (failed) throw Error(path + ": read error: " + std::strerror(err));  // e.g. "Is a directory"
    return bytes;
}

namespace {
std::string temp_path_for(const std::string& path) {
    std::string tmp = path + ".tmp";
#if !defined(_WIN32)
    tmp += "." + std::to_string(::getpid());
#endif
    return tmp;
}

// A new file at `name` for writing, or null with errno set. On POSIX it is ours
// alone (O_EXCL: never truncates a file or follows a link that has the name); one
// left there by a crashed run with the same pid is removed (unlink takes a link
// itself, not its target) and the open retried.
std::FILE* create_new(const std::string& name) {
#if defined(_WIN32)
    return std::fopen(name.c_str(), "wb");
#else
    int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno == EEXIST && ::unlink(name.c_str()) == 0) fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return nullptr;
    std::FILE* f = ::fdopen(fd, "wb");
    if (!f) ::close(fd);
    return f;
#endif
}
// Why the temporary file beside `path` could not be made, in the user's terms: the
// temp file's name is an implementation detail, the missing folder is not.
std::string why_not_writable(const std::string& path, int err) {
    if (err == ENOENT) {
        const size_t slash = path.find_last_of('/');
        const std::string folder = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
        return "the folder " + folder + " does not exist";
    }
    return std::strerror(err);
}
}  // namespace

void check_writable(const std::string& path) {
#if !defined(_WIN32)
    // lstat, not open: a FIFO would block an open, and a link is replaced by the
    // rename, not followed.
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw Error(path + ": cannot write: it is a folder");
#endif
    // The temporary file write_file_atomic will make, made and removed now.
    const std::string tmp = temp_path_for(path);
    std::FILE* f = create_new(tmp);
    if (!f) throw Error(path + ": cannot write: " + why_not_writable(path, errno));
    std::fclose(f);
    std::remove(tmp.c_str());
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
    const std::string tmp = temp_path_for(path);
    std::FILE* f = create_new(tmp);
    if (!f) throw Error(path + ": cannot write: " + why_not_writable(path, errno));
    bool ok = std::fwrite(data, 1, size, f) == size && std::fflush(f) == 0;
#if !defined(_WIN32) && !defined(__EMSCRIPTEN__)
    ok = ok && ::fsync(fileno(f)) == 0;
#endif
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        std::remove(tmp.c_str());
        throw Error(path + ": write failed: " + std::strerror(err));
    }
}

}  // namespace sgdx
