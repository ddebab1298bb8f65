#!/usr/bin/env bash
# SmolLM2-135M-Instruct quantized with RTN, GPTQ and GPTQ + act-order at 4, 3 and 2 bits, groups 64 and 32
# (128 does not divide its hidden size 576), asymmetric, damp 0.01, calibration 128 windows of 2048 tokens of
# the C4 demo file: WikiText-2 test perplexity (joined text, windows of 2048, f32) of each, and the time
# to quantize (loading and writing included). Then the same perplexity on the CPU and on CUDA for two
# checkpoints (first 16 windows). Table: bench/smollm2_quant.md.
#
#   bench/run_smollm2_quant.sh [options] [BUILD_DIR [WORK_DIR [SMOLLM2]]]
#
# SMOLLM2: an f32 HF directory of SmolLM2-135M-Instruct or its GGUF (imported in f32); default: the GGUF
# that scripts/fetch_smollm2.sh downloads. Needs lota in BUILD_DIR (default build).
# Options (default):
#   --device cuda          or cpu
#   --data DIR             ../shared/data (c4/c4_demo.jsonl, wikitext2/wiki.test.joined.txt)
#   --bits 4,3,2  --groups 64,32  --methods rtn,gptq,gptq+act
#   --windows -1           perplexity windows (-1: all)
#   --cpu-check 1          0: no CPU-vs-CUDA perplexity
# Output in WORK_DIR/smollm2_quant/ (default WORK_DIR runs/bench): smollm2_quant.md, logs; checkpoints in
# WORK_DIR/models/smollm2-*.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_data="$BENCH_ROOT/../shared/data" opt_bits=4,3,2 opt_groups=64,32 opt_methods=rtn,gptq,gptq+act
opt_windows=-1 opt_cpu_check=1
bench_parse "$@"
bench_setup smollm2_quant "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota
bench_smollm2 "${ARGS[2]:-}"
CALIB="$opt_data/c4/c4_demo.jsonl"
WIKI="$opt_data/wikitext2/wiki.test.joined.txt"
for f in "$CALIB" "$WIKI"; do [ -f "$f" ] || bench_die "no $f (see --data)"; done

ppl() {  # MODEL DEVICE WINDOWS
    "$LOTA" eval --task ppl --model "$1" --data "$WIKI" --seqlen 2048 --max-windows "$3" --device "$2" --dtype f32 \
        --json > "$OUT/ppl.json" 2> "$OUT/ppl.log" || { tail -3 "$OUT/ppl.log" >&2; bench_die "lota eval --task ppl $1 failed"; }
    bench_json_num ppl "$OUT/ppl.json"
}
R="$OUT/smollm2_quant.md"
{ echo "| model | WikiText-2 ppl | quantize s |"; echo "|---|---:|---:|"; } | tee "$R"
echo "| 16-bit (f32) | $(ppl "$SMOL" "$opt_device" "$opt_windows") | - |" | tee -a "$R"
for bits in ${opt_bits//,/ }; do
    for g in ${opt_groups//,/ }; do
        for method in ${opt_methods//,/ }; do
            name="smollm2-$method-${bits}bit-g$g"
            q="$MODELS/$name"
            args=(--method "${method%+act}" --bits "$bits" --group-size "$g")
            [ "$method" = gptq+act ] && args+=(--act-order)
            rm -rf "$q"
            bench_stamp "quantize $name"
            s0=$SECONDS
            "$LOTA" quantize --model "$SMOL" --out "$q" "${args[@]}" --calib "$CALIB" --calib-samples 128 \
                --calib-seqlen 2048 --device "$opt_device" > "$OUT/quantize-$name.log" 2>&1 \
                || { tail -3 "$OUT/quantize-$name.log" >&2; bench_die "quantize $name failed"; }
            echo "| ${method/+act/+act-order} ${bits}-bit g$g | $(ppl "$q" "$opt_device" "$opt_windows") | $((SECONDS - s0)) |" | tee -a "$R"
        done
    done
done

if [ "$opt_cpu_check" = 1 ] && [ "$opt_device" != cpu ]; then
    { echo; echo "| model | ppl $opt_device | ppl cpu | relative difference |"; echo "|---|---:|---:|---:|"; } | tee -a "$R"
    for q in "$SMOL" "$MODELS/smollm2-gptq-4bit-g64" "$MODELS/smollm2-gptq-2bit-g64"; do
        [ -f "$q/config.json" ] || continue
        a=$(ppl "$q" "$opt_device" 16) c=$(ppl "$q" cpu 16)
        echo "| $(basename "$q") | $a | $c | $(awk -v a="$a" -v c="$c" 'BEGIN { d = a - c; if (d < 0) d = -d; printf "%.1e", d / c }') |" | tee -a "$R"
    done
fi
bench_stamp "done: $OUT"
