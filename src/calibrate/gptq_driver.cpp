// The model-level quantization driver (see gptq_driver.h). Calibration inputs are captured by
// wrapping the projections of the current true-sequential group in a CaptureLinear, which feeds
// every input to its Gptq object and forwards to the dense layer; after the group is quantized
// its QuantLinears replace the dense ones, so later groups and blocks see quantized outputs.
#include "calibrate/gptq_driver.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "calibrate/calib_data.h"
#include "io/gptq_checkpoint.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "model/arch.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "quant/gptq.h"
#include "quant/gptq_tensors.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/log.h"

namespace lota::calibrate {
namespace fs = std::filesystem;
namespace {

// True-sequential groups by projection short name (GPTQ's llama.py order).
// TODO(issue 3): move to the arch table (model/arch.cpp) when it grows per-architecture groups.
const std::vector<std::vector<std::string>>& true_sequential_groups() {
    static const std::vector<std::vector<std::string>> groups = {
        {"q_proj", "k_proj", "v_proj"}, {"o_proj"}, {"gate_proj", "up_proj"}, {"down_proj"}};
    return groups;
}

class CaptureLinear : public model::Linear {
  public:
    CaptureLinear(model::LinearPtr inner, quant::Gptq* gptq) : inner_(std::move(inner)), gptq_(gptq) {}
    at::Tensor forward(const at::Tensor& x) override {
        gptq_->add_batch(x);
        return inner_->forward(x);
    }
    int64_t in_features() const override { return inner_->in_features(); }
    int64_t out_features() const override { return inner_->out_features(); }
    void to(const at::Device& device, at::ScalarType dtype) override { inner_->to(device, dtype); }
    std::string kind() const override { return "capture"; }

  private:
    model::LinearPtr inner_;
    quant::Gptq* gptq_;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const model::DenseLinear& dense_of(const model::LinearPtr& l, const std::string& name) {
    const auto* d = dynamic_cast<const model::DenseLinear*>(l.get());
    LOTA_CHECK(d != nullptr, "quantize: '%s' is already a %s linear; expected a dense (16/32-bit) model", name.c_str(),
               l->kind().c_str());
    return *d;
}

// Runs every calibration sample through block `layer` (outputs replace inputs when `advance`).
void run_block(model::Transformer& m, int64_t layer, std::vector<at::Tensor>& hs, const model::ForwardContext& ctx,
               bool advance) {
    for (auto& h : hs) {
        at::Tensor out = m.block_forward(layer, h, ctx);
        if (advance) h = out;
    }
}

}  // namespace

QuantizeModelReport quantize_model(const std::string& model_dir, const std::string& out_dir,
                                   const QuantizeModelOptions& opts) {
    const auto t0 = Clock::now();
    const torch::NoGradGuard no_grad;
    const bool gptq = opts.method == "gptq";
    LOTA_CHECK(gptq || opts.method == "rtn", "quantize: unknown method \"%s\" (expected gptq or rtn)",
               opts.method.c_str());
    LOTA_CHECK(!gptq || !opts.calib_path.empty(), "quantize: GPTQ needs calibration text (--calib FILE)");
    LOTA_CHECK(!io::gptq_checkpoint_detect(model_dir), "%s: already a GPTQ checkpoint; quantize the 16-bit model",
               model_dir.c_str());
    auto m = model::Transformer::load(model_dir, {opts.device, "f32"});
    const int64_t n_layers = m->config().num_hidden_layers;
    const auto& slots = model::linear_slots();
    LOTA_CHECK(n_layers > 0, "%s: model has no layers", model_dir.c_str());
    for (size_t i = 0; i < slots.size(); ++i) {  // every block has the same shapes
        const auto& lin = m->blocks()[0].linears[i];
        const std::string name = model::name_linear(0, slots[i]);
        quant::quant_options_check(opts.quant, lin->in_features(), name.c_str());
        LOTA_CHECK(lin->out_features() * opts.quant.bits % 32 == 0,
                   "%s: out_features %lld times %d bits is not a multiple of 32, so zero points cannot be packed",
                   name.c_str(), (long long)lin->out_features(), opts.quant.bits);
    }

    std::vector<at::Tensor> hs;
    model::ForwardContext ctx;
    if (gptq) {
        const text::Tokenizer tok = text::Tokenizer::from_dir(model_dir);
        const at::Tensor ids = calib_windows(opts.calib_path, tok, opts.calib_samples, opts.calib_seqlen, opts.seed)
                                   .to(m->device());
        ctx = m->prepare(ids.narrow(0, 0, 1), {}, nullptr);
        for (int64_t s = 0; s < ids.size(0); ++s) hs.push_back(m->embed(ids.narrow(0, s, 1)));
    }

    std::map<std::string, quant::QuantizedWeight> done;
    double rel_sum = 0;
    for (int64_t l = 0; l < n_layers; ++l) {
        const auto tl = Clock::now();
        auto& linears = m->blocks()[l].linears;
        double layer_rel = 0;
        for (const auto& group : true_sequential_groups()) {
            std::vector<size_t> idx;
            for (size_t i = 0; i < slots.size(); ++i)
                for (const auto& g : group)
                    if (g == slots[i].short_name) idx.push_back(i);
            std::map<size_t, std::unique_ptr<quant::Gptq>> hessians;
            std::map<size_t, model::LinearPtr> dense;
            for (size_t i : idx) dense[i] = linears[i];
            if (gptq) {
                for (size_t i : idx) {
                    hessians[i] = std::make_unique<quant::Gptq>(linears[i]->in_features(), m->device());
                    linears[i] = std::make_shared<CaptureLinear>(dense[i], hessians[i].get());
                }
                run_block(*m, l, hs, ctx, false);
            }
            for (size_t i : idx) {
                const std::string name = model::name_linear(l, slots[i]);
                const model::DenseLinear& d = dense_of(dense[i], name);
                quant::QuantizedWeight qw;
                if (gptq) {
                    quant::GptqResult r = hessians[i]->quantize(d.weight(), opts.quant);
                    if (r.dead_columns > 0)
                        LOTA_LOG_DEBUG("%s: %lld dead input columns", name.c_str(), (long long)r.dead_columns);
                    layer_rel += r.rel_error;
                    rel_sum += r.rel_error;
                    qw = std::move(r.qw);
                } else {
                    qw = quant::rtn_quantize(d.weight(), opts.quant);
                }
                if (d.bias().defined()) qw.bias = d.bias().to(at::kCPU);
                auto q = std::make_shared<model::QuantLinear>(qw);
                q->to(m->device(), at::kFloat);
                linears[i] = q;
                done[name] = std::move(qw);
            }
        }
        if (gptq) run_block(*m, l, hs, ctx, true);
        const double elapsed = seconds_since(t0);
        const double eta = elapsed / double(l + 1) * double(n_layers - l - 1);
        LOTA_LOG_INFO("quantize %s layer %lld/%lld | %d bits g%d | rel err %.4g | %.1fs | elapsed %.0fs | ETA %.0fs",
                      opts.method.c_str(), (long long)(l + 1), (long long)n_layers, opts.quant.bits,
                      opts.quant.group_size, gptq ? layer_rel / double(slots.size()) : 0.0, seconds_since(tl), elapsed,
                      eta);
    }

    // Checkpoint: quantized linears + every other tensor as stored in the source.
    io::GptqCheckpoint ck;
    ck.config = nlohmann::json::parse(io::file_read_text((fs::path(model_dir) / "config.json").string()));
    ck.quant.bits = opts.quant.bits;
    ck.quant.group_size = opts.quant.group_size;
    ck.quant.sym = opts.quant.sym;
    ck.quant.desc_act = opts.quant.act_order;
    ck.quant.extra = {{"damp_percent", opts.quant.damp}, {"static_groups", false}, {"true_sequential", true},
                      {"lm_head", false}, {"meta", {{"quantizer", {"lota"}}, {"method", opts.method}}}};
    const io::ModelFiles files(model_dir);
    std::set<std::string> consumed;
    for (auto& [name, qw] : done) {
        io::GptqLinearTensors t = quant::gptq_tensors_from_quantized_weight(qw);
        if (files.has(name + ".bias")) t.bias = files.load(name + ".bias");
        ck.linears[name] = t;
        consumed.insert(name + ".weight");
        consumed.insert(name + ".bias");
    }
    for (const auto& name : files.names())
        if (!consumed.count(name)) ck.tensors[name] = files.load(name);
    std::vector<std::string> copy;
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                          "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt"})
        copy.push_back((fs::path(model_dir) / f).string());
    io::gptq_checkpoint_write(out_dir, ck, copy);

    QuantizeModelReport rep;
    rep.n_linears = static_cast<int64_t>(done.size());
    rep.mean_rel_error = gptq && rep.n_linears ? rel_sum / double(rep.n_linears) : 0.0;
    rep.seconds = seconds_since(t0);
    LOTA_LOG_INFO("quantize: wrote %s (%lld linears, %d bits, group %d, %.1fs)", out_dir.c_str(),
                  (long long)rep.n_linears, opts.quant.bits, opts.quant.group_size, rep.seconds);
    return rep;
}

}  // namespace lota::calibrate
