// Generation loop (see generate.h). Prompts are left-padded so every sequence's last prompt
// token sits in the last column; positions skip padding (Transformer::prepare).
#include "model/generate.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "kernels/device_memory.h"
#include "model/decode_graph.h"
#include "model/nonfinite.h"
#include "model/quant_linear.h"
#include "util/check.h"
#include "util/log.h"

namespace lota::model {

namespace {

// Decode steps of more rows than the packed-code product takes (QuantLinearOptions::gemv_max_rows)
// dequantize every quantized weight at every step: 2 bytes written and read back per weight for each
// half byte of codes, about 9x the traffic of reading the codes. While the device (GPU or host memory)
// has room for them, generation keeps the weights dequantized from its first decode step to its end (the
// same W, so the same tokens; bench/generate.md has the batch-64 rows on CUDA; on 2 CPU cores SmolLM2 4-bit
// at batch 32 went from 54-60 to 87-97 tok/s) and frees them when it returns. Declared before the
// DecodeGraph that captures them, so that the graph goes first.
class KeepDequantized {
  public:
    explicit KeepDequantized(Transformer& model) : model_(model) {}
    ~KeepDequantized() {
        for (QuantLinear* q : layers_) q->keep_dequantized(false);
    }
    KeepDequantized(const KeepDequantized&) = delete;
    KeepDequantized& operator=(const KeepDequantized&) = delete;

    /// Turns it on for the quantized layers that `rows` rows would dequantize, if the device has room
    /// for all of them and 1 GiB to spare.
    void enable(int64_t rows) {
        const at::Device device = model_.device();
        std::vector<QuantLinear*> layers;
        int64_t bytes = 0;
        for (QuantLinear* q : model_.quant_linears())  // the quantized head too (Transformer::quantize_head)
            if (rows > q->options().gemv_max_rows) {
                layers.push_back(q);
                bytes += q->dequantized_bytes(model_.dtype());
            }
        if (layers.empty()) return;
        const int64_t free = kernels::device_free_bytes(device);
        if (free >= 0 && free < bytes + (int64_t(1) << 30)) {
            LOTA_LOG_DEBUG("generate: %lld rows a step dequantize every step (%.1f GiB free, %.1f GiB needed to "
                           "keep the weights dequantized)",
                           (long long)rows, free / 1073741824.0, bytes / 1073741824.0);
            return;
        }
        for (QuantLinear* q : layers) q->keep_dequantized(true);
        layers_ = std::move(layers);
    }

  private:
    Transformer& model_;
    std::vector<QuantLinear*> layers_;
};

}  // namespace

at::Tensor sample_next(const at::Tensor& logits, double temperature, double top_p, at::Generator& gen) {
    if (temperature <= 0.0) return logits.argmax(-1);
    const at::Tensor probs = at::softmax(logits / temperature, -1);
    if (top_p >= 1.0) return at::multinomial(probs.cpu(), 1, false, gen).squeeze(-1).to(logits.device());
    // Nucleus: keep the smallest prefix of the tokens sorted by probability whose mass reaches top_p
    // (>= 1 token), then sample among them. The prefix nearly always lies in the first few tokens, so
    // only the top k are sorted, k growing until every row's top-k mass reaches top_p (the whole
    // vocabulary at worst): a token past k is kept only if the mass before it, at least the top-k mass,
    // is below top_p. The first k sorted values and their running sums are those of a full sort.
    const int64_t V = probs.size(-1);
    for (int64_t k = std::min<int64_t>(V, 64);; k = std::min<int64_t>(V, k * 8)) {
        auto [top, idx] = probs.topk(k, -1, /*largest=*/true, /*sorted=*/true);
        const at::Tensor mass = top.cumsum(-1);
        if (k < V && !(mass.select(-1, k - 1) >= top_p).all().item<bool>()) continue;
        top.masked_fill_(mass - top >= top_p, 0.0);
        const at::Tensor pick = at::multinomial(top.cpu(), 1, false, gen).to(logits.device());  // [rows, 1]
        return idx.gather(-1, pick).squeeze(-1);
    }
}

std::vector<std::vector<int64_t>> generate(Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& o) {
    const at::NoGradGuard no_grad;  // inference: also lets the blocks fuse their residual adds (run_blocks)
    const int64_t B = (int64_t)prompts.size();
    LOTA_CHECK(B > 0, "generate: no prompts");
    int64_t Tp = 0;
    for (const auto& p : prompts) {
        LOTA_CHECK(!p.empty(), "generate: empty prompt");
        Tp = std::max<int64_t>(Tp, (int64_t)p.size());
    }
    const int64_t V = model.config().vocab_size;
    at::Tensor ids = at::zeros({B, Tp}, at::kLong), mask = at::zeros({B, Tp}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
        const auto& p = prompts[b];
        int64_t pad = Tp - (int64_t)p.size();
        for (size_t t = 0; t < p.size(); ++t) {
            LOTA_CHECK(p[t] >= 0 && p[t] < V, "generate: token id %lld out of range [0, %lld)", (long long)p[t],
                       (long long)V);
            ids[b][pad + (int64_t)t] = p[t];
            mask[b][pad + (int64_t)t] = 1;
        }
    }
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    std::vector<std::vector<int64_t>> out(B);
    std::vector<bool> done(B, false);
    KVCache cache;
    if (o.use_cache) cache = model.make_cache(B, Tp + o.max_new_tokens);
    KeepDequantized keep_dequantized(model);
    DecodeGraph decode(model, cache, o.cuda_graph);
    at::Tensor step_ids = ids, step_mask = mask;
    for (int64_t step = 0; step < o.max_new_tokens; ++step) {
        at::Tensor logits;
        if (!o.use_cache) {
            logits = model.forward(ids, mask);
        } else if (step == 0) {
            // The prompt: only its last column's logits are used (left padding puts every last token there).
            const at::Tensor h = model.forward_hidden(step_ids, step_mask, &cache);
            logits = model.head(h.narrow(1, h.size(1) - 1, 1));
            if (o.keep_dequantized) keep_dequantized.enable(B);
        } else {
            logits = decode.step(step_ids, step_mask);
        }
        at::Tensor last = logits.select(1, logits.size(1) - 1).to(at::kFloat);
        // Every step's logits must be finite (the weights were checked at load; activations can still
        // overflow), else the tokens would be drawn from NaN. The per-row flags come back with the
        // tokens, in the one read of the step; sampling sees NaN replaced so that it cannot throw.
        const at::Tensor finite = at::isfinite(last).all(1).to(at::kLong);
        const at::Tensor drawn =
            sample_next(o.temperature > 0 ? at::nan_to_num(last, 0.0, 0.0, 0.0) : last, o.temperature, o.top_p, gen);
        const at::Tensor read = at::cat({drawn.to(at::kLong).view({B}), finite}).to(at::kCPU);
        at::Tensor next = read.narrow(0, 0, B).clone();
        for (int64_t b = 0; b < B; ++b) {
            if (done[b] || read[B + b].item<int64_t>() != 0) continue;
            if (step == 0) {
                const std::string where = nonfinite_find_forward(model, ids, mask);
                LOTA_FAIL("generate: the prompt's logits are not finite (sequence %lld); first non-finite tensor: %s",
                          (long long)b, where.empty() ? "none found on a rerun" : where.c_str());
            }
            LOTA_FAIL("generate: the logits of new token %lld of sequence %lld are not finite (NaN or Inf); the "
                      "prompt's were finite",
                      (long long)step + 1, (long long)b);
        }
        bool all_done = true;
        at::Tensor next_mask = at::ones({B, 1}, at::kLong);
        for (int64_t b = 0; b < B; ++b) {
            if (done[b]) {
                next[b] = 0;
                next_mask[b][0] = 0;  // finished sequences feed padding, which nothing attends to
                continue;
            }
            int64_t tok = next[b].item<int64_t>();
            out[b].push_back(tok);
            if (o.on_token) o.on_token(b, tok);
            if (std::find(o.stop_ids.begin(), o.stop_ids.end(), tok) != o.stop_ids.end()) done[b] = true;
            all_done = all_done && done[b];
        }
        if (all_done) break;
        step_ids = next.view({B, 1});
        step_mask = next_mask;
        if (!o.use_cache) {
            ids = at::cat({ids, step_ids}, 1);
            mask = at::cat({mask, step_mask}, 1);
        }
    }
    return out;
}

}  // namespace lota::model
