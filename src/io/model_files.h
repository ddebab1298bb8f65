// The tensors of an HF model directory: model.safetensors, or shards listed in
// model.safetensors.index.json ({"weight_map": {tensor name: shard file}}). Every shard named
// in the index must exist and hold the tensors the index assigns to it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "io/safetensors.h"

namespace lota::io {

class ModelFiles {
  public:
    /// Opens DIR's safetensors (single file or sharded). Throws naming the file on any problem.
    explicit ModelFiles(const std::string& dir);
    const std::string& dir() const { return dir_; }
    bool has(const std::string& name) const { return where_.count(name) != 0; }
    /// Path of the file holding `name` (for messages).
    const std::string& file_of(const std::string& name) const;
    const SafetensorsEntry& entry(const std::string& name) const;
    /// Loads tensor `name`; throws "DIR: missing tensor 'name'" when absent.
    at::Tensor load(const std::string& name) const;
    /// Loads a float tensor `name` and checks its shape ("expected ... (why)") and that its stored
    /// dtype is a float one (F32, F16, BF16, F64).
    at::Tensor load_checked(const std::string& name, const std::vector<int64_t>& shape, const std::string& why) const;
    std::vector<std::string> names() const;
    /// Total bytes of tensor data on disk.
    uint64_t data_bytes() const;

  private:
    std::string dir_;
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::map<std::string, size_t> where_;
};

/// Default shard limit of the writers below.
inline constexpr uint64_t MODEL_SHARD_BYTES_DEFAULT = 4ull << 30;

/// Writes a model's tensors into DIR as they are made, holding at most one shard in memory:
/// add() buffers tensors and writes the buffer as the next shard when the tensor to add would make
/// it exceed `max_shard_bytes` (a larger tensor is a shard of its own); finish() writes the last
/// one. One shard in all becomes model.safetensors, several become model-0000i-of-0000n.safetensors
/// plus model.safetensors.index.json (shards are written under a temporary name until n is known,
/// then renamed). Each file is atomic; a writer destroyed before finish() leaves the temporary
/// shards behind, so write into a StagedDir (util/fs.h).
class ModelFilesWriter {
  public:
    explicit ModelFilesWriter(std::string dir, uint64_t max_shard_bytes = MODEL_SHARD_BYTES_DEFAULT);
    /// Adds tensor `name` (any device; copied to the CPU when buffered). Throws on a duplicate name.
    void add(const std::string& name, const at::Tensor& t);
    /// Writes the last shard, renames the shards and writes the index.
    void finish();
    /// Bytes of tensor data added so far.
    uint64_t bytes_added() const { return total_; }

  private:
    void flush();
    std::string dir_;
    uint64_t max_shard_bytes_;
    std::vector<std::pair<std::string, at::Tensor>> buffer_;
    uint64_t buffered_ = 0, total_ = 0;
    std::vector<std::vector<std::string>> shard_names_;  ///< tensor names of each written shard
    std::map<std::string, bool> seen_;
    bool finished_ = false;
};

/// Writes tensors into DIR as model.safetensors, or as model-0000i-of-0000n.safetensors shards
/// plus model.safetensors.index.json when they exceed `max_shard_bytes` (ModelFilesWriter).
void model_files_write(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       uint64_t max_shard_bytes = MODEL_SHARD_BYTES_DEFAULT);

/// The files besides config.json and the weights that travel with a model: generation_config.json
/// and the tokenizer in every form transformers writes (tokenizer.json, tokenizer_config.json,
/// special_tokens_map.json, added_tokens.json, chat_template.jinja, sentencepiece's tokenizer.model,
/// the slow BPE tokenizer's vocab.json and merges.txt).
const std::vector<std::string>& model_text_file_names();

/// Copies every file of model_text_file_names() that `from_dir` holds into `to_dir` (replacing
/// files of the same name); returns the names copied. Throws naming both paths.
std::vector<std::string> model_text_files_copy(const std::string& from_dir, const std::string& to_dir);

}  // namespace lota::io
