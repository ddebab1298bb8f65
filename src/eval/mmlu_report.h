// MMLU results as text and JSON for the CLI: a per-subject table, then the four categories and
// the average in the layout of the LoTA-QAF paper's Table 1 (Hums., STEM, Social, Other, Avg.).
// Building strings only; the caller prints.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "eval/mmlu.h"

namespace lota::eval {

/// Every number of the result, per-question log-likelihoods included.
nlohmann::json mmlu_result_json(const MmluResult& r);
/// The human-readable table (accuracies in percent).
std::string mmlu_result_table(const MmluResult& r);

}  // namespace lota::eval
