// gguf_import on a tiny hand-built llama GGUF: files written, Q/K rows un-permuted exactly as
// Note [llama.cpp Q/K permutation] says, tied embeddings, and no output left behind on errors.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "../test_dirs.h"
#include "gguf_builder.h"
#include "io/gguf_import.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "util/check.h"

using lota::test::GgufBuilder;
namespace fs = std::filesystem;

namespace {

// Tiny llama: hidden 8, 2 heads of 4, 1 KV head, ffn 8, 1 layer, vocab 4. Every F32 tensor holds
// 100·(tensor index) + flat element index, so rows can be traced.
struct TinyTensor {
    std::string name;
    std::vector<int64_t> ne;  // GGUF order
};

GgufBuilder tiny_llama(const std::string& arch, bool drop_last_tensor = false) {
    std::vector<TinyTensor> ts = {
        {"token_embd.weight", {8, 4}},       {"blk.0.attn_norm.weight", {8}},   {"blk.0.attn_q.weight", {8, 8}},
        {"blk.0.attn_k.weight", {8, 4}},     {"blk.0.attn_v.weight", {8, 4}},   {"blk.0.attn_output.weight", {8, 8}},
        {"blk.0.ffn_norm.weight", {8}},      {"blk.0.ffn_gate.weight", {8, 8}}, {"blk.0.ffn_up.weight", {8, 8}},
        {"blk.0.ffn_down.weight", {8, 8}},   {"output_norm.weight", {8}},
    };
    if (drop_last_tensor) ts.pop_back();
    GgufBuilder b;
    b.header(3, ts.size(), 15);
    b.kv_str("general.architecture", arch);
    b.kv_u32(arch + ".block_count", 1);
    b.kv_u32(arch + ".context_length", 128);
    b.kv_u32(arch + ".embedding_length", 8);
    b.kv_u32(arch + ".feed_forward_length", 8);
    b.kv_u32(arch + ".attention.head_count", 2);
    b.kv_u32(arch + ".attention.head_count_kv", 1);
    b.kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
    b.kv_f32(arch + ".rope.freq_base", 10000.0f);
    b.kv_str("tokenizer.ggml.model", "gpt2");
    b.kv_strs("tokenizer.ggml.tokens", {"a", "b", "ab", "<s>"});
    b.kv_i32s("tokenizer.ggml.token_type", {1, 1, 1, 3});
    b.kv_strs("tokenizer.ggml.merges", {"a b"});
    b.kv_u32("tokenizer.ggml.bos_token_id", 3);
    b.kv_str("tokenizer.chat_template", "{{ messages }}");
    uint64_t offset = 0;
    std::vector<uint64_t> sizes;
    for (const auto& t : ts) {
        int64_t n = 1;
        for (int64_t d : t.ne) n *= d;
        b.tensor_info(t.name, t.ne, 0, offset);
        sizes.push_back(static_cast<uint64_t>(n));
        offset += (n * 4 + 31) / 32 * 32;
    }
    b.pad_to(32);
    for (size_t k = 0; k < ts.size(); ++k) {
        std::vector<float> v(sizes[k]);
        for (size_t e = 0; e < v.size(); ++e) v[e] = static_cast<float>(100 * k + e);
        b.f32s(v);
        b.pad_to(32);
    }
    return b;
}

std::string fresh_dir(const std::string& name) { return lota_test::fresh_dir("gguf_import", name).string(); }

// No OUT and no OUT.tmp-* sibling may exist after a failed import.
void expect_no_output(const std::string& out) {
    EXPECT_FALSE(fs::exists(out));
    for (const std::string& name : lota::dir_list(fs::path(out).parent_path().string()))
        EXPECT_EQ(name.rfind(fs::path(out).filename().string() + ".tmp-", 0), std::string::npos) << "leftover " << name;
}

}  // namespace

TEST(gguf_import, TinyLlamaWritesAnHfDirectory) {
    const std::string gguf = tiny_llama("llama").write("tiny_llama.gguf");
    const std::string out = fresh_dir("ok");
    lota::io::gguf_import({gguf, out, "f32"});
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                          "generation_config.json"})
        EXPECT_TRUE(fs::exists(out + "/" + f)) << f;

    const auto cfg = nlohmann::json::parse(lota::io::file_read_text(out + "/config.json"));
    EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
    EXPECT_EQ(cfg["num_key_value_heads"], 1);
    EXPECT_EQ(cfg["head_dim"], 4);
    EXPECT_EQ(cfg["tie_word_embeddings"], true);
    EXPECT_EQ(cfg["bos_token_id"], 3);
    EXPECT_EQ(cfg["torch_dtype"], "float32");
    const auto tok = nlohmann::json::parse(lota::io::file_read_text(out + "/tokenizer.json"));
    EXPECT_EQ(tok["model"]["vocab"]["ab"], 2);
    EXPECT_EQ(tok["model"]["merges"][0][1], "b");
    ASSERT_EQ(tok["added_tokens"].size(), 1u);
    EXPECT_EQ(tok["added_tokens"][0]["content"], "<s>");
    const auto tcfg = nlohmann::json::parse(lota::io::file_read_text(out + "/tokenizer_config.json"));
    EXPECT_EQ(tcfg["bos_token"], "<s>");
    EXPECT_EQ(tcfg["chat_template"], "{{ messages }}");

    lota::io::SafetensorsFile st(out + "/model.safetensors");
    EXPECT_EQ(st.entries().size(), 11u);
    EXPECT_FALSE(st.has("lm_head.weight"));
    // q_proj: HF row h·4 + a·2 + i comes from GGUF row h·4 + 2i + a (tensor index 2, 8 columns).
    at::Tensor q = st.load("model.layers.0.self_attn.q_proj.weight");
    at::Tensor k = st.load("model.layers.0.self_attn.k_proj.weight");
    for (int h = 0; h < 2; ++h)
        for (int a = 0; a < 2; ++a)
            for (int i = 0; i < 2; ++i) {
                const int hf_row = h * 4 + a * 2 + i, gguf_row = h * 4 + 2 * i + a;
                EXPECT_EQ(q[hf_row][0].item<float>(), static_cast<float>(200 + gguf_row * 8)) << hf_row;
                if (h == 0) {
                    EXPECT_EQ(k[hf_row][3].item<float>(), static_cast<float>(300 + gguf_row * 8 + 3));
                }
            }
    at::Tensor v = st.load("model.layers.0.self_attn.v_proj.weight");  // not permuted
    EXPECT_EQ(v[1][0].item<float>(), 400.0f + 8);
}

TEST(gguf_import, RejectsOtherArchitecturesAndLeavesNothing) {
    const std::string gguf = tiny_llama("qwen9").write("tiny_qwen9.gguf");
    const std::string out = fresh_dir("arch");
    try {
        lota::io::gguf_import({gguf, out, "bf16"});
        FAIL() << "accepted a qwen9 GGUF";
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("unsupported architecture qwen9"), std::string::npos) << e.what();
    }
    expect_no_output(out);
}

TEST(gguf_import, MissingTensorLeavesNoPartialOutput) {
    const std::string gguf = tiny_llama("llama", true).write("tiny_missing.gguf");
    const std::string out = fresh_dir("missing");
    try {
        lota::io::gguf_import({gguf, out, "bf16"});
        FAIL() << "accepted a GGUF without output_norm.weight";
    } catch (const lota::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'output_norm.weight' is missing"), std::string::npos) << e.what();
    }
    expect_no_output(out);
}

TEST(gguf_import, RefusesANonEmptyOutputDirectory) {
    const std::string gguf = tiny_llama("llama").write("tiny_llama2.gguf");
    const std::string out = fresh_dir("exists");
    fs::create_directories(out);
    lota::io::file_write_atomic(out + "/keep.txt", "x", 1);
    EXPECT_THROW(lota::io::gguf_import({gguf, out, "bf16"}), lota::Error);
    EXPECT_TRUE(fs::exists(out + "/keep.txt"));
}
