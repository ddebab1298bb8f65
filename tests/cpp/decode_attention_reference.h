// Shared by the decode-attention tests (quant/test_fused_ops.cpp on the CPU, kernels/
// test_decode_attention_cuda.cpp): random inputs as the model makes them, and the float64 definition
// of kernels::decode_attention to compare with.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <ATen/ATen.h>

#include "kernels/rope.h"

namespace lota_test {

struct DecodeAttentionCase {
    at::Tensor q, k, v;        // [B, 1, heads, D] views of one fused q/k/v output, as the model has them
    at::Tensor cos, sin;       // [B, 1, D]
    at::Tensor k_cache, v_cache;  // [B, Hkv, S, D] random, the slots' old contents
    at::Tensor key_mask;       // [B, S] random, about 3 in 4 slots attended (those past p too)
    at::Tensor write_pos;      // [1] = p
    double scale = 0.0;
};

inline DecodeAttentionCase make_decode_attention_case(int64_t B, int64_t H, int64_t Hkv, int64_t S, int64_t D,
                                                      int64_t p, at::ScalarType dtype, const at::Device& dev) {
    const at::TensorOptions o = at::TensorOptions().dtype(dtype).device(dev);
    DecodeAttentionCase c;
    const at::Tensor y = at::randn({B, 1, (H + 2 * Hkv) * D}, o);
    c.q = y.narrow(-1, 0, H * D).view({B, 1, H, D});
    c.k = y.narrow(-1, H * D, Hkv * D).view({B, 1, Hkv, D});
    c.v = y.narrow(-1, (H + Hkv) * D, Hkv * D).view({B, 1, Hkv, D});
    const at::Tensor angles = (at::rand({B, 1, D / 2}, at::kDouble) * 200).repeat({1, 1, 2});
    c.cos = angles.cos().to(o);
    c.sin = angles.sin().to(o);
    c.k_cache = at::randn({B, Hkv, S, D}, o);
    c.v_cache = at::randn({B, Hkv, S, D}, o);
    c.key_mask = (at::rand({B, S}) < 0.75).to(dev);
    c.write_pos = at::full({1}, p, at::TensorOptions().dtype(at::kLong).device(dev));
    c.scale = 1.0 / std::sqrt(static_cast<double>(D));
    return c;
}

/// "bfloat16 B 3 H 32 Hkv 8 D 128 S 300 p 150": the case, for a failure message.
inline std::string describe(const DecodeAttentionCase& c) {
    std::string s = c10::toString(c.q.scalar_type());
    const std::pair<const char*, int64_t> dims[] = {{"B", c.q.size(0)},       {"H", c.q.size(2)},
                                                    {"Hkv", c.k_cache.size(1)}, {"D", c.q.size(3)},
                                                    {"S", c.k_cache.size(2)},   {"p", c.write_pos.item<int64_t>()}};
    for (const auto& [name, n] : dims) s += std::string(" ") + name + " " + std::to_string(n);
    return s;
}

/// The caches after the write: slot p holds rope(k) (rope.h's formula in the dtype) and v.
inline std::pair<at::Tensor, at::Tensor> decode_attention_expected_caches(const DecodeAttentionCase& c) {
    const int64_t p = c.write_pos.item<int64_t>();
    at::Tensor kc = c.k_cache.cpu().clone(), vc = c.v_cache.cpu().clone();
    kc.narrow(2, p, 1).copy_(lota::kernels::rope_rotate(c.k.cpu().transpose(1, 2), c.cos.cpu(), c.sin.cpu()));
    vc.narrow(2, p, 1).copy_(c.v.cpu().transpose(1, 2));
    return {kc, vc};
}

/// o [B, 1, H·D] in float64: rope(q) (in the dtype), then softmax(scale·q·k) over the attended slots of the
/// caches after the write, times v; query head h reads kv head h / (H / Hkv).
inline at::Tensor decode_attention_reference(const DecodeAttentionCase& c) {
    const int64_t B = c.q.size(0), H = c.q.size(2), D = c.q.size(3), Hkv = c.k_cache.size(1), S = c.k_cache.size(2);
    const int64_t p = c.write_pos.item<int64_t>();
    const auto [kc, vc] = decode_attention_expected_caches(c);
    const at::Tensor q = lota::kernels::rope_rotate(c.q.cpu().transpose(1, 2), c.cos.cpu(), c.sin.cpu())
                             .to(at::kDouble);  // [B, H, 1, D]
    const at::Tensor keys = kc.to(at::kDouble).repeat_interleave(H / Hkv, 1);  // [B, H, S, D]
    const at::Tensor values = vc.to(at::kDouble).repeat_interleave(H / Hkv, 1);
    at::Tensor attended = c.key_mask.cpu().clone();
    attended.select(1, p).fill_(true);
    const at::Tensor scores = at::matmul(q, keys.transpose(2, 3)) * c.scale;  // [B, H, 1, S]
    const at::Tensor masked =
        scores.masked_fill(attended.logical_not().view({B, 1, 1, S}), -std::numeric_limits<double>::infinity());
    return at::matmul(at::softmax(masked, -1), values).transpose(1, 2).reshape({B, 1, H * D});
}

}  // namespace lota_test
