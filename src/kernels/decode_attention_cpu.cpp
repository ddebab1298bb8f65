// CPU twin of the decode-step attention (see decode_attention.h): plain loops, the spec. For each (b, h), in
// parallel: the scores scale·q·k_s of the slots that count, in float32; their softmax with the max subtracted;
// Σ w_s·v_s in slot order, divided by Σ w_s and rounded once to the output dtype.
#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/decode_attention.h"

namespace lota::kernels {
namespace {

// q [B, H, D] at (b, h, d) = q[b·qs_b + h·qs_h + d]; k, v [B, Hkv, S, D] and mask [B, S] contiguous; o [B, H, D].
template <typename T>
void decode_attention_cpu_typed(const T* q, int64_t qs_b, int64_t qs_h, const T* k, const T* v, const bool* mask,
                                int64_t B, int64_t H, int64_t Hkv, int64_t S, int64_t D, int64_t p, float scale,
                                T* o) {
    const int64_t G = H / Hkv;
    at::parallel_for(0, B * H, 1, [&](int64_t r0, int64_t r1) {
        std::vector<int64_t> slots(p + 1);
        std::vector<float> w(p + 1), acc(D);
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t b = r / H, h = r % H;
            const T* qr = q + b * qs_b + h * qs_h;
            const T* kh = k + (b * Hkv + h / G) * S * D;
            const T* vh = v + (b * Hkv + h / G) * S * D;
            int64_t n = 0;
            float w_max = -INFINITY;
            for (int64_t s = 0; s <= p; ++s) {
                if (!mask[b * S + s] && s != p) continue;  // the new token always sees itself
                float dot = 0.0f;
                for (int64_t d = 0; d < D; ++d) dot += static_cast<float>(qr[d]) * static_cast<float>(kh[s * D + d]);
                slots[n] = s;
                w[n] = scale * dot;
                w_max = std::max(w_max, w[n]);
                ++n;
            }
            float sum = 0.0f;
            for (int64_t i = 0; i < n; ++i) {
                w[i] = std::exp(w[i] - w_max);
                sum += w[i];
            }
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t i = 0; i < n; ++i)
                for (int64_t d = 0; d < D; ++d) acc[d] += w[i] * static_cast<float>(vh[slots[i] * D + d]);
            for (int64_t d = 0; d < D; ++d) o[r * D + d] = static_cast<T>(acc[d] / sum);
        }
    });
}

}  // namespace

void decode_attention_cpu(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const at::Tensor& key_mask, int64_t p, double scale, at::Tensor& o) {
    const int64_t B = q.size(0), H = q.size(1), D = q.size(2), Hkv = k_cache.size(1), S = k_cache.size(2);
    const bool* mask = key_mask.data_ptr<bool>();
    const auto run = [&](auto type_tag) {
        using T = decltype(type_tag);
        decode_attention_cpu_typed(q.data_ptr<T>(), q.stride(0), q.stride(1), k_cache.data_ptr<T>(),
                                   v_cache.data_ptr<T>(), mask, B, H, Hkv, S, D, p, static_cast<float>(scale),
                                   o.data_ptr<T>());
    };
    switch (q.scalar_type()) {
        case at::kFloat: run(float{}); break;
        case at::kHalf: run(c10::Half{}); break;
        case at::kBFloat16: run(c10::BFloat16{}); break;
        default: break;  // decode_attention allows only the three types above
    }
}

}  // namespace lota::kernels
