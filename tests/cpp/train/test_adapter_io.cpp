// Adapter directories (io/adapter.h): round trip, and every malformed or mismatching adapter is
// rejected with a message naming the problem.
#include <filesystem>
#include <fstream>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../test_dirs.h"
#include "../test_error.h"
#include "io/adapter.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "util/check.h"

using lota_test::error_of;

namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) { return lota_test::fresh_created_dir("adapter", name); }

lota::io::Adapter make_adapter(int64_t r = 4) {
    lota::io::Adapter a;
    a.config.method = lota::io::AdapterMethod::LOTA;
    a.config.r = r;
    a.config.omega = 3;
    a.config.bits = 4;
    a.config.group_size = 32;
    a.config.target_modules = {"q_proj"};
    a.modules["model.layers.0.self_attn.q_proj"] = {at::randint(-1, 2, {r, 64}, at::kChar),
                                                    at::randint(-1, 2, {48, r}, at::kChar)};
    return a;
}

std::vector<lota::io::AdapterTarget> targets() {
    return {{"model.layers.0.self_attn.q_proj", 64, 48}, {"model.layers.0.self_attn.k_proj", 64, 16}};
}

TEST(train_adapter_io, round_trip_is_exact) {
    const std::string dir = temp_dir("rt");
    const auto a = make_adapter();
    lota::io::adapter_write(dir, a);
    const auto b = lota::io::adapter_read(dir);
    EXPECT_EQ(b.config.method, lota::io::AdapterMethod::LOTA);
    EXPECT_EQ(b.config.r, 4);
    EXPECT_EQ(b.config.omega, 3);
    EXPECT_EQ(b.config.bits, 4);
    ASSERT_EQ(b.modules.size(), 1u);
    const auto& m = b.modules.at("model.layers.0.self_attn.q_proj");
    EXPECT_TRUE(at::equal(m.lora_a, a.modules.at("model.layers.0.self_attn.q_proj").lora_a));
    EXPECT_TRUE(at::equal(m.lora_b, a.modules.at("model.layers.0.self_attn.q_proj").lora_b));
    EXPECT_EQ(m.lora_a.scalar_type(), at::kChar);
    EXPECT_EQ(error_of([&] { lota::io::adapter_check(b, targets(), 4, 32, dir); }), "");
    lota::remove_tree(dir);
}

TEST(train_adapter_io, lora_adapter_has_no_lota_block) {
    auto a = make_adapter();
    a.config.method = lota::io::AdapterMethod::LORA;
    const auto j = lota::io::adapter_config_to_json(a.config);
    EXPECT_FALSE(j.contains("lota"));
    EXPECT_EQ(j["peft_type"], "LORA");
    EXPECT_EQ(j["task_type"], "CAUSAL_LM");
    EXPECT_EQ(lota::io::adapter_config_from_json(j, "x").method, lota::io::AdapterMethod::LORA);
}

TEST(train_adapter_io, method_names_parse_and_print) {
    using lota::io::AdapterMethod;
    for (const AdapterMethod m : {AdapterMethod::LOTA, AdapterMethod::LORA, AdapterMethod::QALORA})
        EXPECT_EQ(lota::io::adapter_method_parse(lota::io::adapter_method_name(m), "test"), m);
    EXPECT_STREQ(lota::io::adapter_method_name(AdapterMethod::LOTA), "lota");
    EXPECT_STREQ(lota::io::adapter_method_name(AdapterMethod::LORA), "lora");
    EXPECT_STREQ(lota::io::adapter_method_name(AdapterMethod::QALORA), "qalora");
    const std::string e = error_of([] { lota::io::adapter_method_parse("qlora", "--method"); });
    EXPECT_NE(e.find("--method: unknown adapter method 'qlora' (expected one of: lota, lora, qalora)"),
              std::string::npos)
        << e;
    EXPECT_NE(error_of([] { lota::io::adapter_method_parse("LoTA", "--method"); }), "");  // names are exact
}

TEST(train_adapter_io, rejects_mismatches) {
    const std::string dir = temp_dir("bad");
    // Shape mismatch against the model.
    auto a = make_adapter();
    a.modules["model.layers.0.self_attn.q_proj"].lora_b = at::zeros({40, 4}, at::kChar);
    std::string e = error_of([&] { lota::io::adapter_check(a, targets(), 4, 32, dir); });
    EXPECT_NE(e.find("lora_B.weight' has shape [40, 4], expected [48, 4]"), std::string::npos) << e;
    // Module the model lacks.
    a = make_adapter();
    a.modules["model.layers.9.self_attn.q_proj"] = a.modules["model.layers.0.self_attn.q_proj"];
    e = error_of([&] { lota::io::adapter_check(a, targets(), 4, 32, dir); });
    EXPECT_NE(e.find("'model.layers.9.self_attn.q_proj' does not exist"), std::string::npos) << e;
    // Targeted module without tensors.
    a = make_adapter();
    a.config.target_modules = {"q_proj", "k_proj"};
    e = error_of([&] { lota::io::adapter_check(a, targets(), 4, 32, dir); });
    EXPECT_NE(e.find("no tensors for module 'model.layers.0.self_attn.k_proj'"), std::string::npos) << e;
    // Bits / group size.
    a = make_adapter();
    EXPECT_NE(error_of([&] { lota::io::adapter_check(a, targets(), 2, 32, dir); }).find("4-bit"), std::string::npos);
    EXPECT_NE(error_of([&] { lota::io::adapter_check(a, targets(), 4, 64, dir); }).find("group size 32"),
              std::string::npos);
    lota::remove_tree(dir);
}

TEST(train_adapter_io, rejects_corrupt_files) {
    const std::string dir = temp_dir("corrupt");
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("not an adapter directory"), std::string::npos);
    auto a = make_adapter();
    lota::io::adapter_write(dir, a);
    const std::string st = dir + "/adapter_model.safetensors";
    // Rank in the config disagrees with the tensors.
    a.config.r = 8;
    auto cfg = lota::io::adapter_config_to_json(a.config).dump();
    {
        std::ofstream(dir + "/adapter_config.json") << cfg;
    }
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("rank 4, but adapter_config.json says r = 8"),
              std::string::npos);
    lota::io::adapter_write(dir, make_adapter());
    // Non-ternary values, float dtype for LoTA, a lone lora_A, a foreign tensor name.
    const std::string A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
    const std::string B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    lota::io::safetensors_write(st, {{A, at::full({4, 64}, 2, at::kChar)}, {B, at::zeros({48, 4}, at::kChar)}});
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("outside {-1, 0, 1}"), std::string::npos);
    lota::io::safetensors_write(st, {{A, at::zeros({4, 64})}, {B, at::zeros({48, 4}, at::kChar)}});
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("expected I8"), std::string::npos);
    lota::io::safetensors_write(st, {{A, at::zeros({4, 64}, at::kChar)}});
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("has lora_A.weight but no lora_B.weight"),
              std::string::npos);
    lota::io::safetensors_write(st, {{"model.layers.0.weight", at::zeros({4, 64}, at::kChar)}});
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("unexpected tensor"), std::string::npos);
    // Malformed JSON.
    {
        std::ofstream(dir + "/adapter_config.json") << "{\"r\": ";
    }
    EXPECT_NE(error_of([&] { lota::io::adapter_read(dir); }).find("malformed JSON"), std::string::npos);
    lota::remove_tree(dir);
}

// QA-LoRA: lora_A is [r, K/group_size] float32; the config carries peft's use_qalora/qalora_group_size and
// lota's "qalora" block, which is what marks the method.
TEST(train_adapter_io, qalora_round_trip_and_checks) {
    const std::string dir = temp_dir("qalora");
    lota::io::Adapter a;
    a.config.method = lota::io::AdapterMethod::QALORA;
    a.config.r = 4;
    a.config.lora_alpha = 8;
    a.config.lora_dropout = 0;
    a.config.bits = 3;
    a.config.group_size = 32;
    a.config.qalora_pooling = "sum";
    a.config.target_modules = {"q_proj"};
    a.modules["model.layers.0.self_attn.q_proj"] = {at::randn({4, 2}), at::randn({48, 4})};  // K/g = 64/32
    lota::io::adapter_write(dir, a);
    const auto j = nlohmann::json::parse(lota::io::file_read_text(dir + "/adapter_config.json"));
    EXPECT_EQ(j["use_qalora"], true);
    EXPECT_EQ(j["qalora_group_size"], 32);
    EXPECT_EQ(j["qalora"]["pooling"], "sum");
    EXPECT_FALSE(j.contains("lota"));
    const auto b = lota::io::adapter_read(dir);
    EXPECT_EQ(b.config.method, lota::io::AdapterMethod::QALORA);
    EXPECT_EQ(b.config.group_size, 32);
    EXPECT_EQ(b.config.bits, 3);
    EXPECT_EQ(b.config.qalora_pooling, "sum");
    const auto& m = b.modules.at("model.layers.0.self_attn.q_proj");
    EXPECT_TRUE(at::equal(m.lora_a, a.modules.at("model.layers.0.self_attn.q_proj").lora_a));
    EXPECT_EQ(m.lora_a.scalar_type(), at::kFloat);
    EXPECT_EQ(error_of([&] { lota::io::adapter_check(b, targets(), 3, 32, dir); }), "");
    std::string e = error_of([&] { lota::io::adapter_check(b, targets(), 3, 64, dir); });
    EXPECT_NE(e.find("pools groups of 32 inputs, this model is quantized with group size 64"), std::string::npos) << e;
    e = error_of([&] { lota::io::adapter_check(b, targets(), 4, 32, dir); });
    EXPECT_NE(e.find("trained on a 3-bit model, this model has 4 bits"), std::string::npos) << e;
    auto wide = b;
    wide.modules["model.layers.0.self_attn.q_proj"].lora_a = at::randn({4, 64});  // an unpooled LoRA A
    e = error_of([&] { lota::io::adapter_check(wide, targets(), 3, 32, dir); });
    EXPECT_NE(e.find("has shape [4, 64], expected [4, 2] (r=4, in=64 / group size 32)"), std::string::npos) << e;
    // peft's own QA-LoRA config (no "qalora" block) and dropout are refused.
    nlohmann::json peft = j;
    peft.erase("qalora");
    e = error_of([&] { lota::io::adapter_config_from_json(peft, "p.json"); });
    EXPECT_NE(e.find("p.json: a peft QA-LoRA adapter (\"use_qalora\": true) without lota's \"qalora\" block"),
              std::string::npos)
        << e;
    nlohmann::json dropout = j;
    dropout["lora_dropout"] = 0.05;
    e = error_of([&] { lota::io::adapter_config_from_json(dropout, "d.json"); });
    EXPECT_NE(e.find("lora_dropout must be 0"), std::string::npos) << e;
    nlohmann::json pooling = j;
    pooling["qalora"]["pooling"] = "max";
    e = error_of([&] { lota::io::adapter_config_from_json(pooling, "q.json"); });
    EXPECT_NE(e.find("qalora.pooling must be \"mean\" or \"sum\", got \"max\""), std::string::npos) << e;
    lota::remove_tree(dir);
}

}  // namespace
