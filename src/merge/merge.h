// `lota merge`: the exact merge of a LoTA-QAF or QA-LoRA adapter into its quantized model (DESIGN §1
// "Merge", §3 "Merged LoTA model"). LoTA-QAF: every adapted linear becomes Q' = Q + M in the same bit
// width and packing, with the per-group offset factor F stored as <prefix>.lota_offset. QA-LoRA: the codes
// stay, and the adapter becomes the per-group offset F = s·c·(BA)ᵀ / S (quant/qalora.h), in the same
// tensor. Linears without an adapter get F = 0, so that quantize_config.json's "lota_offset": true holds
// for every linear.
// Readers that ignore lota_offset (GPTQModel, transformers) load the model without offsets.
// Verification runs the adapter model (LotaLinear, the training path) and the merged model on
// the same sample inputs, one after the other on the chosen device and compute dtype, and requires
// bit-identical logits. Nothing is written unless the adapter fits the model (and, with verify,
// unless the logits match). The LoTA-QAF merge is integer work on the CPU; QA-LoRA's F is computed on
// the verify device (on the CPU without --verify), as the adapter model computes it there.
#pragma once

#include <cstdint>
#include <string>

namespace lota::merge {

struct MergeOptions {
    std::string model;    ///< quantized model directory (GPTQ checkpoint without offsets)
    std::string adapter;  ///< LoTA-QAF or QA-LoRA adapter directory (io/adapter.h)
    std::string out;      ///< merged model directory (must not exist or be empty, unless overwrite)
    bool overwrite = false;  ///< replace an existing non-empty `out` (util/fs.h StagedDir)
    bool verify = false;  ///< compare logits of adapter and merged model bit for bit
    int64_t verify_batch = 2, verify_len = 16;  ///< sample inputs: random ids [batch, len], one padded row
    uint64_t seed = 0;    ///< for the sample inputs
    std::string device = "auto";  ///< where verify runs: auto | cpu | cuda (model/device.h)
    std::string dtype = "auto";   ///< verify's compute dtype: auto | f32 | bf16 | f16
};

struct MergeResult {
    int64_t merged_modules = 0;
    int64_t markers = 0;         ///< non-zero entries of M over all modules
    bool verified = false;       ///< verify ran and logits were bit-identical
    int64_t verified_values = 0; ///< logits compared by verify
    std::string device, dtype;   ///< where verify ran (resolved), or empty without verify
};

/// Merges and writes `options.out`; throws lota::Error (nothing written) on any mismatch.
MergeResult merge_run(const MergeOptions& options);

}  // namespace lota::merge
