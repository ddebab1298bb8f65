// Bounded JSON parsing (see json_read.h): nlohmann's parser callback sees the nesting depth of
// every array and object as it opens, and throws before the value below the limit is built.
#include "util/json_read.h"

#include <cmath>

#include "util/check.h"

namespace lota {
namespace {

template <class Json>
Json parse_bounded(std::string_view text, const std::string& source, bool allow_exceptions) {
    // `depth` is the number of enclosing containers: 0 for the top-level value.
    typename Json::parser_callback_t limit = [&source](int depth, typename Json::parse_event_t event, Json&) {
        const bool opens = event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
        LOTA_CHECK(!opens || depth < kJsonMaxDepth, "%s: JSON nested deeper than %d levels", source.c_str(),
                   kJsonMaxDepth);
        return true;
    };
    return Json::parse(text.begin(), text.end(), limit, allow_exceptions);
}

}  // namespace

nlohmann::json json_parse(std::string_view text, const std::string& source, bool allow_exceptions) {
    return parse_bounded<nlohmann::json>(text, source, allow_exceptions);
}

nlohmann::ordered_json json_parse_ordered(std::string_view text, const std::string& source, bool allow_exceptions) {
    return parse_bounded<nlohmann::ordered_json>(text, source, allow_exceptions);
}

int64_t json_int(const nlohmann::json& v, const std::string& what, int64_t lo, int64_t hi) {
    bool ok = false;
    int64_t x = 0;
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        ok = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        x = ok ? static_cast<int64_t>(u) : 0;
    } else if (v.is_number_integer()) {
        ok = true;
        x = v.get<int64_t>();
    } else if (v.is_number_float()) {
        // [-2^63, 2^63) is exactly the doubles that convert to int64_t without overflow.
        const double d = v.get<double>();
        ok = std::isfinite(d) && d == std::floor(d) && d >= -0x1p63 && d < 0x1p63;
        x = ok ? static_cast<int64_t>(d) : 0;
    }
    LOTA_CHECK(ok && x >= lo && x <= hi, "%s must be an integer in [%lld, %lld], got %s", what.c_str(), (long long)lo,
               (long long)hi, v.dump().c_str());
    return x;
}

int64_t json_int_or(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& what, int64_t lo,
                    int64_t hi) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    return json_int(*it, what, lo, hi);
}

}  // namespace lota
