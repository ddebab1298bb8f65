// GGUF export: an HF model directory (16-bit, GPTQ or LoTA-merged; llama, mistral, qwen2, qwen3) -> one
// GGUF file for llama.cpp, with the metadata keys and tensor names llama.cpp's convert_hf_to_gguf writes
// for that architecture (the tokenizer keys: io/gguf_tokenizer_export.h).
//
// Quantized linears with contiguous groups (no act-order), a group size that is a multiple of 32
// and codes of 2, 3 or 4 bits become Q4_1 blocks directly: each block of 32 codes keeps its codes
// and gets d = S and m = S·(F − Z) in fp16 (y = d·q + m = S·(q − Z + F)); the only rounding is m's,
// reported in grid steps. Anything else quantized (8 bits, act-order, other group sizes) is refused
// unless allow_lossy, which writes it as F16 and reports the error. Embeddings and the head are
// written in the dtype they are stored in (F32, F16 or BF16); norms, biases and other 1-D tensors as
// F32, as llama.cpp's converter writes them (its CPU kernels multiply F32 activations by F32 or F16
// norms only; a BF16 norm aborts there).
// Llama and Mistral q/k rows are permuted the way llama.cpp's rope expects (the inverse of
// `lota import`'s Note [llama.cpp Q/K permutation]); Qwen2/Qwen3 use llama.cpp's NeoX rope and are
// not permuted. Llama 3.1 rope scaling becomes a rope_freqs tensor.
#include "exporter/gguf_export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "io/gguf_names.h"
#include "io/gguf_tokenizer_export.h"
#include "io/gguf_writer.h"
#include "io/gptq_checkpoint.h"
#include "io/hf_config.h"
#include "io/model_files.h"
#include "quant/gptq_tensors.h"
#include "quant/quantized_weight.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/strfmt.h"

namespace lota::exporter {
namespace {

namespace fs = std::filesystem;
using io::Arch;
using io::GgmlType;

// llama.cpp's architecture name for ours: its converter writes Mistral as "llama".
const char* gguf_arch(Arch a) {
    switch (a) {
        case Arch::LLAMA:
        case Arch::MISTRAL: return "llama";
        case Arch::QWEN2: return "qwen2";
        case Arch::QWEN3: return "qwen3";
    }
    return "llama";
}

// Rows of q_proj/k_proj (or their per-row data) in the order llama.cpp's rope expects: view the rows
// of each head as [2, d/2], swap to [d/2, 2] (GGUF row h·d + 2i + a = HF row h·d + a·d/2 + i).
at::Tensor permute_heads(const at::Tensor& w, int64_t n_heads) {
    const int64_t rows = w.size(0), d = rows / n_heads;
    std::vector<int64_t> shape{n_heads, 2, d / 2};
    for (int64_t i = 1; i < w.dim(); ++i) shape.push_back(w.size(i));
    std::vector<int64_t> flat{rows};
    for (int64_t i = 1; i < w.dim(); ++i) flat.push_back(w.size(i));
    return w.reshape(shape).transpose(1, 2).reshape(flat).contiguous();
}

GgmlType ggml_type_of(at::ScalarType t, const std::string& name) {
    if (t == at::kFloat) return GgmlType::F32;
    if (t == at::kHalf) return GgmlType::F16;
    if (t == at::kBFloat16) return GgmlType::BF16;
    LOTA_FAIL("tensor '%s' has dtype %s; GGUF export writes float32, float16 or bfloat16 tensors", name.c_str(),
              c10::toString(t));
}

class Exporter {
  public:
    explicit Exporter(const ExportOptions& o) : o_(o), files_(o.model) {
        cfg_ = io::hf_config_read(o.model + "/config.json");
        gptq_ = io::gptq_config_read(o.model);
        LOTA_CHECK(cfg_.rope_scaling.type.empty() || cfg_.rope_scaling.type == "llama3",
                   "%s/config.json: rope scaling '%s' is not exported to GGUF (llama3 is)", o.model.c_str(),
                   cfg_.rope_scaling.type.c_str());
    }

    GgufExportReport run() {
        const std::string arch = gguf_arch(cfg_.arch);
        write_metadata(arch);
        if (cfg_.rope_scaling.type == "llama3") rope_freqs();
        dense("model.embed_tokens.weight", "token_embd.weight");
        for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
            const std::string hp = "model.layers." + std::to_string(l) + ".", gp = "blk." + std::to_string(l) + ".";
            dense(hp + "input_layernorm.weight", gp + "attn_norm.weight");
            linear(hp + "self_attn.q_proj", gp + "attn_q", cfg_.num_attention_heads);
            linear(hp + "self_attn.k_proj", gp + "attn_k", cfg_.num_key_value_heads);
            linear(hp + "self_attn.v_proj", gp + "attn_v", 0);
            linear(hp + "self_attn.o_proj", gp + "attn_output", 0);
            if (cfg_.qk_norm) {
                dense(hp + "self_attn.q_norm.weight", gp + "attn_q_norm.weight");
                dense(hp + "self_attn.k_norm.weight", gp + "attn_k_norm.weight");
            }
            dense(hp + "post_attention_layernorm.weight", gp + "ffn_norm.weight");
            linear(hp + "mlp.gate_proj", gp + "ffn_gate", 0);
            linear(hp + "mlp.up_proj", gp + "ffn_up", 0);
            linear(hp + "mlp.down_proj", gp + "ffn_down", 0);
        }
        dense("model.norm.weight", "output_norm.weight");
        if (!cfg_.tie_word_embeddings) dense("lm_head.weight", "output.weight");
        w_.set_u32("general.file_type", rep_.q4_1 > 0 ? 3u /* MOSTLY_Q4_1 */ : file_type_dense_);
        w_.set_string("general.size_label", size_label(n_params_));
        w_.write(o_.out);
        return rep_;
    }

  private:
    // gguf-py's model_weight_count_rounded_notation: the parameter count in K/M/B/T with at least two
    // significant digits ("135M", "1.7B").
    static std::string size_label(int64_t n) {
        const double v = static_cast<double>(n);
        double x = v * 1e-3;
        const char* suffix = "K";
        if (v > 1e12) x = v * 1e-12, suffix = "T";
        else if (v > 1e9) x = v * 1e-9, suffix = "B";
        else if (v > 1e6) x = v * 1e-6, suffix = "M";
        std::string digits = std::to_string(static_cast<long long>(std::nearbyint(x)));  // Python's round: half to even
        digits.erase(0, digits.find_first_not_of('0') == std::string::npos ? digits.size() : digits.find_first_not_of('0'));
        const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
        return strfmt("%.*f%s", fix, x, suffix);
    }

    // Llama 3.1 rope scaling as llama.cpp applies it: a rope_freqs tensor of head_dim/2 factors that
    // divide the rope frequencies (no rope.scaling.* keys). With θ_i = rope_theta^(−2i/head_dim), the
    // wavelength λ_i = 2π/θ_i and L = original_max_position_embeddings: factor 1 when λ_i < L/high_freq_factor,
    // `factor` when λ_i > L/low_freq_factor, else 1/((1 − s)/factor + s) with
    // s = (L/λ_i − low_freq_factor)/(high_freq_factor − low_freq_factor).
    void rope_freqs() {
        const io::RopeScaling& r = cfg_.rope_scaling;
        const double L = static_cast<double>(r.original_max_position_embeddings);  // factors checked at parse
        const int64_t half = cfg_.head_dim / 2;
        std::vector<float> f(static_cast<size_t>(half));
        for (int64_t i = 0; i < half; ++i) {
            const double theta = std::pow(cfg_.rope_theta, -2.0 * static_cast<double>(i) / cfg_.head_dim);
            const double wavelen = 2 * M_PI / theta;
            double x;
            if (wavelen < L / r.high_freq_factor) x = 1.0;
            else if (wavelen > L / r.low_freq_factor) x = r.factor;
            else {
                const double s = (L / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
                x = 1.0 / ((1.0 - s) / r.factor + s);
            }
            f[i] = static_cast<float>(x);
        }
        std::vector<uint8_t> bytes(f.size() * sizeof(float));
        std::memcpy(bytes.data(), f.data(), bytes.size());
        w_.add_tensor(io::gguf_names::ROPE_FREQS, GgmlType::F32, {half}, std::move(bytes));
        n_params_ += half;
        ++rep_.dense;
    }

    bool permuted() const { return cfg_.arch == Arch::LLAMA || cfg_.arch == Arch::MISTRAL; }

    void write_metadata(const std::string& arch) {
        auto key = [&](const char* k) { return arch + "." + k; };
        w_.set_string("general.architecture", arch);
        w_.set_string("general.type", "model");
        w_.set_string("general.name", fs::path(o_.model).filename().string());
        w_.set_u32("general.quantization_version", 2);
        w_.set_u32(key("block_count"), static_cast<uint32_t>(cfg_.num_hidden_layers));
        w_.set_u32(key("context_length"), static_cast<uint32_t>(cfg_.max_position_embeddings));
        w_.set_u32(key("embedding_length"), static_cast<uint32_t>(cfg_.hidden_size));
        w_.set_u32(key("feed_forward_length"), static_cast<uint32_t>(cfg_.intermediate_size));
        w_.set_u32(key("attention.head_count"), static_cast<uint32_t>(cfg_.num_attention_heads));
        w_.set_u32(key("attention.head_count_kv"), static_cast<uint32_t>(cfg_.num_key_value_heads));
        w_.set_f32(key("rope.freq_base"), static_cast<float>(cfg_.rope_theta));
        w_.set_f32(key("attention.layer_norm_rms_epsilon"), static_cast<float>(cfg_.rms_norm_eps));
        w_.set_u32(key("attention.key_length"), static_cast<uint32_t>(cfg_.head_dim));
        w_.set_u32(key("attention.value_length"), static_cast<uint32_t>(cfg_.head_dim));
        if (cfg_.arch == Arch::LLAMA || cfg_.arch == Arch::MISTRAL) {
            w_.set_u32(key("vocab_size"), static_cast<uint32_t>(cfg_.vocab_size));
            w_.set_u32(key("rope.dimension_count"), static_cast<uint32_t>(cfg_.head_dim));
        }
        io::gguf_tokenizer_export(w_, o_.model, cfg_);
    }


    // 1-D tensors (norms, biases) widened to F32, exactly; see the file comment.
    static at::Tensor vector_f32(at::Tensor t) { return t.dim() <= 1 ? t.to(at::kFloat).contiguous() : t; }

    void dense(const std::string& hf, const std::string& gguf) {
        const at::Tensor t = vector_f32(files_.load(hf).contiguous());
        const GgmlType type = ggml_type_of(t.scalar_type(), hf);
        if (hf == "model.embed_tokens.weight")
            file_type_dense_ = type == GgmlType::F32 ? 0u : type == GgmlType::F16 ? 1u : 32u;
        w_.add_tensor(gguf, type, t.sizes().vec(), io::tensor_bytes(t));
        n_params_ += t.numel();
        ++rep_.dense;
    }

    // One projection: prefix "model.layers.N.self_attn.q_proj", GGUF base "blk.N.attn_q"; heads > 0
    // permutes its rows for llama.cpp's rope (llama, mistral).
    void linear(const std::string& prefix, const std::string& gguf, int64_t heads) {
        const bool permute = heads > 0 && permuted();
        if (files_.has(prefix + ".bias")) {
            at::Tensor b = vector_f32(files_.load(prefix + ".bias").contiguous());
            if (permute) b = permute_heads(b, heads);
            w_.add_tensor(gguf + ".bias", ggml_type_of(b.scalar_type(), prefix + ".bias"), b.sizes().vec(),
                          io::tensor_bytes(b));
            n_params_ += b.numel();
        }
        if (!gptq_ || !files_.has(prefix + ".qweight")) {
            at::Tensor w = files_.load(prefix + ".weight").contiguous();
            if (permute) w = permute_heads(w, heads);
            w_.add_tensor(gguf + ".weight", ggml_type_of(w.scalar_type(), prefix + ".weight"), w.sizes().vec(),
                          io::tensor_bytes(w));
            n_params_ += w.numel();
            ++rep_.dense;
            return;
        }
        const io::GptqLinearTensors t = io::gptq_linear_read(files_, prefix, *gptq_);
        const quant::QuantizedWeight qw = quant::quantized_weight_from_gptq(t, *gptq_, prefix);
        const int64_t K = qw.in_features, g = qw.group_size == -1 ? K : qw.group_size;
        const bool contiguous = at::equal(qw.g_idx.to(at::kLong), at::arange(K, at::kLong).div(g, "floor"));
        std::string why;
        if (qw.bits > 4) why = strfmt("%d-bit codes do not fit Q4_1's 4-bit blocks", qw.bits);
        else if (!contiguous) why = "its groups are not contiguous (act-order)";
        else if (g % 32 != 0) why = strfmt("group size %lld is not a multiple of 32", (long long)g);
        if (!why.empty()) {
            LOTA_CHECK(o_.allow_lossy, "%s: %s cannot be written losslessly: %s; --allow-lossy writes it as F16",
                       o_.model.c_str(), prefix.c_str(), why.c_str());
            const at::Tensor w = quant::dequantize(qw).t().contiguous();  // [N, K] float32
            at::Tensor h = w.to(at::kHalf);
            rep_.max_lossy_error = std::max(rep_.max_lossy_error, (h.to(at::kFloat) - w).abs().max().item<double>());
            if (permute) h = permute_heads(h, heads);
            w_.add_tensor(gguf + ".weight", GgmlType::F16, h.sizes().vec(), io::tensor_bytes(h));
            n_params_ += h.numel();
            ++rep_.lossy_f16;
            return;
        }
        // Per block of 32 inputs: d = S, m = S·(F − Z) of its group, for output row n.
        const int64_t B = K / 32;
        const at::Tensor block_group = at::arange(B, at::kLong).mul(32).div(g, "floor");
        const at::Tensor S = qw.scales.to(at::kFloat).index_select(0, block_group).t();  // [N, B]
        at::Tensor FZ = -qw.zeros.to(at::kDouble);
        if (qw.offset.defined()) FZ = FZ + qw.offset.to(at::kDouble);
        const at::Tensor m_exact = S.to(at::kDouble) * FZ.index_select(0, block_group).t();
        at::Tensor d = qw.scales.index_select(0, block_group).t().contiguous();  // fp16 [N, B]
        at::Tensor m = m_exact.to(at::kHalf);
        const at::Tensor steps = (m.to(at::kDouble) - m_exact).abs() / S.to(at::kDouble);
        rep_.max_m_error_steps = std::max(rep_.max_m_error_steps, steps.max().item<double>());
        at::Tensor codes = quant::unpack_codes(qw).t().contiguous();  // [N, K]
        if (permute) {
            codes = permute_heads(codes, heads);
            d = permute_heads(d, heads);
            m = permute_heads(m, heads);
        }
        w_.add_tensor(gguf + ".weight", GgmlType::Q4_1, codes.sizes().vec(), io::q4_1_blocks(codes, d, m));
        n_params_ += codes.numel();
        ++rep_.q4_1;
    }

    const ExportOptions& o_;
    io::ModelFiles files_;
    io::ModelConfig cfg_;
    std::optional<io::GptqConfig> gptq_;
    io::GgufWriter w_;
    GgufExportReport rep_;
    uint32_t file_type_dense_ = 0;
    int64_t n_params_ = 0;
};

}  // namespace

GgufExportReport gguf_export(const ExportOptions& o) {
    output_path_check(o.out, {{"--model", o.model}});
    output_file_check(o.out, o.overwrite);
    return Exporter(o).run();
}

}  // namespace lota::exporter
