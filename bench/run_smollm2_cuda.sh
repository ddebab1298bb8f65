#!/usr/bin/env bash
# SmolLM2-135M-Instruct on CUDA: lota's logits (f32 and bf16) and greedy tokens against HF transformers on
# the same GPU (bench/smollm2_cuda_parity.py, three chat prompts), `lota generate --chat` wall time (bf16,
# 96 new tokens, model load included), and prefill (512 tokens) and decode (context 64, 128 steps, batch 1
# and 16) tokens/s from bench_forward. Table: bench/smollm2_cuda.md. Needs a CUDA GPU.
#
#   bench/run_smollm2_cuda.sh [options] [BUILD_DIR [WORK_DIR [SMOLLM2]]]
#
# SMOLLM2: an f32 HF directory of SmolLM2-135M-Instruct or its GGUF (imported in f32); default: the GGUF
# that scripts/fetch_smollm2.sh downloads. Needs lota and bench_forward in BUILD_DIR (default build).
# Options (default):
#   --python PY        Python with torch (CUDA) and transformers (default: .venv's, else python3)
# Output in WORK_DIR/smollm2_cuda/ (default WORK_DIR runs/bench): smollm2_cuda.txt, forward.jsonl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_python=""
bench_parse "$@"
bench_setup smollm2_cuda "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota bench_forward
bench_smollm2 "${ARGS[2]:-}"
R="$OUT/smollm2_cuda.txt"

bench_stamp "parity with HF transformers"
"$PY" "$BENCH_ROOT/bench/smollm2_cuda_parity.py" "$LOTA" "$SMOL" 2> "$OUT/parity.log" | tee "$R"
bench_stamp "lota generate --chat"
s0=$(date +%s.%N)
"$LOTA" generate --model "$SMOL" --chat --prompt "Give three tips for staying healthy." --max-new-tokens 96 \
    --device cuda --dtype bf16 | tee -a "$R"
echo "lota generate --chat: $(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s wall" | tee -a "$R"
bench_stamp "bench_forward"
"$BUILD/bench_forward" "$SMOL" --device cuda --dtype bf16 --prefill 512 --batches 1,16 --context 64 --steps 128 \
    --repeat 5 | tee "$OUT/forward.jsonl" | tee -a "$R"
bench_stamp "done: $OUT"
