// Flags that several subcommands take, each declared here once with one meaning and its default
// in the help text. A command adds the ones it takes; where a flag needs a word about what this
// command reads or writes (`kind`, `what`), that word is appended to the shared meaning.
//
//   --model DIR     the model directory the command reads (HF format: dense, GPTQ or merged LoTA)
//   --adapter DIR   an adapter directory (peft layout: LoTA-QAF or LoRA)
//   --out PATH      where the command writes its result (a directory or a file, per command)
//   --data PATH     the data the command reads; --format says how its records are laid out
//   --format NAME   record layout of --data: alpaca | gsm8k | chat | viggo | text (default alpaca)
//   --batch-size N  examples processed together (one forward, or one optimizer step in train)
//   --limit N       only the first N examples of --data (-1: all)
//   --device NAME   auto | cpu | cuda (default auto: CUDA when a CUDA device is usable)
//   --dtype NAME    compute dtype: auto | f32 | bf16 | f16 (default auto: bf16 on CUDA, f32 on CPU)
//   --seed S        random seed (default 0)
//   --json          print the result as one JSON object on stdout (logs stay on stderr)
//   --overwrite     replace an existing --out (without it, a non-empty --out is refused)
//   --head-bits N   an RTN-quantized LM head for inference: 2, 3, 4 or 8 bits (default 0: the head as stored)
//   --head-group-size G  its group size along hidden (default 0: 128, 64 or 32, the first dividing it; -1: one a row)
//
// Every numeric flag carries a range check (int_range, real_range below); a value outside it stops
// the command with one line naming the flag, the range and the value.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "dist/dist.h"
#include "model/transformer.h"

namespace lota::cli {

/// --model DIR (required); `kind` names the models this command takes.
CLI::Option* add_model_flag(CLI::App& sub, std::string& model, const std::string& kind);
/// --adapter DIR; `what` says how this command uses it.
CLI::Option* add_adapter_flag(CLI::App& sub, std::string& adapter, const std::string& what);
/// --out PATH; `what` says what this command writes there.
CLI::Option* add_out_flag(CLI::App& sub, std::string& out, const std::string& what);
/// --data PATH; `what` says what this command reads there.
CLI::Option* add_data_flag(CLI::App& sub, std::string& data, const std::string& what);
/// --format alpaca|gsm8k|chat|viggo|text; sets `format` to data::DataOptions' default (alpaca).
/// `what` is appended to the help ("" or e.g. " (task loss only)").
CLI::Option* add_format_flag(CLI::App& sub, std::string& format, const std::string& what);
/// --batch-size N (>= 1, or `special` where a value means "the default", e.g. -1); `what` says what
/// one batch is for this command (and its default when the default depends on more than the value).
CLI::Option* add_batch_size_flag(CLI::App& sub, int64_t& batch_size, const std::string& what,
                                 int64_t special = INT64_MIN);
/// --limit N; sets `limit` to the default -1 (all). `what` is appended to the help ("" or e.g.
/// "; mmlu: per subject").
CLI::Option* add_limit_flag(CLI::App& sub, int64_t& limit, const std::string& what);
/// --device auto|cpu|cuda; sets `device` to the default "auto".
CLI::Option* add_device_flag(CLI::App& sub, std::string& device);
/// --dtype auto|f32|bf16|f16 (compute dtype); sets `dtype` to the default "auto".
CLI::Option* add_dtype_flag(CLI::App& sub, std::string& dtype);
/// --seed S; `what` says what the seed draws in this command.
CLI::Option* add_seed_flag(CLI::App& sub, uint64_t& seed, const std::string& what);
/// --json; sets `json` to false.
CLI::Option* add_json_flag(CLI::App& sub, bool& json);
/// --overwrite; sets `overwrite` to false. `what` names what is replaced.
CLI::Option* add_overwrite_flag(CLI::App& sub, bool& overwrite, const std::string& what);

/// --head-bits N and --head-group-size G (Transformer::quantize_head); set `bits` to 0 (off: the head changes the
/// logits, so it is opt-in) and `group_size` to 0 (128, 64 or 32, the first that divides hidden_size).
void add_head_quant_flags(CLI::App& sub, int& bits, int64_t& group_size);
/// Transformer::quantize_head(bits, group_size) when bits > 0, with one line on stderr when `log` (bits, group,
/// bytes before and after), and sets `group_size` to the group size used; nothing when bits is 0.
void head_quantize(model::Transformer& model, int bits, int64_t& group_size, bool log);

/// Check of an integer flag: a value in [lo, hi], or `special` when it is not lo - 1 (e.g. -1 =
/// "all" for --limit). The error reads "must be an integer >= 1, got 0".
CLI::Validator int_range(int64_t lo, int64_t hi = INT64_MAX, int64_t special = INT64_MIN);
/// Check of a real flag: a finite number above lo (or equal, when lo_closed) and below hi (or equal,
/// when hi_closed). The error reads "must be a finite number in (0, 1], got 2".
CLI::Validator real_range(double lo, bool lo_closed, double hi, bool hi_closed);

/// Prints a command's result on stdout: `result` as one JSON object on one line with --json, else
/// `text` and a newline. Invalid UTF-8 in strings (e.g. generated text) becomes U+FFFD.
void result_print(bool json, const nlohmann::json& result, const std::string& text);
/// As above, keeping the keys in insertion order.
void result_print(bool json, const nlohmann::ordered_json& result, const std::string& text);

/// Resolves "auto" in --device and --dtype in place (model/device.h), so the library and the
/// report see the device and dtype that actually run. Throws for --device cuda without CUDA.
void runtime_resolve(std::string& device, std::string& dtype);

/// Runs `body` as this process's rank of the run a launcher started (torchrun's variables; without
/// them a group of one) on the resolved `device`: joins the group (dist::Group::join), calls `body`,
/// then finishes the group. When `body` throws, leaves the error for the other ranks (Group::abort),
/// so that they stop naming this rank, and rethrows. Commands print their result on rank 0 only.
int run_ranks(const std::string& device, const char* command, const std::function<int(dist::Group&)>& body);

/// Loads a model directory (dense, GPTQ or merged LoTA) on a resolved device and dtype and, when
/// `adapter` is not empty, puts that adapter on it unmerged (checked against the model first);
/// then fuses q/k/v and gate/up where the layers allow it (Transformer::fuse_projections).
/// For inference commands only.
std::unique_ptr<model::Transformer> load_model(const std::string& model_dir, const std::string& adapter,
                                               const std::string& device, const std::string& dtype);

}  // namespace lota::cli
