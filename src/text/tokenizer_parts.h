// Internal pipeline stages of the tokenizer, built from tokenizer.json: normalizers,
// pre-tokenizers, decoders and post-processors, each mirroring the HF tokenizers component of the
// same "type". Unknown types throw lota::Error naming the file and the type.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lota::text::detail {

class Normalizer {
  public:
    virtual ~Normalizer() = default;
    virtual std::string normalize(const std::string& s) const = 0;
};

/// One split of the pre-tokenized string; `at_start` when it begins at offset 0 of the original
/// input (Metaspace's prepend_scheme "first" needs it).
struct Piece {
    std::string text;
    bool at_start = false;
};

class PreTokenizer {
  public:
    virtual ~PreTokenizer() = default;
    /// Splits/transforms the pieces in place; empty pieces are dropped.
    virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
  public:
    virtual ~Decoder() = default;
    /// HF's decode_chain: token strings in, token strings out (joined by the caller).
    virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

class PostProcessor {
  public:
    virtual ~PostProcessor() = default;
    /// Adds the special tokens of a single sequence around `ids`.
    virtual void process(std::vector<int32_t>& ids) const = 0;
};

/// Deepest nesting of "Sequence" components accepted (HF's own tokenizers nest one level).
constexpr int kMaxComponentDepth = 32;

/// Each returns nullptr for a JSON null/absent component. `depth` counts the enclosing Sequence
/// components; deeper than kMaxComponentDepth throws lota::Error naming the file.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file, int depth = 0);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& file, int depth = 0);
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file, int depth = 0);
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const std::string& file, int depth = 0);
/// Throws unless a Sequence at `depth` (enclosing Sequences) is within kMaxComponentDepth.
void check_sequence_depth(int depth, const std::string& file, const char* what);

/// Shared JSON accessors for tokenizer.json components (errors name file and component).
std::string json_type(const nlohmann::json& j, const std::string& file, const char* what);
std::string json_string(const nlohmann::json& j, const char* key, const std::string& file, const char* what);
bool json_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& file, const char* what);
/// {"String": s} or {"Regex": r} → (is_regex, text).
std::pair<bool, std::string> json_pattern(const nlohmann::json& j, const std::string& file, const char* what);

/// Replaces every non-overlapping occurrence of `from` (literal) with `to`.
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);

}  // namespace lota::text::detail
