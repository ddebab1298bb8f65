// tokenizer.json nesting limits: a Sequence pre-tokenizer (or normalizer, decoder, post-processor)
// nested ~40,000 deep would overflow the stack of a recursive component parser; the JSON reader
// stops it at 512 levels and the component parser at kMaxComponentDepth Sequences, naming the file.
#include <gtest/gtest.h>

#include <string>

#include "text/tokenizer.h"
#include "text/tokenizer_parts.h"
#include "util/check.h"

namespace {

using lota::text::Tokenizer;

// A minimal BPE tokenizer.json whose `key` component is `component`.
std::string tokenizer_json(const std::string& key, const std::string& component) {
    return R"({"normalizer": null, "pre_tokenizer": null, "decoder": null, "post_processor": null, ")" + key +
           R"(": )" + component +
           R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})";
}

// `leaf` wrapped in `depth` Sequence components whose list key is `list_key`.
std::string nested_sequence(const std::string& list_key, const std::string& leaf, int depth) {
    std::string open, close;
    for (int i = 0; i < depth; ++i) {
        open += R"({"type": "Sequence", ")" + list_key + R"(": [)";
        close += "]}";
    }
    return open + leaf + close;
}

std::string load_error(const std::string& json) {
    try {
        Tokenizer::from_json_text(json, "", "/models/bad");
        ADD_FAILURE() << "no error";
    } catch (const lota::Error& e) {
        return e.what();
    }
    return "";
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(TokenizerLimits, SequenceNested40000DeepFailsAtTheJsonReader) {
    const std::string seq = nested_sequence("pretokenizers", R"({"type": "ByteLevel"})", 40000);
    EXPECT_HAS(load_error(tokenizer_json("pre_tokenizer", seq)),
               "/models/bad/tokenizer.json: JSON nested deeper than 512 levels");
}

TEST(TokenizerLimits, SequenceDeeperThanTheComponentLimitFails) {
    const int depth = lota::text::detail::kMaxComponentDepth + 1;
    const struct {
        const char* key;
        const char* list_key;
        const char* leaf;
        const char* what;
    } cases[] = {
        {"pre_tokenizer", "pretokenizers", R"({"type": "ByteLevel"})", "pre_tokenizer"},
        {"normalizer", "normalizers", R"({"type": "NFC"})", "normalizer"},
        {"decoder", "decoders", R"({"type": "Fuse"})", "decoder"},
        {"post_processor", "processors", R"({"type": "ByteLevel"})", "post_processor"},
    };
    for (const auto& c : cases) {
        EXPECT_HAS(load_error(tokenizer_json(c.key, nested_sequence(c.list_key, c.leaf, depth))),
                   std::string("/models/bad/tokenizer.json: ") + c.what + " Sequence nested deeper than 32 levels");
        // At the limit itself the tokenizer loads and works.
        Tokenizer tok = Tokenizer::from_json_text(tokenizer_json(c.key, nested_sequence(c.list_key, c.leaf, depth - 1)),
                                                  "", "/models/ok");
        EXPECT_EQ(tok.decode(tok.encode("ab", false)), "ab") << c.key;
    }
}

TEST(TokenizerLimits, DeepTokenizerConfigFails) {
    const std::string deep = std::string(600, '[') + std::string(600, ']');
    try {
        Tokenizer::from_json_text(tokenizer_json("pre_tokenizer", "null"), R"({"x": )" + deep + "}", "/models/bad");
        FAIL() << "no error";
    } catch (const lota::Error& e) {
        EXPECT_HAS(std::string(e.what()), "/models/bad/tokenizer_config.json: JSON nested deeper than 512 levels");
    }
}

}  // namespace

// Token ids and decoder counts that are not int32 integers (a float beyond int's range was a plain cast in the JSON
// library: undefined behaviour found by the fuzzer) fail naming the file and the token.
TEST(TokenizerLimits, NumbersThatAreNotInt32IntegersFail) {
    const std::string tmpl = R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "ab"}},
        {"Sequence": {"id": "A"}}], "special_tokens": {"ab": {"id": "ab", "ids": [IDS], "tokens": ["ab"]}}})";
    auto with_ids = [&](const std::string& ids) {
        std::string t = tmpl;
        return tokenizer_json("post_processor", t.replace(t.find("IDS"), 3, ids));
    };
    EXPECT_NO_THROW(Tokenizer::from_json_text(with_ids("2"), "", "/models/ok"));
    for (const char* bad : {"1e30", "2.5", "-1", "4294967296"})
        EXPECT_HAS(load_error(with_ids(bad)),
                   "/models/bad/tokenizer.json: TemplateProcessing special token 'ab': an id must be an integer in "
                   "[0, 2147483647], got ");
    const std::string added = R"([{"id": 1e30, "content": "<s>", "special": true}])";
    EXPECT_HAS(load_error(tokenizer_json("added_tokens", added)),
               "/models/bad/tokenizer.json: the id of added token '<s>' must be an integer in [0, 2147483647], "
               "got 1e+30");
    EXPECT_HAS(load_error(tokenizer_json("decoder", R"({"type": "Strip", "content": " ", "start": 5.5e24})")),
               "/models/bad/tokenizer.json: Strip decoder \"start\" must be an integer in [0, 2147483647], got ");
}
