// See mem_file.h.
#include "mem_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <stdexcept>

namespace lota::fuzz {

MemFile::MemFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("lota-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("memfd_create failed");
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd_, data + done, size - done);
        if (n <= 0) {
            close(fd_);
            throw std::runtime_error("write to memfd failed");
        }
        done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemFile::~MemFile() { close(fd_); }

}  // namespace lota::fuzz
