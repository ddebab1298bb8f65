// GPTQ checkpoint directories (io/gptq_checkpoint.h): write, read, re-read bit for bit; shape and
// config validation with messages naming the tensor; a failed write into a StagedDir leaves nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>

#include "io/gptq_checkpoint.h"
#include "io/safetensors.h"
#include "quant/gptq_tensors.h"
#include "quant/rtn.h"
#include "util/check.h"
#include "util/fs.h"
#include "../test_dirs.h"

using namespace lota;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return lota_test::fresh_dir("ckpt", name); }

io::GptqCheckpoint make_checkpoint(int bits, int group_size, bool offset) {
    at::manual_seed(11);
    quant::QuantOptions o;
    o.bits = bits;
    o.group_size = group_size;
    io::GptqCheckpoint ck;
    ck.quant.bits = bits;
    ck.quant.group_size = group_size;
    ck.quant.lota_offset = offset;
    ck.config = {{"model_type", "llama"}, {"hidden_size", 64}};
    for (const char* name : {"model.layers.0.mlp.up_proj", "model.layers.0.self_attn.q_proj"}) {
        quant::QuantizedWeight qw = quant::rtn_quantize(at::randn({64, 128}), o);
        if (offset) qw.offset = at::rand({qw.n_groups(), 64}) - 0.5;
        ck.linears[name] = quant::gptq_tensors_from_quantized_weight(qw);
    }
    ck.linears["model.layers.0.self_attn.q_proj"].bias = at::randn({64}).to(at::kHalf);
    ck.tensors["model.norm.weight"] = at::ones({64});
    return ck;
}

void write_json(const fs::path& p, const nlohmann::json& j) { std::ofstream(p) << j.dump(2); }

std::string read_error(const fs::path& dir) {
    try {
        io::gptq_checkpoint_read(dir.string());
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(GptqCheckpoint, WriteReadRoundTripIsExact) {
    for (const bool offset : {false, true}) {
        const fs::path dir = fresh_dir("rt");
        const io::GptqCheckpoint ck = make_checkpoint(3, 32, offset);
        io::gptq_checkpoint_write(dir.string(), ck);
        ASSERT_TRUE(io::gptq_checkpoint_detect(dir.string()));
        const io::GptqCheckpoint back = io::gptq_checkpoint_read(dir.string());
        EXPECT_EQ(back.quant.bits, 3);
        EXPECT_EQ(back.quant.group_size, 32);
        EXPECT_EQ(back.quant.lota_offset, offset);
        EXPECT_EQ(back.config["quantization_config"]["checkpoint_format"], "gptq");
        EXPECT_EQ(back.config["quantization_config"]["quant_method"], "gptq");
        EXPECT_EQ(back.config["hidden_size"], 64);
        ASSERT_EQ(back.linears.size(), 2u);
        for (const auto& [name, t] : ck.linears) {
            const io::GptqLinearTensors& b = back.linears.at(name);
            EXPECT_TRUE(at::equal(b.qweight, t.qweight) && at::equal(b.qzeros, t.qzeros) &&
                        at::equal(b.scales, t.scales) && at::equal(b.g_idx, t.g_idx));
            EXPECT_EQ(b.bias.defined(), t.bias.defined());
            EXPECT_EQ(b.lota_offset.defined(), offset);
            const quant::QuantizedWeight q0 = quant::quantized_weight_from_gptq(t, ck.quant);
            const quant::QuantizedWeight q1 = quant::quantized_weight_from_gptq(b, back.quant);
            EXPECT_TRUE(at::equal(quant::dequantize(q0), quant::dequantize(q1)));
        }
        EXPECT_EQ(back.tensors.size(), 1u);
        // Re-writing what was read gives the same file contents.
        const fs::path dir2 = fresh_dir("rt2");
        io::gptq_checkpoint_write(dir2.string(), back);
        const io::SafetensorsFile f1((dir / "model.safetensors").string()), f2((dir2 / "model.safetensors").string());
        for (const auto& e : f1.entries()) EXPECT_TRUE(at::equal(f1.load(e.name), f2.load(e.name))) << e.name;
        lota::remove_tree(dir.string());
        lota::remove_tree(dir2.string());
    }
}

TEST(GptqCheckpoint, BadConfigIsRejected) {
    const fs::path dir = fresh_dir("cfg");
    io::gptq_checkpoint_write(dir.string(), make_checkpoint(4, 32, false));
    const nlohmann::json qc = nlohmann::json::parse(std::ifstream(dir / "quantize_config.json"));
    auto with = [&](const char* key, nlohmann::json v) {
        nlohmann::json j = qc;
        j[key] = v;
        write_json(dir / "quantize_config.json", j);
        return read_error(dir);
    };
    EXPECT_NE(with("bits", 5).find("bits = 5 is not supported"), std::string::npos);
    EXPECT_NE(with("checkpoint_format", "marlin").find("checkpoint_format \"marlin\""), std::string::npos);
    EXPECT_NE(with("group_size", 48).find("group_size 48"), std::string::npos);
    EXPECT_NE(with("quant_method", "awq").find("quant_method"), std::string::npos);
    // A 3-bit config over 4-bit tensors: shapes disagree; the message names tensor and shapes.
    const std::string m = with("bits", 3);
    EXPECT_NE(m.find("tensor 'model.layers.0.mlp.up_proj.qweight' has shape [16, 64], expected [12, 64]"), std::string::npos)
        << m;
    EXPECT_NE(m.find("in=128, out=64, bits=3, group_size=32"), std::string::npos) << m;
    EXPECT_NE(with("lota_offset", true).find("lota_offset"), std::string::npos);
    lota::remove_tree(dir.string());
}

TEST(GptqCheckpoint, BadTensorShapesAreRejected) {
    const fs::path dir = fresh_dir("shape");
    for (const char* which : {"scales", "g_idx", "qzeros"}) {
        io::GptqCheckpoint ck = make_checkpoint(4, 64, false);
        io::GptqLinearTensors& t = ck.linears["model.layers.0.mlp.up_proj"];
        if (std::string(which) == "scales") t.scales = t.scales.narrow(1, 0, 32).contiguous();
        if (std::string(which) == "g_idx") t.g_idx = t.g_idx.narrow(0, 0, 100).contiguous();
        if (std::string(which) == "qzeros") t.qzeros = at::cat({t.qzeros, t.qzeros});
        io::gptq_checkpoint_write(dir.string(), ck);
        const std::string m = read_error(dir);
        EXPECT_NE(m.find(std::string("model.layers.0.mlp.up_proj.") + which + "' has shape"), std::string::npos) << m;
        EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
    }
    // g_idx values out of range.
    io::GptqCheckpoint ck = make_checkpoint(4, 64, false);
    ck.linears["model.layers.0.mlp.up_proj"].g_idx[5] = 9;
    io::gptq_checkpoint_write(dir.string(), ck);
    EXPECT_NE(read_error(dir).find("g_idx' has values in [0, 9]"), std::string::npos);
    lota::remove_tree(dir.string());
}

TEST(GptqCheckpoint, FailedWriteIntoStagedDirLeavesNoDirectory) {
    const fs::path dir = fresh_dir("atomic");
    io::GptqCheckpoint ck = make_checkpoint(4, 64, false);
    ck.tensors["bad"] = at::zeros({2}, at::kComplexFloat);  // no safetensors dtype
    {
        StagedDir staged(dir.string());
        EXPECT_THROW(io::gptq_checkpoint_write(staged.path(), ck), Error);
    }
    EXPECT_FALSE(fs::exists(dir));
    for (const std::string& name : dir_list(dir.parent_path().string()))
        EXPECT_EQ(name.find(dir.filename().string()), std::string::npos) << name;
}
