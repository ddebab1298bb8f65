#!/usr/bin/env bash
# Batched generation as `lota eval` runs a generation task (GSM8K-style: batch 64, 256 new tokens, greedy,
# no stop token, so every sequence makes all 256) on a Llama-3.1-8B-shaped 4-bit model (random weights, RTN
# codes in a GPTQ g128 checkpoint drawn by `lota init` on the GPU). model::generate is timed end to end:
# the prompt forward, then the decode steps replayed as a CUDA graph with the per-step read of the chosen
# tokens; new tokens per second of wall, median of 3 after one warm-up. Rows: batch 1, 16 and 64, and at
# batch 64 once more dequantizing every step (--keep-dequantized 0, what generation did before it kept
# the weights dequantized). Table: bench/generate.md.
#
#   bench/run_generate.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs lota and bench_forward in BUILD_DIR (default build).
# Options (default):
#   --device cuda      or cpu (with --shape tiny)
#   --shape 8b         8b or tiny (bench/lib.sh)
#   --tokenizer DIR    ../shared/tokenizers/llama3_1
#   --contexts 128,512 prompt tokens (one set of rows each)
#   --steps 256        new tokens per sequence
#   --repeat 3         timed repeats after one warm-up; the median is reported
#   --python PY        Python for the table (default: .venv's, else python3)
# Output in WORK_DIR/generate/ (default WORK_DIR runs/bench): generate.jsonl, generate.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_shape=8b opt_tokenizer="$BENCH_ROOT/../shared/tokenizers/llama3_1"
opt_contexts=128,512 opt_steps=256 opt_repeat=3 opt_python=""
bench_parse "$@"
bench_setup generate "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota bench_forward
bench_shape "$opt_shape"
Q="$MODELS/llama-$opt_shape-init-rtn4g128$([ "$opt_device" = cpu ] || echo "-$opt_device")"
bench_init_quantized "$Q" 4 128 "$opt_device" "$opt_tokenizer"

R="$OUT/generate.jsonl"
: > "$R"
for ctx in ${opt_contexts//,/ }; do
    bench_stamp "context $ctx: batch 1, 16, 64"
    "$BUILD/bench_forward" "$Q" --device "$opt_device" --dtype bf16 --prefill 0 --batches 1,16,64 --context "$ctx" \
        --steps "$opt_steps" --repeat "$opt_repeat" --generate 1 \
        --label merged-4bit-g128 | tee -a "$R"
    bench_stamp "context $ctx: batch 64, dequantizing every step"
    "$BUILD/bench_forward" "$Q" --device "$opt_device" --dtype bf16 --prefill 0 --batches 64 --context "$ctx" \
        --steps "$opt_steps" --repeat "$opt_repeat" --generate 1 --keep-dequantized 0 \
        --label every-step | tee -a "$R"
done
"$PY" - "$R" <<'EOF2' | tee "$OUT/generate.md"
import json, sys
print("| prompt tokens | batch | weights kept dequantized | wall s | new tok/s |\n|---:|---:|---|---:|---:|")
for r in (json.loads(l) for l in open(sys.argv[1]) if '"what":"generate"' in l):
    kept = "- (packed codes)" if r["batch"] <= 16 else "yes" if r["keep_dequantized"] else "no (every step)"
    print(f"| {r['context']} | {r['batch']} | {kept} | {r['seconds']:.3f} | {r['tokens_per_s']:.1f} |")
EOF2
bench_stamp "done: $OUT"
