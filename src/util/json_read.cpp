// Bounded JSON parsing (see json_read.h): nlohmann's parser callback sees the nesting depth of
// every array and object as it opens, and throws before the value below the limit is built.
#include "util/json_read.h"

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

}  // namespace lota
