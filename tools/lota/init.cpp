// lota init: a deterministic random model in HF format (test fixtures, benchmark shapes).
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "model/init.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

struct InitCli {
    lota::model::InitOptions o;
    bool json = false;
};

int run_init(const InitCli& c) {
    const auto& o = c.o;
    lota::output_path_check(o.out, {{"--tokenizer", o.tokenizer}});
    lota::output_dir_check(o.out, o.overwrite);
    lota::model::model_init(o);
    const nlohmann::json j = {{"out", o.out}, {"arch", o.arch}, {"seed", o.seed}, {"hidden", o.hidden},
                              {"layers", o.layers}, {"heads", o.heads}, {"kv_heads", o.kv_heads},
                              {"intermediate", o.intermediate}, {"out_dtype", o.dtype}};
    lota::cli::result_print(c.json, j, lota::strfmt("wrote %s model to %s", o.arch.c_str(), o.out.c_str()));
    return 0;
}

LOTA_COMMAND("init", "Create a deterministic random model (HF format)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto c = std::make_shared<InitCli>();
    auto& o = c->o;
    sub.add_option("--arch", o.arch, "llama, mistral, qwen2 or qwen3")
        ->required()
        ->check(CLI::IsMember({"llama", "mistral", "qwen2", "qwen3"}));
    lota::cli::add_out_flag(sub, o.out, "model directory")->required();
    lota::cli::add_overwrite_flag(sub, o.overwrite, "--out directory");
    lota::cli::add_seed_flag(sub, o.seed, "the weights");
    const auto positive = lota::cli::int_range(1);
    sub.add_option("--hidden", o.hidden, "hidden size")->check(positive)->capture_default_str();
    sub.add_option("--layers", o.layers, "number of blocks")->check(positive)->capture_default_str();
    sub.add_option("--heads", o.heads, "attention heads")->check(positive)->capture_default_str();
    sub.add_option("--kv-heads", o.kv_heads, "key/value heads (dividing --heads)")
        ->check(positive)
        ->capture_default_str();
    sub.add_option("--intermediate", o.intermediate, "MLP size")->check(positive)->capture_default_str();
    sub.add_option("--vocab", o.vocab, "vocabulary size (from the tokenizer when given)")
        ->check(positive)
        ->capture_default_str();
    sub.add_option("--head-dim", o.head_dim, "head dim, even (default hidden/heads)")->check(lota::cli::int_range(2));
    sub.add_flag("--tie-embeddings", o.tie_embeddings, "share embedding and LM head weights");
    sub.add_option("--rope-scaling", o.rope_scaling, "llama3")->check(CLI::IsMember({"llama3"}));
    sub.add_option("--tokenizer", o.tokenizer, "directory with tokenizer.json to copy");
    sub.add_option("--out-dtype", o.dtype, "dtype of the weights written to --out: f32, bf16 or f16")
        ->check(CLI::IsMember({"f32", "bf16", "f16"}))
        ->capture_default_str();
    lota::cli::add_json_flag(sub, c->json);
    return [c] { return run_init(*c); };
});

}  // namespace
