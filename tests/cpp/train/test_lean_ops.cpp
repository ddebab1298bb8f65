// model/lean_ops.h: the training RMSNorm, rotary embedding and SwiGLU product against autograd of
// their ATen formulas (float64 for RMSNorm and the rotation, whose backwards are written out; the same
// ops for silu·mul, which must match bit for bit). The CUDA runs are tests/cpp/cuda/test_train_cuda.cpp.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "model/lean_ops.h"
#include "model/rope.h"
#include "util/check.h"

namespace lota {
namespace {

// HF LlamaRMSNorm op for op, differentiable through ATen's autograd.
at::Tensor rms_norm_formula(const at::Tensor& x, const at::Tensor& w, double eps) {
    const at::Tensor xf = x.to(at::kFloat);
    return w * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

at::Tensor grad_of(const at::Tensor& y, const at::Tensor& x, const at::Tensor& g) {
    return torch::autograd::grad({y}, {x}, {g})[0];
}

void check_rms_norm(at::ScalarType dt, double tol) {
    at::manual_seed(5);
    const at::Tensor x0 = (at::randn({3, 7, 160}) * 3).to(dt);
    const at::Tensor w = (at::randn({160}) * 0.5 + 1).to(dt);
    const at::Tensor g = at::randn({3, 7, 160}).to(dt);
    const at::Tensor x = x0.clone().requires_grad_(true);
    const at::Tensor y = model::rms_norm_lean(x, w, 1e-5);
    // Forward: the no-grad kernel's values exactly.
    EXPECT_TRUE(at::equal(y.detach(), kernels::rms_norm(x0, w, 1e-5)));
    // Backward against autograd of the formula in float64 (what the float32 backward approximates).
    const at::Tensor xd = x0.to(at::kDouble).requires_grad_(true);
    const at::Tensor ref = grad_of(rms_norm_formula(xd, w.to(at::kDouble), 1e-5), xd, g.to(at::kDouble));
    const at::Tensor got = grad_of(y, x, g).to(at::kDouble);
    EXPECT_EQ(got.scalar_type(), at::kDouble);
    const double err = (got - ref).abs().max().item<double>(), scale = ref.abs().max().item<double>();
    EXPECT_LT(err, tol * scale) << c10::toString(dt) << ": max |Δ| " << err << " of " << scale;
    // And against autograd of the formula in the same dtype: the same result up to rounding.
    const at::Tensor xs = x0.clone().requires_grad_(true);
    const at::Tensor same = grad_of(rms_norm_formula(xs, w, 1e-5), xs, g).to(at::kDouble);
    EXPECT_LT((got - same).abs().max().item<double>(), tol * scale);
}

TEST(LeanOps, RmsNormGradientFloat32) { check_rms_norm(at::kFloat, 1e-5); }

TEST(LeanOps, RmsNormGradientBFloat16) { check_rms_norm(at::kBFloat16, 2e-2); }

TEST(LeanOps, RmsNormRefusesTrainableWeight) {
    const at::Tensor x = at::randn({2, 8}).requires_grad_(true), w = at::ones({8}).requires_grad_(true);
    EXPECT_THROW(model::rms_norm_lean(x, w, 1e-6), Error);
}

// HF's apply_rotary_pos_emb, op for op.
at::Tensor rope_formula(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t half = x.size(-1) / 2;
    const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
    return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

void check_rope(at::ScalarType dt, double tol) {
    at::manual_seed(7);
    const int64_t B = 2, H = 3, T = 9, D = 16;
    const at::Tensor inv_freq = at::pow(10000.0, -at::arange(0, D, 2, at::kDouble) / D).to(at::kFloat);
    const at::Tensor positions = at::arange(T, at::kLong).repeat({B, 1}) + at::tensor({0, 5}).view({B, 1});
    const auto [cos, sin] = model::rope_cos_sin(inv_freq, positions, dt);
    const at::Tensor x0 = at::randn({B, T, H, D}).to(dt).transpose(1, 2);  // the model's strided view
    const at::Tensor g = at::randn({B, H, T, D}).to(dt);
    const at::Tensor x = x0.clone().requires_grad_(true);
    const at::Tensor y = model::rope_lean(x, cos, sin);
    EXPECT_TRUE(at::equal(y.detach(), kernels::rope_rotate(x0, cos, sin)));
    const at::Tensor got = grad_of(y, x, g).to(at::kDouble);
    const at::Tensor xd = x0.to(at::kDouble).requires_grad_(true);
    const at::Tensor ref = grad_of(rope_formula(xd, cos.to(at::kDouble), sin.to(at::kDouble)), xd, g.to(at::kDouble));
    const double scale = ref.abs().max().item<double>();
    EXPECT_LT((got - ref).abs().max().item<double>(), tol * scale) << c10::toString(dt);
    // A table whose halves differ is not a rotation of pairs: then the inverse rotation is not the
    // gradient, and the float64 comparison above would fail (this checks the check).
    const at::Tensor sin_bad = sin.clone();
    sin_bad.narrow(-1, 0, D / 2).mul_(0.5);
    const at::Tensor xb = x0.clone().requires_grad_(true);
    const at::Tensor bad = grad_of(model::rope_lean(xb, cos, sin_bad), xb, g).to(at::kDouble);
    const at::Tensor xbd = x0.to(at::kDouble).requires_grad_(true);
    const at::Tensor bad_ref =
        grad_of(rope_formula(xbd, cos.to(at::kDouble), sin_bad.to(at::kDouble)), xbd, g.to(at::kDouble));
    EXPECT_GT((bad - bad_ref).abs().max().item<double>(), 0.05 * scale);
}

TEST(LeanOps, RopeGradientFloat32) { check_rope(at::kFloat, 1e-6); }

TEST(LeanOps, RopeGradientBFloat16) { check_rope(at::kBFloat16, 2e-2); }

void check_silu_mul(at::ScalarType dt) {
    at::manual_seed(6);
    const at::Tensor a0 = (at::randn({4, 5, 96}) * 3).to(dt), b0 = at::randn({4, 5, 96}).to(dt);
    const at::Tensor g = at::randn({4, 5, 96}).to(dt);
    const at::Tensor a = a0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    const at::Tensor y = model::silu_mul(a, b);
    const auto gl = torch::autograd::grad({y}, {a, b}, {g});
    const at::Tensor ar = a0.clone().requires_grad_(true), br = b0.clone().requires_grad_(true);
    const at::Tensor yr = at::silu(ar) * br;
    const auto gr = torch::autograd::grad({yr}, {ar, br}, {g});
    EXPECT_TRUE(at::equal(y.detach(), yr.detach()));
    EXPECT_TRUE(at::equal(gl[0], gr[0])) << "d gate, " << c10::toString(dt);
    EXPECT_TRUE(at::equal(gl[1], gr[1])) << "d up, " << c10::toString(dt);
}

TEST(LeanOps, SiluMulMatchesAtenBitForBit) {
    check_silu_mul(at::kFloat);
    check_silu_mul(at::kBFloat16);
    EXPECT_THROW(model::silu_mul(at::randn({2, 8}), at::randn({2, 7})), Error);
}

}  // namespace
}  // namespace lota
