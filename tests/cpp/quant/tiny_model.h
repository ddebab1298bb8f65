// A tiny random model (model_init's defaults) and its RTN 4-bit g32 checkpoint, written to two
// directories, and helpers for tests that load whole models and generate with them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <ATen/ATen.h>

#include "calibrate/gptq_driver.h"
#include "model/init.h"
#include "model/quant_linear.h"
#include "model/transformer.h"

namespace lota_test {

inline void make_tiny_model(const std::filesystem::path& base, const std::filesystem::path& rtn4, uint64_t seed) {
    lota::model::InitOptions io;
    io.out = base.string();
    io.seed = seed;
    lota::model::model_init(io);
    // Calibration text is needed only for GPTQ; the tiny model has no tokenizer, so RTN here.
    lota::calibrate::QuantizeModelOptions opts;
    opts.method = "rtn";
    opts.quant.group_size = 32;
    lota::calibrate::quantize_model(base.string(), rtn4.string(), opts);
}

/// `count` prompts of 3 to 9 random tokens below `vocab` (from the current at:: seed).
inline std::vector<std::vector<int64_t>> random_prompts(int64_t vocab, int64_t count) {
    std::vector<std::vector<int64_t>> prompts;
    for (int64_t b = 0; b < count; ++b) {
        const at::Tensor p = at::randint(0, vocab, {3 + b % 7}, at::kLong);
        prompts.emplace_back(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
    }
    return prompts;
}

}  // namespace lota_test
