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
    // A bfloat16-stored weight under float32 compute (store_bf16_if_exact): widened for the GEMM.
    const at::Tensor w = weight_.scalar_type() == x.scalar_type() ? weight_ : weight_.to(x.scalar_type());
    return bias_.defined() ? at::linear(x, w, bias_) : at::linear(x, w);
}

bool DenseLinear::store_bf16_if_exact() {
    if (!weight_.is_cpu() || weight_.scalar_type() != at::kFloat) return false;
    at::Tensor narrow = weight_.to(at::kBFloat16);
    if (!at::equal(narrow.to(at::kFloat), weight_)) return false;
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
