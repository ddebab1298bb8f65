// GGUF reader, versions 2 and 3 (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// Layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count × { string key | u32 value_type | value }
//   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (u32, default 32) | tensor data
// string = u64 length + UTF-8 bytes (no NUL); array value = u32 elem_type | u64 count | count values.
// Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array, 10 u64,
// 11 i64, 12 f64. ne[0] is the fastest-moving dimension (torch shape is ne reversed); each tensor's
// offset is relative to the data start and a multiple of the alignment.
//
// The whole file is memory-mapped; every count, length and offset is checked against the file
// size before anything is allocated, and errors name the file, the byte offset and what was
// expected. Version 1 (32-bit counts) and big-endian files are rejected.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "io/gguf_dequant.h"

namespace lota::io {

enum class GgufValueType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};

/// "uint32", "array[string]" ... for messages.
std::string gguf_value_type_name(GgufValueType type);

/// One metadata value. Integers keep their exact value in `u`/`i` (whichever the type's sign is),
/// floats in `f`; arrays keep their elements in `array` (all of type `elem_type`).
struct GgufValue {
    GgufValueType type = GgufValueType::UINT8;
    GgufValueType elem_type = GgufValueType::UINT8;  ///< arrays only
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    std::string str;
    std::vector<GgufValue> array;

    bool is_integer() const;
    bool is_float() const { return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
};

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne;  ///< GGUF dims, fastest first
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;      ///< relative to the data section
    uint64_t n_bytes = 0;
    int64_t n_elements = 0;
    /// Torch shape (ne reversed): rows first.
    std::vector<int64_t> shape() const;
};

class MappedFile;

/// One memory-mapped GGUF file. The constructor validates the whole header and every tensor
/// extent; throws lota::Error naming the file and offset on any inconsistency.
class GgufFile {
  public:
    explicit GgufFile(const std::string& path);
    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }

    /// Metadata in file order.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
    bool has(const std::string& key) const { return index_.count(key) != 0; }
    /// nullptr when absent.
    const GgufValue* find(const std::string& key) const;
    /// Typed getters: throw naming the file and key when absent or of another type.
    const std::string& get_string(const std::string& key) const;
    uint64_t get_uint(const std::string& key) const;  ///< any non-negative integer type
    double get_float(const std::string& key) const;   ///< f32 or f64
    bool get_bool(const std::string& key) const;
    /// An array of `elem` values (e.g. tokenizer.ggml.tokens as strings).
    const std::vector<GgufValue>& get_array(const std::string& key, GgufValueType elem) const;

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    /// nullptr when absent.
    const GgufTensorInfo* find_tensor(const std::string& name) const;
    /// Raw bytes of a tensor (inside the mapping; valid while this object lives).
    const uint8_t* tensor_data(const GgufTensorInfo& t) const;
    /// Dequantizes tensor `name` into a new float32 CPU tensor of t.shape(); throws when absent.
    at::Tensor load_f32(const std::string& name) const;

  private:
    std::string path_;
    std::unique_ptr<MappedFile> file_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> metadata_;
    std::map<std::string, size_t> index_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t> tensor_index_;
};

}  // namespace lota::io
