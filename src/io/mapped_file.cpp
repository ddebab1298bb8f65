// Memory-mapped files and atomic writes (POSIX).
#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/check.h"
#include "util/fs.h"

namespace lota::io {

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    LOTA_CHECK(fd >= 0, "%s: cannot open: %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        LOTA_FAIL("%s: not a regular file", path.c_str());
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        int err = errno;
        ::close(fd);
        LOTA_CHECK(p != MAP_FAILED, "%s: mmap failed: %s", path.c_str(), std::strerror(err));
        data_ = static_cast<const uint8_t*>(p);
    } else {
        ::close(fd);
    }
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
    stale_temps_remove(path);
    tmp_ = path + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    LOTA_CHECK(fd_ >= 0, "%s: cannot create: %s", tmp_.c_str(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_.c_str());
    }
}

void AtomicFile::write(const void* data, size_t size) {
    LOTA_ASSERT(fd_ >= 0, "%s: write after commit", path_.c_str());
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        LOTA_CHECK(n > 0, "%s: write failed: %s", tmp_.c_str(), std::strerror(n < 0 ? errno : ENOSPC));
        p += n;
        left -= static_cast<size_t>(n);
    }
}

void AtomicFile::commit() {
    LOTA_ASSERT(fd_ >= 0, "%s: committed twice", path_.c_str());
    // EINVAL: the file system does not support fsync (nothing to flush there).
    const bool synced = ::fsync(fd_) == 0 || errno == EINVAL;
    const int sync_err = errno;
    ::close(fd_);
    fd_ = -1;
    if (!synced) {
        ::unlink(tmp_.c_str());
        LOTA_FAIL("%s: fsync failed: %s", tmp_.c_str(), std::strerror(sync_err));
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp_.c_str());
        LOTA_FAIL("%s: rename from %s failed: %s", path_.c_str(), tmp_.c_str(), std::strerror(err));
    }
}

void file_write_atomic(const std::string& path, const void* data, size_t size) {
    AtomicFile f(path);
    f.write(data, size);
    f.commit();
}

std::string file_read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    LOTA_CHECK(in.good(), "%s: cannot open: %s", path.c_str(), std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace lota::io
