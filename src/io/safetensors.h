// safetensors reader and writer (https://github.com/huggingface/safetensors, "Format").
//
// Layout: [u64 little-endian N][N bytes of UTF-8 JSON header][data buffer]. The header maps
// tensor name -> {"dtype": "F32"|..., "shape": [..], "data_offsets": [begin, end]} (offsets
// relative to the data buffer) plus an optional "__metadata__" string->string map. The data
// buffer must be fully covered by the tensors, without overlaps or holes.
//
// The reader memory-maps the file and validates every field against the file size before
// touching data; tensors are copied out into owned CPU tensors. The writer writes to a
// temporary name and renames, so a killed process never leaves a valid-looking partial file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lota::io {

struct SafetensorsEntry {
    std::string name;
    std::string dtype;  ///< safetensors dtype string, e.g. "BF16"
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  ///< byte offsets into the data buffer
};

class MappedFile;

/// One memory-mapped .safetensors file. Throws lota::Error naming the file on any inconsistency.
class SafetensorsFile {
  public:
    explicit SafetensorsFile(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return path_; }
    const std::vector<SafetensorsEntry>& entries() const { return entries_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    bool has(const std::string& name) const { return index_.count(name) != 0; }
    const SafetensorsEntry& entry(const std::string& name) const;
    /// Copies tensor `name` into an owned, contiguous CPU tensor of its stored dtype.
    at::Tensor load(const std::string& name) const;

  private:
    std::string path_;
    std::unique_ptr<MappedFile> file_;
    uint64_t data_start_ = 0;
    std::vector<SafetensorsEntry> entries_;
    std::map<std::string, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

/// Writes tensors (any device; copied to CPU contiguous) atomically: `path`.tmp then rename.
void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// safetensors dtype string <-> ATen scalar type; throws for unsupported types.
at::ScalarType safetensors_dtype_to_scalar(const std::string& dtype, const std::string& context);
std::string safetensors_dtype_from_scalar(at::ScalarType t);

}  // namespace lota::io
