// Forward-pass benchmark: prefill tokens/s (batch 1, P tokens) and decode tokens/s at several
// batch sizes (KV cache, greedy), timed with device synchronisation; warm-up, then the median
// of R repeats. Prints one JSON line per measurement. Usage:
//   bench_forward MODEL_DIR [--device cuda] [--dtype bf16] [--prefill 2048] [--batches 1,16]
//                 [--context 128] [--steps 64] [--repeat 5] [--graph 1] [--gemv 1] [--fuse 1] [--lora-rank R] [--label X]
//                 [--generate 0] [--keep-dequantized 1] [--profile-step S] [--bf16-store 1]
//                 [--simt-blocks-per-sm 0] [--tc-min-rows 0] [--tc-a-max-rows 0] [--tc-batch 0] [--tc-waves 0]
//                 [--tc-pdl 0] [--tc-block-steps 0] [--tc-x-smem 0] [--head-bits 0] [--head-group-size 0]
// --fuse 0: q/k/v and gate/up as separate products (lota's commands fuse them, Transformer::fuse_projections);
// --graph 0: decode steps launched op by op instead of replayed as a CUDA graph; --gemv 0:
// quantized layers use dequant + GEMM for decode too (comparisons); --lora-rank R: an unmerged
// 16-bit LoRA of rank R (random A and B) on every projection. --generate 1: also times model::generate
// (what `lota eval` and `lota generate` run: prefill, then steps greedy tokens with the per-step read of
// the chosen tokens) on the same random prompts, and prints a "generate" line: new tokens per second of wall;
// --keep-dequantized 0: its batches of more than 16 rows dequantize every step (GenerateOptions).
// --bf16-store 0: a bf16 checkpoint run in f32 on the CPU keeps float32 weights (`lota generate` keeps
// them in bfloat16, Transformer::store_bf16_weights_if_exact).
// --simt-blocks-per-sm / --tc-min-rows / --tc-a-max-rows / --tc-batch / --tc-waves / --tc-pdl / --tc-block-steps /
// --tc-x-smem: the packed-code kernel's plan knobs (kernels::GemvTuning; 0: the default) on every quantized layer,
// for comparing plans inside whole decode steps (--tc-pdl -1: the tensor-core kernel waits for the previous kernel to
// end before it starts; --tc-block-steps C: K ranges cut for whole waves of blocks that cost their steps per warp +
// C, default 4, -1: for --tc-waves; --tc-x-smem -1: the codes-as-A kernel holds x in registers instead of copying
// it through shared memory).
// --head-bits N: the LM head RTN-quantized to N bits in groups of --head-group-size after the load
// (Transformer::quantize_head, as `lota generate --head-bits`); 0: the head as stored. Every line has "head_bits".
// --profile-step S (with --generate 1, CUDA): the profiler capture (cudaProfilerStart/Stop, for
// `ncu --profile-from-start off`) spans generate's decode step S (1-based) in every run, warm-up included.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/types.h>
#ifdef LOTA_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_profiler_api.h>
#endif

#include "model/decode_graph.h"
#include "model/generate.h"
#include "model/quant_linear.h"
#include "model/transformer.h"
#include "adapter/attach.h"

namespace {

void sync(const at::Device& d) {
#ifdef LOTA_WITH_CUDA
    if (d.is_cuda()) c10::cuda::device_synchronize();
#endif
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class F>
double time_median(const at::Device& dev, int repeat, F&& f) {
    f();  // warm-up
    sync(dev);
    std::vector<double> t;
    for (int i = 0; i < repeat; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        sync(dev);
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(t);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_forward MODEL_DIR [--device cuda] [--dtype bf16] [--prefill N] "
                             "[--batches 1,16] [--context N] [--steps N] [--repeat N] [--graph 1] [--gemv 1] "
                             "[--fuse 1] [--lora-rank R] [--label X] [--generate 0] [--keep-dequantized 1] "
                             "[--profile-step S] [--bf16-store 1] [--simt-blocks-per-sm 0] "
                             "[--tc-min-rows 0] [--tc-a-max-rows 0] [--tc-batch 0] [--tc-waves 0] [--tc-pdl 0] "
                             "[--tc-block-steps 0] [--tc-x-smem 0] [--head-bits 0] [--head-group-size 0]\n");
        return 1;
    }
    std::string dir = argv[1], device = "cuda", dtype = "bf16", batches = "1,16", label = "lota";
    int64_t prefill = 2048, context = 128, steps = 64, lora_rank = 0, profile_step = 0, head_group_size = 0;
    int repeat = 5, head_bits = 0;
    bool generate_too = false, keep_dequantized = true, graph = true, gemv = true, fuse = true, bf16_store = true;
    lota::kernels::GemvTuning plan;  // the packed-code kernel's plan on every quantized layer
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--device") device = v;
        else if (k == "--dtype") dtype = v;
        else if (k == "--prefill") prefill = std::stoll(v);
        else if (k == "--batches") batches = v;
        else if (k == "--context") context = std::stoll(v);
        else if (k == "--steps") steps = std::stoll(v);
        else if (k == "--repeat") repeat = std::stoi(v);
        else if (k == "--graph") graph = v != "0";
        else if (k == "--gemv") gemv = v != "0";
        else if (k == "--fuse") fuse = v != "0";
        else if (k == "--lora-rank") lora_rank = std::stoll(v);
        else if (k == "--label") label = v;
        else if (k == "--generate") generate_too = v != "0";
        else if (k == "--keep-dequantized") keep_dequantized = v != "0";
        else if (k == "--profile-step") profile_step = std::stoll(v);
        else if (k == "--bf16-store") bf16_store = v != "0";
        else if (k == "--simt-blocks-per-sm") plan.simt_blocks_per_sm = std::stoi(v);
        else if (k == "--tc-min-rows") plan.tc_min_rows = std::stoi(v);
        else if (k == "--tc-a-max-rows") plan.tc_a_max_rows = std::stoi(v);
        else if (k == "--tc-batch") plan.tc_batch = std::stoi(v);
        else if (k == "--tc-waves") plan.tc_waves = std::stod(v);
        else if (k == "--tc-pdl") plan.tc_pdl = std::stoi(v);
        else if (k == "--tc-block-steps") plan.tc_block_steps = std::stod(v);
        else if (k == "--tc-x-smem") plan.tc_x_smem = std::stoi(v);
        else if (k == "--head-bits") head_bits = std::stoi(v);
        else if (k == "--head-group-size") head_group_size = std::stoll(v);
        else {
            std::fprintf(stderr, "bench_forward: unknown option %s\n", k.c_str());
            return 1;
        }
    }
    try {
        torch::NoGradGuard no_grad;
        auto model = lota::model::Transformer::load(dir, {device, dtype});
        if (!gemv) {
            lota::model::QuantLinearOptions no_gemv;
            no_gemv.gemv_max_rows = 0;
            for (lota::model::QuantLinear* q : model->quant_linears()) q->set_options(no_gemv);
        }
        const at::Device dev = model->device();
        if (lora_rank > 0) {
            // An unmerged 16-bit LoRA on every projection (random A and B: the cost does not depend on the values).
            for (auto& block : model->blocks())
                for (lota::model::Slot s : lota::model::PROJECTION_SLOTS) {
                    lota::model::LinearPtr& l = block.linear(s);
                    const at::Tensor a = at::randn({lora_rank, l->in_features()}) * 0.01;
                    const at::Tensor b = at::randn({l->out_features(), lora_rank}) * 0.01;
                    auto lora = std::make_shared<lota::adapter::LoraLinear>(l, a, b, 2.0, 0.0);
                    lora->to(dev, model->dtype());
                    lora->freeze();  // as `lota generate --adapter` does
                    l = lora;
                }
        }
        if (fuse) model->fuse_projections();  // as `lota generate` / `lota eval` do (LoRA layers stay separate)
        if (bf16_store) model->store_bf16_weights_if_exact(1);  // as `lota generate` does (rows: per batch below)
        if (head_bits > 0) {
            const auto head = model->quantize_head(head_bits, head_group_size);
            std::fprintf(stderr, "bench_forward: LM head %d bits, group %lld: %.1f MiB -> %.1f MiB\n", head_bits,
                         (long long)head.group_size, head.bytes_before / 1048576.0, head.bytes_after / 1048576.0);
        }
        for (lota::model::QuantLinear* q : model->quant_linears()) {  // after the fusion: fused layers are new
            lota::model::QuantLinearOptions o = q->options();
            o.gemv = plan;
            if (!gemv) o.gemv_max_rows = 0;  // the quantized head too (the projections got it before the fusion)
            q->set_options(o);
        }
        const int64_t V = model->config().vocab_size;
        if (prefill > 0) {
            at::Tensor ids = at::randint(0, V, {1, prefill}, at::kLong).to(dev);
            double t = time_median(dev, repeat, [&] { model->forward(ids); });
            std::printf("{\"impl\":\"%s\",\"what\":\"prefill\",\"batch\":1,\"tokens\":%lld,\"head_bits\":%d,"
                        "\"seconds\":%.5f,\"tokens_per_s\":%.1f}\n",
                        label.c_str(), (long long)prefill, head_bits, t, prefill / t);
        }
        size_t pos = 0;
        while (pos < batches.size()) {
            size_t comma = batches.find(',', pos);
            int64_t B = std::stoll(batches.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
            pos = comma == std::string::npos ? batches.size() : comma + 1;
            at::Tensor prompt = at::randint(0, V, {B, context}, at::kLong).to(dev);
            const at::Tensor mask = at::ones({B, 1}, at::TensorOptions().dtype(at::kLong).device(dev));
            if (generate_too) {
                std::vector<std::vector<int64_t>> prompts(B);
                const at::Tensor ids = prompt.cpu();
                for (int64_t b = 0; b < B; ++b)
                    prompts[b] = std::vector<int64_t>(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + context);
                lota::model::GenerateOptions go;
                go.max_new_tokens = steps;
                go.cuda_graph = graph;
                go.keep_dequantized = keep_dequantized;
                int64_t made = 0, delivered = 0;
#ifdef LOTA_WITH_CUDA
                if (profile_step > 0 && dev.is_cuda())
                    // on_token runs for every row once a step's tokens are read: after B·S calls the prompt
                    // and steps 1..S−1 are done, so the capture holds step S's launches (and its sampling).
                    go.on_token = [&](int64_t, int64_t) {
                        ++delivered;
                        if (delivered == B * profile_step) cudaProfilerStart();
                        if (delivered == B * (profile_step + 1)) cudaProfilerStop();
                    };
#else
                (void)profile_step;
#endif
                const double tgen = time_median(dev, repeat, [&] {
                    made = 0;
                    delivered = 0;
                    for (const auto& o : lota::model::generate(*model, prompts, go)) made += (int64_t)o.size();
                });
                std::printf("{\"impl\":\"%s\",\"what\":\"generate\",\"batch\":%lld,\"context\":%lld,"
                            "\"new_tokens\":%lld,\"keep_dequantized\":%s,\"head_bits\":%d,\"seconds\":%.5f,"
                            "\"tokens_per_s\":%.1f}\n",
                            label.c_str(), (long long)B, (long long)context, (long long)made,
                            keep_dequantized ? "true" : "false", head_bits, tgen, made / tgen);
                continue;
            }
            std::vector<double> dec;
            bool replayed = false;
            for (int r = 0; r <= repeat; ++r) {  // r == 0 is the warm-up
                auto cache = model->make_cache(B, context + steps + 2);
                lota::model::DecodeGraph decode(*model, cache, graph);
                at::Tensor logits = model->forward(prompt, {}, &cache);
                at::Tensor next = logits.select(1, logits.size(1) - 1).argmax(-1).view({B, 1});
                for (int w = 0; w < 2; ++w) {  // eager step and capture: not timed
                    logits = decode.step(next, mask);
                    next = logits.select(1, 0).argmax(-1).view({B, 1});
                }
                sync(dev);
                auto t0 = std::chrono::steady_clock::now();
                for (int64_t s = 0; s < steps; ++s) {
                    logits = decode.step(next, mask);
                    next = logits.select(1, 0).argmax(-1).view({B, 1});
                }
                sync(dev);
                replayed = decode.replaying();
                if (r > 0) dec.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            const double tdec = median(dec);
            std::printf("{\"impl\":\"%s\",\"what\":\"decode\",\"batch\":%lld,\"context\":%lld,\"steps\":%lld,"
                        "\"graph\":%s,\"gemv\":%s,\"lora_rank\":%lld,\"head_bits\":%d,\"seconds\":%.5f,"
                        "\"tokens_per_s\":%.1f}\n",
                        label.c_str(), (long long)B, (long long)context, (long long)steps,
                        replayed ? "true" : "false", gemv ? "true" : "false", (long long)lora_rank, head_bits, tdec,
                        B * steps / tdec);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_forward: %s\n", e.what());
        return 1;
    }
    return 0;
}
