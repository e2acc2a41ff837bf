#include "train/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>

namespace miras {
namespace {

bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t put = ::write(fd, p, n);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return false;
        p += put;
        n -= static_cast<size_t>(put);
    }
    return true;
}

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts,
                           const std::string& what) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    // err: the errno of the step that failed (read before close() can change it).
    auto fail = [&](const std::string& step, int err, bool remove_tmp) {
        if (remove_tmp) ::unlink(tmp.c_str());
        throw std::runtime_error(what + " '" + path + "': " + step + " '" + tmp + "': " + std::strerror(err));
    };
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create the temporary file", errno, false);
    for (std::string_view p : parts) {
        if (!write_all(fd, p.data(), p.size())) {
            const int err = errno;
            ::close(fd);
            fail("write failed on", err, true);
        }
    }
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        fail("fsync failed on", err, true);
    }
    if (::close(fd) != 0) fail("close failed on", errno, true);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename over it", errno, true);
    // Persist the rename itself; a failure here cannot lose data any more.
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        ::fsync(d);
        ::close(d);
    }
}

}  // namespace miras
