// Calibration windows (see calib_data.h).
#include "calibrate/calib_data.h"

#include <random>
#include <sstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/json_read.h"
#include "util/log.h"

namespace lota::calibrate {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<std::string> calib_read_texts(const std::string& path) {
    const std::string all = io::file_read_text(path);
    if (!ends_with(path, ".jsonl")) return {all};
    std::vector<std::string> texts;
    std::istringstream in(all);
    std::string line;
    for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json j;
        try {
            j = json_parse(line, path + ":" + std::to_string(line_no));
        } catch (const nlohmann::json::exception& e) {
            LOTA_FAIL("%s:%lld: invalid JSON: %s", path.c_str(), (long long)line_no, e.what());
        }
        LOTA_CHECK(j.is_object(), "%s:%lld: expected a JSON object per line", path.c_str(), (long long)line_no);
        if (j.contains("text") && j["text"].is_string()) {
            texts.push_back(j["text"].get<std::string>());
        } else {
            // Chat records (e.g. `lota generate --data` output): the messages' contents joined.
            LOTA_CHECK(j.contains("messages") && j["messages"].is_array(),
                       "%s:%lld: expected a string \"text\" or a \"messages\" list", path.c_str(), (long long)line_no);
            std::string joined;
            for (const auto& m : j["messages"]) {
                LOTA_CHECK(m.is_object() && m.contains("content") && m["content"].is_string(),
                           "%s:%lld: every message needs a string \"content\"", path.c_str(), (long long)line_no);
                const std::string c = m["content"].get<std::string>();
                if (c.empty()) continue;
                if (!joined.empty()) joined += "\n\n";
                joined += c;
            }
            texts.push_back(joined);
        }
    }
    LOTA_CHECK(!texts.empty(), "%s: no documents", path.c_str());
    return texts;
}

at::Tensor calib_windows(const std::string& path, const text::Tokenizer& tok, int64_t n_samples, int64_t seqlen,
                         uint64_t seed) {
    LOTA_CHECK(n_samples > 0 && seqlen > 1, "calibration: need samples > 0 and seqlen > 1, got %lld and %lld",
               (long long)n_samples, (long long)seqlen);
    std::vector<int64_t> ids;
    for (const std::string& doc : calib_read_texts(path)) {
        if (!ids.empty() && tok.eos_id() >= 0) ids.push_back(tok.eos_id());
        for (int32_t t : tok.encode(doc, false)) ids.push_back(t);
    }
    const int64_t total = static_cast<int64_t>(ids.size());
    LOTA_CHECK(total >= 2, "%s: calibration text has %lld tokens, need at least 2", path.c_str(), (long long)total);
    int64_t L = seqlen;
    if (total < L) {
        LOTA_LOG_WARN("%s: calibration text too short: %lld tokens < seqlen %lld; using %lld-token windows",
                      path.c_str(), (long long)total, (long long)L, (long long)total);
        L = total;
    } else if (total < n_samples * L) {
        LOTA_LOG_WARN("%s: calibration text too short for %lld distinct windows of %lld tokens (%lld tokens); "
                      "windows will overlap",
                      path.c_str(), (long long)n_samples, (long long)L, (long long)total);
    }
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> start(0, total - L);
    at::Tensor out = at::empty({n_samples, L}, at::kLong);
    int64_t* o = out.data_ptr<int64_t>();
    for (int64_t s = 0; s < n_samples; ++s) {
        const int64_t b = start(rng);
        std::copy(ids.begin() + b, ids.begin() + b + L, o + s * L);
    }
    LOTA_LOG_INFO("calibration: %lld windows of %lld tokens from %s (%lld tokens, seed %llu)", (long long)n_samples,
                  (long long)L, path.c_str(), (long long)total, (unsigned long long)seed);
    return out;
}

}  // namespace lota::calibrate
