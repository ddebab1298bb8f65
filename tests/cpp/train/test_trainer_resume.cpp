// Resuming `lota train` (train/trainer.h) from its checkpoints: an intact checkpoint continues the
// run to the same adapter as an uninterrupted run (LoRA and QA-LoRA); a LoRA checkpoint whose AdamW state was lost is
// refused with a message naming the missing tensor, not continued with fresh moments. A tiny
// random Llama with the llama2 tokenizer of $LOTA_SHARED_DIR (skipped without it), RTN 4-bit g32.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "../test_dirs.h"
#include "calibrate/gptq_driver.h"
#include "io/mapped_file.h"
#include "model/init.h"
#include "train/trainer.h"
#include "util/check.h"

namespace {

namespace fs = std::filesystem;
using lota::io::AdapterMethod;

fs::path tokenizer_dir() {
    const char* s = std::getenv("LOTA_SHARED_DIR");
    return fs::path(s ? s : std::string(LOTA_SOURCE_DIR) + "/../shared") / "tokenizers" / "llama2";
}

class TrainerResume : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!fs::exists(tokenizer_dir() / "tokenizer.json"))
            GTEST_SKIP() << "LOTA_SHARED_DIR/tokenizers/llama2 is absent";
        root_ = lota_test::fresh_dir("train", "resume");
        fs::create_directories(root_);
        lota::model::InitOptions init;
        init.out = (root_ / "base").string();
        init.tokenizer = tokenizer_dir().string();
        lota::model::model_init(init);
        lota::calibrate::QuantizeModelOptions q;
        q.method = "rtn";
        q.quant.group_size = 32;
        lota::calibrate::quantize_model(init.out, (root_ / "quant").string(), q);
        std::ofstream(root_ / "data.json") << R"([
            {"instruction": "Name a color.", "input": "", "output": "Blue is a color."},
            {"instruction": "Say hello.", "input": "", "output": "Hello there, friend!"},
            {"instruction": "Add the numbers.", "input": "2 and 3", "output": "2 plus 3 is 5."},
            {"instruction": "What is the capital of France?", "input": "", "output": "Paris."}])";
    }
    void TearDown() override {
        if (!root_.empty()) lota::remove_tree(root_);
    }

    lota::train::TrainOptions options(AdapterMethod method, const std::string& out) const {
        lota::train::TrainOptions o;
        o.model = (root_ / "quant").string();
        o.data.path = (root_ / "data.json").string();
        o.out = (root_ / out).string();
        o.method = method;
        o.device = "cpu";
        o.steps = 4;
        o.batch_size = 2;
        o.rank = 4;
        o.omega = 1;
        o.seed = 3;
        o.adamw.lr = 1e-2;
        o.adamw.warmup_ratio = 0;
        return o;
    }

    std::string adapter_bytes(const std::string& out) const {
        return lota::io::file_read_text((root_ / out / "adapter_model.safetensors").string());
    }

    fs::path root_;
};

// LoRA: the AdamW moments go through optimizer.safetensors by name (tests/py/test_train.py also
// kills and resumes both methods through the CLI).
TEST_F(TrainerResume, IntactCheckpointContinuesExactly) {
    lota::train::train_run(options(AdapterMethod::LORA, "lora_full"));
    lota::train::TrainOptions cut = options(AdapterMethod::LORA, "lora_cut");
    cut.max_steps_this_run = 2;
    EXPECT_EQ(lota::train::train_run(cut).steps_done, 2);
    ASSERT_TRUE(fs::exists(root_ / "lora_cut" / "checkpoint-2" / "optimizer.safetensors"));
    cut.max_steps_this_run = 0;
    cut.resume = true;
    EXPECT_EQ(lota::train::train_run(cut).steps_done, 2);
    EXPECT_EQ(adapter_bytes("lora_cut"), adapter_bytes("lora_full"));
}

// QA-LoRA: AdamW like LoRA, on the pooled factors; its final adapter is float32.
TEST_F(TrainerResume, QaLoraCheckpointContinuesExactly) {
    const lota::train::TrainResult full = lota::train::train_run(options(AdapterMethod::QALORA, "qalora_full"));
    EXPECT_LT(full.last_loss, full.first_loss);
    lota::train::TrainOptions cut = options(AdapterMethod::QALORA, "qalora_cut");
    cut.max_steps_this_run = 2;
    EXPECT_EQ(lota::train::train_run(cut).steps_done, 2);
    ASSERT_TRUE(fs::exists(root_ / "qalora_cut" / "checkpoint-2" / "optimizer.safetensors"));
    cut.max_steps_this_run = 0;
    cut.resume = true;
    EXPECT_EQ(lota::train::train_run(cut).steps_done, 2);
    EXPECT_EQ(adapter_bytes("qalora_cut"), adapter_bytes("qalora_full"));
}

TEST_F(TrainerResume, LoraCheckpointWithoutOptimizerStateIsRefused) {
    lota::train::TrainOptions o = options(AdapterMethod::LORA, "lora_lost");
    o.max_steps_this_run = 2;
    lota::train::train_run(o);
    const fs::path state = root_ / "lora_lost" / "checkpoint-2" / "optimizer.safetensors";
    ASSERT_TRUE(fs::exists(state));
    fs::remove(state);
    o.max_steps_this_run = 0;
    o.resume = true;
    std::string e;
    try {
        lota::train::train_run(o);
    } catch (const lota::Error& err) {
        e = err.what();
    }
    EXPECT_NE(e.find("checkpoint-2: optimizer.safetensors has no "
                     "'model.layers.0.self_attn.q_proj.lora_A.weight.m'"),
              std::string::npos)
        << "got: '" << e << "'";
    EXPECT_FALSE(fs::exists(root_ / "lora_lost" / "adapter_model.safetensors")) << "the run must not continue";
}

}  // namespace
