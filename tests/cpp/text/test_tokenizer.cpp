// Unit tests for the tokenizer: bad tokenizer.json files are rejected with errors naming the file
// and the unsupported thing; small exact cases (merge priority, unk fusing, added tokens, NFC,
// lossy UTF-8); the real tokenizers of $LOTA_SHARED_DIR when present. The full comparison with HF
// tokenizers lives in tests/py/test_tokenizer.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "text/tokenizer.h"
#include "text/unicode.h"
#include "util/check.h"

namespace fs = std::filesystem;
using lota::text::Tokenizer;

namespace {

// A tiny BPE: merges "b c" (rank 0), "a b" (1), "a bc" (2); unk "u" fused; added special <X>.
const char* const k_tiny = R"({"version": "1.0",
  "added_tokens": [{"id": 7, "content": "<X>", "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": false},
  "post_processor": null, "decoder": null,
  "model": {"type": "BPE", "dropout": null, "unk_token": "u", "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": false,
            "vocab": {"u": 0, "a": 1, "b": 2, "c": 3, "ab": 4, "bc": 5, "abc": 6},
            "merges": ["b c", "a b", "a bc"]}})";

fs::path temp_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("lota_test_tokenizer_" + name + "_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}

fs::path write_tokenizer(const std::string& name, const std::string& json) {
    fs::path d = temp_dir(name);
    std::ofstream(d / "tokenizer.json") << json;
    return d;
}

std::string load_error(const fs::path& dir) {
    try {
        Tokenizer::from_dir(dir.string());
    } catch (const lota::Error& e) {
        return e.what();
    }
    return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    size_t p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    return s.replace(p, from.size(), to);
}

using Ids = std::vector<int32_t>;

}  // namespace

TEST(Tokenizer, RejectsUnigramAndWordPieceModels) {
    for (const char* type : {"Unigram", "WordPiece"}) {
        fs::path d = write_tokenizer(type, replace(k_tiny, R"("type": "BPE")", std::string("\"type\": \"") + type + "\""));
        std::string err = load_error(d);
        EXPECT_NE(err.find(type), std::string::npos) << err;
        EXPECT_NE(err.find("tokenizer.json"), std::string::npos) << err;
        EXPECT_NE(err.find("only BPE"), std::string::npos) << err;
    }
}

TEST(Tokenizer, RejectsMalformedAndMissingFiles) {
    fs::path d = write_tokenizer("malformed", std::string(k_tiny).substr(0, 200));
    std::string err = load_error(d);
    EXPECT_NE(err.find((d / "tokenizer.json").string()), std::string::npos) << err;
    EXPECT_NE(err.find("malformed JSON"), std::string::npos) << err;

    std::ofstream(d / "tokenizer.json") << k_tiny;
    std::ofstream(d / "tokenizer_config.json") << "{\"bos_token\": ";
    err = load_error(d);
    EXPECT_NE(err.find("tokenizer_config.json"), std::string::npos) << err;

    err = load_error(temp_dir("missing") / "nope");
    EXPECT_NE(err.find("tokenizer.json"), std::string::npos) << err;
    EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
}

TEST(Tokenizer, RejectsUnsupportedComponents) {
    struct Case {
        const char* from;
        const char* to;
        const char* expect;
    };
    const Case cases[] = {
        {R"("normalizer": null)", R"("normalizer": {"type": "Lowercase"})", "normalizer type 'Lowercase'"},
        {R"("decoder": null)", R"("decoder": {"type": "WordPiece", "prefix": "##"})", "decoder type 'WordPiece'"},
        {R"("post_processor": null)", R"("post_processor": {"type": "Fancy"})", "post_processor type 'Fancy'"},
        {R"("type": "Split")", R"("type": "BertPreTokenizer")", "pre_tokenizer type 'BertPreTokenizer'"},
        {R"("merges": ["b c",)", R"("merges": ["b q",)", "'q', which is not in the vocab"},
        {R"("unk_token": "u")", R"("unk_token": "zz")", "unk_token 'zz'"},
    };
    for (const Case& c : cases) {
        fs::path d = write_tokenizer("unsupported", replace(k_tiny, c.from, c.to));
        std::string err = load_error(d);
        EXPECT_NE(err.find(c.expect), std::string::npos) << err;
        EXPECT_NE(err.find("tokenizer.json"), std::string::npos) << err;
    }
}

TEST(Tokenizer, TinyBpeMatchesHf) {
    // Expected ids from HF tokenizers 0.23 on the same tokenizer.json.
    Tokenizer t = Tokenizer::from_dir(write_tokenizer("tiny", k_tiny).string());
    EXPECT_EQ(t.encode("abc"), (Ids{6}));      // "b c" first, then "a bc"
    EXPECT_EQ(t.encode("aab"), (Ids{1, 4}));
    EXPECT_EQ(t.encode("abcabc"), (Ids{6, 6}));
    EXPECT_EQ(t.encode("xyzab"), (Ids{0, 4}));  // unknown run fused into one unk
    EXPECT_EQ(t.encode("a<X>bc"), (Ids{1, 7, 5}));
    EXPECT_EQ(t.encode("zz a zz"), (Ids{0, 1, 0}));
    EXPECT_EQ(t.encode(""), Ids{});
    EXPECT_EQ(t.decode({1, 7, 5}), "a <X> bc");  // no decoder: tokens joined by spaces
    EXPECT_EQ(t.decode({1, 7, 5}, true), "a bc");
    EXPECT_EQ(t.decode({1, 99, 5}), "a bc");  // unknown ids are skipped
    EXPECT_EQ(t.vocab_size(), 8);
    EXPECT_EQ(t.token_to_id("<X>"), 7);
    EXPECT_EQ(t.id_to_token(6), "abc");
    EXPECT_EQ(t.bos_id(), -1);
    EXPECT_EQ(t.chat_template(), "");
    EXPECT_THROW(t.encode("bad \xff utf8"), lota::Error);
}

TEST(Tokenizer, ConfigTokensAndChatTemplateList) {
    fs::path d = write_tokenizer("config", k_tiny);
    std::ofstream(d / "tokenizer_config.json")
        << R"({"bos_token": {"content": "<X>", "lstrip": false}, "eos_token": "abc", "add_bos_token": true,
              "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
    Tokenizer t = Tokenizer::from_dir(d.string());
    EXPECT_EQ(t.bos_token(), "<X>");
    EXPECT_EQ(t.bos_id(), 7);
    EXPECT_EQ(t.eos_id(), 6);
    EXPECT_EQ(t.chat_template(), "D");
    // No post_processor in tokenizer.json: add_bos_token from the config applies.
    EXPECT_EQ(t.encode("ab"), (Ids{7, 4}));
    EXPECT_EQ(t.encode("ab", false), (Ids{4}));
    EXPECT_EQ(t.stop_ids(), (Ids{6}));
    Tokenizer copy = t;  // copies share the loaded tokenizer
    EXPECT_EQ(copy.encode("abc", false), (Ids{6}));
}

TEST(Unicode, NfcAndLossyUtf8) {
    using namespace lota::text;
    EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                                 // e + acute -> é
    EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // Hangul L V T -> 각
    EXPECT_EQ(nfc("\xE2\x84\xA6"), "\xCE\xA9");                              // Ohm sign -> Omega (singleton)
    EXPECT_EQ(nfd("\xC3\xA9"), "e\xCC\x81");
    EXPECT_EQ(nfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");  // canonical reordering, no composite
    EXPECT_EQ(utf8_lossy("Hello \xF0\x90\x80World"), "Hello \xEF\xBF\xBDWorld");
    EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: 3 bytes
    EXPECT_EQ(utf8_lossy("a\xC3"), "a\xEF\xBF\xBD");
    EXPECT_EQ(byte_level_char(' '), "\xC4\xA0");  // 'Ġ'
    EXPECT_EQ(byte_level_byte(0x120), ' ');
}

TEST(Tokenizer, RealTokenizers) {
    const char* shared = std::getenv("LOTA_SHARED_DIR");
    fs::path root = shared ? fs::path(shared) / "tokenizers" : fs::path();
    if (!shared || !fs::exists(root / "llama2")) GTEST_SKIP() << "LOTA_SHARED_DIR/tokenizers is absent";
    // Expected ids from HF tokenizers 0.23.
    Tokenizer l2 = Tokenizer::from_dir((root / "llama2").string());
    EXPECT_EQ(l2.encode("Hello world"), (Ids{1, 22557, 1526}));
    EXPECT_EQ(l2.encode(" Hello  world", false), (Ids{28705, 22557, 28705, 1526}));
    EXPECT_EQ(l2.encode("\xE6\x97\xA5\xE6\x9C\xAC\xE1\x88\xB4 <s>x", false),
              (Ids{28705, 29142, 29119, 228, 139, 183, 28705, 1, 1318}));  // byte fallback, <s> split out
    EXPECT_EQ(l2.decode({1, 22557, 1526}), "<s> Hello world");
    EXPECT_EQ(l2.decode({1, 22557, 1526}, true), "Hello world");
    EXPECT_EQ(l2.bos_id(), 1);
    EXPECT_EQ(l2.eos_id(), 2);
    EXPECT_EQ(l2.stop_ids(), (Ids{2}));
    EXPECT_EQ(l2.vocab_size(), 32000);

    Tokenizer l3 = Tokenizer::from_dir((root / "llama3_1").string());
    EXPECT_EQ(l3.encode("I'm 12345 ok"), (Ids{128000, 40, 2846, 220, 4513, 1774, 5509}));
    EXPECT_EQ(l3.bos_id(), 128000);
    EXPECT_EQ(l3.eos_token(), "<|eot_id|>");
    EXPECT_EQ(l3.stop_ids(), (Ids{128009, 128001}));
    EXPECT_FALSE(l3.chat_template().empty());
    EXPECT_EQ(l3.vocab_size(), 128256);

    Tokenizer q3 = Tokenizer::from_dir((root / "qwen3").string());
    EXPECT_EQ(q3.encode("e\xCC\x81<|im_end|>"), (Ids{963, 151645}));  // NFC, no BOS
    EXPECT_EQ(q3.bos_id(), -1);
    EXPECT_EQ(q3.stop_ids(), (Ids{151645, 151643}));
}
