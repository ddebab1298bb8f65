#!/usr/bin/env bash
# GPTQ wall time and peak memory on a Llama-3.1-8B-shaped model (random weights, bf16 on disk, loaded in
# f32): 4 bits, group 128, 128 calibration windows of 2048 tokens of the C4 demo file, true-sequential.
# The wall time includes loading and writing the checkpoint. Table: bench/gptq.md.
#
#   bench/run_gptq.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs lota in BUILD_DIR (default build).
# Options (default):
#   --device cuda          or cpu (with --shape tiny)
#   --shape 8b             8b or tiny (bench/lib.sh)
#   --tokenizer DIR        ../shared/tokenizers/llama3_1
#   --data DIR             ../shared/data (reads c4/c4_demo.jsonl)
#   --bits 4  --group 128  --calib-samples 128  --calib-seqlen 2048
# Output in WORK_DIR/gptq/ (default WORK_DIR runs/bench): quantize.log, gptq.md; the checkpoint in
# WORK_DIR/models/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_shape=8b opt_tokenizer="$BENCH_ROOT/../shared/tokenizers/llama3_1" opt_data="$BENCH_ROOT/../shared/data"
opt_bits=4 opt_group=128 opt_calib_samples=128 opt_calib_seqlen=2048
bench_parse "$@"
bench_setup gptq "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota
bench_shape "$opt_shape"
M="$MODELS/llama-$opt_shape"
Q="$MODELS/llama-$opt_shape-gptq${opt_bits}g$opt_group"
CALIB="$opt_data/c4/c4_demo.jsonl"
[ -f "$CALIB" ] || bench_die "no calibration file $CALIB (see --data)"
bench_make_model "$M" "$opt_tokenizer"

rm -rf "$Q"
bench_stamp "lota quantize --method gptq -> $Q"
s0=$SECONDS
"$LOTA" quantize --model "$M" --out "$Q" --method gptq --bits "$opt_bits" --group-size "$opt_group" --calib "$CALIB" \
    --calib-samples "$opt_calib_samples" --calib-seqlen "$opt_calib_seqlen" --device "$opt_device" > "$OUT/quantize.log" 2>&1 \
    || { tail -5 "$OUT/quantize.log" >&2; bench_die "lota quantize failed"; }
wall=$((SECONDS - s0))
gpu=cpu
[ "$opt_device" = cuda ] && command -v nvidia-smi >/dev/null 2>&1 && gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0)"
{
    echo "| model | quantization | calibration | device | wall s |"
    echo "|---|---|---|---|---:|"
    echo "| llama-$opt_shape | GPTQ $opt_bits-bit g$opt_group | $opt_calib_samples x $opt_calib_seqlen tokens | $gpu | $wall |"
    echo
    grep -E "^quantized|peak" "$OUT/quantize.log" | tail -n 1
} | tee "$OUT/gptq.md"
bench_stamp "done: $OUT"
