// Per-step training records: the JSONL log in the output directory and the loss-curve SVG written
// at the end. What a record holds is the trainer's (train/step_stats.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lota::train {

/// Appends one JSON line to `path` (keeps earlier lines); on resume, train_log_truncate first
/// drops records of steps after `step`.
void train_log_append(const std::string& path, const nlohmann::json& record);
void train_log_truncate(const std::string& path, int64_t step);

/// Writes an SVG line plot of the "loss" field of every record of the JSONL log at `log_path`.
void loss_curve_write(const std::string& log_path, const std::string& svg_path);

}  // namespace lota::train
