// Read-only memory map of a whole file (RAII). Used by the safetensors and GGUF readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lota::io {

class MappedFile {
  public:
    /// Maps `path` read-only; throws lota::Error naming the file if it cannot be opened.
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

/// A file written piece by piece that appears at `path` only on commit(): the bytes go to
/// `path`.tmp.PID, commit() fsyncs and renames; destroyed without commit, the temporary is removed.
class AtomicFile {
  public:
    /// Creates the temporary (after removing stale ones of `path`); throws naming it.
    explicit AtomicFile(const std::string& path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    /// Appends `size` bytes; throws naming the file when the write fails (e.g. a full disk).
    void write(const void* data, size_t size);
    /// fsync + rename to the final path.
    void commit();

  private:
    std::string path_, tmp_;
    int fd_ = -1;
};

/// Writes `size` bytes to `path` atomically (AtomicFile: temporary in the same folder, fsync, rename).
void file_write_atomic(const std::string& path, const void* data, size_t size);
/// Reads a whole (small) file into a string; throws naming the file.
std::string file_read_text(const std::string& path);

}  // namespace lota::io
