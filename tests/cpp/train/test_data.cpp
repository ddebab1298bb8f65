// Fine-tuning data (data/examples.h, data/readers.h): CSV parsing, labels only on the answer,
// truncation, deterministic order that a position restores, right padding.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "../test_dirs.h"
#include "model/prompt.h"
#include "data/examples.h"
#include "util/check.h"

namespace {

namespace fs = std::filesystem;

std::string shared_dir() {
    const char* s = std::getenv("LOTA_SHARED_DIR");
    return s ? s : std::string(LOTA_SOURCE_DIR) + "/../shared";
}

TEST(train_data, csv_parse_handles_quotes_and_newlines) {
    const auto rows = lota::data::csv_parse("mr,ref\r\n\"a(b[x, y])\",\"He said \"\"hi\"\"\nthen\"\nc,d", "t.csv");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[1][0], "a(b[x, y])");
    EXPECT_EQ(rows[1][1], "He said \"hi\"\nthen");
    EXPECT_EQ(rows[2][1], "d");
    EXPECT_THROW(lota::data::csv_parse("a,\"b", "t.csv"), lota::Error);
}

TEST(train_data, order_is_deterministic_and_resumable) {
    lota::data::DataOrder a(10, 7), b(10, 7), c(10, 8);
    const auto first = a.take(25);
    EXPECT_EQ(first, b.take(25));
    EXPECT_NE(first, c.take(25));
    // Each epoch is a permutation.
    std::vector<int64_t> e0(first.begin(), first.begin() + 10);
    std::sort(e0.begin(), e0.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(e0[i], i);
    // Seeking restores the rest of the order.
    lota::data::DataOrder d(10, 7);
    d.seek(13);
    const auto rest = d.take(12);
    EXPECT_EQ(std::vector<int64_t>(first.begin() + 13, first.end()), std::vector<int64_t>(rest.begin(), rest.begin() + 12));
}

TEST(train_data, collate_pads_right_and_labels_only_targets) {
    lota::data::Example a{{5, 6, 7, 8}, 2}, b{{9, 10, 11}, 1};
    const auto batch = lota::data::batch_collate({&a, &b});
    EXPECT_TRUE(at::equal(batch.ids, at::tensor({5, 6, 7, 8, 9, 10, 11, 0}, at::kLong).reshape({2, 4})));
    EXPECT_TRUE(at::equal(batch.mask, at::tensor({1, 1, 1, 1, 1, 1, 1, 0}, at::kLong).reshape({2, 4})));
    EXPECT_TRUE(at::equal(batch.labels, at::tensor({-100, -100, 7, 8, -100, 10, 11, -100}, at::kLong).reshape({2, 4})));
    EXPECT_EQ(batch.n_label_tokens, 4);
}

class train_data_tok : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!fs::exists(shared_dir() + "/tokenizers/llama3_1/tokenizer.json"))
            GTEST_SKIP() << shared_dir() << "/tokenizers is absent (shared test inputs not available)";
    }
};

TEST_F(train_data_tok, chat_template_labels_are_the_answer) {
    const lota::model::PromptText text(shared_dir() + "/tokenizers/llama3_1");
    lota::data::TextPair p;
    p.prompt = nlohmann::json::array({{{"role", "system"}, {"content", ""}}, {{"role", "user"}, {"content", "2+2?"}}});
    p.target = "The answer is 4.";
    lota::data::DataOptions o;
    const auto e = lota::data::example_make(p, text, o);
    const std::vector<int32_t> tgt(e.ids.begin() + e.n_source, e.ids.end());
    const std::string s = text.tokenizer().decode(tgt, false);
    EXPECT_EQ(s.rfind("The answer is 4.", 0), 0u) << s;  // the answer, then the end-of-turn token
    const std::vector<int32_t> src(e.ids.begin(), e.ids.begin() + e.n_source);
    EXPECT_NE(text.tokenizer().decode(src, false).find("2+2?"), std::string::npos);
    o.target_max_len = 2;
    o.source_max_len = 5;
    const auto t = lota::data::example_make(p, text, o);
    EXPECT_EQ(t.n_source, 5);
    EXPECT_EQ(t.ids.size(), 7u);
}

TEST_F(train_data_tok, plain_prompt_without_template_and_formats) {
    const std::string dir = lota_test::fresh_created_dir("data", "formats");
    const lota::model::PromptText text(shared_dir() + "/tokenizers/llama2");
    ASSERT_TRUE(text.tokenizer().chat_template().empty());
    {
        std::ofstream(dir + "/a.json") << R"([{"instruction": "Say hi", "input": "", "output": "hi"},
                                             {"instruction": "Add", "input": "1 2", "output": "3"}])";
        std::ofstream(dir + "/g.jsonl") << "{\"question\": \"q1\", \"answer\": \"a1\"}\n\n{\"question\": \"q2\", \"answer\": \"a2\"}\n";
        std::ofstream(dir + "/v.csv") << "mr,ref\n\"inform(name[X])\",X is a game.\n";
        std::ofstream(dir + "/bad.jsonl") << "{\"question\": \"q1\"}\n";
    }
    lota::data::DataOptions o;
    o.path = dir + "/a.json";
    o.format = "alpaca";
    auto ex = lota::data::data_load(o, text);
    ASSERT_EQ(ex.size(), 2u);
    const std::vector<int32_t> src(ex[1].ids.begin(), ex[1].ids.begin() + ex[1].n_source);
    EXPECT_NE(text.tokenizer().decode(src, true).find("### Instruction:\nAdd\n\n1 2\n\n### Response:"), std::string::npos);
    EXPECT_EQ(ex[1].ids.back(), text.tokenizer().eos_id());
    o.path = dir + "/g.jsonl";
    o.format = "gsm8k";
    EXPECT_EQ(lota::data::data_load(o, text).size(), 2u);
    o.path = dir + "/v.csv";
    o.format = "viggo";
    ex = lota::data::data_load(o, text);
    ASSERT_EQ(ex.size(), 1u);
    const std::vector<int32_t> tgt(ex[0].ids.begin() + ex[0].n_source, ex[0].ids.end());
    EXPECT_EQ(text.tokenizer().decode(tgt, true), "inform(name[X])");
    o.path = dir + "/bad.jsonl";
    o.format = "gsm8k";
    try {
        lota::data::data_load(o, text);
        ADD_FAILURE() << "expected an error";
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing field \"answer\""), std::string::npos) << e.what();
    }
    lota::remove_tree(dir);
}

}  // namespace
