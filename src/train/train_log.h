// Per-step training records: the JSONL log in the output directory, the greppable stderr line,
// LoTA statistics (markers, offsets) and the loss-curve SVG written at the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapter/attach.h"

namespace lota::train {

/// Marker counts (+1, −1) and mean |F| over the LoTA layers' current merged weights.
struct LotaStats {
    int64_t markers_pos = 0, markers_neg = 0;
    double mean_abs_offset = 0;
};
/// Reads the statistics back (one host sync).
LotaStats lota_stats(const std::vector<adapter::AdaptedLayer>& layers);
/// The same sums still on the device, float64 [3]: #(M = +1), #(M = −1), Σ|F| (kept by each layer
/// since its last re-merge; no unpacking, no host sync). lota_stats_from turns them, read back, into
/// LotaStats.
at::Tensor lota_stats_device(const std::vector<adapter::AdaptedLayer>& layers);
LotaStats lota_stats_from(const at::Tensor& values, const std::vector<adapter::AdaptedLayer>& layers);


/// Appends one JSON line to `path` (keeps earlier lines); on resume, train_log_truncate first
/// drops records of steps after `step`.
void train_log_append(const std::string& path, const nlohmann::json& record);
void train_log_truncate(const std::string& path, int64_t step);

/// Writes an SVG line plot of the "loss" field of every record of the JSONL log at `log_path`.
void loss_curve_write(const std::string& log_path, const std::string& svg_path);

}  // namespace lota::train
