// Linear construction from checkpoint tensors (see linear_loader.h).
#include "model/linear_loader.h"

#include <ATen/ATen.h>

#include "model/quant_loader.h"
#include "util/check.h"

namespace lota::model {

LinearPtr linear_load(const io::ModelFiles& files, const io::ModelConfig& cfg, const std::string& config_path,
                      const std::string& prefix, int64_t in, int64_t out, bool bias, const at::Device& device,
                      at::ScalarType dtype) {
    if (!cfg.quantization_config.is_null())
        return quant_linear_load(files, cfg.quantization_config, config_path, prefix, in, out, bias, device, dtype);
    std::string why = strfmt("out=%lld, in=%lld from %s", (long long)out, (long long)in, config_path.c_str());
    at::Tensor w = files.load_checked(prefix + ".weight", {out, in}, why).to(device, dtype);
    at::Tensor b;
    if (bias) b = files.load_checked(prefix + ".bias", {out}, why).to(device, dtype);
    return std::make_shared<DenseLinear>(w, b);
}

}  // namespace lota::model
