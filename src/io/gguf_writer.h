// GGUF writer, version 3: the layout gguf.h reads (header, metadata, tensor infos, aligned data),
// little-endian, alignment 32 (general.alignment is not written; 32 is the default). Tensors are
// given as raw bytes of their ggml type; q4_1_blocks makes Q4_1 rows from integer codes so that
// a GPTQ group of 32·k codes with scale S, zero Z and LoTA offset F is written as k blocks with
// d = S and m = S·(F − Z), the codes unchanged (y = d·q + m = S·(q − Z + F)).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "io/gguf.h"

namespace lota::io {

class GgufWriter {
  public:
    /// Metadata, written in the order set (a key set twice keeps its first place, the last value).
    void set_string(const std::string& key, const std::string& v);
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_f32(const std::string& key, float v);
    void set_bool(const std::string& key, bool v);
    void set_strings(const std::string& key, const std::vector<std::string>& v);
    void set_i32s(const std::string& key, const std::vector<int32_t>& v);
    void set_f32s(const std::string& key, const std::vector<float>& v);

    /// A tensor of torch shape `shape` (rows first; GGUF stores ne = shape reversed) whose bytes are
    /// `data` in ggml type `type`; the byte count is checked against the type's block size.
    void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape,
                    std::vector<uint8_t> data);

    /// Writes the file to `path` through a temporary sibling renamed at the end, so a failure leaves
    /// nothing behind. Throws naming the path.
    void write(const std::string& path) const;

  private:
    struct Tensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> shape;
        std::vector<uint8_t> data;
    };
    void set(const std::string& key, GgufValue v);
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<Tensor> tensors_;
};

/// Q4_1 bytes of a [R, C] matrix: `codes` integer [R, C] with values in [0, 15], `d` and `m` float16
/// [R, C/32] (one per block of 32 along C). Throws when C is not a multiple of 32 or a code is out
/// of range.
std::vector<uint8_t> q4_1_blocks(const at::Tensor& codes, const at::Tensor& d, const at::Tensor& m);

/// The raw little-endian bytes of a contiguous CPU tensor (F32, F16, BF16 rows as ggml stores them).
std::vector<uint8_t> tensor_bytes(const at::Tensor& t);

}  // namespace lota::io
