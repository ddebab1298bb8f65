// lota export --format hf and gptq (see export_hf.h). The quantized linears are read through io::gptq_linear_read
// and dequantized by quant::dequantize, the one formula lota computes with; nothing else changes but the
// dtype of float tensors. config.json keeps the layout it came in (transformers 4 `torch_dtype`, or
// transformers 5 `dtype`).
#include "export_hf.h"

#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "io/gptq_checkpoint.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "quant/gptq_tensors.h"
#include "quant/quantized_weight.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"

namespace lota::cli {
namespace {

// Tensor name suffixes of one GPTQ linear that the dense weight replaces (the bias stays).
const char* const QUANT_SUFFIXES[] = {".qweight", ".qzeros", ".scales", ".g_idx", ".lota_offset"};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

HfExportReport hf_export(const std::string& model, const std::string& out, const std::string& dtype, bool overwrite) {
    LOTA_CHECK(dtype == "bf16" || dtype == "f16", "--dtype %s: --format hf writes bf16 or f16", dtype.c_str());
    const at::ScalarType st = dtype == "bf16" ? at::kBFloat16 : at::kHalf;
    output_path_check(out, {{"--model", model}});
    output_dir_check(out, overwrite);
    const std::string cfg_path = model + "/config.json";
    nlohmann::ordered_json cfg = json_parse_ordered(io::file_read_text(cfg_path), cfg_path);
    const std::optional<io::GptqConfig> gptq = io::gptq_config_read(model);
    const io::ModelFiles files(model);

    std::set<std::string> quantized;  // module prefixes with a qweight
    if (gptq)
        for (const std::string& n : files.names())
            if (ends_with(n, ".qweight")) quantized.insert(n.substr(0, n.size() - 8));
    HfExportReport rep;
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const std::string& n : files.names()) {
        const size_t dot = n.rfind('.');
        const std::string prefix = dot == std::string::npos ? n : n.substr(0, dot);
        if (quantized.count(prefix)) {
            if (!ends_with(n, ".qweight")) {
                bool known = ends_with(n, ".bias");
                for (const char* s : QUANT_SUFFIXES) known = known || ends_with(n, s);
                LOTA_CHECK(known, "%s: tensor '%s' of quantized linear '%s' is not one lota knows how to dequantize",
                           files.file_of(n).c_str(), n.c_str(), prefix.c_str());
                if (!ends_with(n, ".bias")) continue;
            } else {
                const io::GptqLinearTensors t = io::gptq_linear_read(files, prefix, *gptq);
                const quant::QuantizedWeight qw = quant::quantized_weight_from_gptq(t, *gptq, prefix);
                const at::Tensor w = quant::dequantize(qw).t().contiguous();  // [N, K] float32
                const at::Tensor r = w.to(st);
                const at::Tensor err = (r.to(at::kFloat) - w).abs();
                const at::Tensor s = qw.scales.to(at::kFloat).index_select(0, qw.g_idx.to(at::kLong)).t();  // [N, K]
                rep.max_abs_error = std::max(rep.max_abs_error, err.max().item<double>());
                rep.max_error_steps = std::max(rep.max_error_steps, (err / s).max().item<double>());
                tensors.emplace_back(prefix + ".weight", r);
                ++rep.dequantized;
                continue;
            }
        }
        const at::Tensor t = files.load(n);
        LOTA_CHECK(at::isFloatingType(t.scalar_type()), "%s: tensor '%s' is %s; --format hf writes float tensors only",
                   files.file_of(n).c_str(), n.c_str(), c10::toString(t.scalar_type()));
        const at::Tensor r = t.to(st);
        rep.max_abs_error = std::max(rep.max_abs_error, (r.to(at::kDouble) - t.to(at::kDouble)).abs().max().item<double>());
        tensors.emplace_back(n, r);
        ++rep.dense;
    }

    cfg.erase("quantization_config");
    cfg[cfg.contains("dtype") ? "dtype" : "torch_dtype"] = dtype == "bf16" ? "bfloat16" : "float16";
    StagedDir staged(out, overwrite);
    io::model_files_write(staged.path(), tensors);
    const std::string text = cfg.dump(2) + "\n";
    io::file_write_atomic(staged.path() + "/config.json", text.data(), text.size());
    io::model_text_files_copy(model, staged.path());
    staged.commit();
    return rep;
}

GptqExportReport gptq_export(const std::string& model, const std::string& out, bool allow_lossy, bool overwrite) {
    output_path_check(out, {{"--model", model}});
    output_dir_check(out, overwrite);
    io::GptqCheckpoint ckpt = io::gptq_checkpoint_read(model);
    LOTA_CHECK(!ckpt.linears.empty(), "%s: no quantized linears; --format gptq writes GPTQ or LoTA-merged models "
               "(`lota quantize` makes one)", model.c_str());
    GptqExportReport rep;
    for (auto& [prefix, t] : ckpt.linears) {
        quant::QuantizedWeight qw = quant::quantized_weight_from_gptq(t, ckpt.quant, prefix);
        ++rep.linears;
        if (qw.offset.defined()) {
            const at::Tensor zf = qw.zeros.to(at::kDouble) - qw.offset.to(at::kDouble);  // Z − F, [G, N]
            const at::Tensor zr = zf.round().clamp(0, qw.maxq());
            const double err = (zr - zf).abs().max().item<double>();
            LOTA_CHECK(err == 0 || allow_lossy,
                       "%s: %s has LoTA offsets F that are not integers (Z − F is up to %.3g grid steps from an "
                       "integer zero point); GPTQ stores integer zero points: --allow-lossy rounds Z − F",
                       model.c_str(), prefix.c_str(), err);
            rep.clamped += (zf.round() != zr).sum().item<int64_t>();
            rep.max_error_steps = std::max(rep.max_error_steps, err);
            rep.offsets_rounded += err > 0;
            qw.zeros = zr.to(at::kInt);
            qw.offset = at::Tensor();
        }
        at::Tensor bias = t.bias;
        t = quant::gptq_tensors_from_quantized_weight(qw, "gptq");
        t.bias = bias;
    }
    // Rounded zero points are no longer the symmetric one; the file says what it holds.
    if (rep.offsets_rounded > 0) ckpt.quant.sym = false;
    ckpt.quant.lota_offset = false;
    ckpt.quant.extra.erase("lota_offset_note");  // lota merge's note that the file carries offsets
    ckpt.quant.checkpoint_format = "gptq";
    StagedDir staged(out, overwrite);
    io::gptq_checkpoint_write(staged.path(), ckpt);
    io::model_text_files_copy(model, staged.path());
    staged.commit();
    return rep;
}

}  // namespace lota::cli
