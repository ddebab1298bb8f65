// Every GGUF metadata key and tensor name lota reads, and the HF names they map to: the one table
// (see STYLE.md "External names live in one table"). Spec: ggml docs/gguf.md "Standardized
// key-value pairs" and llama.cpp's tensor naming (blk.N.attn_q.weight ...).
//
// Architecture-specific keys are written "{arch}.xxx": gguf_key_for() puts general.architecture
// in place of "{arch}". Layer tensors are prefix + N + "." + suffix on both sides.
#pragma once

#include <string>

namespace lota::io::gguf_names {

// General.
inline constexpr const char* ARCHITECTURE = "general.architecture";
inline constexpr const char* ALIGNMENT = "general.alignment";
inline constexpr const char* NAME = "general.name";

// Hyper-parameters ({arch} = general.architecture).
inline constexpr const char* BLOCK_COUNT = "{arch}.block_count";
inline constexpr const char* CONTEXT_LENGTH = "{arch}.context_length";
inline constexpr const char* EMBEDDING_LENGTH = "{arch}.embedding_length";
inline constexpr const char* FEED_FORWARD_LENGTH = "{arch}.feed_forward_length";
inline constexpr const char* HEAD_COUNT = "{arch}.attention.head_count";
inline constexpr const char* HEAD_COUNT_KV = "{arch}.attention.head_count_kv";
inline constexpr const char* KEY_LENGTH = "{arch}.attention.key_length";
inline constexpr const char* VALUE_LENGTH = "{arch}.attention.value_length";
inline constexpr const char* RMS_EPS = "{arch}.attention.layer_norm_rms_epsilon";
inline constexpr const char* ROPE_FREQ_BASE = "{arch}.rope.freq_base";
inline constexpr const char* ROPE_DIMENSION_COUNT = "{arch}.rope.dimension_count";
inline constexpr const char* ROPE_SCALING_TYPE = "{arch}.rope.scaling.type";
inline constexpr const char* ROPE_SCALING_FACTOR = "{arch}.rope.scaling.factor";
inline constexpr const char* VOCAB_SIZE = "{arch}.vocab_size";

// Tokenizer.
inline constexpr const char* TOK_MODEL = "tokenizer.ggml.model";
inline constexpr const char* TOK_PRE = "tokenizer.ggml.pre";
inline constexpr const char* TOK_TOKENS = "tokenizer.ggml.tokens";
inline constexpr const char* TOK_TOKEN_TYPE = "tokenizer.ggml.token_type";
inline constexpr const char* TOK_MERGES = "tokenizer.ggml.merges";
inline constexpr const char* TOK_BOS_ID = "tokenizer.ggml.bos_token_id";
inline constexpr const char* TOK_EOS_ID = "tokenizer.ggml.eos_token_id";
inline constexpr const char* TOK_UNK_ID = "tokenizer.ggml.unknown_token_id";
inline constexpr const char* TOK_PAD_ID = "tokenizer.ggml.padding_token_id";
inline constexpr const char* TOK_ADD_BOS = "tokenizer.ggml.add_bos_token";
inline constexpr const char* TOK_ADD_EOS = "tokenizer.ggml.add_eos_token";
inline constexpr const char* TOK_CHAT_TEMPLATE = "tokenizer.chat_template";
inline constexpr const char* TOK_SCORES = "tokenizer.ggml.scores";
inline constexpr const char* TOK_SEP_ID = "tokenizer.ggml.seperator_token_id";  // gguf's spelling
inline constexpr const char* TOK_MASK_ID = "tokenizer.ggml.mask_token_id";
inline constexpr const char* TOK_ADD_SEP = "tokenizer.ggml.add_sep_token";
inline constexpr const char* TOK_ADD_SPACE_PREFIX = "tokenizer.ggml.add_space_prefix";

// Values of tokenizer.ggml.model / token_type that lota understands.
inline constexpr const char* TOK_MODEL_GPT2 = "gpt2";  ///< byte-level BPE
inline constexpr const char* TOK_MODEL_LLAMA = "llama";  ///< SentencePiece-style: ▁ for spaces, <0xXX> byte tokens
inline constexpr int TOKEN_TYPE_NORMAL = 1;
inline constexpr int TOKEN_TYPE_CONTROL = 3;
inline constexpr int TOKEN_TYPE_USER_DEFINED = 4;
inline constexpr int TOKEN_TYPE_UNUSED = 5;
inline constexpr int TOKEN_TYPE_BYTE = 6;

// Architectures `lota import` converts, and their HF class.
inline constexpr const char* ARCH_LLAMA = "llama";
inline constexpr const char* HF_LLAMA_CLASS = "LlamaForCausalLM";
inline constexpr const char* HF_LLAMA_MODEL_TYPE = "llama";

/// How a tensor's rows are reordered on import (Note [llama.cpp Q/K permutation] in gguf_import.cpp).
enum class Permute { NONE, Q_HEADS, K_HEADS };

/// A tensor dimension in terms of the model's hyper-parameters (ONE: the tensor is 1-D).
enum class Dim { ONE, EMBD, FF, Q, KV, VOCAB };

struct TensorName {
    const char* gguf;
    const char* hf;
    Permute permute;
    Dim rows, cols;  ///< HF (torch) shape: [rows] when cols is ONE, else [rows, cols]
};

// Whole-model tensors. OUTPUT is absent when the embeddings are tied.
inline constexpr TensorName TOKEN_EMBD = {"token_embd.weight", "model.embed_tokens.weight", Permute::NONE, Dim::VOCAB, Dim::EMBD};
inline constexpr TensorName OUTPUT_NORM = {"output_norm.weight", "model.norm.weight", Permute::NONE, Dim::EMBD, Dim::ONE};
inline constexpr TensorName OUTPUT = {"output.weight", "lm_head.weight", Permute::NONE, Dim::VOCAB, Dim::EMBD};
/// Llama 3.1 rope scaling factors: HF has no tensor for them (rope_scaling in config.json).
inline constexpr const char* ROPE_FREQS = "rope_freqs.weight";

// Per-layer tensors: "blk.N.<gguf>" -> "model.layers.N.<hf>".
inline constexpr const char* GGUF_LAYER_PREFIX = "blk.";
inline constexpr const char* HF_LAYER_PREFIX = "model.layers.";
inline constexpr TensorName LLAMA_LAYER[] = {
    {"attn_norm.weight", "input_layernorm.weight", Permute::NONE, Dim::EMBD, Dim::ONE},
    {"attn_q.weight", "self_attn.q_proj.weight", Permute::Q_HEADS, Dim::Q, Dim::EMBD},
    {"attn_k.weight", "self_attn.k_proj.weight", Permute::K_HEADS, Dim::KV, Dim::EMBD},
    {"attn_v.weight", "self_attn.v_proj.weight", Permute::NONE, Dim::KV, Dim::EMBD},
    {"attn_output.weight", "self_attn.o_proj.weight", Permute::NONE, Dim::EMBD, Dim::Q},
    {"ffn_norm.weight", "post_attention_layernorm.weight", Permute::NONE, Dim::EMBD, Dim::ONE},
    {"ffn_gate.weight", "mlp.gate_proj.weight", Permute::NONE, Dim::FF, Dim::EMBD},
    {"ffn_up.weight", "mlp.up_proj.weight", Permute::NONE, Dim::FF, Dim::EMBD},
    {"ffn_down.weight", "mlp.down_proj.weight", Permute::NONE, Dim::EMBD, Dim::FF},
};

/// Pre-tokenizer split regexes by tokenizer.ggml.pre, the ones transformers' GGUF loader uses
/// (integrations/gguf/gguf_tokenizer_mapping.py). A pre type missing here gets GPT-2's ByteLevel
/// regex, as in transformers.
struct PreSplit {
    const char* pre;
    const char* regex;
};
inline constexpr const char* SPLIT_LLAMA3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* SPLIT_QWEN2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* SPLIT_QWEN35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* SPLIT_TEKKEN =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* SPLIT_GPT4O =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr PreSplit PRE_SPLITS[] = {
    {"llama3", SPLIT_LLAMA3},      {"llama-v3", SPLIT_LLAMA3},     {"llama-bpe", SPLIT_LLAMA3},
    {"falcon3", SPLIT_LLAMA3},     {"falcon-h1", SPLIT_LLAMA3},    {"pixtral", SPLIT_LLAMA3},
    {"midm-2.0", SPLIT_LLAMA3},    {"lfm2", SPLIT_LLAMA3},         {"jina-v5-nano", SPLIT_LLAMA3},
    {"dbrx", SPLIT_LLAMA3},        {"smaug-bpe", SPLIT_LLAMA3},    {"tekken", SPLIT_TEKKEN},
    {"qwen2", SPLIT_QWEN2},        {"deepseek-r1-qwen", SPLIT_QWEN2}, {"kormo", SPLIT_QWEN2},
    {"f2llmv2", SPLIT_QWEN2},      {"megrez", SPLIT_QWEN2},        {"qwen35", SPLIT_QWEN35},
    {"gpt-4o", SPLIT_GPT4O},       {"llama4", SPLIT_GPT4O},        {"kanana2", SPLIT_GPT4O},
    {"talkie", SPLIT_GPT4O},       {"minimax-m2", SPLIT_GPT4O},
};

/// The tokenizer.ggml.pre that llama.cpp's converter (convert_hf_to_gguf's get_vocab_base_pre) writes for a
/// byte-level BPE tokenizer whose pre-tokenizer is Split(regex, Isolated) + ByteLevel(use_regex false),
/// by regex; `lota export` looks its tokenizer.json up here. PRE_GPT2: ByteLevel(use_regex true) alone;
/// PRE_SMOLLM: Digits(individual_digits) then ByteLevel(use_regex true).
inline constexpr PreSplit PRE_EXPORT[] = {
    {"llama-bpe", SPLIT_LLAMA3}, {"qwen2", SPLIT_QWEN2}, {"qwen35", SPLIT_QWEN35},
    {"tekken", SPLIT_TEKKEN},    {"gpt-4o", SPLIT_GPT4O},
};
inline constexpr const char* PRE_GPT2 = "gpt-2";
inline constexpr const char* PRE_SMOLLM = "smollm";

/// `key` with "{arch}" replaced by `arch` ("{arch}.block_count" -> "llama.block_count").
inline std::string key_for(const char* key, const std::string& arch) {
    std::string k = key;
    const std::string placeholder = "{arch}";
    const size_t at = k.find(placeholder);
    if (at != std::string::npos) k.replace(at, placeholder.size(), arch);
    return k;
}

}  // namespace lota::io::gguf_names
