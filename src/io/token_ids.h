// Token-id files: a JSON array of ints (one sequence) or an array of arrays (a batch).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lota::io {

/// Parses a sequence or a batch of sequences; `source` names the file in messages.
std::vector<std::vector<int64_t>> token_ids_parse(const nlohmann::json& j, const std::string& source);
/// Reads and parses a file (see token_ids_parse).
std::vector<std::vector<int64_t>> token_ids_read(const std::string& path);

}  // namespace lota::io
