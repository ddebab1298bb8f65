#!/usr/bin/env bash
# Decode tokens/s of a Llama-3.1-8B-shaped model (random weights) at batch 1 and 16: prompt 128 tokens, then
# 64 greedy steps timed after one eager and one captured step, median of 3, CUDA graph on, q/k/v and gate/up
# fused as lota's commands run them. Rows: bf16; 4-bit (RTN codes in a GPTQ g128 checkpoint); the same with
# an unmerged 16-bit LoRA r 64 on all projections; a merged LoTA-QAF model (one LoTA-QAF step r 64, then
# `lota merge`: codes and offsets); for comparison the 4-bit model through dequantize + GEMM, bf16 without
# the CUDA graph, and bf16 and merged without fused projections. Table: bench/decode.md.
#
#   bench/run_decode.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs lota and bench_forward in BUILD_DIR (default build).
# Options (default):
#   --device cuda      or cpu (with --shape tiny)
#   --shape 8b         8b or tiny (bench/lib.sh)
#   --tokenizer DIR    ../shared/tokenizers/llama3_1
#   --repeat 3         timed repeats after one warm-up; the median is reported
#   --python PY        Python for the table (default: .venv's, else python3)
# Output in WORK_DIR/decode/ (default WORK_DIR runs/bench): decode.jsonl, decode.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_shape=8b opt_tokenizer="$BENCH_ROOT/../shared/tokenizers/llama3_1" opt_repeat=3 opt_python=""
bench_parse "$@"
bench_setup decode "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota bench_forward
bench_shape "$opt_shape"
M="$MODELS/llama-$opt_shape"
Q="$MODELS/llama-$opt_shape-rtn4g128"
MG="$MODELS/llama-$opt_shape-rtn4g128-lota-merged"
bench_make_model "$M" "$opt_tokenizer"
bench_quantize "$M" "$Q" --method rtn --bits 4 --group-size 128 --device "$opt_device"

# The merged model: one LoTA-QAF step (r 64) on random words, then the exact merge (codes + offsets F).
if [ ! -f "$MG/config.json" ]; then
    text="$OUT/words.txt"
    "$PY" -c "import random; r = random.Random(0); w = 'time people water light house music world river paper story'.split(); print(' '.join(r.choice(w) for _ in range(4000)))" > "$text"
    rm -rf "$OUT/adapter"
    bench_stamp "one LoTA-QAF step, then lota merge -> $MG"
    "$LOTA" train --model "$Q" --data "$text" --format text --method lota --rank 64 --steps 1 --batch-size 1 \
        --micro-batch-size 1 --source-max-len 256 --device "$opt_device" --out "$OUT/adapter" >&2
    "$LOTA" merge --model "$Q" --adapter "$OUT/adapter" --out "$MG" >&2
fi

R="$OUT/decode.jsonl"
: > "$R"
row() {  # LABEL MODEL [bench_forward options]
    local label=$1 model=$2
    shift 2
    bench_stamp "$label"
    "$BUILD/bench_forward" "$model" --device "$opt_device" --dtype bf16 --prefill 0 --batches 1,16 --context 128 \
        --steps 64 --repeat "$opt_repeat" --label "$label" "$@" | tee -a "$R"
}
row bf16 "$M"
row gptq4-g128 "$Q"
row lota-merged-g128 "$MG"
row gptq4-g128+lora64 "$Q" --lora-rank 64
row gptq4-g128-dequant-gemm "$Q" --gemv 0
row bf16-no-graph "$M" --graph 0
row bf16-unfused "$M" --fuse 0
row lota-merged-g128-unfused "$MG" --fuse 0

"$PY" - "$R" <<'EOF' | tee "$OUT/decode.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tps = {(r["impl"], r["batch"]): r["tokens_per_s"] for r in rows}
print("| impl | batch 1 tok/s | batch 16 tok/s |\n|---|---:|---:|")
for impl in dict.fromkeys(r["impl"] for r in rows):
    print(f"| {impl} | {tps.get((impl, 1), '-')} | {tps.get((impl, 16), '-')} |")
EOF
bench_stamp "done: $OUT"
