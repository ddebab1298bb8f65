// QuantLinear: a GPTQ-quantized linear layer (DESIGN §1) behind the model::Linear interface.
// Forward dequantizes this layer's weight into a [K, N] tensor of the compute dtype (CPU
// reference loops or the CUDA kernel, kernels/dequant.h) and runs one GEMM; inputs of at most
// QuantLinearOptions::gemv_max_rows rows without autograd (decode steps) instead go through
// kernels/quant_gemv.h, which reads the packed codes directly (CPU and CUDA). The model never holds
// a 16-bit copy of all weights: the dequantized weight lives only during this layer's forward,
// in a DequantBuffer shared by all layers when one is attached (inference), else in a transient
// tensor that the caching allocator recycles. Autograd does not keep it either: the backward
// dequantizes again for ∂x (Note [no saved weight] in quant_linear.cpp). The one exception is asked
// for: keep_dequantized(true) holds this layer's dequantized weight between calls, which batched
// generation turns on for its duration when the device has room (model/generate.cpp).
#pragma once

#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kernels/quant_gemv_cuda.h"
#include "model/linear.h"
#include "quant/quantized_weight.h"

namespace lota::model {

/// One scratch tensor reused by every QuantLinear of a model for its dequantized weight.
/// Not thread-safe; only used while gradients are off (autograd must keep its own copy).
class DequantBuffer {
  public:
    /// A [K, N] view of the buffer (grown when needed) of `dtype` on `device`.
    at::Tensor get(int64_t K, int64_t N, at::ScalarType dtype, const at::Device& device);

  private:
    at::Tensor storage_;
};

/// How a QuantLinear runs decode-sized inputs.
struct QuantLinearOptions {
    /// Largest number of input rows that use the packed-code kernel (kernels/quant_gemv.h); 0 turns
    /// it off (benchmarks and tests compare both paths).
    int64_t gemv_max_rows = 16;
    kernels::GemvTuning gemv;  ///< that kernel's plan (tests and benchmarks compare or sweep it)
};

class QuantLinear : public Linear {
  public:
    /// `qw` must be valid as made (io::gptq_linear_read, quant::quantized_weight_make); it is not
    /// checked again. The bias, if any, is cast to the compute dtype in to().
    explicit QuantLinear(quant::QuantizedWeight qw, std::shared_ptr<DequantBuffer> buffer = nullptr,
                         QuantLinearOptions options = {});
    /// y = x·Wᵀ (+ bias) with W = S·(Q − Z (+ F)) in x's dtype; differentiable in x.
    at::Tensor forward(const at::Tensor& x) override;
    int64_t in_features() const override { return qw_.in_features; }
    int64_t out_features() const override { return qw_.out_features; }
    /// Moves codes/scales/zeros/g_idx (dtypes kept) to `device`; bias to `dtype`.
    void to(const at::Device& device, at::ScalarType dtype) override;
    std::string kind() const override { return "gptq"; }

    const quant::QuantizedWeight& weight() const { return qw_; }
    /// The dequantized weight [K, N] of `dtype` (a fresh tensor).
    at::Tensor dequantized(at::ScalarType dtype) const;
    void set_buffer(std::shared_ptr<DequantBuffer> buffer) { buffer_ = std::move(buffer); }
    const std::shared_ptr<DequantBuffer>& buffer() const { return buffer_; }
    const QuantLinearOptions& options() const { return options_; }
    void set_options(const QuantLinearOptions& options) { options_ = options; }
    /// true: inputs of more than gemv_max_rows rows reuse one dequantized weight, made at the first such
    /// call, instead of dequantizing at every call (the same W, so the same outputs); false frees it.
    void keep_dequantized(bool keep);
    bool holds_dequantized() const { return dequantized_.defined(); }
    /// Bytes the dequantized weight takes in `dtype`.
    int64_t dequantized_bytes(at::ScalarType dtype) const;

  private:
    quant::QuantizedWeight qw_;
    std::shared_ptr<DequantBuffer> buffer_;
    QuantLinearOptions options_;
    int64_t group_rows_ = -1;  ///< kernels::quant_gemv_group_rows, computed at the first decode-sized call
    bool keep_dequantized_ = false;
    at::Tensor dequantized_;  ///< [K, N], while keep_dequantized_ and after the first call that needed it
};

/// Attaches one new DequantBuffer to every QuantLinear in `linears` (others are left alone).
void quant_linears_share_buffer(const std::vector<LinearPtr>& linears);

}  // namespace lota::model
