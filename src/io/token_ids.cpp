// Token-id JSON parsing (see token_ids.h).
#include "io/token_ids.h"

#include "io/mapped_file.h"
#include "util/check.h"
#include "util/json_read.h"

namespace lota::io {
namespace {

std::vector<int64_t> parse_seq(const nlohmann::json& a, const std::string& source, size_t row) {
    LOTA_CHECK(a.is_array(), "%s: row %zu is not an array of token ids", source.c_str(), row);
    std::vector<int64_t> out;
    for (size_t i = 0; i < a.size(); ++i) {
        const bool fits = !a[i].is_number_unsigned() || a[i].get<uint64_t>() <= (uint64_t)INT64_MAX;
        LOTA_CHECK(a[i].is_number_integer() && fits && a[i].get<int64_t>() >= 0,
                   "%s: row %zu, item %zu is not a non-negative 64-bit integer token id: %s", source.c_str(), row, i,
                   a[i].dump().c_str());
        out.push_back(a[i].get<int64_t>());
    }
    return out;
}

}  // namespace

std::vector<std::vector<int64_t>> token_ids_parse(const nlohmann::json& j, const std::string& source) {
    LOTA_CHECK(j.is_array() && !j.empty(), "%s: expected a non-empty JSON array of token ids (or of arrays)",
               source.c_str());
    std::vector<std::vector<int64_t>> out;
    if (j[0].is_array()) {
        for (size_t r = 0; r < j.size(); ++r) out.push_back(parse_seq(j[r], source, r));
    } else {
        out.push_back(parse_seq(j, source, 0));
    }
    for (size_t r = 0; r < out.size(); ++r) LOTA_CHECK(!out[r].empty(), "%s: row %zu is empty", source.c_str(), r);
    return out;
}

std::vector<std::vector<int64_t>> token_ids_read(const std::string& path) {
    nlohmann::json j;
    try {
        j = json_parse(file_read_text(path), path);
    } catch (const nlohmann::json::exception& e) {
        LOTA_FAIL("%s: malformed JSON: %s", path.c_str(), e.what());
    }
    return token_ids_parse(j, path);
}

}  // namespace lota::io
