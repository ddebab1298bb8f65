// Shared helpers for the LoTA-QAF tests: seeded random inputs in DESIGN §1's layout and a
// tolerance comparison that reports the worst element.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "quant/quantized_weight.h"

namespace lota_test {

inline at::Generator make_gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

/// Uniform ternary int8 tensor.
inline at::Tensor rand_ternary(at::IntArrayRef shape, at::Generator& gen) {
    return at::randint(-1, 2, shape, gen, at::TensorOptions().dtype(at::kChar));
}

/// Codes Q [K, N] in [0, maxq]; about a third of them sit at the grid edges 0 and maxq.
inline at::Tensor rand_codes(int64_t K, int64_t N, int64_t maxq, at::Generator& gen) {
    at::Tensor q = at::randint(0, maxq + 1, {K, N}, gen, at::TensorOptions().dtype(at::kInt));
    const at::Tensor u = at::rand({K, N}, gen);
    q = at::where(u.lt(1.0 / 6), at::zeros_like(q), q);
    q = at::where(u.gt(5.0 / 6), at::full_like(q, maxq), q);
    return q;
}

/// Act-order g_idx: a random permutation of the rows, group i/g of the permuted order, so groups
/// are non-contiguous and non-monotonic. int32 [K].
inline at::Tensor act_order_g_idx(int64_t K, int64_t g, at::Generator& gen) {
    const at::Tensor perm = at::randperm(K, gen, at::kLong);
    const at::Tensor groups = at::arange(K, at::kLong).div(g, "floor");
    return at::empty({K}, at::kLong).index_copy_(0, perm, groups).to(at::kInt);
}

/// fp16 scales [G, N] in [0.01, 0.05].
inline at::Tensor rand_scales(int64_t G, int64_t N, at::Generator& gen) {
    return (at::rand({G, N}, gen) * 0.04 + 0.01).to(at::kHalf);
}

/// Expects |actual − ref| ≤ atol + rtol·|ref| elementwise (compared in float64); on failure prints
/// the max absolute and relative errors, the index and both values. NaN/Inf always fail.
/// A random quantized layer (codes, zeros, fp16 scales; act-order g_idx when asked), checked.
inline lota::quant::QuantizedWeight make_layer(int64_t K, int64_t N, int bits, int64_t g, bool act_order,
                                               at::Generator& gen) {
    const int64_t maxq = (1 << bits) - 1, G = K / g;
    lota::quant::QuantizedWeight qw;
    qw.bits = bits;
    qw.group_size = static_cast<int>(g);
    qw.in_features = K;
    qw.out_features = N;
    qw.qweight = lota::quant::pack_codes(rand_codes(K, N, maxq, gen), bits);
    qw.zeros = at::randint(0, maxq + 1, {G, N}, gen, at::TensorOptions().dtype(at::kInt));
    qw.scales = rand_scales(G, N, gen);
    qw.g_idx = act_order ? act_order_g_idx(K, g, gen) : at::arange(K, at::kInt).div(g, "floor").to(at::kInt);
    lota::quant::quantized_weight_check(qw, "test layer");
    return qw;
}

inline void expect_close(const at::Tensor& actual, const at::Tensor& ref, double atol, double rtol,
                         const std::string& what) {
    ASSERT_EQ(actual.sizes(), ref.sizes()) << what;
    const at::Tensor a = actual.to(at::kDouble).reshape({-1}), b = ref.to(at::kDouble).reshape({-1});
    ASSERT_TRUE(a.isfinite().all().item<bool>()) << what << ": non-finite values";
    ASSERT_TRUE(b.isfinite().all().item<bool>()) << what << ": non-finite reference";
    const at::Tensor err = (a - b).abs();
    const at::Tensor excess = err - (atol + rtol * b.abs());
    const int64_t i = excess.argmax().item<int64_t>();
    const double max_abs = err.max().item<double>();
    const double max_rel = (err / b.abs().clamp_min(1e-300)).max().item<double>();
    EXPECT_LE(excess[i].item<double>(), 0.0)
        << what << ": max abs err " << max_abs << ", max rel err " << max_rel << ", worst at flat index " << i
        << ": got " << a[i].item<double>() << ", expected " << b[i].item<double>() << " (atol " << atol << ", rtol "
        << rtol << ")";
    std::printf("[ info ] %s: max abs err %.3g (%.3g of max|ref|), max rel err %.3g\n", what.c_str(), max_abs,
                max_abs / std::max(b.abs().max().item<double>(), 1e-300), max_rel);
}

/// Bit-for-bit equality of two tensors of the same dtype; prints the first mismatch.
inline void expect_bitwise_equal(const at::Tensor& actual, const at::Tensor& ref, const std::string& what) {
    ASSERT_EQ(actual.scalar_type(), ref.scalar_type()) << what;
    ASSERT_EQ(actual.sizes(), ref.sizes()) << what;
    at::Tensor a = actual.contiguous(), b = ref.contiguous();
    at::Tensor a_bits = a, b_bits = b;  // floats compare as raw bits (−0 ≠ +0, NaN payloads count)
    if (a.scalar_type() == at::kFloat) a_bits = a.view(at::kInt), b_bits = b.view(at::kInt);
    if (a.scalar_type() == at::kDouble) a_bits = a.view(at::kLong), b_bits = b.view(at::kLong);
    if (a.scalar_type() == at::kHalf || a.scalar_type() == at::kBFloat16)
        a_bits = a.view(at::kShort), b_bits = b.view(at::kShort);
    const at::Tensor ne = a_bits.reshape({-1}).ne(b_bits.reshape({-1}));
    const int64_t n_bad = ne.sum().item<int64_t>();
    if (n_bad == 0) return;
    const int64_t i = ne.to(at::kInt).argmax().item<int64_t>();
    ADD_FAILURE() << what << ": " << n_bad << " elements differ; first at flat index " << i << ": got "
                  << a.reshape({-1})[i].item<double>() << ", expected " << b.reshape({-1})[i].item<double>();
}

}  // namespace lota_test
