// QuantizedWeight <-> stored GPTQ tensors (see gptq_tensors.h).
#include "quant/gptq_tensors.h"

#include <ATen/ATen.h>

#include "quant/pack.h"
#include "util/check.h"

namespace lota::quant {

QuantizedWeight quantized_weight_from_gptq(const io::GptqLinearTensors& t, const io::GptqConfig& c) {
    QuantizedWeight qw;
    qw.bits = c.bits;
    qw.group_size = c.group_size;
    qw.in_features = t.g_idx.size(0);
    qw.out_features = t.qweight.size(1);
    const at::Tensor qzeros = c.checkpoint_format == "gptq" ? qzeros_v1_to_v2(t.qzeros, c.bits) : t.qzeros;
    qw.qweight = t.qweight.contiguous();
    qw.zeros = unpack_zeros(qzeros, c.bits);
    qw.scales = t.scales.contiguous();
    qw.g_idx = t.g_idx.contiguous();
    qw.bias = t.bias;
    qw.offset = t.lota_offset;
    return qw;
}

io::GptqLinearTensors gptq_tensors_from_quantized_weight(const QuantizedWeight& qw,
                                                         const std::string& checkpoint_format) {
    LOTA_CHECK(checkpoint_format == "gptq" || checkpoint_format == "gptq_v2",
               "unknown checkpoint_format \"%s\" (expected \"gptq\" or \"gptq_v2\")", checkpoint_format.c_str());
    io::GptqLinearTensors t;
    const at::Tensor packed = pack_zeros(qw.zeros.to(at::kCPU), qw.bits);
    t.qzeros = checkpoint_format == "gptq" ? qzeros_v2_to_v1(packed, qw.bits) : packed;
    t.qweight = qw.qweight.to(at::kCPU).contiguous();
    t.scales = qw.scales.to(at::kCPU).contiguous();
    t.g_idx = qw.g_idx.to(at::kCPU).contiguous();
    if (qw.bias.defined()) t.bias = qw.bias.to(at::kCPU).contiguous();
    if (qw.offset.defined()) t.lota_offset = qw.offset.to(at::kCPU, at::kFloat).contiguous();
    return t;
}

}  // namespace lota::quant
