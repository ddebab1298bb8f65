// safetensors reader/writer and model-directory loading: round trip, and every malformed input
// named in the issue produces a lota::Error naming the file and the problem.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>

#include "../test_dirs.h"
#include "io/hf_config.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "model/init.h"
#include "model/transformer.h"
#include "util/check.h"

namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) { return lota_test::fresh_created_dir("io", name); }

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << data;
}

// Expects constructing a SafetensorsFile on `path` to throw with all `needles` in the message.
void expect_error(const std::string& path, std::vector<std::string> needles) {
    try {
        lota::io::SafetensorsFile f(path);
        FAIL() << "no error for " << path;
    } catch (const lota::Error& e) {
        std::string msg = e.what();
        for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg;
    }
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
    std::string dir = temp_dir("rt");
    std::vector<std::pair<std::string, at::Tensor>> ts = {
        {"f32", at::randn({3, 5})},
        {"bf16", at::randn({4}).to(at::kBFloat16)},
        {"f16", at::randn({2, 2}).to(at::kHalf)},
        {"i32", at::randint(-100, 100, {7}, at::kInt)},
        {"i64", at::randint(-100, 100, {2, 3}, at::kLong)},
        {"i8", at::randint(-100, 100, {9}, at::kChar)},
        {"u8", at::randint(0, 255, {9}, at::kByte)},
        {"i16", at::randint(-100, 100, {3}, at::kShort)},
        {"bool", at::randint(0, 2, {5}, at::kLong).to(at::kBool)},
        {"empty", at::empty({0, 4})},
    };
    lota::io::safetensors_write(dir + "/a.safetensors", ts, {{"format", "pt"}});
    lota::io::SafetensorsFile f(dir + "/a.safetensors");
    EXPECT_EQ(f.metadata().at("format"), "pt");
    for (const auto& [name, t] : ts) {
        at::Tensor back = f.load(name);
        EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
        EXPECT_TRUE(at::equal(back, t)) << name;
    }
    EXPECT_FALSE(fs::exists(dir + "/a.safetensors.tmp"));
}

TEST(Safetensors, TruncatedFiles) {
    std::string dir = temp_dir("trunc");
    { std::ofstream(dir + "/tiny.safetensors") << "abc"; }
    expect_error(dir + "/tiny.safetensors", {"tiny.safetensors", "truncated"});
    write_raw(dir + "/hdr.safetensors", "", "");
    {  // header length says 100 bytes, file has 10
        std::ofstream f(dir + "/hdr.safetensors", std::ios::binary);
        uint64_t n = 100;
        f.write(reinterpret_cast<const char*>(&n), 8);
        f << "{\"a\":1}   ";
    }
    expect_error(dir + "/hdr.safetensors", {"hdr.safetensors", "truncated"});
    write_raw(dir + "/data.safetensors", R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678");
    expect_error(dir + "/data.safetensors", {"data.safetensors", "'x'", "past the end"});
}

TEST(Safetensors, CorruptHeaders) {
    std::string dir = temp_dir("corrupt");
    write_raw(dir + "/json.safetensors", "{not json", "");
    expect_error(dir + "/json.safetensors", {"json.safetensors", "not valid JSON"});
    write_raw(dir + "/dtype.safetensors", R"({"x":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})", "1");
    expect_error(dir + "/dtype.safetensors", {"dtype.safetensors", "unsupported dtype 'F8_E9'"});
    write_raw(dir + "/overlap.safetensors",
              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              std::string(12, 'x'));
    expect_error(dir + "/overlap.safetensors", {"overlap.safetensors", "overlaps"});
    write_raw(dir + "/size.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
              std::string(8, 'x'));
    expect_error(dir + "/size.safetensors", {"size.safetensors", "'a'", "expected 12"});
    write_raw(dir + "/neg.safetensors", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
              std::string(4, 'x'));
    expect_error(dir + "/neg.safetensors", {"neg.safetensors", "shape"});
    {
        std::ofstream f(dir + "/huge.safetensors", std::ios::binary);
        uint64_t n = 1ull << 40;
        f.write(reinterpret_cast<const char*>(&n), 8);
    }
    expect_error(dir + "/huge.safetensors", {"huge.safetensors", "header length"});
}

TEST(Safetensors, MissingTensorAndWrongShape) {
    std::string dir = temp_dir("model");
    lota::model::InitOptions o;
    o.out = dir + "/m";
    o.seed = 3;
    lota::model::model_init(o);
    // Remove one tensor and change another's shape, then load through the model loader.
    lota::io::ModelFiles files(o.out);
    std::vector<std::pair<std::string, at::Tensor>> ts;
    for (const auto& name : files.names()) {
        if (name == "model.layers.1.mlp.up_proj.weight") continue;
        at::Tensor t = files.load(name);
        if (name == "model.layers.0.self_attn.o_proj.weight") t = t.narrow(0, 0, 32).contiguous();
        ts.emplace_back(name, t);
    }
    std::string broken = dir + "/broken";
    fs::create_directories(broken);
    fs::copy_file(o.out + "/config.json", broken + "/config.json");
    lota::io::safetensors_write(broken + "/model.safetensors", ts);
    try {
        lota::model::Transformer::load(broken, {});
        FAIL() << "no error";
    } catch (const lota::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("model.layers.0.self_attn.o_proj.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("expected [64, 64]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
    }
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& p) { return p.first == "model.layers.0.self_attn.o_proj.weight"; }),
             ts.end());
    ts.emplace_back("model.layers.0.self_attn.o_proj.weight", files.load("model.layers.0.self_attn.o_proj.weight"));
    lota::io::safetensors_write(broken + "/model.safetensors", ts);
    try {
        lota::model::Transformer::load(broken, {});
        FAIL() << "no error";
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing tensor 'model.layers.1.mlp.up_proj.weight'"), std::string::npos)
            << e.what();
    }
}

TEST(HfConfig, MalformedAndUnsupported) {
    std::string dir = temp_dir("cfg");
    { std::ofstream(dir + "/bad.json") << "{\"hidden_size\": 4,"; }
    try {
        lota::io::hf_config_read(dir + "/bad.json");
        FAIL();
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.json: malformed JSON"), std::string::npos) << e.what();
    }
    { std::ofstream(dir + "/gpt2.json") << R"({"architectures":["GPT2LMHeadModel"],"hidden_size":4})"; }
    try {
        lota::io::hf_config_read(dir + "/gpt2.json");
        FAIL();
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("unsupported architecture GPT2LMHeadModel"), std::string::npos) << e.what();
    }
    { std::ofstream(dir + "/heads.json") << R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":10})"; }
    try {
        lota::io::hf_config_read(dir + "/heads.json");
        FAIL();
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("multiple of num_key_value_heads"), std::string::npos) << e.what();
    }
}

TEST(ModelFiles, ShardedRoundTrip) {
    std::string dir = temp_dir("shard");
    std::vector<std::pair<std::string, at::Tensor>> ts;
    for (int i = 0; i < 5; ++i) ts.emplace_back("t" + std::to_string(i), at::randn({256}));
    lota::io::model_files_write(dir, ts, /*max_shard_bytes=*/2048);
    EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
    EXPECT_TRUE(fs::exists(dir + "/model-00003-of-00003.safetensors"));
    lota::io::ModelFiles files(dir);
    for (const auto& [name, t] : ts) EXPECT_TRUE(at::equal(files.load(name), t)) << name;
    fs::remove(dir + "/model-00002-of-00003.safetensors");
    EXPECT_THROW(lota::io::ModelFiles{dir}, lota::Error);
}
