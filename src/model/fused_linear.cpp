// fuse_linears (see fused_linear.h).
#include "model/fused_linear.h"

#include <ATen/ATen.h>

#include "model/quant_linear.h"

namespace lota::model {
namespace {

// The bias of each part, zeros where a part has none; undefined when no part has one.
at::Tensor cat_bias(const std::vector<at::Tensor>& biases, const std::vector<int64_t>& widths) {
    at::Tensor like;
    for (const at::Tensor& b : biases)
        if (b.defined()) like = b;
    if (!like.defined()) return {};
    std::vector<at::Tensor> parts;
    for (size_t i = 0; i < biases.size(); ++i) {
        if (biases[i].defined() && biases[i].scalar_type() != like.scalar_type()) return at::Tensor();
        parts.push_back(biases[i].defined() ? biases[i] : at::zeros({widths[i]}, like.options()));
    }
    return at::cat(parts);
}

LinearPtr fuse_dense(const std::vector<const DenseLinear*>& parts) {
    const at::Tensor& w0 = parts[0]->weight();
    std::vector<at::Tensor> weights, biases;
    std::vector<int64_t> widths;
    bool any_bias = false;
    for (const DenseLinear* p : parts) {
        const at::Tensor& w = p->weight();
        if (w.size(1) != w0.size(1) || w.scalar_type() != w0.scalar_type() || w.device() != w0.device()) return nullptr;
        weights.push_back(w);
        biases.push_back(p->bias());
        widths.push_back(w.size(0));
        any_bias = any_bias || p->bias().defined();
    }
    const at::Tensor bias = cat_bias(biases, widths);
    if (any_bias && !bias.defined()) return nullptr;
    return std::make_shared<DenseLinear>(at::cat(weights, 0), bias);
}

LinearPtr fuse_quant(const std::vector<const QuantLinear*>& parts) {
    const quant::QuantizedWeight& q0 = parts[0]->weight();
    std::vector<at::Tensor> qweight, zeros, scales, offsets, biases;
    std::vector<int64_t> widths;
    bool any_offset = false, any_bias = false;
    for (const QuantLinear* p : parts) {
        const quant::QuantizedWeight& q = p->weight();
        if (q.bits != q0.bits || q.group_size != q0.group_size || q.in_features != q0.in_features ||
            q.qweight.device() != q0.qweight.device() || q.scales.scalar_type() != q0.scales.scalar_type() ||
            q.zeros.scalar_type() != q0.zeros.scalar_type() || !at::equal(q.g_idx, q0.g_idx))
            return nullptr;
        qweight.push_back(q.qweight);
        zeros.push_back(q.zeros);
        scales.push_back(q.scales);
        offsets.push_back(q.offset);
        biases.push_back(q.bias);
        widths.push_back(q.out_features);
        any_offset = any_offset || q.offset.defined();
        any_bias = any_bias || q.bias.defined();
    }
    quant::QuantizedWeight fused = q0;
    fused.qweight = at::cat(qweight, 1);
    fused.zeros = at::cat(zeros, 1);
    fused.scales = at::cat(scales, 1);
    fused.out_features = fused.qweight.size(1);
    fused.offset = at::Tensor();
    if (any_offset) {
        for (size_t i = 0; i < offsets.size(); ++i)
            if (!offsets[i].defined()) offsets[i] = at::zeros_like(scales[i], scales[i].options().dtype(at::kFloat));
        fused.offset = at::cat(offsets, 1);
    }
    fused.bias = cat_bias(biases, widths);
    if (any_bias && !fused.bias.defined()) return nullptr;
    return std::make_shared<QuantLinear>(fused, parts[0]->buffer(), parts[0]->options());
}

}  // namespace

LinearPtr fuse_linears(const std::vector<LinearPtr>& parts) {
    if (parts.size() < 2) return nullptr;
    std::vector<const DenseLinear*> dense;
    std::vector<const QuantLinear*> quant;
    for (const LinearPtr& p : parts) {
        if (!p) return nullptr;
        const Linear* layer = p->inference_layer();
        if (const auto* d = dynamic_cast<const DenseLinear*>(layer)) {
            dense.push_back(d);
        } else if (const auto* q = dynamic_cast<const QuantLinear*>(layer)) {
            quant.push_back(q);
        } else {
            return nullptr;
        }
    }
    if (dense.size() == parts.size()) return fuse_dense(dense);
    if (quant.size() == parts.size()) return fuse_quant(quant);
    return nullptr;
}

}  // namespace lota::model
