// The model-level quantization driver (see gptq_driver.h). GPTQ is true-sequential inside each
// block: the projections are quantized in the order their inputs appear in the forward pass —
// {q, k, v} (one shared input), o, {gate, up} (one shared input), down — and each group's
// Hessian comes from inputs computed with the groups before it already quantized. The block is
// run stage by stage (Transformer::attn_in ... mlp_out), so each calibration sample goes through
// about 1.7 blocks' worth of compute per block instead of one full pass per group.
#include "calibrate/gptq_driver.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <ATen/ATen.h>
#include <torch/types.h>

#include "calibrate/calib_data.h"
#include "dist/dist.h"
#include "io/gptq_checkpoint.h"
#include "kernels/device_memory.h"
#include "io/mapped_file.h"
#include "io/model_files.h"
#include "model/arch.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "quant/gptq.h"
#include "quant/gptq_tensors.h"
#include "quant/tf32_guard.h"
#include "text/tokenizer.h"
#include "util/check.h"
#include "util/fs.h"
#include "util/json_read.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/strfmt.h"

namespace lota::calibrate {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const model::DenseLinear& dense_of(const model::LinearPtr& l, const std::string& name) {
    const auto* d = dynamic_cast<const model::DenseLinear*>(l.get());
    LOTA_CHECK(d != nullptr, "quantize: '%s' is already a %s linear; expected a dense (16/32-bit) model", name.c_str(),
               l->kind().c_str());
    return *d;
}

}  // namespace

QuantizeModelReport quantize_model(const std::string& model_dir, const std::string& out_dir,
                                   const QuantizeModelOptions& opts, dist::Group* group_in) {
    const std::unique_ptr<dist::Group> own = group_in == nullptr ? dist::Group::single() : nullptr;
    dist::Group& group = group_in != nullptr ? *group_in : *own;
    const auto t0 = Clock::now();
    const torch::NoGradGuard no_grad;
    const bool gptq = opts.method == "gptq";
    LOTA_CHECK(gptq || opts.method == "rtn", "quantize: unknown method \"%s\" (expected gptq or rtn)",
               opts.method.c_str());
    LOTA_CHECK(!gptq || !opts.calib_path.empty(), "quantize: GPTQ needs calibration text (--calib FILE)");
    LOTA_CHECK(!io::gptq_checkpoint_detect(model_dir), "%s: already a GPTQ checkpoint; quantize the 16-bit model",
               model_dir.c_str());
    // Rank 0 writes the checkpoint; it checks the output directory before the long work.
    std::optional<StagedDir> out;
    if (group.root()) out.emplace(out_dir, opts.overwrite);
    if (!group.single_process()) {
        group.check_same("the model directory (names, sizes and first and last bytes of its files)",
                         dist::dir_digest(model_dir));
        if (gptq) group.check_same("the calibration text (" + opts.calib_path + ")", dist::dir_digest(opts.calib_path));
    }
    auto m = model::Transformer::load(model_dir, {opts.device, "f32"});
    const int64_t n_layers = m->config().num_hidden_layers;
    LOTA_CHECK(n_layers > 0, "%s: model has no layers", model_dir.c_str());
    for (model::Slot s : model::PROJECTION_SLOTS) {  // every block has the same shapes
        const auto& lin = m->blocks()[0].linear(s);
        const std::string name = model::name_linear(0, s);
        quant::quant_shape_check(opts.quant, lin->in_features(), lin->out_features(), name.c_str());
    }

    // The calibration forwards may use TF32 on CUDA (GPTQ's reference runs them in fp16); the
    // Hessians and the GPTQ solve switch it off for themselves (quant/gptq.cpp).
    const quant::Tf32Guard tf32(m->device().is_cuda());
    std::vector<at::Tensor> hs;
    model::ForwardContext ctx;
    if (gptq) {
        const text::Tokenizer tok = text::Tokenizer::from_dir(model_dir);
        const at::Tensor ids = calib_windows(opts.calib_path, tok, opts.calib_samples, opts.calib_seqlen, opts.seed)
                                   .to(m->device());
        ctx = m->prepare(ids.narrow(0, 0, 1), {}, nullptr);
        // Data parallel: each rank runs its share of the windows; the Hessians are summed over the
        // ranks (exactly, in float64: quant/gptq.h) and every rank solves the same GPTQ problems.
        const auto [first, last] = dist::shard(ids.size(0), group.rank(), group.size());
        for (int64_t s = first; s < last; ++s) hs.push_back(m->embed(ids.narrow(0, s, 1)));
    }

    // Room for one layer's attention output and MLP hidden state of every calibration window.
    constexpr int64_t kCacheBytes = int64_t(4) << 30;
    int64_t tokens = 0;
    for (const auto& h : hs) tokens += h.numel() / h.size(-1);
    const io::ModelConfig& cfg = m->config();
    const bool cache = tokens * (cfg.hidden_size + cfg.intermediate_size) * 4 <= kCacheBytes;

    std::map<std::string, quant::QuantizedWeight> done;
    double rel_sum = 0;
    for (int64_t l = 0; l < n_layers; ++l) {
        const auto tl = Clock::now();
        model::Block& block = m->blocks()[l];
        double layer_rel = 0, solve_s = 0;
        // Quantizes the projections `group` (GPTQ from `hessian`, or RTN) and swaps them into the model.
        auto quantize_group = [&](const std::vector<model::Slot>& group, const quant::Gptq* hessian) {
            for (model::Slot s : group) {
                const std::string name = model::name_linear(l, s);
                const model::DenseLinear& d = dense_of(block.linear(s), name);
                quant::QuantizedWeight qw;
                if (hessian != nullptr) {
                    const auto ts = Clock::now();
                    quant::GptqResult r = hessian->quantize(d.weight(), opts.quant);  // ends in a sync (item)
                    solve_s += seconds_since(ts);
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
                block.linear(s) = q;
                done[name] = std::move(qw);
            }
        };
        const auto& groups = model::true_sequential_groups();  // {q, k, v}, {o}, {gate, up}, {down}
        LOTA_ASSERT(groups.size() == 4, "the stages below feed four true-sequential groups, the table has %zu",
                    groups.size());
        auto hessian_of = [&](const std::vector<model::Slot>& group) {
            return quant::Gptq(block.linear(group[0])->in_features(), m->device());
        };
        // The sum of every rank's Hessian (and rows) before a group is solved.
        auto all_ranks = [&](quant::Gptq& h, const char* stage) {
            if (group.single_process()) return;
            const std::string what = strfmt("the layer %lld %s Hessian all-reduce", (long long)l, stage);
            const at::Tensor rows = at::full({1}, (double)h.n_rows(), h.gram_sum().options());
            group.all_reduce_sum(h.gram_sum(), what);
            group.all_reduce_sum(rows, what);
            h.set_rows((int64_t)rows.item<double>());
        };
        if (!gptq) {
            for (const auto& group : groups) quantize_group(group, nullptr);
        } else {
            // Each stage recomputes its inputs from the block input (hs) with the earlier groups
            // already quantized; after the attention stage hs holds the block's midpoint.
            // The o stage's attention output and the down stage's MLP hidden state are computed with
            // q/k/v resp. gate/up already quantized, so the next stage needs them unchanged: kept when
            // they fit kCacheBytes (the same values either way), recomputed otherwise.
            std::vector<at::Tensor> attn(hs.size()), hidden(hs.size());
            quant::Gptq h_qkv = hessian_of(groups[0]);
            for (const auto& h : hs) h_qkv.add_batch(m->attn_in(l, h));
            all_ranks(h_qkv, "q/k/v");
            quantize_group(groups[0], &h_qkv);
            quant::Gptq h_o = hessian_of(groups[1]);
            for (size_t i = 0; i < hs.size(); ++i) {
                at::Tensor a = m->attn_core(l, m->attn_in(l, hs[i]), ctx);
                h_o.add_batch(a);
                if (cache) attn[i] = std::move(a);
            }
            all_ranks(h_o, "o");
            quantize_group(groups[1], &h_o);
            quant::Gptq h_gate_up = hessian_of(groups[2]);
            for (size_t i = 0; i < hs.size(); ++i) {
                at::Tensor& h = hs[i];
                h = m->attn_out(l, h, cache ? attn[i] : m->attn_core(l, m->attn_in(l, h), ctx));
                attn[i] = at::Tensor();
                h_gate_up.add_batch(m->mlp_in(l, h));
            }
            all_ranks(h_gate_up, "gate/up");
            quantize_group(groups[2], &h_gate_up);
            quant::Gptq h_down = hessian_of(groups[3]);
            for (size_t i = 0; i < hs.size(); ++i) {
                at::Tensor x = m->mlp_hidden(l, m->mlp_in(l, hs[i]));
                h_down.add_batch(x);
                if (cache) hidden[i] = std::move(x);
            }
            all_ranks(h_down, "down");
            quantize_group(groups[3], &h_down);
            for (size_t i = 0; i < hs.size(); ++i) {
                hs[i] = m->mlp_out(l, hs[i], cache ? hidden[i] : m->mlp_hidden(l, m->mlp_in(l, hs[i])));
                hidden[i] = at::Tensor();
            }
        }
        const double elapsed = seconds_since(t0);
        const double eta = elapsed / double(l + 1) * double(n_layers - l - 1);
        if (group.root())
            LOTA_LOG_INFO("quantize %s layer %lld/%lld | %d bits g%d | rel err %.4g | %.1fs (GPTQ solves %.1fs) | "
                      "elapsed %s | ETA %s",
                      opts.method.c_str(), (long long)(l + 1), (long long)n_layers, opts.quant.bits,
                      opts.quant.group_size, gptq ? layer_rel / double(model::PROJECTION_SLOTS.size()) : 0.0,
                      seconds_since(tl), solve_s, format_duration(elapsed).c_str(), format_duration(eta).c_str());
    }

    // Checkpoint: quantized linears + every other tensor as stored in the source (rank 0).
    if (group.root()) {
        io::GptqCheckpoint ck;
        const std::string config_path = (fs::path(model_dir) / "config.json").string();
        ck.config = json_parse(io::file_read_text(config_path), config_path);
        ck.quant = quant::gptq_config_of(opts.quant, opts.method);
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
        io::gptq_checkpoint_write(out->path(), ck);
        io::model_text_files_copy(model_dir, out->path());
        out->commit();
    }
    QuantizeModelReport rep;
    rep.n_linears = static_cast<int64_t>(done.size());
    rep.mean_rel_error = gptq && rep.n_linears ? rel_sum / double(rep.n_linears) : 0.0;
    rep.seconds = seconds_since(t0);
    rep.peak_memory_mib = kernels::device_peak_memory_mib(m->device());
    if (group.root())
        LOTA_LOG_INFO("quantize: wrote %s (%lld linears, %d bits, group %d, %.1fs, peak %s memory %.0f MiB)",
                  out_dir.c_str(), (long long)rep.n_linears, opts.quant.bits, opts.quant.group_size, rep.seconds,
                  m->device().is_cuda() ? "GPU" : "resident", rep.peak_memory_mib);
    return rep;
}

}  // namespace lota::calibrate
