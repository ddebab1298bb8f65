// The bounded JSON reader (util/json_read.h): documents nested up to kJsonMaxDepth parse as
// nlohmann does; deeper ones throw lota::Error naming the source; syntax errors keep nlohmann's
// exception (or a discarded value), so callers still word them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
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

// nlohmann's get<int>() casts a float such as 1e30 to int (undefined behaviour, caught by the fuzzer in a
// tokenizer's post_processor ids); json_int checks instead, accepting what converts exactly.
TEST(JsonRead, IntegersAreCheckedNotCast) {
    const nlohmann::json doc = lota::json_parse(
        R"({"i": -7, "u": 18446744073709551615, "f": 16.0, "half": 2.5, "big": 1e30, "s": "3", "n": null})", "t.json");
    EXPECT_EQ(lota::json_int(doc["i"], "i"), -7);
    EXPECT_EQ(lota::json_int(doc["f"], "f"), 16);
    EXPECT_EQ(lota::json_int(nlohmann::json(-0x1p63), "min"), INT64_MIN);
    auto message = [](const nlohmann::json& v, int64_t lo, int64_t hi) -> std::string {
        try {
            lota::json_int(v, "t.json: \"x\"", lo, hi);
        } catch (const lota::Error& e) {
            return e.what();
        }
        return "no error";
    };
    EXPECT_EQ(message(doc["big"], 0, 100), "t.json: \"x\" must be an integer in [0, 100], got 1e+30");
    EXPECT_EQ(message(doc["half"], 0, 100), "t.json: \"x\" must be an integer in [0, 100], got 2.5");
    EXPECT_EQ(message(doc["s"], 0, 100), "t.json: \"x\" must be an integer in [0, 100], got \"3\"");
    EXPECT_EQ(message(doc["i"], 0, 100), "t.json: \"x\" must be an integer in [0, 100], got -7");
    EXPECT_NE(message(doc["u"], INT64_MIN, INT64_MAX), "no error");             // beyond int64_t
    EXPECT_NE(message(nlohmann::json(0x1p63), INT64_MIN, INT64_MAX), "no error");  // 2^63 does not fit
    EXPECT_NE(message(nlohmann::json(std::nan("")), INT64_MIN, INT64_MAX), "no error");
    EXPECT_EQ(lota::json_int_or(doc, "n", 5, "n"), 5);
    EXPECT_EQ(lota::json_int_or(doc, "absent", 5, "absent"), 5);
    EXPECT_EQ(lota::json_int_or(doc, "i", 5, "i"), -7);
}
