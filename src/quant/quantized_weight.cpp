// Shape/dtype validation and dequantization of QuantizedWeight (see quantized_weight.h).
#include "quant/quantized_weight.h"

#include <ATen/ATen.h>

#include "kernels/dequant.h"
#include "quant/quantizer.h"
#include "util/check.h"

namespace lota::quant {
namespace {

void check_tensor(const char* what, const char* name, const at::Tensor& t, at::ScalarType dtype,
                  const std::vector<int64_t>& expected, const QuantizedWeight& qw) {
    LOTA_CHECK(t.defined(), "%s: tensor '%s' is missing", what, name);
    LOTA_CHECK(t.sizes().vec() == expected,
               "%s: tensor '%s' has shape %s, expected %s (in=%lld, out=%lld, bits=%d, group_size=%d)", what, name,
               shape_str(t.sizes().vec()).c_str(), shape_str(expected).c_str(), (long long)qw.in_features,
               (long long)qw.out_features, qw.bits, qw.group_size);
    LOTA_CHECK(t.scalar_type() == dtype, "%s: tensor '%s' has dtype %s, expected %s", what, name,
               c10::toString(t.scalar_type()), c10::toString(dtype));
}

}  // namespace

int64_t QuantizedWeight::n_groups() const { return group_size == -1 ? 1 : in_features / group_size; }

void quantized_weight_check(const QuantizedWeight& qw, const char* what) {
    check_bits(qw.bits, what);
    const int64_t K = qw.in_features, N = qw.out_features;
    LOTA_CHECK(K > 0 && N > 0, "%s: in_features and out_features must be positive, got in=%lld, out=%lld", what,
               (long long)K, (long long)N);
    LOTA_CHECK(qw.group_size == -1 || (qw.group_size > 0 && K % qw.group_size == 0),
               "%s: group_size %d does not divide in_features %lld (expected -1 or a divisor)", what, qw.group_size,
               (long long)K);
    LOTA_CHECK(K * qw.bits % 32 == 0, "%s: in_features %lld times %d bits is not a multiple of 32", what,
               (long long)K, qw.bits);
    const int64_t G = qw.n_groups();
    check_tensor(what, "qweight", qw.qweight, at::kInt, {K * qw.bits / 32, N}, qw);
    check_tensor(what, "zeros", qw.zeros, at::kInt, {G, N}, qw);
    check_tensor(what, "scales", qw.scales, at::kHalf, {G, N}, qw);
    check_tensor(what, "g_idx", qw.g_idx, at::kInt, {K}, qw);
    if (qw.bias.defined())
        LOTA_CHECK(qw.bias.dim() == 1 && qw.bias.size(0) == N, "%s: tensor 'bias' has shape %s, expected [%lld]",
                   what, shape_str(qw.bias.sizes().vec()).c_str(), (long long)N);
    if (qw.offset.defined()) check_tensor(what, "lota_offset", qw.offset, at::kFloat, {G, N}, qw);
    if (qw.g_idx.is_cpu()) {
        LOTA_CHECK(qw.g_idx.min().item<int64_t>() >= 0 && qw.g_idx.max().item<int64_t>() < G,
                   "%s: g_idx values must lie in [0, %lld), got [%lld, %lld]", what, (long long)G,
                   (long long)qw.g_idx.min().item<int64_t>(), (long long)qw.g_idx.max().item<int64_t>());
        LOTA_CHECK(qw.zeros.min().item<int64_t>() >= 0 && qw.zeros.max().item<int64_t>() <= qw.maxq(),
                   "%s: zero points must lie in [0, %d], got [%lld, %lld]", what, qw.maxq(),
                   (long long)qw.zeros.min().item<int64_t>(), (long long)qw.zeros.max().item<int64_t>());
    }
}

at::Tensor dequantize(const QuantizedWeight& qw, at::ScalarType dtype) {
    return kernels::dequant_forward(qw.qweight, qw.zeros, qw.scales, qw.g_idx, qw.offset, qw.bits, dtype);
}

}  // namespace lota::quant
