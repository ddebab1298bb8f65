// QuantizedWeight <-> stored GPTQ tensors (see gptq_tensors.h).
#include "quant/gptq_tensors.h"

#include <ATen/ATen.h>

#include "quant/pack.h"
#include "util/check.h"
#include "util/log.h"

namespace lota::quant {

namespace {

// v1 qzeros -> unpacked exact zero points Z [G, N] (see quantized_weight_from_gptq).
at::Tensor zeros_from_v1(const at::Tensor& qzeros, const io::GptqConfig& c, const std::string& prefix) {
    if (c.bits != 3 || c.qzeros_3bit == io::Qzeros3Bit::WHOLE_WORD) return unpack_zeros(qzeros_v1_to_v2(qzeros, c.bits), c.bits);
    const at::Tensor per_field = unpack_zeros(qzeros_v1_to_v2_per_field(qzeros, 3), 3);
    if (c.qzeros_3bit == io::Qzeros3Bit::PER_FIELD) return per_field;
    const at::Tensor whole_word = unpack_zeros(qzeros_v1_to_v2(qzeros, 3), 3);
    if (at::equal(per_field, whole_word)) return per_field;
    if (c.sym) {
        if (per_field.eq(4).all().item<bool>()) return per_field;
        if (whole_word.eq(4).all().item<bool>()) return whole_word;
        LOTA_FAIL("%s.qzeros: 3-bit symmetric zero points are 4 neither read per field nor by whole words; the "
                  "file's v1 packing is not one lota reads", prefix.c_str());
    }
    static bool warned = false;
    if (!warned)
        LOTA_LOG_WARN("%s.qzeros: the checkpoint does not say how its 3-bit v1 zero points are packed "
                      "(quantize_config \"qzeros_3bit\"); reading them per field, as AutoGPTQ and GPTQModel >= 7.0.0 "
                      "write them", prefix.c_str());
    warned = true;
    return per_field;
}

}  // namespace

QuantizedWeight quantized_weight_from_gptq(const io::GptqLinearTensors& t, const io::GptqConfig& c,
                                          const std::string& prefix) {
    QuantizedWeight qw;
    qw.bits = c.bits;
    qw.group_size = c.group_size;
    qw.in_features = t.g_idx.size(0);
    qw.out_features = t.qweight.size(1);
    qw.qweight = t.qweight.contiguous();
    qw.zeros = c.checkpoint_format == "gptq" ? zeros_from_v1(t.qzeros, c, prefix) : unpack_zeros(t.qzeros, c.bits);
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
    t.qzeros = checkpoint_format != "gptq" ? packed
               : qw.bits == 3              ? qzeros_v2_to_v1_per_field(packed, 3)
                                           : qzeros_v2_to_v1(packed, qw.bits);
    t.qweight = qw.qweight.to(at::kCPU).contiguous();
    t.scales = qw.scales.to(at::kCPU).contiguous();
    t.g_idx = qw.g_idx.to(at::kCPU).contiguous();
    if (qw.bias.defined()) t.bias = qw.bias.to(at::kCPU).contiguous();
    if (qw.offset.defined()) t.lota_offset = qw.offset.to(at::kCPU, at::kFloat).contiguous();
    return t;
}

io::GptqConfig gptq_config_of(const QuantOptions& opts, const std::string& method) {
    io::GptqConfig c;
    c.bits = opts.bits;
    c.group_size = opts.group_size;
    c.sym = opts.sym;
    c.desc_act = opts.act_order;
    c.extra = {{"damp_percent", opts.damp}, {"static_groups", false}, {"true_sequential", true},
               {"lm_head", false}, {"meta", {{"quantizer", {"lota"}}, {"method", method}}}};
    return c;
}

}  // namespace lota::quant
