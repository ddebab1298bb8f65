// Dense HF export (hf_export.h). The quantized linears are read through io::gptq_linear_read and
// dequantized by quant::dequantize, the one formula lota computes with; nothing else changes but the
// dtype of float tensors. config.json keeps the layout it came in (transformers 4 `torch_dtype`, or
// transformers 5 `dtype`).
#include "exporter/hf_export.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "io/gptq_checkpoint.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "quant/gptq_tensors.h"
#include "quant/quantized_weight.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"

namespace lota::exporter {
namespace {

// Tensor name suffixes of one GPTQ linear that the dense weight replaces (the bias stays).
const char* const QUANT_SUFFIXES[] = {".qweight", ".qzeros", ".scales", ".g_idx", ".lota_offset"};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

HfExportReport hf_export(const ExportOptions& o) {
    const std::string &model = o.model, &out = o.out, &dtype = o.dtype;
    const bool overwrite = o.overwrite;
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

}  // namespace lota::exporter
