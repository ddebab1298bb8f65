// QA-LoRA group pooling, offset and merge (qalora.h; Note [QA-LoRA pooling and merge]).
#include "quant/qalora.h"

#include <vector>

#include <ATen/ATen.h>

#include "util/check.h"
#include "util/strfmt.h"

namespace lota::quant {
namespace {

struct PoolingName {
    QaLoraPooling pooling;
    const char* name;
};
const PoolingName POOLING_NAMES[] = {{QaLoraPooling::MEAN, "mean"}, {QaLoraPooling::SUM, "sum"}};

}  // namespace

QaLoraPooling qalora_pooling_parse(const std::string& name, const std::string& what) {
    for (const PoolingName& p : POOLING_NAMES)
        if (name == p.name) return p.pooling;
    LOTA_FAIL("%s: unknown QA-LoRA pooling '%s' (expected mean or sum)", what.c_str(), name.c_str());
}

const char* qalora_pooling_name(QaLoraPooling pooling) {
    for (const PoolingName& p : POOLING_NAMES)
        if (p.pooling == pooling) return p.name;
    LOTA_FAIL("QA-LoRA pooling %d has no name", static_cast<int>(pooling));
}

double qalora_pool_scale(QaLoraPooling pooling, int64_t group_size) {
    LOTA_CHECK(group_size > 0, "QA-LoRA: group size must be positive, got %lld", (long long)group_size);
    return pooling == QaLoraPooling::MEAN ? 1.0 / (double)group_size : 1.0;
}

void qalora_check_layer(const QuantizedWeight& qw, const std::string& what) {
    const char* w = what.c_str();
    LOTA_CHECK(qw.group_size > 0,
               "%s: QA-LoRA needs a group-wise quantized model (group size 32, 64, 128...); this one is quantized "
               "per output channel (group_size %d)", w, qw.group_size);
    LOTA_CHECK(qw.in_features % qw.group_size == 0, "%s: group size %d does not divide in_features %lld", w,
               qw.group_size, (long long)qw.in_features);
    LOTA_CHECK(!qw.offset.defined(),
               "%s: the layer already carries a per-group offset (a merged model); train and merge QA-LoRA on the "
               "original quantized model", w);
    LOTA_CHECK(qw.g_idx.defined() && qw.g_idx.dim() == 1 && qw.g_idx.size(0) == qw.in_features,
               "%s: g_idx must be [%lld]", w, (long long)qw.in_features);
    const at::Tensor contiguous =
        at::arange(qw.in_features, qw.g_idx.options().dtype(at::kLong)).div(qw.group_size, "floor");
    LOTA_CHECK(at::equal(qw.g_idx.to(at::kLong), contiguous),
               "%s: g_idx is not k / group_size (an act-order model, non-contiguous groups); QA-LoRA pools contiguous "
               "groups of the input, so quantize without --act-order", w);
}

at::Tensor qalora_pool(const at::Tensor& x, int64_t group_size, QaLoraPooling pooling) {
    const int64_t K = x.size(-1);
    LOTA_CHECK(group_size > 0 && K % group_size == 0, "QA-LoRA pool: group size %lld does not divide %lld features",
               (long long)group_size, (long long)K);
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = K / group_size;
    shape.push_back(group_size);
    const at::Tensor grouped = x.reshape(shape);
    return pooling == QaLoraPooling::MEAN ? grouped.mean(-1) : grouped.sum(-1);
}

at::Tensor qalora_offset(const at::Tensor& lora_a, const at::Tensor& lora_b, const at::Tensor& scales, double scaling,
                         QaLoraPooling pooling, int64_t group_size) {
    LOTA_CHECK(lora_a.defined() && lora_b.defined() && lora_a.dim() == 2 && lora_b.dim() == 2 &&
                   lora_a.size(0) == lora_b.size(1),
               "QA-LoRA: lora_A.weight %s and lora_B.weight %s are not [r, G] and [N, r]",
               lora_a.defined() ? shape_str(lora_a.sizes().vec()).c_str() : "(undefined)",
               lora_b.defined() ? shape_str(lora_b.sizes().vec()).c_str() : "(undefined)");
    const int64_t G = lora_a.size(1), N = lora_b.size(0);
    LOTA_CHECK(scales.defined() && scales.dim() == 2 && scales.size(0) == G && scales.size(1) == N,
               "QA-LoRA: scales %s do not match the adapter's [G, N] = [%lld, %lld]",
               scales.defined() ? shape_str(scales.sizes().vec()).c_str() : "(undefined)", (long long)G, (long long)N);
    const at::Device dev = lora_a.device();
    // D = s·c·(B·A)ᵀ [G, N] in float64 (each product of two float32 values is exact in float64), then F = D / S.
    const at::Tensor d = at::matmul(lora_b.detach().to(dev, at::kDouble), lora_a.detach().to(at::kDouble)).t();
    const at::Tensor s = scales.to(dev, at::kDouble);
    return (d * (scaling * qalora_pool_scale(pooling, group_size)) / s).to(at::kFloat).contiguous();
}

QuantizedWeight qalora_merge(const QuantizedWeight& qw, const at::Tensor& lora_a, const at::Tensor& lora_b,
                             double scaling, QaLoraPooling pooling) {
    quantized_weight_check(qw, "QA-LoRA merge");
    qalora_check_layer(qw, "QA-LoRA merge");
    LOTA_CHECK(lora_a.defined() && lora_a.dim() == 2 && lora_a.size(1) == qw.n_groups() && lora_b.defined() &&
                   lora_b.dim() == 2 && lora_b.size(0) == qw.out_features,
               "QA-LoRA merge: adapter shapes lora_A.weight %s and lora_B.weight %s do not fit the layer (expected "
               "[r, %lld] and [%lld, r])",
               lora_a.defined() ? shape_str(lora_a.sizes().vec()).c_str() : "(undefined)",
               lora_b.defined() ? shape_str(lora_b.sizes().vec()).c_str() : "(undefined)", (long long)qw.n_groups(),
               (long long)qw.out_features);
    QuantizedWeight out = qw;
    out.offset = qalora_offset(lora_a, lora_b, qw.scales, scaling, pooling, qw.group_size).to(qw.scales.device());
    return out;
}

}  // namespace lota::quant
