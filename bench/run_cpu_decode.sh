#!/usr/bin/env bash
# CPU decode tokens/s of SmolLM2-135M-Instruct at batch 1: prompt 128 tokens, then 64 greedy steps, median of
# 3 after a warm-up, all cores of the machine (OMP threads = llama.cpp threads). Rows: lota f32 and bf16;
# lota 4-, 3- and 2-bit (RTN, group 32: the grid of llama.cpp's Q4_1) through the packed-code kernel and,
# for comparison, through dequantize + GEMM; the 4-bit model with its head RTN-quantized to 8 bits g32 (opt-in, as
# the GGUF's Q8_0 head); llama.cpp (llama-cpp-python) on the Q4_1 GGUF of the same
# model, the file lota imports; the same import rounded to bf16 (a bf16 checkpoint) in f32 and at 4 bits,
# its weights read as bfloat16 (as `lota generate` does) and as a float32 copy. Writes its table to
# WORK_DIR/cpu_decode/cpu_decode.md.
#
#   bench/run_cpu_decode.sh [options] [BUILD_DIR [WORK_DIR [GGUF]]]
#
# GGUF: SmolLM2-135M-Instruct Q4_1 (default: scripts/fetch_smollm2.sh). Needs lota and bench_forward in
# BUILD_DIR; llama.cpp rows need llama_cpp importable by --python (skipped with a message otherwise).
# Options (default):
#   --threads N        CPU threads for both (default: nproc)
#   --repeat 3         timed repeats after one warm-up; the median is reported
#   --python PY        Python for llama.cpp and the table (default: .venv's, else python3)
# Output in WORK_DIR/cpu_decode/ (default WORK_DIR runs/bench): cpu_decode.jsonl, cpu_decode.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_threads="$(nproc)" opt_repeat=3 opt_python=""
bench_parse "$@"
bench_setup cpu_decode "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota bench_forward
GGUF="${ARGS[2]:-}"
[ -n "$GGUF" ] || GGUF="$("$BENCH_ROOT/scripts/fetch_smollm2.sh")" || bench_die "no SmolLM2 GGUF: pass its path"
bench_smollm2 "$GGUF"
export OMP_NUM_THREADS="$opt_threads"

R="$OUT/cpu_decode.jsonl"
: > "$R"
row() {  # LABEL MODEL [bench_forward options]
    local label=$1 model=$2
    shift 2
    bench_stamp "$label"
    "$BUILD/bench_forward" "$model" --device cpu --prefill 0 --batches 1 --context 128 --steps 64 \
        --repeat "$opt_repeat" --label "$label" "$@" | tee -a "$R"
}
row "lota f32" "$SMOL" --dtype f32
row "lota bf16" "$SMOL" --dtype bf16
for bits in 4 3 2; do
    Q="$MODELS/smollm2-rtn${bits}g32"
    bench_quantize "$SMOL" "$Q" --method rtn --bits "$bits" --group-size 32 --device cpu
    row "lota ${bits}-bit g32" "$Q" --dtype f32
    # The GGUF stores the tied head as Q8_0; lota keeps it as imported unless asked (opt-in, changes the logits).
    [ "$bits" = 4 ] && row "lota 4-bit g32, head at 8 bits g32 (--head-bits 8)" "$Q" --dtype f32 --head-bits 8 \
        --head-group-size 32
    row "lota ${bits}-bit g32, dequantize + GEMM" "$Q" --dtype f32 --gemv 0
done
# A bf16 checkpoint (as HF ships most models; here the same import rounded to bf16), run in f32: lota keeps
# its weights in bfloat16 (Transformer::store_bf16_weights_if_exact), with --bf16-store 0 the float32 copy.
SMOL16="$MODELS/smollm2-bf16"
[ -f "$SMOL16/config.json" ] || "$LOTA" import --gguf "$GGUF" --out "$SMOL16" --out-dtype bf16 >&2
row "lota f32, bf16 checkpoint, weights read as bf16" "$SMOL16" --dtype f32
row "lota f32, bf16 checkpoint, float32 copy" "$SMOL16" --dtype f32 --bf16-store 0
Q="$MODELS/smollm2-bf16-rtn4g32"
bench_quantize "$SMOL16" "$Q" --method rtn --bits 4 --group-size 32 --device cpu
row "lota 4-bit g32, bf16 head read as bf16" "$Q" --dtype f32
row "lota 4-bit g32, bf16 head, float32 copy" "$Q" --dtype f32 --bf16-store 0
if "$PY" -c "import llama_cpp" 2>/dev/null; then
    bench_stamp "llama.cpp Q4_1"
    "$PY" "$BENCH_ROOT/bench/llama_cpp_decode.py" "$GGUF" --threads "$opt_threads" --context 128 --steps 64 \
        --repeat "$opt_repeat" --label "llama.cpp Q4_1 (llama-cpp-python $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)'))" \
        | tee -a "$R"
else
    echo "run_cpu_decode: llama_cpp is not importable by $PY: no llama.cpp row" >&2
fi

"$PY" - "$R" <<'EOF' | tee "$OUT/cpu_decode.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| impl | batch 1 tok/s |\n|---|---:|")
for r in rows:
    print(f"| {r['impl']} | {r['tokens_per_s']} |")
EOF
bench_stamp "done: $OUT"
