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
    if (x.dim() >= 2 && x.numel() <= kernels::kDenseGemvMaxRows * K) {
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
    return bias_.defined() ? at::linear(x, weight_, bias_) : at::linear(x, weight_);
}

int64_t DenseLinear::in_features() const { return weight_.size(1); }
int64_t DenseLinear::out_features() const { return weight_.size(0); }

void DenseLinear::to(const at::Device& device, at::ScalarType dtype) {
    weight_ = weight_.to(device, dtype);
    if (bias_.defined()) bias_ = bias_.to(device, dtype);
}

}  // namespace lota::model
