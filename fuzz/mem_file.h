// An anonymous in-memory file (memfd) holding one fuzz input, for readers that take a path and
// memory-map it. No disk traffic, and nothing is left behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lota::fuzz {

class MemFile {
  public:
    /// Creates the file with `size` bytes of `data`; throws std::runtime_error if memfd fails.
    MemFile(const uint8_t* data, size_t size);
    ~MemFile();
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;

    /// "/proc/self/fd/N": opening it opens the file.
    const std::string& path() const { return path_; }

  private:
    int fd_ = -1;
    std::string path_;
};

}  // namespace lota::fuzz
