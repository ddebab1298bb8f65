// GPTQ (see gptq.h). Follows Algorithm 1 of the paper top to bottom: dead columns, optional
// act-order permutation, dampening, Hinv = upper Cholesky factor of H⁻¹, blocks of columns with
// in-block error feedback and one lazy batch update of the later columns per block. Group grids
// are computed when a group's first column is reached, from the error-updated weights of the
// whole group (including columns beyond the current block, brought up to date first).
// With act-order, groups are consecutive in the permuted order (GPTQModel's default, static
// groups off) and g_idx maps each original column to its group.
#include "quant/gptq.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>

#include "kernels/gptq_columns.h"
#include "quant/quantizer.h"
#include "quant/tf32_guard.h"
#include "util/check.h"

namespace lota::quant {
namespace {

// Hinv = chol(H⁻¹, upper) after dampening; throws with a hint when H is not positive definite.
at::Tensor inverse_cholesky_upper(at::Tensor H, double damp) {
    const at::Tensor diag = H.diagonal();
    diag.add_(damp * diag.mean().item<double>());
    auto [L, info] = at::linalg_cholesky_ex(H);
    LOTA_CHECK(info.item<int64_t>() == 0,
               "GPTQ: the damped Hessian is not positive definite (Cholesky failed at column %lld); "
               "raise --damp (now %g) or use more calibration data",
               (long long)info.item<int64_t>(), damp);
    const at::Tensor Hinv_full = at::cholesky_inverse(L);
    auto [U, info2] = at::linalg_cholesky_ex(Hinv_full, /*upper=*/true);
    LOTA_CHECK(info2.item<int64_t>() == 0, "GPTQ: Cholesky of H^-1 failed; raise --damp (now %g)", damp);
    return U;
}

}  // namespace

Gptq::Gptq(int64_t in_features, const at::Device& device)
    : S_(at::zeros({in_features, in_features}, at::TensorOptions().dtype(at::kDouble).device(device))) {}

void Gptq::add_batch(const at::Tensor& X_in) {
    const at::NoGradGuard no_grad;
    const int64_t K = S_.size(0);
    LOTA_CHECK(X_in.dim() >= 1 && X_in.size(-1) == K, "GPTQ add_batch: expected X [..., %lld], got %s",
               (long long)K, shape_str(X_in.sizes().vec()).c_str());
    const at::Tensor X = X_in.reshape({-1, K}).to(S_.device(), at::kFloat);
    const int64_t m = X.size(0);
    if (m == 0) return;
    const Tf32Guard tf32_off(false);  // XᵀX in full float32
    S_.add_(at::mm(X.t(), X));  // float32 product, float64 sum
    n_ += m;
}

at::Tensor Gptq::hessian() const {
    return n_ > 0 ? (S_ * (2.0 / double(n_))).to(at::kFloat) : at::zeros(S_.sizes(), S_.options().dtype(at::kFloat));
}

GptqResult Gptq::quantize(const at::Tensor& W_in, const QuantOptions& opts) const {
    // W is (N, K): out × in; H, Hinv are (K, K); Q holds codes (N, K) in processing order.
    const int64_t K = S_.size(0);
    LOTA_CHECK(W_in.dim() == 2 && W_in.size(1) == K, "GPTQ: expected W [N, %lld], got %s", (long long)K,
               shape_str(W_in.sizes().vec()).c_str());
    LOTA_CHECK(n_ > 0, "GPTQ: no calibration inputs were added (add_batch) before quantize");
    quant_options_check(opts, K, "GPTQ");
    const at::NoGradGuard no_grad;
    const Tf32Guard tf32_off(false);  // H and the solve in full float32
    const int64_t N = W_in.size(0);
    const int maxq = (1 << opts.bits) - 1;
    const int64_t g = opts.group_size == -1 ? K : opts.group_size;
    at::Tensor W = W_in.to(S_.device(), at::kFloat).clone(at::MemoryFormat::Contiguous);
    at::Tensor H = hessian();

    const at::Tensor dead = H.diagonal() == 0;
    GptqResult result;
    result.dead_columns = dead.sum().item<int64_t>();
    H.diagonal().masked_fill_(dead, 1.0);
    W.index_put_({at::indexing::Slice(), dead}, 0.0);
    const at::Tensor H_orig = H.clone();
    const at::Tensor W_orig = W.clone();

    at::Tensor perm, invperm;
    if (opts.act_order) {
        perm = at::argsort(H.diagonal(), /*stable=*/true, /*dim=*/0, /*descending=*/true);
        invperm = at::argsort(perm);
        W = W.index_select(1, perm);
        H = H.index_select(0, perm).index_select(1, perm);
    }
    const at::Tensor Hinv = inverse_cholesky_upper(H, opts.damp).contiguous();  // LAPACK returns it column-major

    // Per block, the columns that share one grid (up to the next group's first column) go through
    // kernels::gptq_columns at once: codes, the quantization error scaled by 1/d written straight
    // into Err1, and the error feedback into the block's later columns (one kernel launch on CUDA).
    // Losses and the lazy batch update of the later blocks follow once per block.
    at::Tensor Q = at::empty_like(W);
    at::Tensor losses = at::zeros({N}, W.options());
    std::vector<at::Tensor> scales, zeros;
    GridParams p;
    for (int64_t i1 = 0; i1 < K; i1 += opts.block_size) {
        const int64_t i2 = std::min(i1 + opts.block_size, K), count = i2 - i1;
        at::Tensor W1 = W.slice(1, i1, i2).clone(at::MemoryFormat::Contiguous);
        at::Tensor Q1 = Q.slice(1, i1, i2);
        at::Tensor Err1 = at::empty({N, count}, W.options());
        const at::Tensor Hinv1 = Hinv.slice(0, i1, i2).slice(1, i1, i2);
        for (int64_t i = 0; i < count;) {
            const int64_t col = i1 + i;
            if (col % g == 0) {
                // The group's weights as updated so far: in-block columns from W1, later ones
                // from W plus the pending updates of this block's first i columns.
                const int64_t end = std::min(col + g, K);
                at::Tensor Wg = W1.slice(1, i, std::min(count, end - i1));
                if (end > i2) {
                    const at::Tensor beyond = W.slice(1, i2, end) -
                                              Err1.slice(1, 0, i).matmul(Hinv.slice(0, i1, col).slice(1, i2, end));
                    Wg = at::cat({Wg, beyond}, 1);
                }
                p = grid_params(Wg, opts.bits, opts.sym);
                scales.push_back(p.scale);
                zeros.push_back(p.zero);
            }
            const int64_t next = std::min(count, (col / g + 1) * g - i1);
            kernels::gptq_columns(W1, Q1, Err1, Hinv1, p.scale, p.zero, maxq, i, next);
            i = next;
        }
        losses.add_(Err1.square().sum(1), 0.5);  // (w − ŵ)² / d² / 2 per column
        if (i2 < K) W.slice(1, i2).sub_(Err1.matmul(Hinv.slice(0, i1, i2).slice(1, i2)));
    }

    at::Tensor g_idx = at::arange(K, W.options().dtype(at::kLong)).div(g, "floor");
    if (opts.act_order) {
        Q = Q.index_select(1, invperm);
        g_idx = g_idx.index_select(0, invperm);
    }
    result.loss = losses.sum().item<double>();
    result.qw = quantized_weight_make(Q, at::stack(scales), at::stack(zeros), g_idx, opts.bits, opts.group_size);
    // Relative output error on the calibration set, from the stored (fp16-scale) grid, computed
    // on the device from the codes rather than from the packed (CPU) weight.
    const at::Tensor gi = g_idx.to(W.device());
    const at::Tensor S = at::stack(scales, 1).to(at::kHalf).to(at::kFloat).index_select(1, gi);  // [N, K]
    const at::Tensor Z = at::stack(zeros, 1).index_select(1, gi);
    const at::Tensor dW = W_orig - S * (Q - Z);
    const double num = (dW.matmul(H_orig) * dW).sum().item<double>();
    const double den = (W_orig.matmul(H_orig) * W_orig).sum().item<double>();
    result.rel_error = den > 0 ? num / den : 0.0;
    return result;
}

}  // namespace lota::quant
