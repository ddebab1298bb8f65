// A tiny random model (model_init's defaults) and its RTN 4-bit g32 checkpoint, written to two
// directories, for tests that load whole models.
#pragma once

#include <cstdint>
#include <filesystem>

#include "calibrate/gptq_driver.h"
#include "model/init.h"

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

}  // namespace lota_test
