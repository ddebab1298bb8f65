// Transformer forward pass (see transformer.h). Follows transformers' modeling_llama /
// modeling_qwen2 / modeling_qwen3 op by op so fp32 logits agree to ~1e-5.
#include "model/transformer.h"

#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/dense_gemv.h"
#include "kernels/kv_cache_write.h"
#include "kernels/rms_norm.h"
#include "model/arch.h"
#include "model/fused_linear.h"
#include "model/lean_ops.h"
#include "model/quant_linear.h"
#include "model/rope.h"
#include "quant/rtn.h"
#include "util/check.h"

namespace lota::model {
namespace {

// The float mask SDPA adds to the scores (0 where `allowed`, −inf elsewhere) in the model's dtype. Given a
// bool mask SDPA makes this same tensor itself, in every layer's call: made once, it saves those launches.
at::Tensor additive_mask(const at::Tensor& allowed, at::ScalarType dtype) {
    return at::zeros(allowed.sizes(), allowed.options().dtype(dtype))
        .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

}  // namespace

at::ScalarType dtype_from_name(const std::string& name) {
    if (name == "f32") return at::kFloat;
    if (name == "bf16") return at::kBFloat16;
    if (name == "f16") return at::kHalf;
    LOTA_FAIL("unknown dtype '%s' (expected f32, bf16 or f16)", name.c_str());
}

at::Device device_from_name(const std::string& name) {
    if (name == "cpu") return at::Device(at::kCPU);
    if (name == "cuda") {
        LOTA_CHECK(at::hasCUDA(), "--device cuda: this build of lota (LibTorch) has no CUDA device available");
        return at::Device(at::kCUDA, 0);
    }
    LOTA_FAIL("unknown device '%s' (expected cpu or cuda)", name.c_str());
}

Transformer::Transformer(io::ModelConfig config, at::Tensor embed, std::vector<Block> blocks, at::Tensor final_norm,
                         at::Tensor lm_head, at::Device device, at::ScalarType dtype)
    : config_(std::move(config)),
      embed_(std::move(embed)),
      blocks_(std::move(blocks)),
      final_norm_(std::move(final_norm)),
      lm_head_(std::move(lm_head)),
      inv_freq_(rope_inv_freq(config_).to(device)),
      device_(device),
      dtype_(dtype) {}

at::Tensor Transformer::rms_norm(const at::Tensor& x, const at::Tensor& w) const {
    // Training (x carries a gradient, the weight is frozen): the function that saves only x.
    if (at::GradMode::is_enabled() && x.requires_grad() && !w.requires_grad())
        return rms_norm_lean(x, w, config_.rms_norm_eps);
    return kernels::rms_norm(x, w, config_.rms_norm_eps);  // HF LlamaRMSNorm; one kernel on CUDA
}

at::Tensor Transformer::embed(const at::Tensor& ids) const {
    ids_check(ids);
    if (embed_.device() == device_) {
        const at::Tensor rows = at::embedding(embed_, ids.to(device_));
        return rows.to(dtype_);  // a bfloat16-stored table (store_bf16_weights_if_exact); else a no-op
    }
    // Table on the host (embedding_to_host): gather into pinned memory and copy without a host wait.
    const at::Tensor host_ids = ids.to(at::kCPU).reshape({-1});
    at::Tensor rows = at::empty({host_ids.numel(), embed_.size(1)}, embed_.options().pinned_memory(true));
    at::index_select_out(rows, embed_, 0, host_ids);
    std::vector<int64_t> shape = ids.sizes().vec();
    shape.push_back(embed_.size(1));
    return rows.view(shape).to(device_, /*non_blocking=*/true);
}

bool Transformer::embedding_to_host() {
    if (device_.is_cpu() || embed_.is_cpu() || embed_.is_same(lm_head_)) return false;
    embed_ = embed_.to(at::kCPU);
    return true;
}

void Transformer::ids_check(const at::Tensor& ids) const {
    if (!ids.device().is_cpu() || ids.numel() == 0) return;
    const auto [lo, hi] = at::aminmax(ids);
    const int64_t min = lo.item<int64_t>(), max = hi.item<int64_t>(), V = config_.vocab_size;
    LOTA_CHECK(min >= 0 && max < V,
               "token id %lld is outside the model's vocabulary [0, %lld) (vocab_size in config.json); is the "
               "tokenizer or the id file from another model?",
               (long long)(min < 0 ? min : max), (long long)V);
}

KVCache Transformer::make_cache(int64_t batch, int64_t capacity) const {
    KVCache c;
    auto opts = at::TensorOptions().dtype(dtype_).device(device_);
    for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
        c.k.push_back(at::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
        c.v.push_back(at::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
    }
    c.key_mask = at::zeros({batch, capacity}, opts.dtype(at::kBool));
    c.next_positions = at::zeros({batch}, opts.dtype(at::kLong));
    c.write_pos = at::zeros({1}, opts.dtype(at::kLong));
    c.slots = at::arange(capacity, opts.dtype(at::kLong));
    return c;
}

ForwardContext Transformer::prepare(const at::Tensor& ids, const at::Tensor& attention_mask, KVCache* cache) const {
    LOTA_CHECK(ids.dim() == 2, "token ids must be [batch, tokens], got %s", shape_str(ids.sizes().vec()).c_str());
    const int64_t B = ids.size(0), T = ids.size(1);
    const int64_t past = cache ? cache->length : 0;
    const int64_t S = past + T;
    auto long_opts = at::TensorOptions().dtype(at::kLong).device(device_);
    at::Tensor mask = attention_mask.defined() ? attention_mask.to(device_).to(at::kBool)
                                               : at::ones({B, T}, long_opts.dtype(at::kBool));
    LOTA_CHECK(mask.sizes() == ids.sizes(), "attention mask shape %s differs from ids shape %s",
               shape_str(mask.sizes().vec()).c_str(), shape_str(ids.sizes().vec()).c_str());
    // Positions count real tokens only (as HF generate: cumsum(mask) - 1), so left padding works.
    at::Tensor base = cache ? cache->next_positions.view({B, 1}) : at::zeros({B, 1}, long_opts);
    at::Tensor positions = base + mask.to(at::kLong).cumsum(1) - 1;
    positions = positions.clamp_min(0);
    ForwardContext ctx;
    std::tie(ctx.cos, ctx.sin) = rope_cos_sin(inv_freq_, positions, dtype_);
    ctx.cache = cache;
    at::Tensor key_mask;
    if (cache) {
        LOTA_CHECK(S <= cache->capacity(), "KV cache holds %lld positions, %lld needed", (long long)cache->capacity(),
                   (long long)S);
        LOTA_CHECK(cache->key_mask.size(0) == B, "KV cache is for batch %lld, got %lld",
                   (long long)cache->key_mask.size(0), (long long)B);
        cache->key_mask.narrow(1, past, T).copy_(mask);
        key_mask = cache->key_mask.narrow(1, 0, S);
    } else {
        key_mask = mask;
    }
    // Without a cache, "any padding?" needs no device readback when the mask is absent or on the CPU.
    bool padded = false;
    if (cache || (attention_mask.defined() && !attention_mask.is_cpu()))
        padded = !key_mask.all().item<bool>();
    else if (attention_mask.defined())
        padded = !attention_mask.to(at::kBool).all().item<bool>();
    if (!padded && past == 0) {
        ctx.causal = T > 1;  // plain causal: lets CUDA use the fused flash kernel
    } else if (!padded && T == 1) {
        ctx.causal = false;  // one new token attends to every cached key
    } else {
        // query i (absolute position past+i) sees key j when j <= past+i and key j is real;
        // it always sees itself, so padding rows never become all-masked (NaN).
        at::Tensor qpos = at::arange(past, S, long_opts).view({T, 1});
        at::Tensor kpos = at::arange(0, S, long_opts).view({1, S});
        at::Tensor causal = (kpos <= qpos).view({1, 1, T, S});
        at::Tensor self = (kpos == qpos).view({1, 1, T, S});
        ctx.attn_mask = additive_mask(causal.logical_and(key_mask.view({B, 1, 1, S})).logical_or(self), dtype_);
        ctx.causal = false;
    }
    return ctx;
}

at::Tensor Transformer::attn_core(int64_t layer, const at::Tensor& x, const ForwardContext& ctx) {
    Block& b = blocks_[layer];
    const bool packed = ctx.rows.defined();
    const int64_t B = packed ? ctx.cos.size(0) : x.size(0), T = packed ? ctx.cos.size(1) : x.size(1);
    const int64_t H = config_.num_attention_heads, Hkv = config_.num_key_value_heads, D = config_.head_dim;
    // Packed rows [N, F] back to [B, T, F], zeros at the padding (which attention masks out).
    const auto unpack = [&](const at::Tensor& t) {
        if (!packed) return t;
        return at::zeros({B * T, t.size(-1)}, t.options()).index_copy(0, ctx.rows, t).view({B, T, t.size(-1)});
    };
    at::Tensor y, q, k, v;  // y: the fused q/k/v output [B, T, (H + 2·Hkv)·D] when the block has one
    if (const LinearPtr& qkv = b.linear(Slot::QKV)) {
        y = unpack(qkv->forward(x));
        q = y.narrow(-1, 0, H * D);
        k = y.narrow(-1, H * D, Hkv * D);
        v = y.narrow(-1, (H + Hkv) * D, Hkv * D);
    } else {
        q = unpack(b.linear(Slot::Q)->forward(x));
        k = unpack(b.linear(Slot::K)->forward(x));
        v = unpack(b.linear(Slot::V)->forward(x));
    }
    v = v.view({B, T, Hkv, D}).transpose(1, 2);
    if (y.defined() && !config_.qk_norm) {
        // q and k are adjacent heads of y: one rotation for both (elementwise: the same values).
        const at::Tensor qk = rope_apply(y.narrow(-1, 0, (H + Hkv) * D).view({B, T, H + Hkv, D}).transpose(1, 2),
                                         ctx.cos, ctx.sin);
        q = qk.narrow(1, 0, H);
        k = qk.narrow(1, H, Hkv);
    } else {
        q = q.view({B, T, H, D});
        k = k.view({B, T, Hkv, D});
        if (config_.qk_norm) {
            q = rms_norm(q, b.q_norm);
            k = rms_norm(k, b.k_norm);
        }
        q = rope_apply(q.transpose(1, 2), ctx.cos, ctx.sin);
        k = rope_apply(k.transpose(1, 2), ctx.cos, ctx.sin);
    }
    const double scale = 1.0 / std::sqrt((double)D);
    if (ctx.cache && ctx.whole_cache) {
        KVCache& c = *ctx.cache;
        kernels::kv_cache_write(c.k[layer], c.v[layer], k, v, c.write_pos);  // one kernel on CUDA
        k = c.k[layer];
        v = c.v[layer];
    } else if (ctx.cache) {
        KVCache& c = *ctx.cache;
        c.k[layer].narrow(2, c.length, T).copy_(k);
        c.v[layer].narrow(2, c.length, T).copy_(v);
        k = c.k[layer].narrow(2, 0, c.length + T);
        v = c.v[layer].narrow(2, 0, c.length + T);
    }
    std::optional<at::Tensor> mask;
    if (ctx.attn_mask.defined()) mask = ctx.attn_mask;
    at::Tensor o = at::scaled_dot_product_attention(q, k, v, mask, 0.0, ctx.causal && T > 1, scale,
                                                    /*enable_gqa=*/H != Hkv);
    const at::Tensor out = o.transpose(1, 2).reshape({B, T, H * D});
    return packed ? out.view({B * T, H * D}).index_select(0, ctx.rows) : out;
}

ForwardContext Transformer::prepare_packed(const at::Tensor& ids, const at::Tensor& attention_mask) const {
    ForwardContext ctx = prepare(ids, attention_mask, nullptr);
    if (!ctx.attn_mask.defined() || !attention_mask.defined() || !attention_mask.is_cpu()) return ctx;  // no padding
    ctx.rows = attention_mask.reshape({-1}).to(at::kBool).nonzero().squeeze(1).to(device_);
    return ctx;
}

at::Tensor Transformer::pack(const at::Tensor& h, const ForwardContext& ctx) {
    if (!ctx.rows.defined()) return h;
    return h.reshape({-1, h.size(-1)}).index_select(0, ctx.rows);
}

at::Tensor Transformer::rows_at(const at::Tensor& h, const at::Tensor& attention_mask, const at::Tensor& flat) {
    // Packed rows are the real tokens in row-major order (prepare_packed): token p is row cumsum(mask)[p] − 1.
    const at::Tensor rows =
        h.dim() == 2 ? attention_mask.reshape({-1}).to(at::kLong).cumsum(0).sub_(1).index_select(0, flat) : flat;
    return h.reshape({-1, h.size(-1)}).index_select(0, rows.to(h.device()));
}

at::Tensor Transformer::attn_in(int64_t layer, const at::Tensor& h) const {
    return rms_norm(h, blocks_[layer].input_norm);
}

at::Tensor Transformer::attn_out(int64_t layer, const at::Tensor& h, const at::Tensor& core) {
    return h + blocks_[layer].linear(Slot::O)->forward(core);
}

at::Tensor Transformer::mlp_in(int64_t layer, const at::Tensor& mid) const {
    return rms_norm(mid, blocks_[layer].post_norm);
}

at::Tensor Transformer::mlp_hidden(int64_t layer, const at::Tensor& n) {
    Block& b = blocks_[layer];
    if (const LinearPtr& gate_up = b.linear(Slot::GATE_UP)) {
        const at::Tensor y = gate_up->forward(n);  // [..., 2·I]
        const int64_t I = y.size(-1) / 2;
        return silu_mul(y.narrow(-1, 0, I), y.narrow(-1, I, I));
    }
    const at::Tensor gate = b.linear(Slot::GATE)->forward(n);  // in this order: LoRA dropout draws
    return silu_mul(gate, b.linear(Slot::UP)->forward(n));
}

int64_t Transformer::fuse_projections() {
    int64_t n = 0;
    for (Block& b : blocks_)
        for (Slot fused : FUSED_SLOTS) {
            if (b.linear(fused)) continue;
            std::vector<LinearPtr> parts;
            for (Slot s : slot_info(fused).parts) parts.push_back(b.linear(s));
            b.linear(fused) = fuse_linears(parts);
            if (!b.linear(fused)) continue;
            for (Slot s : slot_info(fused).parts) b.linear(s).reset();  // no second copy kept
            ++n;
        }
    return n;
}

int64_t Transformer::store_bf16_weights_if_exact(int64_t decode_rows) {
    if (!device_.is_cpu() || dtype_ != at::kFloat || decode_rows > kernels::kDenseGemvMaxRowsBf16) return 0;
    int64_t n = 0;
    for (Block& b : blocks_)
        for (const LinearPtr& l : b.linears)
            if (auto* d = dynamic_cast<DenseLinear*>(l.get())) n += d->store_bf16_if_exact();
    if (!lm_head_.defined()) return n;  // quantized (quantize_head)
    if (at::Tensor narrow = bf16_if_exact(lm_head_); narrow.defined()) {
        if (embed_.is_same(lm_head_)) embed_ = narrow;  // tied: one table, read by both
        lm_head_ = std::move(narrow);
        ++n;
    }
    return n;
}

Transformer::HeadQuantization Transformer::quantize_head(int bits, int64_t group_size) {
    LOTA_CHECK(!quantized_head_, "quantize_head: the LM head is already quantized");
    const int64_t V = lm_head_.size(0), C = lm_head_.size(1);
    if (group_size == 0) group_size = C % 128 == 0 ? 128 : C % 64 == 0 ? 64 : C % 32 == 0 ? 32 : -1;
    LOTA_CHECK(group_size == -1 || (group_size > 0 && group_size <= C && C % group_size == 0),
               "quantize_head: group size %lld does not divide hidden_size %lld (expected -1 or a divisor, e.g. 32, "
               "64, 128)",
               (long long)group_size, (long long)C);
    quant::QuantOptions opts;
    opts.bits = bits;
    opts.group_size = (int)group_size;
    quant::quant_shape_check(opts, C, V, "quantize_head: the LM head");  // bits, and codes and zeros that pack
    // One dequantization scratch for the model, as the loader gives its quantized layers; a dense model gets
    // one of its own (the head's dequantized weight for long inputs is reused, not allocated every forward).
    std::shared_ptr<DequantBuffer> buffer;
    for (const Block& b : blocks_)
        for (const LinearPtr& l : b.linears)
            if (const auto* q = dynamic_cast<const QuantLinear*>(l.get()); q && !buffer) buffer = q->buffer();
    if (!buffer) buffer = std::make_shared<DequantBuffer>();
    HeadQuantization sizes;
    sizes.group_size = group_size;
    sizes.bytes_before = (int64_t)lm_head_.nbytes();
    // rtn_quantize computes where the weight is and returns CPU tensors; to() moves them back, as linear_load does.
    auto head = std::make_shared<QuantLinear>(quant::rtn_quantize(lm_head_, opts), std::move(buffer));
    head->to(device_, dtype_);
    const quant::QuantizedWeight& qw = head->weight();
    sizes.bytes_after = (int64_t)(qw.qweight.nbytes() + qw.scales.nbytes() + qw.zeros.nbytes() + qw.g_idx.nbytes());
    quantized_head_ = std::move(head);
    lm_head_ = at::Tensor();  // untied: freed; tied: embed_ still holds the table, now read by embed() only
    return sizes;
}

std::vector<QuantLinear*> Transformer::quant_linears() {
    std::vector<QuantLinear*> layers;
    for (Block& b : blocks_)
        for (const LinearPtr& l : b.linears)
            if (auto* q = dynamic_cast<QuantLinear*>(l.get())) layers.push_back(q);
    if (quantized_head_) layers.push_back(quantized_head_.get());
    return layers;
}

const at::Tensor& Transformer::lm_head_weight() const {
    LOTA_CHECK(lm_head_.defined(), "the LM head is quantized (quantize_head, for inference): its unquantized "
               "weight, which training's loss needs, is gone");
    return lm_head_;
}

bool Transformer::fused() const {
    for (const Block& b : blocks_)
        for (Slot s : FUSED_SLOTS)
            if (b.linear(s)) return true;
    return false;
}

at::Tensor Transformer::mlp_out(int64_t layer, const at::Tensor& mid, const at::Tensor& m) {
    return mid + blocks_[layer].linear(Slot::DOWN)->forward(m);
}

at::Tensor Transformer::block_forward(int64_t layer, const at::Tensor& h, const ForwardContext& ctx) {
    const at::Tensor mid = attn_out(layer, h, attn_core(layer, attn_in(layer, h), ctx));
    return mlp_out(layer, mid, mlp_hidden(layer, mlp_in(layer, mid)));
}

at::Tensor Transformer::run_blocks(at::Tensor h, const ForwardContext& ctx) {
    const int64_t L = (int64_t)blocks_.size();
    if (at::GradMode::is_enabled() || L == 0) {  // training keeps the stages (their norms save only x)
        for (int64_t l = 0; l < L; ++l) h = block_forward(l, h, ctx);
        return h;
    }
    // The add after o and the post-attention norm, and the add after down and the next block's input
    // norm, are one kernel each: a decode step's small launches are much of its time.
    const double eps = config_.rms_norm_eps;
    at::Tensor n = attn_in(0, h);
    for (int64_t l = 0; l < L; ++l) {
        Block& b = blocks_[l];
        const at::Tensor o = b.linear(Slot::O)->forward(attn_core(l, n, ctx));
        auto [mid, m] = kernels::add_rms_norm(h, o, b.post_norm, eps);
        const at::Tensor down = b.linear(Slot::DOWN)->forward(mlp_hidden(l, m));
        if (l + 1 < L)
            std::tie(h, n) = kernels::add_rms_norm(mid, down, blocks_[l + 1].input_norm, eps);
        else
            h = mid + down;
    }
    return h;
}

at::Tensor Transformer::final_norm(const at::Tensor& h) const { return rms_norm(h, final_norm_); }

at::Tensor Transformer::head(const at::Tensor& h) const {
    const at::Tensor x = final_norm(h);
    // Quantized (quantize_head): the packed-code product for decode-sized inputs, else dequantize + GEMM.
    if (quantized_head_) return quantized_head_->forward(x);
    const int64_t C = x.size(-1), rows = x.numel() / C, V = lm_head_.size(0);
    const int64_t decode_rows = kernels::dense_gemv_max_rows(lm_head_.scalar_type() == at::kBFloat16);
    // A bfloat16-stored head under float32 compute (store_bf16_weights_if_exact) is widened for a GEMM (to() is
    // a no-op otherwise).
    if (!x.is_cpu() || rows > decode_rows) return at::linear(x, lm_head_.to(x.scalar_type()));
    const at::Tensor x2 = x.reshape({rows, C}).contiguous();
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = V;
    // A batched decode step (2–16 rows; 1–32 of a bfloat16 head): the vocabulary read once, in place
    // (kernels/dense_gemv.h).
    if (kernels::dense_gemv_cpu_applies(x2, lm_head_)) return kernels::dense_gemv_cpu(x2, lm_head_).view(shape);
    if (lm_head_.scalar_type() != x.scalar_type()) return at::linear(x, lm_head_.to(x.scalar_type()));
    if (at::get_num_threads() == 1) return at::linear(x, lm_head_);
    // One row (or a dtype the kernel does not take): a GEMV over the whole vocabulary, the largest weight
    // read of a decode step, which MKL runs on one thread; split the vocabulary over the threads instead.
    at::Tensor out_t = at::empty({V, rows}, x.options());  // [V, rows]: each chunk writes whole rows
    at::parallel_for(0, V, 1024, [&](int64_t v0, int64_t v1) {
        at::Tensor dst = out_t.slice(0, v0, v1);
        at::mm_out(dst, lm_head_.slice(0, v0, v1), x2.t());
    });
    return out_t.t().contiguous().view(shape);
}

at::Tensor Transformer::decode_step(const at::Tensor& ids, const at::Tensor& mask, KVCache& cache) {
    const int64_t B = ids.size(0), S = cache.capacity();
    LOTA_CHECK(ids.dim() == 2 && ids.size(1) == 1 && mask.sizes() == ids.sizes(),
               "decode step: expected ids and mask [batch, 1], got %s and %s", shape_str(ids.sizes().vec()).c_str(),
               shape_str(mask.sizes().vec()).c_str());
    LOTA_CHECK(cache.key_mask.size(0) == B, "KV cache is for batch %lld, got %lld",
               (long long)cache.key_mask.size(0), (long long)B);
    cache.key_mask.index_copy_(1, cache.write_pos, mask.to(at::kBool));
    // As prepare(): a real token's position is the count of real tokens before it.
    const at::Tensor positions = (cache.next_positions.view({B, 1}) + mask - 1).clamp_min(0);
    ForwardContext ctx;
    std::tie(ctx.cos, ctx.sin) = rope_cos_sin(inv_freq_, positions, dtype_);
    ctx.cache = &cache;
    ctx.whole_cache = true;
    ctx.causal = false;
    // Real keys, plus the new token itself (a padding row must not be all-masked).
    ctx.attn_mask = additive_mask(
        cache.key_mask.view({B, 1, 1, S}).logical_or(cache.slots.eq(cache.write_pos).view({1, 1, 1, S})), dtype_);
    const at::Tensor h = run_blocks(embed(ids), ctx);
    cache.next_positions.add_(mask.view({B}));
    cache.write_pos.add_(1);
    return head(h);
}

at::Tensor Transformer::forward(const at::Tensor& ids, const at::Tensor& attention_mask, KVCache* cache) {
    if (cache && ids.dim() == 2 && ids.size(1) == 1 && cache->length < cache->capacity()) {
        const at::Tensor ids_dev = ids.to(device_);
        const at::Tensor mask = attention_mask.defined() ? attention_mask.to(device_).to(at::kLong)
                                                         : at::ones_like(ids_dev);
        at::Tensor logits = decode_step(ids_dev, mask, *cache);
        cache->length += 1;
        return logits;
    }
    return head(forward_hidden(ids, attention_mask, cache));
}

at::Tensor Transformer::forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask, KVCache* cache) {
    ids_check(ids);
    at::Tensor ids_dev = ids.to(device_);
    ForwardContext ctx = prepare(ids_dev, attention_mask, cache);
    const at::Tensor h = run_blocks(embed(ids_dev), ctx);
    if (cache) {
        const int64_t T = ids.size(1);
        at::Tensor mask = attention_mask.defined() ? attention_mask.to(device_).to(at::kLong)
                                                   : at::ones_like(ids_dev);
        cache->next_positions += mask.sum(1);
        cache->length += T;
        cache->write_pos.fill_(cache->length);
    }
    return h;
}

}  // namespace lota::model
