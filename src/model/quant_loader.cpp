// GPTQ linears from a checkpoint's tensors (see quant_loader.h).
#include "model/quant_loader.h"

#include <ATen/ATen.h>

#include "io/gptq_checkpoint.h"
#include "model/quant_linear.h"
#include "quant/gptq_tensors.h"
#include "util/check.h"

namespace lota::model {

LinearPtr quant_linear_load(const io::ModelFiles& files, const nlohmann::json& quantization_config,
                            const std::string& config_path, const std::string& prefix, int64_t in, int64_t out,
                            bool bias, const at::Device& device, at::ScalarType dtype) {
    const io::GptqConfig cfg = io::gptq_config_from_json(quantization_config, config_path);
    if (!files.has(prefix + ".qweight") && files.has(prefix + ".weight")) {
        const std::string why = strfmt("out=%lld, in=%lld from %s", (long long)out, (long long)in, config_path.c_str());
        at::Tensor w = files.load_checked(prefix + ".weight", {out, in}, why).to(device, dtype);
        at::Tensor b;
        if (bias) b = files.load_checked(prefix + ".bias", {out}, why).to(device, dtype);
        return std::make_shared<DenseLinear>(w, b);
    }
    io::GptqLinearTensors t;
    t.qweight = files.load(prefix + ".qweight");
    t.qzeros = files.load(prefix + ".qzeros");
    t.scales = files.load(prefix + ".scales");
    t.g_idx = files.load(prefix + ".g_idx");
    if (files.has(prefix + ".bias")) t.bias = files.load(prefix + ".bias");
    if (files.has(prefix + ".lota_offset")) t.lota_offset = files.load(prefix + ".lota_offset");
    LOTA_CHECK(!bias || t.bias.defined(), "%s: missing tensor '%s.bias' (the architecture has a bias here)",
               files.file_of(prefix + ".qweight").c_str(), prefix.c_str());
    const std::string file = files.file_of(prefix + ".qweight");
    io::gptq_check_linear(t, prefix, in, out, cfg, file);
    quant::QuantizedWeight qw = quant::quantized_weight_from_gptq(t, cfg, file + ": " + prefix);
    auto linear = std::make_shared<QuantLinear>(std::move(qw));
    linear->to(device, dtype);
    return linear;
}

}  // namespace lota::model
