// GPTQ for one linear layer (Frantar et al. 2022, Algorithm 1; DESIGN §2). Lifetime as in the
// reference: construct (zero H), add_batch (Hessian H = 2·XᵀX/n over all rows seen),
// quantize (the algorithm). Symbols follow the paper: W, H, Hinv, Q, err, d. Runs in float32 on
// the device of the inputs (CPU or CUDA). The layer-by-layer driver is calibrate/gptq_driver.h.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "quant/quantized_weight.h"
#include "quant/rtn.h"

namespace lota::quant {

/// Result of Gptq::quantize: the layer and its error statistics.
struct GptqResult {
    QuantizedWeight qw;          ///< on the CPU
    double loss = 0;             ///< GPTQ's Σ (w − q)²/d² / 2 over all columns (the reference's "error")
    double rel_error = 0;        ///< tr(ΔW·H·ΔWᵀ) / tr(W·H·Wᵀ) with ΔW = W − Ŵ, the relative output error on the calibration set
    int64_t dead_columns = 0;    ///< inputs that were always zero (H[k,k] = 0)
};

class Gptq {
  public:
    /// K = in_features; H lives on `device`.
    explicit Gptq(int64_t in_features, const at::Device& device = at::Device(at::kCPU));

    /// Accumulates inputs X [..., K] (any float dtype): XᵀX as one float32 GEMM (TF32 off), added to a
    /// float64 sum. H = 2·ΣXᵀX/n is formed from the sum, once, when asked for. The float64 sum of the
    /// float32 batch products is exact for products of similar size (Note [exact gradient sums] in
    /// train/grad_reduce.h has the condition), so it does not depend on the order of the batches:
    /// ranks that each add some batches and then sum gram_sum() and rows() (calibrate's data-parallel
    /// quantize) get the H of one process that added them all.
    void add_batch(const at::Tensor& X);

    /// Quantizes W [N, K] with the Hessian gathered so far. Throws when no batch was added or
    /// H + damp·I is not positive definite (hint: raise damp).
    GptqResult quantize(const at::Tensor& W, const QuantOptions& opts) const;

    int64_t n_rows() const { return n_; }
    /// H [K, K] float32 (2·XᵀX/n, rounded once from the float64 sum).
    at::Tensor hessian() const;
    /// ΣXᵀX float64 [K, K] and the rows added, for summing over ranks in place; set_rows after.
    at::Tensor& gram_sum() { return S_; }
    void set_rows(int64_t n) { n_ = n; }

  private:
    at::Tensor S_;
    int64_t n_ = 0;
};

}  // namespace lota::quant
