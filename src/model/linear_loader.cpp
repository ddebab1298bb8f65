// Linear construction from checkpoint tensors (see linear_loader.h).
#include "model/linear_loader.h"

#include <ATen/ATen.h>

#include "model/quant_linear.h"
#include "quant/gptq_tensors.h"
#include "util/check.h"

namespace lota::model {

LinearPtr linear_load(const io::ModelFiles& files, const std::optional<io::GptqConfig>& gptq, const LinearSpec& spec,
                      const at::Device& device, at::ScalarType dtype, io::FiniteCheck* finite) {
    const std::string& p = spec.prefix;
    if (gptq && files.has(p + ".qweight")) {
        io::GptqLinearTensors t = io::gptq_linear_read(files, p, *gptq, spec.in, spec.out);
        LOTA_CHECK(!spec.bias || t.bias.defined(), "%s: missing tensor '%s.bias' (the architecture has a bias here)",
                   files.file_of(p + ".qweight").c_str(), p.c_str());
        auto linear = std::make_shared<QuantLinear>(quant::quantized_weight_from_gptq(t, *gptq, p));
        linear->to(device, dtype);
        return linear;
    }
    LOTA_CHECK(!gptq || files.has(p + ".weight"),
               "%s: missing tensor '%s.qweight' (a GPTQ checkpoint stores each projection quantized, or as "
               "'%s.weight')",
               files.dir().c_str(), p.c_str(), p.c_str());
    const std::string why =
        strfmt("out=%lld, in=%lld from %s", (long long)spec.out, (long long)spec.in, spec.shape_from.c_str());
    const at::Tensor w = files.load_checked(p + ".weight", {spec.out, spec.in}, why).to(device, dtype);
    at::Tensor b;
    if (spec.bias) b = files.load_checked(p + ".bias", {spec.out}, why).to(device, dtype);
    if (finite) {
        finite->add(w, files.file_of(p + ".weight"), p + ".weight");
        if (b.defined()) finite->add(b, files.file_of(p + ".bias"), p + ".bias");
    }
    return std::make_shared<DenseLinear>(w, b);
}

}  // namespace lota::model
