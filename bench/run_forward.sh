#!/usr/bin/env bash
# Forward pass of a Llama-3.1-8B-shaped model (random weights, bf16), lota against HF transformers on the
# same shapes in the same run: prefill tokens/s (batch 1, 2048 tokens, no cache) and decode tokens/s
# (context 128, 64 greedy steps with the KV cache, batch 1 and 16). Table: bench/forward.md.
#
#   bench/run_forward.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs lota and bench_forward in BUILD_DIR (default build), transformers in the Python.
# Options (default):
#   --device cuda      or cpu (with --shape tiny)
#   --shape 8b         8b or tiny (bench/lib.sh)
#   --tokenizer DIR    ../shared/tokenizers/llama3_1
#   --repeat 5         timed repeats after one warm-up; the median is reported
#   --hf 1             0: lota only
#   --python PY        Python with torch and transformers (default: .venv's, else python3)
# Output in WORK_DIR/forward/ (default WORK_DIR runs/bench): forward.jsonl, forward.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_shape=8b opt_tokenizer="$BENCH_ROOT/../shared/tokenizers/llama3_1" opt_repeat=5 opt_hf=1 opt_python=""
bench_parse "$@"
bench_setup forward "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota bench_forward
bench_shape "$opt_shape"
M="$MODELS/llama-$opt_shape"
bench_make_model "$M" "$opt_tokenizer"

R="$OUT/forward.jsonl"
: > "$R"
bench_stamp "bench_forward"
"$BUILD/bench_forward" "$M" --device "$opt_device" --dtype bf16 --prefill 2048 --batches 1,16 --context 128 \
    --steps 64 --repeat "$opt_repeat" | tee -a "$R"
if [ "$opt_hf" = 1 ]; then
    bench_stamp "HF transformers"
    "$PY" "$BENCH_ROOT/bench/hf_forward.py" "$M" --device "$opt_device" --prefill 2048 --batches 1,16 --context 128 \
        --steps 64 --repeat "$opt_repeat" | tee -a "$R"
fi

"$PY" - "$R" <<'EOF' | tee "$OUT/forward.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {(r["impl"], r["what"], r["batch"]): r["tokens_per_s"] for r in rows}
print("| what | lota tok/s | HF tok/s | lota / HF |\n|---|---:|---:|---:|")
for what, b in sorted({(r["what"], r["batch"]) for r in rows}, key=lambda k: (k[0] != "prefill", k[1])):
    ours, hf = by.get(("lota", what, b)), by.get(("hf", what, b))
    ratio = f"{ours / hf:.2f}x" if ours and hf else "-"
    print(f"| {what} batch {b} | {ours or '-'} | {hf or '-'} | {ratio} |")
EOF
bench_stamp "done: $OUT"
