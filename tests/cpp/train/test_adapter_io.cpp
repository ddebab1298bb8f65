// Adapter directories (io/adapter.h): round trip, and every malformed or mismatching adapter is
// rejected with a message naming the problem.
#include <filesystem>
#include <fstream>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "../test_dirs.h"
#include "../test_error.h"
#include "io/adapter.h"
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
    for (const AdapterMethod m : {AdapterMethod::LOTA, AdapterMethod::LORA})
        EXPECT_EQ(lota::io::adapter_method_parse(lota::io::adapter_method_name(m), "test"), m);
    EXPECT_STREQ(lota::io::adapter_method_name(AdapterMethod::LOTA), "lota");
    EXPECT_STREQ(lota::io::adapter_method_name(AdapterMethod::LORA), "lora");
    const std::string e = error_of([] { lota::io::adapter_method_parse("qlora", "--method"); });
    EXPECT_NE(e.find("--method: unknown adapter method 'qlora' (expected one of: lota, lora)"), std::string::npos) << e;
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

}  // namespace
