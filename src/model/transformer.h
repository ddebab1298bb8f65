// The decoder-only transformer shared by Llama, Mistral, Qwen2 and Qwen3 (HF semantics):
// embeddings, RMSNorm, RoPE (incl. llama3 scaling), grouped-query attention with causal and
// padding masks, SwiGLU MLP, LM head; optional q/k/v bias (Qwen2) and q/k RMSNorm (Qwen3).
// Projections are model::Linear objects, so quantized and adapter variants plug in per slot.
// Shapes: B batch, T new tokens, S cached + new keys, C hidden, H heads, Hkv KV heads, D head dim.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "io/hf_config.h"
#include "model/arch.h"
#include "model/kv_cache.h"
#include "model/linear.h"

namespace lota::model {

/// One decoder block. Its projections are indexed by Slot (model/arch.h) with one rule: a fused
/// slot (QKV, GATE_UP) is either null and its parts are set (loaded, calibrated, trained), or set
/// and its parts are null (after Transformer::fuse_projections).
struct Block {
    std::array<LinearPtr, SLOT_COUNT> linears;
    at::Tensor input_norm, post_norm, q_norm, k_norm;  // q/k norms only for Qwen3

    LinearPtr& linear(Slot slot) { return linears[slot_index(slot)]; }
    const LinearPtr& linear(Slot slot) const { return linears[slot_index(slot)]; }
};

/// Per-forward state shared by all blocks: RoPE tables and the attention mask.
struct ForwardContext {
    at::Tensor cos, sin;    ///< [B, T, D]
    at::Tensor attn_mask;   ///< [B, 1, T, S] added to the scores (0 = attend, −inf = not), undefined = plain causal
    bool causal = true;     ///< use is_causal when attn_mask is undefined and T > 1
    bool whole_cache = false;  ///< decode step: write at cache->write_pos, attend over all slots
    KVCache* cache = nullptr;
    /// Packed body (prepare_packed): the hidden states are [N, C], the rows of the real tokens only
    /// (flat indices b·T + t into [B, T] = cos's first two dims, ascending); attention scatters them to
    /// [B, T] and gathers its output back. Undefined: hidden states are [B, T, C].
    at::Tensor rows;
};

struct LoadOptions {
    std::string device = "cpu";  ///< "cpu" or "cuda"
    std::string dtype = "f32";   ///< compute dtype: f32, bf16, f16
};

class QuantLinear;

class Transformer {
  public:
    /// Loads an HF model directory (config.json + safetensors). Quantized checkpoints get
    /// quantized linears. Throws lota::Error naming the file and tensor on any mismatch.
    static std::unique_ptr<Transformer> load(const std::string& dir, const LoadOptions& options);

    Transformer(io::ModelConfig config, at::Tensor embed, std::vector<Block> blocks, at::Tensor final_norm,
                at::Tensor lm_head, at::Device device, at::ScalarType dtype);

    /// logits [B, T, V] (compute dtype) for token ids [B, T] (int64). `attention_mask` [B, T]
    /// (1 = token, 0 = padding) may be undefined. With a cache, appends to it.
    at::Tensor forward(const at::Tensor& ids, const at::Tensor& attention_mask = {}, KVCache* cache = nullptr);
    /// forward() up to the last block: hidden states [B, T, C] before the final norm (forward = head of
    /// it, except that forward() takes decode_step for one-token cache steps).
    at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask = {}, KVCache* cache = nullptr);

    /// One decode step with fixed shapes: logits [B, 1, V] for ids [B, 1] and mask [B, 1] (int64,
    /// on the model's device). Attends over every cache slot (unwritten ones masked), writes the
    /// new key/value at cache.write_pos and advances the device-side positions; never reads back
    /// to the host and leaves cache.length to the caller, so a CUDA graph can capture it once and
    /// replay it every step (model/decode_graph.h). forward() uses it for one-token steps.
    at::Tensor decode_step(const at::Tensor& ids, const at::Tensor& mask, KVCache& cache);

    // Pieces of forward(), used by calibration, training and evaluation.
    /// Hidden states [..., C] for ids [...] on any device (host ids cost no device sync).
    at::Tensor embed(const at::Tensor& ids) const;
    /// Moves the input embedding table of a model on a GPU to host memory; embed() then gathers the
    /// rows there and copies them over (vocab·hidden values of device memory saved, a few ms a batch).
    /// For training, where the table is only read; decode_step cannot use it (a CUDA graph cannot
    /// copy from the host). Returns false, doing nothing, on a CPU model or a tied table (the LM head).
    bool embedding_to_host();
    /// Throws unless every id of a host tensor lies in [0, vocab_size) (a no-op for device tensors,
    /// whose check would cost a sync); forward() and embed() call it on host ids.
    void ids_check(const at::Tensor& ids) const;
    ForwardContext prepare(const at::Tensor& ids, const at::Tensor& attention_mask, KVCache* cache) const;
    /// prepare() without a cache, for a body that skips padding: when `attention_mask` (on the CPU)
    /// has padding, ctx.rows lists the real tokens and the blocks run on [N, C] rows (pack() makes them
    /// from [B, T, C]); every per-token product skips the padding rows, whose values no real token sees.
    ForwardContext prepare_packed(const at::Tensor& ids, const at::Tensor& attention_mask) const;
    /// h [B, T, C] as the [N, C] rows of ctx.rows (h itself when ctx.rows is undefined).
    static at::Tensor pack(const at::Tensor& h, const ForwardContext& ctx);
    /// The hidden states of the tokens at flat positions `flat` (b·T + t, int64 on the CPU), [len, C], from
    /// a body run with prepare_packed(ids, attention_mask): h is [B, T, C], or [N, C] when it was packed.
    static at::Tensor rows_at(const at::Tensor& h, const at::Tensor& attention_mask, const at::Tensor& flat);
    at::Tensor block_forward(int64_t layer, const at::Tensor& h, const ForwardContext& ctx);
    at::Tensor head(const at::Tensor& h) const;        ///< final norm + LM head
    at::Tensor final_norm(const at::Tensor& h) const;  ///< final norm only (head = LM head of this)

    // The stages of block_forward, in order, each ending at the input of a group of linears, for
    // drivers that need those inputs one group at a time (GPTQ's true-sequential calibration):
    //   mid = attn_out(l, h, attn_core(l, attn_in(l, h), ctx))
    //   block_forward(l, h) == mlp_out(l, mid, mlp_hidden(l, mlp_in(l, mid)))   (bit for bit)
    at::Tensor attn_in(int64_t layer, const at::Tensor& h) const;  ///< input of q, k, v
    at::Tensor attn_core(int64_t layer, const at::Tensor& xn, const ForwardContext& ctx);  ///< input of o
    at::Tensor attn_out(int64_t layer, const at::Tensor& h, const at::Tensor& core);       ///< h + o(core)
    at::Tensor mlp_in(int64_t layer, const at::Tensor& mid) const;  ///< input of gate, up
    at::Tensor mlp_hidden(int64_t layer, const at::Tensor& n);      ///< silu(gate(n))·up(n): input of down
    at::Tensor mlp_out(int64_t layer, const at::Tensor& mid, const at::Tensor& m);  ///< mid + down(m)
    /// Inference only: runs q/k/v as one product and gate/up as one in every block whose slots can be
    /// fused (model/fused_linear.h: dense or quantized, incl. LoTA-QAF adapters; not LoRA), and drops
    /// the separate slots. Same function, fewer and larger launches; calibration, training and adapter
    /// attachment need an unfused model (they reject a fused one). Returns the number of products fused.
    int64_t fuse_projections();
    bool fused() const;
    /// Inference on the CPU in float32, decode steps of at most `decode_rows` rows: stores every dense
    /// weight, and the LM head unless quantized (with the embedding table when they are one tensor), whose
    /// values are all bfloat16 values in bfloat16 (DenseLinear::store_bf16_if_exact) — a bf16 checkpoint's weights
    /// in half the memory, and half the bytes a decode step reads. Same outputs. Returns the number of weight
    /// tensors stored so; 0 on other devices and dtypes, and for more rows than kernels::dense_gemv takes
    /// with a bfloat16 weight (MKL's GEMM, faster there, would need a float32 copy every step).
    /// Calibration and training need the float32 weights (the LM head's loss).
    int64_t store_bf16_weights_if_exact(int64_t decode_rows);

    /// Bytes of the LM head before and after quantize_head.
    struct HeadQuantization {
        int64_t bytes_before = 0;  ///< the [V, C] weight as stored (compute dtype, or bfloat16 when stored so)
        int64_t bytes_after = 0;   ///< packed codes, scales, zeros and g_idx
        int64_t group_size = 0;    ///< the group size used
    };
    /// Inference only, opt-in (it changes the logits): replaces the LM head by its round-to-nearest quantization
    /// (quant::rtn_quantize; `bits` 2, 3, 4 or 8, groups of `group_size` hidden features, -1: one group a row,
    /// 0: 128, 64 or 32, the first that divides hidden_size),
    /// made on the model's device and kept as a QuantLinear there, with the blocks' DequantBuffer. head(), forward()
    /// and decode_step then compute the logits with it, so decode steps read the packed codes (kernels::quant_gemv).
    /// The embedding keeps reading the original table (a tied table stays, for the embedding only); an untied
    /// head's weight is freed. Throws lota::Error for other bits, a group size that does not divide hidden_size,
    /// or a head already quantized.
    HeadQuantization quantize_head(int bits, int64_t group_size);
    /// The LM head made by quantize_head, or null.
    QuantLinear* quantized_head() const { return quantized_head_.get(); }
    /// Every quantized layer: the blocks' (fused ones included), then the quantized head if any — for code that
    /// sets their options or keeps them dequantized.
    std::vector<QuantLinear*> quant_linears();

    /// Creates an empty cache for `batch` sequences with room for `capacity` positions.
    KVCache make_cache(int64_t batch, int64_t capacity) const;

    const io::ModelConfig& config() const { return config_; }
    std::vector<Block>& blocks() { return blocks_; }
    at::Device device() const { return device_; }
    at::ScalarType dtype() const { return dtype_; }
    const at::Tensor& embed_weight() const { return embed_; }
    /// The LM head [V, C]; throws after quantize_head (which keeps no unquantized copy of it).
    const at::Tensor& lm_head_weight() const;

  private:
    at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const;
    /// Every block on h: block_forward in turn, or without autograd the same values with each residual
    /// add fused into the norm that reads its sum (kernels::add_rms_norm).
    at::Tensor run_blocks(at::Tensor h, const ForwardContext& ctx);

    io::ModelConfig config_;
    at::Tensor embed_;
    std::vector<Block> blocks_;
    at::Tensor final_norm_, lm_head_;  // lm_head_ undefined once quantized_head_ is set
    std::shared_ptr<QuantLinear> quantized_head_;
    at::Tensor inv_freq_;
    at::Device device_;
    at::ScalarType dtype_;
};

/// "f32" | "bf16" | "f16" -> scalar type; throws otherwise.
at::ScalarType dtype_from_name(const std::string& name);
/// "cpu" | "cuda" -> device; throws when CUDA is requested but unavailable.
at::Device device_from_name(const std::string& name);

}  // namespace lota::model
