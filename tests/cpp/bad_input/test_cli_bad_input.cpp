// Deeply nested and oversized user inputs through the CLI, each of which a recursive parser or an
// unchecked allocation would answer with a stack overflow or unbounded memory: `lota` exits 1 with
// a one-line message naming the file or flag and the limit.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../test_dirs.h"

namespace fs = std::filesystem;

namespace {

struct CliResult {
    int exit_code = -1;
    std::string err;
};

// Runs `lota ARGS < stdin_file` through the shell and captures stderr.
CliResult run_lota(const fs::path& dir, const std::string& args, const std::string& stdin_text = "[]") {
    const fs::path in = dir / "stdin.txt", err = dir / "stderr.txt";
    std::ofstream(in) << stdin_text;
    const std::string cmd = std::string("'") + LOTA_BIN + "' " + args + " < '" + in.string() + "' > /dev/null 2> '" +
                            err.string() + "'";
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::stringstream ss;
    ss << std::ifstream(err).rdbuf();
    r.err = ss.str();
    return r;
}

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

class CliBadInput : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = lota_test::fresh_dir("bad_input", ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { lota::remove_tree(dir_.string()); }
    fs::path write(const std::string& name, const std::string& text) {
        fs::create_directories((dir_ / name).parent_path());
        std::ofstream(dir_ / name) << text;
        return dir_ / name;
    }
    fs::path dir_;
};

#define EXPECT_FAILS_WITH(run, needle)                                          \
    do {                                                                        \
        const CliResult r_ = (run);                                                   \
        EXPECT_EQ(r_.exit_code, 1) << r_.err;                                   \
        EXPECT_NE(r_.err.find(needle), std::string::npos) << r_.err;            \
        EXPECT_EQ(r_.err.find("lota: error: "), 0u) << r_.err;                  \
    } while (0)

}  // namespace

TEST_F(CliBadInput, ChatTemplateExtraNestedDeep) {
    const fs::path t = write("t.jinja", "{{ messages|length }}");
    EXPECT_FAILS_WITH(run_lota(dir_, "chat-template --template '" + t.string() + "' --extra '" +
                                         nested_arrays(1000) + "'"),
                      "chat-template --extra: JSON nested deeper than 512 levels");
    EXPECT_FAILS_WITH(run_lota(dir_, "chat-template --template '" + t.string() + "'", nested_arrays(100000)),
                      "chat-template: stdin: JSON nested deeper than 512 levels");
}

TEST_F(CliBadInput, ConfigWithAnUnusedKeyNestedDeep) {
    std::string deep;
    for (int i = 0; i < 130000; ++i) deep += R"({"k": )";
    deep += "1" + std::string(130000, '}');
    const fs::path cfg = write("model/config.json", R"({"model_type": "llama", "unused": )" + deep + "}");
    EXPECT_FAILS_WITH(run_lota(dir_, "inspect --model '" + cfg.parent_path().string() + "'"),
                      cfg.string() + ": JSON nested deeper than 512 levels");
}

TEST_F(CliBadInput, ConfigWithANonStringModelType) {
    // A fuzz_config input: must not surface as nlohmann's type_error (exit 2, no file named).
    const fs::path cfg = write("model/config.json", R"({"model_type": 128, "hidden_size": 64})");
    EXPECT_FAILS_WITH(run_lota(dir_, "inspect --model '" + cfg.parent_path().string() + "'"),
                      cfg.string() + ": key 'model_type' must be a string, got 128");
}

TEST_F(CliBadInput, TokenizerSequenceNestedDeep) {
    std::string seq;
    for (int i = 0; i < 40000; ++i) seq += R"({"type": "Sequence", "pretokenizers": [)";
    seq += R"({"type": "ByteLevel"})" + repeat("]}", 40000);
    write("tok/tokenizer.json", R"({"pre_tokenizer": )" + seq +
                                    R"(, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
    EXPECT_FAILS_WITH(run_lota(dir_, "tokenize --tokenizer '" + (dir_ / "tok").string() + "'", "a"),
                      "tokenizer.json: JSON nested deeper than 512 levels");
}

TEST_F(CliBadInput, ChatTemplateNestedDeep) {
    const fs::path parens = write("parens.jinja", "{{ " + repeat("(", 6000) + "1" + repeat(")", 6000) + " }}");
    EXPECT_FAILS_WITH(run_lota(dir_, "chat-template --template '" + parens.string() + "'"),
                      "chat template: template nested deeper than 200 levels at line 1");
    const fs::path ifs = write("ifs.jinja", repeat("{% if true %}", 11000) + "x" + repeat("{% endif %}", 11000));
    EXPECT_FAILS_WITH(run_lota(dir_, "chat-template --template '" + ifs.string() + "'"),
                      "template nested deeper than 200 levels");
}

TEST_F(CliBadInput, ChatTemplateUnboundedString) {
    const fs::path t = write("big.jinja", "{{ ('x' * 1000000) * 1000000 }}");
    EXPECT_FAILS_WITH(run_lota(dir_, "chat-template --template '" + t.string() + "'"),
                      "chat template: string of 1000000000000 bytes exceeds the 64 MiB limit at line 1");
}
