// Shared by the decode-attention tests (kernels/decode_attention.h; CPU: tests/cpp/quant/test_fused_ops.cpp,
// CUDA: tests/cpp/kernels/test_decode_attention_cuda.cpp): random cache contents, the op's definition in
// float64 written independently with ATen ops (gather the slots that count, repeat the kv heads, softmax),
// and the tolerance the op's single float32-to-dtype rounding allows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace lota_decode_attention_test {

struct Inputs {
    at::Tensor q;          ///< [B, H, D] view: heads Hkv .. Hkv + H − 1 of a [B, H + 2·Hkv, D] tensor
    at::Tensor k, v;       ///< [B, Hkv, S, D]
    at::Tensor key_mask;   ///< [B, S] bool
    at::Tensor write_pos;  ///< [1] int64
    int64_t p = 0;
};

/// Random inputs on `device` with the new token at slot p. key_mask: sequence b starts after a random number of
/// padding slots, up to min(p, pad_max) (up to p: some see only themselves), about 10% holes after that,
/// key_mask[b][p] false for every other b (the self slot counts anyway) and random bits past p. Masked slots
/// before p hold k, v of 30 times the spread, which would dominate any softmax they entered; slots past p hold
/// NaN (never read).
inline Inputs make_inputs(int64_t B, int64_t H, int64_t Hkv, int64_t S, int64_t D, int64_t p, at::ScalarType dtype,
                          uint64_t seed, const at::Device& device = at::kCPU,
                          int64_t pad_max = std::numeric_limits<int64_t>::max()) {
    at::manual_seed(seed);
    const at::TensorOptions f32 = at::TensorOptions().device(device), i64 = f32.dtype(at::kLong);
    Inputs in;
    in.p = p;
    in.q = (at::randn({B, H + 2 * Hkv, D}, f32) * 2).to(dtype).narrow(1, Hkv, H);
    const at::Tensor slot = at::arange(S, i64).view({1, S});
    const at::Tensor pad = at::randint(0, std::min(p, pad_max) + 1, {B, 1}, i64);
    at::Tensor mask = slot.ge(pad).logical_and(at::rand({B, S}, f32).ge(0.1));
    mask.select(1, p).copy_(at::arange(B, i64).add(static_cast<int64_t>(seed % 2)).remainder(2).eq(0));
    in.key_mask = at::where(slot.gt(p), at::rand({B, S}, f32).lt(0.5), mask).contiguous();
    const at::Tensor hidden = in.key_mask.logical_not().logical_and(slot.ne(p)).view({B, 1, S, 1});
    const at::Tensor past = slot.gt(p).view({1, 1, S, 1});
    for (at::Tensor* t : {&in.k, &in.v}) {
        at::Tensor x = at::randn({B, Hkv, S, D}, f32);
        x = at::where(hidden, x * 30, x);
        *t = at::where(past, at::full({}, NAN, f32), x).to(dtype).contiguous();
    }
    in.write_pos = at::full({1}, p, i64);
    return in;
}

struct Reference {
    at::Tensor o;        ///< [B, H, D] float64, on the inputs' device
    double v_max = 0.0;  ///< max |v| over the slots that count
};

/// The op's definition in float64 for key_mask `mask` and new-token slot p (any device).
inline Reference reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                           int64_t p, double scale) {
    const int64_t B = q.size(0), H = q.size(1), Hkv = k.size(1);
    std::vector<at::Tensor> rows;
    Reference r;
    for (int64_t b = 0; b < B; ++b) {
        at::Tensor counts = mask[b].narrow(0, 0, p + 1).clone();
        counts[p].fill_(true);
        const at::Tensor idx = counts.nonzero().squeeze(1);
        const at::Tensor kb = k[b].index_select(1, idx).to(at::kDouble).repeat_interleave(H / Hkv, 0);  // [H, n, D]
        const at::Tensor vb = v[b].index_select(1, idx).to(at::kDouble).repeat_interleave(H / Hkv, 0);
        const at::Tensor scores = at::matmul(kb, q[b].to(at::kDouble).unsqueeze(-1)).squeeze(-1) * scale;  // [H, n]
        rows.push_back(at::matmul(at::softmax(scores, -1).unsqueeze(1), vb).squeeze(1));
        r.v_max = std::max(r.v_max, vb.abs().max().item<double>());
    }
    r.o = at::stack(rows);
    return r;
}

/// |o − ref| ≤ u·|ref| + atol per element: u = 2^-8 (bfloat16), 2^-11 (float16), 2^-24 (float32) bounds
/// the one rounding of the float32 result; atol = 4e-5·v_max bounds the float32 arithmetic before it
/// (dot products of D terms, sums of up to S weights), plus 2^-24 for float16's subnormal outputs.
/// Returns the worst |o − ref| / tolerance (≤ 1 passes); a NaN, Inf or larger ratio fails the test.
inline double expect_within_tolerance(const at::Tensor& o, const Reference& ref, const std::string& what) {
    EXPECT_EQ(o.sizes(), ref.o.sizes()) << what;
    if (o.sizes() != ref.o.sizes()) return INFINITY;
    const at::ScalarType dt = o.scalar_type();
    const double u = dt == at::kBFloat16 ? std::ldexp(1.0, -8) : dt == at::kHalf ? std::ldexp(1.0, -11)
                                                                                  : std::ldexp(1.0, -24);
    const double atol = 4e-5 * ref.v_max + (dt == at::kHalf ? std::ldexp(1.0, -24) : 0.0);
    const at::Tensor got = o.to(at::kDouble).cpu().reshape({-1}), want = ref.o.cpu().reshape({-1});
    const at::Tensor ratio = (got - want).abs() / (u * want.abs() + atol);
    const int64_t bad = got.isfinite().logical_not().sum().item<int64_t>();
    const int64_t i = ratio.argmax().item<int64_t>();
    const double worst = ratio[i].item<double>();
    EXPECT_TRUE(bad == 0 && worst <= 1.0)
        << what << ": " << bad << " non-finite outputs; worst at flat index " << i << ": got " << got[i].item<double>()
        << ", expected " << want[i].item<double>() << ", error " << worst << " times the tolerance (u " << u
        << ", atol " << atol << ")";
    return bad == 0 ? worst : INFINITY;
}

}  // namespace lota_decode_attention_test
