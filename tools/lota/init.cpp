// lota init: a deterministic random model in HF format (test fixtures, benchmark shapes).
#include "args.h"
#include "commands.h"
#include "model/init.h"
#include "util/log.h"

namespace {

int run_init(const lota::model::InitOptions& o) {
    lota::model::model_init(o);
    LOTA_LOG_INFO("wrote %s model to %s", o.arch.c_str(), o.out.c_str());
    return 0;
}

LOTA_COMMAND("init", "Create a deterministic random model (HF format)", [](CLI::App& sub) -> lota::cli::CommandRun {
    auto o = std::make_shared<lota::model::InitOptions>();
    sub.add_option("--arch", o->arch, "llama, mistral, qwen2 or qwen3")
        ->required()
        ->check(CLI::IsMember({"llama", "mistral", "qwen2", "qwen3"}));
    sub.add_option("--out", o->out, "output directory")->required();
    sub.add_option("--seed", o->seed, "random seed")->required();
    sub.add_option("--hidden", o->hidden, "hidden size")->capture_default_str();
    sub.add_option("--layers", o->layers, "number of blocks")->capture_default_str();
    sub.add_option("--heads", o->heads, "attention heads")->capture_default_str();
    sub.add_option("--kv-heads", o->kv_heads, "key/value heads")->capture_default_str();
    sub.add_option("--intermediate", o->intermediate, "MLP size")->capture_default_str();
    sub.add_option("--vocab", o->vocab, "vocabulary size (from the tokenizer when given)")->capture_default_str();
    sub.add_option("--head-dim", o->head_dim, "head dim (default hidden/heads)");
    sub.add_flag("--tie-embeddings", o->tie_embeddings, "share embedding and LM head weights");
    sub.add_option("--rope-scaling", o->rope_scaling, "llama3")->check(CLI::IsMember({"llama3"}));
    sub.add_option("--tokenizer", o->tokenizer, "directory with tokenizer.json to copy");
    sub.add_option("--dtype", o->dtype, "stored dtype")->check(CLI::IsMember({"f32", "bf16", "f16"}))->capture_default_str();
    return [o] { return run_init(*o); };
});

}  // namespace
