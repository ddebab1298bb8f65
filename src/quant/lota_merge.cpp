// Exact LoTA-QAF merge (see lota_merge.h): unpack Q, M and F by lota_merge_reference, repack Q + M,
// attach F.
#include "quant/lota_merge.h"

#include <ATen/ATen.h>

#include "quant/lota.h"
#include "util/check.h"

namespace lota::quant {

QuantizedWeight lota_merge(const QuantizedWeight& qw, const at::Tensor& a_t, const at::Tensor& b_t, double omega) {
    quantized_weight_check(qw, "LoTA merge");
    LOTA_CHECK(!qw.offset.defined(),
               "LoTA merge: the layer already carries a LoTA offset (an already merged model); merge adapters "
               "into the original quantized model instead");
    const int64_t K = qw.in_features, N = qw.out_features;
    LOTA_CHECK(a_t.defined() && b_t.defined() && a_t.dim() == 2 && b_t.dim() == 2 && a_t.size(1) == K &&
                   b_t.size(0) == N,
               "LoTA merge: adapter shapes lora_A.weight %s and lora_B.weight %s do not fit the layer (expected [r, %lld] "
               "and [%lld, r])",
               a_t.defined() ? shape_str(a_t.sizes().vec()).c_str() : "(undefined)",
               b_t.defined() ? shape_str(b_t.sizes().vec()).c_str() : "(undefined)", static_cast<long long>(K),
               static_cast<long long>(N));
    const at::Device device = qw.qweight.device();
    const at::Tensor q = unpack_codes(qw);  // uint8 [K, N]
    const LotaMergeTerms pm =
        lota_merge_reference(a_t.to(device), b_t.to(device), q, qw.g_idx, qw.n_groups(), omega, qw.maxq());
    const at::Tensor merged = q.to(at::kInt) + pm.markers.to(at::kInt);
    // The masks keep Q + M on the grid; anything else is a bug in lota_markers.
    LOTA_ASSERT(merged.min().item<int64_t>() >= 0 && merged.max().item<int64_t>() <= qw.maxq());
    QuantizedWeight out = qw;
    out.qweight = pack_codes(merged, qw.bits);
    out.offset = pm.offset;
    return out;
}

}  // namespace lota::quant
