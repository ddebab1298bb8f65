// DenseLinear: the 16/32-bit linear layer (see linear.h).
#include "model/linear.h"

#include <vector>

#include <ATen/ATen.h>

#include "kernels/dense_gemv.h"
#include "util/check.h"

namespace lota::model {

DenseLinear::DenseLinear(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {
    LOTA_ASSERT(weight_.dim() == 2);
    LOTA_ASSERT(!bias_.defined() || (bias_.dim() == 1 && bias_.size(0) == weight_.size(0)));
}

at::Tensor DenseLinear::forward(const at::Tensor& x) {
    const int64_t K = weight_.size(1);
    if (x.dim() >= 2 && x.numel() <= kernels::dense_gemv_max_rows(weight_.scalar_type() == at::kBFloat16) * K) {
        // A batched decode step on the CPU: W read in place, not packed by MKL (kernels/dense_gemv.h).
        const at::Tensor x2 = x.reshape({-1, K});
        if (kernels::dense_gemv_cpu_applies(x2, weight_)) {
            at::Tensor y = kernels::dense_gemv_cpu(x2, weight_);
            if (bias_.defined()) y.add_(bias_);
            std::vector<int64_t> shape = x.sizes().vec();
            shape.back() = weight_.size(0);
            return y.view(shape);
        }
    }
    // A bfloat16-stored weight under float32 compute (store_bf16_if_exact) is widened for the GEMM (to() is a
    // no-op otherwise).
    const at::Tensor w = weight_.to(x.scalar_type());
    return bias_.defined() ? at::linear(x, w, bias_) : at::linear(x, w);
}

at::Tensor bf16_if_exact(const at::Tensor& w) {
    if (!w.is_cpu() || w.scalar_type() != at::kFloat) return {};
    at::Tensor narrow = w.to(at::kBFloat16);
    return at::equal(narrow.to(at::kFloat), w) ? narrow : at::Tensor();
}

bool DenseLinear::store_bf16_if_exact() {
    at::Tensor narrow = bf16_if_exact(weight_);
    if (!narrow.defined()) return false;
    weight_ = std::move(narrow);
    return true;
}

int64_t DenseLinear::in_features() const { return weight_.size(1); }
int64_t DenseLinear::out_features() const { return weight_.size(0); }

void DenseLinear::to(const at::Device& device, at::ScalarType dtype) {
    weight_ = weight_.to(device, dtype);
    if (bias_.defined()) bias_ = bias_.to(device, dtype);
}

}  // namespace lota::model
