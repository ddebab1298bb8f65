// QuantLinear (see quant_linear.h).
#include "model/quant_linear.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/dequant.h"
#include "kernels/quant_gemv.h"
#include "util/check.h"

namespace lota::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor dequant_weight(const quant::QuantizedWeight& qw, at::ScalarType dtype, at::Tensor out = {}) {
    return kernels::dequant_forward(qw.qweight, qw.zeros, qw.scales, qw.g_idx, qw.offset, qw.bits, dtype, out);
}

// Note [no saved weight]
// Under autograd, at::linear(x, W.t()) would keep the dequantized W [K, N] (2 bytes a weight in bf16)
// until the backward: every linear of a checkpointed block at once during its recomputation, every
// linear of the model without checkpointing. ∂x = ∂y·Wᵀ needs nothing but W, and the packed codes
// (resident anyway) give it again for one dequantization (~2.5 bytes of traffic a weight). So the
// forward keeps only handles to the packed tensors and the backward dequantizes again. The forward
// runs the same at::linear as inference, so outputs are unchanged bit for bit.
struct QuantLinearFunction : public torch::autograd::Function<QuantLinearFunction> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const quant::QuantizedWeight& qw) {
        const at::ScalarType dtype = x.scalar_type();
        const at::Tensor W = dequant_weight(qw, dtype);  // [K, N]
        at::Tensor bias = qw.bias;
        if (bias.defined() && bias.scalar_type() != dtype) bias = bias.to(dtype);
        ctx->saved_data["qweight"] = qw.qweight;
        ctx->saved_data["zeros"] = qw.zeros;
        ctx->saved_data["scales"] = qw.scales;
        ctx->saved_data["g_idx"] = qw.g_idx;
        if (qw.offset.defined()) ctx->saved_data["offset"] = qw.offset;
        ctx->saved_data["bits"] = static_cast<int64_t>(qw.bits);
        ctx->saved_data["dtype"] = static_cast<int64_t>(dtype);
        return bias.defined() ? at::linear(x, W.t(), bias) : at::linear(x, W.t());
    }
    static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
        const at::Tensor& dy = grad_out[0];
        if (!dy.defined()) return {at::Tensor(), at::Tensor()};
        auto& d = ctx->saved_data;
        const at::Tensor offset = d.count("offset") ? d["offset"].toTensor() : at::Tensor();
        const at::Tensor W = kernels::dequant_forward(
            d["qweight"].toTensor(), d["zeros"].toTensor(), d["scales"].toTensor(), d["g_idx"].toTensor(), offset,
            static_cast<int>(d["bits"].toInt()), static_cast<at::ScalarType>(d["dtype"].toInt()));
        return {at::matmul(dy, W.t()), at::Tensor()};  // ∂x = ∂y·Wᵀ, as at::linear's backward computes it
    }
};

}  // namespace

at::Tensor DequantBuffer::get(int64_t K, int64_t N, at::ScalarType dtype, const at::Device& device) {
    const int64_t need = K * N;
    if (!storage_.defined() || storage_.scalar_type() != dtype || storage_.device() != device ||
        storage_.numel() < need)
        storage_ = at::empty({need}, at::TensorOptions().dtype(dtype).device(device));
    return storage_.narrow(0, 0, need).view({K, N});
}

QuantLinear::QuantLinear(quant::QuantizedWeight qw, std::shared_ptr<DequantBuffer> buffer,
                         QuantLinearOptions options)
    : qw_(std::move(qw)), buffer_(std::move(buffer)), options_(options) {}

at::Tensor QuantLinear::dequantized(at::ScalarType dtype) const { return dequant_weight(qw_, dtype); }

at::Tensor QuantLinear::forward(const at::Tensor& x) {
    LOTA_CHECK(x.size(-1) == qw_.in_features, "QuantLinear: input has %lld features, expected %lld",
               (long long)x.size(-1), (long long)qw_.in_features);
    const at::ScalarType dtype = x.scalar_type();
    const bool bias_grad = qw_.bias.defined() && qw_.bias.requires_grad();
    if (at::GradMode::is_enabled() && x.requires_grad() && !bias_grad) return QuantLinearFunction::apply(x, qw_);
    const bool grad = at::GradMode::is_enabled() && (x.requires_grad() || bias_grad);
    const int64_t rows = qw_.in_features > 0 ? x.numel() / qw_.in_features : 0;
    if (!grad && rows > 0 && rows <= options_.gemv_max_rows) {
        // Decode-sized: read the packed codes once instead of writing and re-reading W.
        if (group_rows_ < 0) group_rows_ = kernels::quant_gemv_group_rows(qw_.g_idx, qw_.n_groups());
        at::Tensor bias = qw_.bias;
        if (bias.defined() && bias.scalar_type() != dtype) bias = bias.to(dtype);
        std::vector<int64_t> shape = x.sizes().vec();
        shape.back() = qw_.out_features;
        return kernels::quant_gemv(x.reshape({rows, qw_.in_features}), qw_.qweight, qw_.zeros, qw_.scales, qw_.g_idx,
                                   qw_.offset, bias, qw_.bits, group_rows_, options_.gemv)
            .view(shape);
    }
    at::Tensor W;  // [K, N]
    if (keep_dequantized_ && !grad) {
        if (!dequantized_.defined() || dequantized_.scalar_type() != dtype) {
            dequantized_ = at::Tensor();  // free the old one first
            dequantized_ = dequant_weight(qw_, dtype);
        }
        W = dequantized_;
    } else {
        // Without a graph W is dead after the GEMM, so a shared buffer (overwritten by the next layer) is safe.
        at::Tensor out;
        if (buffer_ && !grad) out = buffer_->get(qw_.in_features, qw_.out_features, dtype, qw_.qweight.device());
        W = dequant_weight(qw_, dtype, out);
    }
    at::Tensor bias = qw_.bias;
    if (bias.defined() && bias.scalar_type() != dtype) bias = bias.to(dtype);
    return bias.defined() ? at::linear(x, W.t(), bias) : at::linear(x, W.t());
}

void QuantLinear::keep_dequantized(bool keep) {
    keep_dequantized_ = keep;
    if (!keep) dequantized_ = at::Tensor();
}

int64_t QuantLinear::dequantized_bytes(at::ScalarType dtype) const {
    return qw_.in_features * qw_.out_features * static_cast<int64_t>(c10::elementSize(dtype));
}

void QuantLinear::to(const at::Device& device, at::ScalarType dtype) {
    group_rows_ = -1;
    dequantized_ = at::Tensor();
    qw_.qweight = qw_.qweight.to(device);
    qw_.zeros = qw_.zeros.to(device);
    qw_.scales = qw_.scales.to(device);
    qw_.g_idx = qw_.g_idx.to(device);
    if (qw_.offset.defined()) qw_.offset = qw_.offset.to(device);
    if (qw_.bias.defined()) qw_.bias = qw_.bias.to(device, dtype);
}

void quant_linears_share_buffer(const std::vector<LinearPtr>& linears) {
    const auto buffer = std::make_shared<DequantBuffer>();
    for (const auto& l : linears)
        if (auto* q = dynamic_cast<QuantLinear*>(l.get())) q->set_buffer(buffer);
}

}  // namespace lota::model
