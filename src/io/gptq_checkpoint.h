// GPTQ checkpoint directories as GPTQModel/AutoGPTQ write them (DESIGN §3; format "gptq" = v1).
//
// A Hugging Face model directory: config.json (with "quantization_config"), quantize_config.json,
// model.safetensors (or shards + model.safetensors.index.json), tokenizer files. Per quantized
// linear with prefix P (e.g. "model.layers.0.self_attn.q_proj"), K = in, N = out, b bits,
// g group size (−1: per channel, G = 1, else G = K/g):
//   P.qweight  int32 [K*b/32, N]   codes packed along K (bit stream, kernels/dequant_formula.h)
//   P.qzeros   int32 [G, N*b/32]   zero points packed along N; v1 stores Z − 1 by whole-word
//                                  arithmetic (note [qzeros v1 and v2] in quant/pack.h)
//   P.scales   fp16  [G, N]
//   P.g_idx    int32 [K]           group of input k (k/g unless desc_act)
//   P.bias     [N]                 optional
//   P.lota_offset float32 [G, N]   optional, lota's extension: LoTA offset factor F of a merged
//                                  model, W = S·(Q − Z + F). quantize_config.json then says
//                                  "lota_offset": true. Readers that ignore it (GPTQModel,
//                                  transformers) load the model without the offsets.
// quantize_config.json: bits, group_size, desc_act, sym, quant_method "gptq", checkpoint_format
// "gptq" (or "gptq_v2": qzeros hold Z exactly); other keys are kept as they are.
// This file only reads, validates and writes tensors as stored; turning them into codes and
// exact zero points is quant/gptq_tensors.h.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "io/model_files.h"

namespace lota::io {

struct GptqConfig {
    int bits = 4;
    int group_size = 128;  ///< −1 = per output channel
    bool desc_act = false;
    bool sym = false;
    std::string checkpoint_format = "gptq";  ///< "gptq" (v1) or "gptq_v2"
    bool lota_offset = false;                ///< every linear carries P.lota_offset
    nlohmann::json extra = nlohmann::json::object();  ///< other quantize_config keys, preserved
};

/// Parses and validates a quantize_config object (`file` names its origin in errors): bits must
/// be 2/3/4/8, group_size −1 or positive, quant_method "gptq", checkpoint_format known.
GptqConfig gptq_config_from_json(const nlohmann::json& j, const std::string& file);
nlohmann::json gptq_config_to_json(const GptqConfig& c);

/// The quantization config of model directory `dir`: quantize_config.json, else config.json's
/// "quantization_config"; nullopt when it has neither (a 16/32-bit model). Throws on a bad config.
std::optional<GptqConfig> gptq_config_read(const std::string& dir);

/// One quantized linear's tensors as stored in the file.
struct GptqLinearTensors {
    at::Tensor qweight, qzeros, scales, g_idx, bias, lota_offset;
};

struct GptqCheckpoint {
    nlohmann::json config = nlohmann::json::object();  ///< config.json (quantization_config is rewritten on write)
    GptqConfig quant;
    std::map<std::string, GptqLinearTensors> linears;  ///< by module prefix
    std::map<std::string, at::Tensor> tensors;         ///< every other tensor (embeddings, norms, lm_head...)
};

/// Reads the quantized linear `prefix` ("model.layers.3.mlp.up_proj") from `files` and validates
/// it against `c` and in/out (−1: taken from the tensors): shapes, dtypes, g_idx range, and
/// lota_offset present exactly when the config says so. A missing g_idx (AutoGPTQ files without
/// act-order) becomes k / group_size. Errors name the file, the tensor, its shape and the expected
/// shape with in/out/bits/group size. The one reader of a GPTQ linear (model loading and merging).
GptqLinearTensors gptq_linear_read(const ModelFiles& files, const std::string& prefix, const GptqConfig& c,
                                   int64_t in_features = -1, int64_t out_features = -1);

/// True when `dir` holds a GPTQ checkpoint (quantize_config.json, or config.json with a
/// quantization_config whose quant_method is "gptq").
bool gptq_checkpoint_detect(const std::string& dir);

/// Reads a whole checkpoint directory: every `*.qweight` prefix through gptq_linear_read, every
/// other tensor as stored.
GptqCheckpoint gptq_checkpoint_read(const std::string& dir);

/// Writes `ckpt`'s model.safetensors, quantize_config.json and config.json into directory `dir`
/// (created when missing; files of the same names are replaced). Callers that need the directory
/// to appear whole or not at all write into a StagedDir (util/fs.h).
void gptq_checkpoint_write(const std::string& dir, const GptqCheckpoint& ckpt);

}  // namespace lota::io
