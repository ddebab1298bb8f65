// The bounded JSON reader (util/json_read.h): documents nested up to kJsonMaxDepth parse as
// nlohmann does; deeper ones throw lota::Error naming the source; syntax errors keep nlohmann's
// exception (or a discarded value), so callers still word them.
#include <gtest/gtest.h>

#include <string>

#include "util/check.h"
#include "util/json_read.h"

namespace {

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string parse_error(const std::string& text, const std::string& source) {
    try {
        lota::json_parse(text, source);
        ADD_FAILURE() << "no error";
    } catch (const lota::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(JsonRead, ParsesLikeNlohmannUpToTheLimit) {
    const std::string text = R"({"a": [1, 2.5, "x", null, true, {"b": {}}], "c": -3})";
    EXPECT_EQ(lota::json_parse(text, "t.json"), nlohmann::json::parse(text));
    EXPECT_EQ(lota::json_parse_ordered(text, "t.json").dump(), nlohmann::ordered_json::parse(text).dump());
    EXPECT_EQ(lota::json_parse(nested_arrays(lota::kJsonMaxDepth), "t.json"),
              nlohmann::json::parse(nested_arrays(lota::kJsonMaxDepth)));
}

TEST(JsonRead, DeeperThanTheLimitFailsNamingTheSource) {
    EXPECT_EQ(parse_error(nested_arrays(lota::kJsonMaxDepth + 1), "/m/config.json"),
              "/m/config.json: JSON nested deeper than 512 levels");
    // An unused key nested 130,000 deep in a config.json: deep enough to overflow recursive walkers.
    std::string deep;
    for (int i = 0; i < 130000; ++i) deep += R"({"k": )";
    deep += "1" + std::string(130000, '}');
    EXPECT_EQ(parse_error(R"({"hidden_size": 64, "unused": )" + deep + "}", "/m/config.json"),
              "/m/config.json: JSON nested deeper than 512 levels");
    try {
        lota::json_parse_ordered(nested_arrays(100000), "chat-template --extra", false);
        FAIL() << "no error";
    } catch (const lota::Error& e) {
        EXPECT_STREQ(e.what(), "chat-template --extra: JSON nested deeper than 512 levels");
    }
}

TEST(JsonRead, SyntaxErrorsKeepNlohmannsContract) {
    EXPECT_THROW(lota::json_parse("{\"a\": ", "t.json"), nlohmann::json::parse_error);
    EXPECT_THROW(lota::json_parse("[1e400]", "t.json"), nlohmann::json::out_of_range);  // a fuzz_config input
    EXPECT_TRUE(lota::json_parse("[1e400]", "t.json", false).is_discarded());
    EXPECT_TRUE(lota::json_parse("{\"a\": ", "t.json", false).is_discarded());
    EXPECT_TRUE(lota::json_parse_ordered("[1,", "t.json", false).is_discarded());
}
