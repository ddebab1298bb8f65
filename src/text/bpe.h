// BPE model of tokenizer.json ("model": {"type": "BPE", ...}), matching HF tokenizers: merges
// applied by rank with a priority queue over a linked list of symbols (O(n log n) per word),
// continuing_subword_prefix / end_of_word_suffix, byte_fallback (<0xNN>), unk with fuse_unk,
// ignore_merges, and a bounded word cache.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace lota::text {

class Bpe {
  public:
    /// Builds the model from tokenizer.json's "model" object; `file` names it in errors.
    static std::shared_ptr<const Bpe> from_json(const nlohmann::json& model, const std::string& file);

    /// Appends the ids of one pre-tokenized word (empty words produce nothing).
    void tokenize(const std::string& word, std::vector<int32_t>& out) const;

    std::optional<int32_t> token_to_id(const std::string& token) const;
    /// nullptr when id is not in the vocabulary.
    const std::string* id_to_token(int32_t id) const;
    /// Number of vocabulary entries (HF's get_vocab_size for the model).
    size_t vocab_count() const { return vocab_.size(); }
    int32_t max_id() const { return max_id_; }

  private:
    struct MergeInfo {
        uint32_t rank;
        int32_t new_id;
    };
    void merge_word(const std::string& word, std::vector<int32_t>& out) const;
    const MergeInfo* find_merge(int32_t a, int32_t b) const;

    std::unordered_map<std::string, int32_t> vocab_;
    std::unordered_map<int32_t, std::string> vocab_r_;
    std::unordered_map<uint64_t, MergeInfo> merges_;
    std::optional<std::string> unk_token_;
    std::optional<std::string> prefix_, suffix_;
    bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
    int32_t max_id_ = -1;
    std::string file_;

    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace lota::text
