// Shared flags (see args.h for the list and their one meaning each).
#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <c10/util/Exception.h>

#include "adapter/attach.h"
#include "data/examples.h"
#include "io/adapter.h"
#include "model/device.h"
#include "util/log.h"
#include "util/strfmt.h"

namespace lota::cli {

CLI::Option* add_model_flag(CLI::App& sub, std::string& model, const std::string& kind) {
    return sub.add_option("--model", model, "input model directory (HF format; " + kind + ")")->required();
}

CLI::Option* add_adapter_flag(CLI::App& sub, std::string& adapter, const std::string& what) {
    return sub.add_option("--adapter", adapter, "adapter directory (peft layout, LoTA-QAF or LoRA): " + what);
}

CLI::Option* add_out_flag(CLI::App& sub, std::string& out, const std::string& what) {
    return sub.add_option("--out", out, "output: " + what);
}

CLI::Option* add_data_flag(CLI::App& sub, std::string& data, const std::string& what) {
    return sub.add_option("--data", data, "input data: " + what);
}

CLI::Option* add_format_flag(CLI::App& sub, std::string& format, const std::string& what) {
    format = data::DataOptions{}.format;
    return sub.add_option("--format", format, "record layout of --data: alpaca, gsm8k, chat, viggo or text" + what)
        ->check(CLI::IsMember({"alpaca", "gsm8k", "chat", "viggo", "text"}))
        ->capture_default_str();
}

CLI::Option* add_batch_size_flag(CLI::App& sub, int64_t& batch_size, const std::string& what, int64_t special) {
    return sub.add_option("--batch-size", batch_size, "examples per batch (" + what + ")")
        ->check(int_range(1, INT64_MAX, special))
        ->capture_default_str();
}

CLI::Option* add_limit_flag(CLI::App& sub, int64_t& limit, const std::string& what) {
    limit = -1;
    return sub.add_option("--limit", limit, "only the first N examples of --data (-1: all)" + what)
        ->check(int_range(1, INT64_MAX, -1))
        ->capture_default_str();
}

CLI::Option* add_device_flag(CLI::App& sub, std::string& device) {
    device = "auto";
    return sub.add_option("--device", device, "where to compute: auto (CUDA when a CUDA device is usable), cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
        ->capture_default_str();
}

CLI::Option* add_dtype_flag(CLI::App& sub, std::string& dtype) {
    dtype = "auto";
    return sub.add_option("--dtype", dtype, "compute dtype: auto (bf16 on CUDA, f32 on CPU), f32, bf16 or f16")
        ->check(CLI::IsMember({"auto", "f32", "bf16", "f16"}))
        ->capture_default_str();
}

CLI::Option* add_seed_flag(CLI::App& sub, uint64_t& seed, const std::string& what) {
    return sub.add_option("--seed", seed, "random seed: " + what)->capture_default_str();
}

CLI::Option* add_json_flag(CLI::App& sub, bool& json) {
    json = false;
    return sub.add_flag("--json", json, "print the result as one JSON object on stdout (logs stay on stderr)");
}

CLI::Option* add_overwrite_flag(CLI::App& sub, bool& overwrite, const std::string& what) {
    overwrite = false;
    return sub.add_flag("--overwrite", overwrite,
                        "replace an existing " + what + " (only once the new one is complete)");
}

void add_head_quant_flags(CLI::App& sub, int& bits, int64_t& group_size) {
    bits = 0;
    group_size = 0;
    CLI::Option* bits_flag =
        sub.add_option("--head-bits", bits,
                       "quantize the LM head to 2, 3, 4 or 8 bits (RTN) for this run: fewer bytes read a token, "
                       "slightly different logits; 0: the head as stored")
            ->check(CLI::IsMember({0, 2, 3, 4, 8}))
            ->capture_default_str();
    sub.add_option("--head-group-size", group_size,
                   "with --head-bits: hidden features per scale and zero point (0: 128, 64 or 32, the first that "
                   "divides the hidden size; -1: one group per vocabulary row)")
        ->check(int_range(0, INT64_MAX, -1))
        ->needs(bits_flag)
        ->capture_default_str();
}

void head_quantize(model::Transformer& model, int bits, int64_t& group_size, bool log) {
    if (bits == 0) return;
    const bool tied = model.config().tie_word_embeddings;
    const model::Transformer::HeadQuantization q = model.quantize_head(bits, group_size);
    group_size = q.group_size;
    if (log)
        LOTA_LOG_INFO("LM head quantized (RTN, %d bits, group %lld): %.1f MiB -> %.1f MiB%s", bits,
                      (long long)q.group_size, q.bytes_before / 1048576.0, q.bytes_after / 1048576.0,
                      tied ? " (the tied embedding table stays, for the embedding)" : "");
}

CLI::Validator int_range(int64_t lo, int64_t hi, int64_t special) {
    std::string want = hi == INT64_MAX ? strfmt("an integer >= %lld", (long long)lo)
                                       : strfmt("an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    if (special != INT64_MIN) want = strfmt("%lld or ", (long long)special) + want;
    return CLI::Validator(
        [lo, hi, special, want](std::string& s) -> std::string {
            errno = 0;
            char* end = nullptr;
            const long long v = std::strtoll(s.c_str(), &end, 10);
            const bool ok = !s.empty() && end && *end == '\0' && errno == 0 &&
                            ((v >= lo && v <= hi) || (special != INT64_MIN && v == special));
            return ok ? std::string() : "must be " + want + ", got " + s;
        },
        "", "int_range");
}

CLI::Validator real_range(double lo, bool lo_closed, double hi, bool hi_closed) {
    const std::string want =
        strfmt("a finite number in %c%g, %g%c", lo_closed ? '[' : '(', lo, hi, hi_closed ? ']' : ')');
    return CLI::Validator(
        [=](std::string& s) -> std::string {
            errno = 0;
            char* end = nullptr;
            const double v = std::strtod(s.c_str(), &end);
            const bool ok = !s.empty() && end && *end == '\0' && errno == 0 && std::isfinite(v) &&
                            (lo_closed ? v >= lo : v > lo) && (hi_closed ? v <= hi : v < hi);
            return ok ? std::string() : "must be " + want + ", got " + s;
        },
        "", "real_range");
}

namespace {

template <class Json>
void result_print_any(bool json, const Json& result, const std::string& text) {
    if (json)
        std::printf("%s\n", result.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    else
        std::printf("%s\n", text.c_str());
    std::fflush(stdout);
}

}  // namespace

void result_print(bool json, const nlohmann::json& result, const std::string& text) {
    result_print_any(json, result, text);
}

void result_print(bool json, const nlohmann::ordered_json& result, const std::string& text) {
    result_print_any(json, result, text);
}

void runtime_resolve(std::string& device, std::string& dtype) {
    device = model::device_resolve(device);
    dtype = model::dtype_resolve(dtype, device);
}

int run_ranks(const std::string& device, const char* command, const std::function<int(dist::Group&)>& body) {
    const std::unique_ptr<dist::Group> group = dist::Group::join(device, command);
    try {
        const int rc = body(*group);
        group->finish();
        return rc;
    } catch (const c10::Error& e) {
        group->abort(e.what_without_backtrace());
        throw;
    } catch (const std::exception& e) {
        group->abort(e.what());
        throw;
    }
}

std::unique_ptr<model::Transformer> load_model(const std::string& model_dir, const std::string& adapter,
                                               const std::string& device, const std::string& dtype) {
    auto model = model::Transformer::load(model_dir, {device, dtype});
    if (!adapter.empty())
        for (const auto& layer : adapter::adapter_apply(*model, io::adapter_read(adapter), adapter))
            if (layer.lora) layer.lora->freeze();  // evaluation only: cast A, B once
    model->fuse_projections();  // one product for q/k/v and one for gate/up where the layers allow it
    return model;
}

}  // namespace lota::cli
