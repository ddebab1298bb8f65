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
// "gptq" (or "gptq_v2": qzeros hold Z exactly); other keys are kept as they are. For 3-bit v1
// files lota records how Z − 1 is packed ("qzeros_3bit": "per_field" or "whole_word", note
// [qzeros v1 and v2] in quant/pack.h); files that do not say are classified by their producer
// (meta.quantizer) and, where that is not enough, by their data (quant/gptq_tensors.h).
// lota writes meta.quantizer = ["gptqmodel:7.0.0", "lota:<version>"]: GPTQModel loads an
// asymmetric v1 file only when meta.quantizer names gptqmodel >= 0.9.0, and the entry states the
// conventions the file follows (those of GPTQModel 7.0.0 and later: 2/4/8-bit zeros whole word,
// 3-bit per field); transformers loads GPTQ through GPTQModel and makes the same check.
// This file only reads, validates and writes tensors as stored; turning them into codes and
// exact zero points is quant/gptq_tensors.h.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "io/model_files.h"

namespace lota::io {

/// How a v1 ("gptq") file packs 3-bit zero points (note [qzeros v1 and v2] in quant/pack.h).
enum class Qzeros3Bit {
    UNSTATED,    ///< the file does not say; decided per linear from the data (quant/gptq_tensors.h)
    PER_FIELD,   ///< (Z − 1) mod 8 per field: AutoGPTQ, GPTQModel >= 7.0.0, lota now
    WHOLE_WORD,  ///< word constants mod 2^32: lota's files that carry meta.quantizer ["lota"] only
};

/// Oldest GPTQModel whose v1 conventions lota's files follow (recorded in meta.quantizer).
inline constexpr const char* GPTQMODEL_CONVENTIONS_VERSION = "7.0.0";

struct GptqConfig {
    int bits = 4;
    int group_size = 128;  ///< −1 = per output channel
    bool desc_act = false;
    bool sym = false;
    std::string checkpoint_format = "gptq";  ///< "gptq" (v1) or "gptq_v2"
    bool lota_offset = false;                ///< every linear carries P.lota_offset
    Qzeros3Bit qzeros_3bit = Qzeros3Bit::PER_FIELD;  ///< v1 3-bit zero packing (what writers use)
    nlohmann::json extra = nlohmann::json::object();  ///< other quantize_config keys, preserved
};

/// Parses and validates a quantize_config object (`file` names its origin in errors): bits must
/// be 2/3/4/8, group_size −1 or positive, quant_method "gptq", checkpoint_format known. The 3-bit
/// zero packing comes from "qzeros_3bit", else from meta.quantizer: ["lota"] alone (lota's files
/// before the key existed) → WHOLE_WORD, gptqmodel >= 7.0.0 → PER_FIELD, gptqmodel older than that
/// (word constants lota does not read) → error for a 3-bit v1 file, anything else → UNSTATED.
GptqConfig gptq_config_from_json(const nlohmann::json& j, const std::string& file);
/// The quantize_config object for `c`: its keys, "qzeros_3bit" for a 3-bit v1 file, and
/// meta.quantizer = ["gptqmodel:7.0.0", "lota:<version>", other producers already listed].
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

/// One linear's tensors under their checkpoint names (PREFIX.qweight, .qzeros, .scales, .g_idx, then
/// .bias and .lota_offset when defined): what gptq_checkpoint_write and streaming writers store.
std::vector<std::pair<std::string, at::Tensor>> gptq_linear_named_tensors(const std::string& prefix,
                                                                          const GptqLinearTensors& t);

/// Writes quantize_config.json (gptq_config_to_json(quant)) and config.json (`config` with that
/// object as "quantization_config") into `dir`, each atomically.
void gptq_config_files_write(const std::string& dir, const nlohmann::json& config, const GptqConfig& quant);

/// Writes `ckpt`'s model.safetensors, quantize_config.json and config.json into directory `dir`
/// (created when missing; files of the same names are replaced). Callers that need the directory
/// to appear whole or not at all write into a StagedDir (util/fs.h).
void gptq_checkpoint_write(const std::string& dir, const GptqCheckpoint& ckpt);

}  // namespace lota::io
