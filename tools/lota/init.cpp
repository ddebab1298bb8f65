// lota init: a deterministic random model in HF format (test fixtures, benchmark shapes); with --bits,
// a GPTQ checkpoint of RTN codes written layer by layer (model/init.h).
#include <nlohmann/json.hpp>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "args.h"
#include "commands.h"
#include "model/init.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace {

struct InitCli {
    lota::model::InitOptions o;
    int64_t shard_mib = 4096;
    bool json = false;
};

int run_init(InitCli& c) {
    auto& o = c.o;
    lota::output_path_check(o.out, {{"--tokenizer", o.tokenizer}});
    lota::output_dir_check(o.out, o.overwrite);
    LOTA_CHECK(o.group_size == -1 || o.group_size >= 1,
               "init: --group-size must be -1 (per channel) or positive, got %d", o.group_size);
    o.shard_bytes = (uint64_t)c.shard_mib << 20;
#ifdef __GLIBC__
    // Buffers of 1 MiB and more straight from mmap: glibc's adaptive threshold would otherwise keep the
    // freed draw-sized buffers of one tensor in its heap, fragmented, and the resident set would grow
    // with the layer count (measured: 712 MiB instead of 372 MiB after 24 layers of hidden 2048).
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    const auto rep = lota::model::model_init(o);
    nlohmann::json j = {{"out", o.out}, {"arch", o.arch}, {"seed", o.seed}, {"hidden", o.hidden},
                        {"layers", o.layers}, {"heads", o.heads}, {"kv_heads", o.kv_heads},
                        {"intermediate", o.intermediate}, {"out_dtype", o.dtype}, {"device", o.device},
                        {"params", rep.params}, {"bytes", rep.bytes}, {"seconds", rep.seconds},
                        {"peak_memory_mib", rep.peak_memory_mib}};
    std::string what = o.arch;
    if (o.bits > 0) {
        j["bits"] = o.bits;
        j["group_size"] = o.group_size;
        j["sym"] = o.sym;
        what += lota::strfmt(" (RTN %d bits, group %d)", o.bits, o.group_size);
    }
    lota::cli::result_print(
        c.json, j,
        lota::strfmt("wrote %s model to %s: %.3g parameters, %.2f GiB in %.1fs (peak resident %.0f MiB)", what.c_str(),
                     o.out.c_str(), (double)rep.params, (double)rep.bytes / (1 << 30), rep.seconds,
                     rep.peak_memory_mib));
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
    auto* bits = sub.add_option("--bits", o.bits, "RTN-quantize the projections to 2, 3, 4 or 8 bits (GPTQ checkpoint)")
                     ->check(CLI::IsMember({2, 3, 4, 8}));
    sub.add_option("--group-size", o.group_size, "with --bits: 32, 64, 128, ... or -1 (per channel)")
        ->needs(bits)
        ->capture_default_str();
    sub.add_flag("--sym", o.sym, "with --bits: symmetric grid (default asymmetric)")->needs(bits);
    sub.add_option("--shard-mib", c->shard_mib, "largest safetensors file (MiB); also the memory it buffers")
        ->check(lota::cli::int_range(1))
        ->capture_default_str();
    sub.add_option("--device", o.device,
                   "where to draw and RTN-quantize: cpu, or cuda (minutes instead of tens of minutes for 70B; "
                   "other random values than the CPU's, the same on every run)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    lota::cli::add_json_flag(sub, c->json);
    return [c] { return run_init(*c); };
});

}  // namespace
