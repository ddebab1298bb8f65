#!/usr/bin/env bash
# SmolLM2-135M-Instruct on the GPU machine (issues 4 and 6), right after bench/device_decode.sh on
# the same warm machine (it leaves the build and the first GGUF part in /tmp): import, GPTQ 4-bit
# and 2-bit g64 (and the GPTQ+act-order 2-bit g32 table cell), perplexity on CPU vs CUDA, then
# MMLU 5-shot and ViGGO for 16-bit / 4-bit / 2-bit, timed. Results in $OUT/smollm2_eval.txt.
# SE_BUDGET_S (default 560) stops starting new rows when less than a minute would be left.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR=/tmp/lota-build LOTA_CMAKE_ARGS="-DLOTA_WERROR=OFF"
source scripts/env.sh
L="$BUILD_DIR/lota"
D=.carry3/shared/data
WIKI=$D/wikitext2/wiki.test.joined.txt
R="$OUT/smollm2_eval.txt"
BUDGET=${SE_BUDGET_S:-560}
t0=$SECONDS
left() { echo $((BUDGET - (SECONDS - t0))); }
[ -x "$L" ] || scripts/build.sh -j16 lota_cli 2>&1 | grep -E "error" -A3 | head
G=/tmp/smollm2.gguf
[ -s $G ] || cat /tmp/gguf.part00 .carry2/gguf.part01 > $G
[ -d /tmp/smol ] || "$L" import --gguf $G --out /tmp/smol --dtype f32 2>&1 | tail -1
quant() {  # name bits group [extra]
    [ -d /tmp/sq/$1 ] && return 0
    mkdir -p /tmp/sq
    local s0=$SECONDS
    "$L" quantize --model /tmp/smol --out /tmp/sq/$1 --method gptq --bits $2 --group-size $3 ${4:-} \
        --calib $D/c4/c4_demo.jsonl --calib-samples 128 --calib-seqlen 2048 --device cuda >/dev/null 2>&1 \
        || echo "$1: quantize failed" | tee -a $R
    echo "quantize $1: $((SECONDS - s0))s" | tee -a $R
}
ppl() { "$L" eval --task ppl --model "$1" --data $WIKI --seqlen 2048 --device "$2" --dtype f32 --json \
    ${3:+--max-windows $3} 2>/dev/null | sed -E 's/.*"ppl":([0-9.eE+-]+).*/\1/'; }
quant gptq-4bit-g64 4 64
quant gptq-2bit-g64 2 64
echo "--- CPU vs CUDA perplexity (f32, first 16 windows of 2048)" | tee -a $R
for m in /tmp/smol /tmp/sq/gptq-4bit-g64 /tmp/sq/gptq-2bit-g64; do
    c=$(ppl $m cuda 16); p=$(ppl $m cpu 16)
    python3 -c "c,p=$c,$p; print(f'$(basename $m): cuda {c:.6f} cpu {p:.6f} rel diff {abs(c-p)/p:.2e}')" | tee -a $R
done
echo "--- MMLU 5-shot and ViGGO (bf16 on CUDA)" | tee -a $R
for m in /tmp/smol /tmp/sq/gptq-4bit-g64 /tmp/sq/gptq-2bit-g64; do
    [ "$(left)" -gt 90 ] || { echo "skipped $m: budget" | tee -a $R; continue; }
    s0=$SECONDS
    "$L" eval --task mmlu --model $m --data $D/mmlu --shots 5 --device cuda --dtype bf16 --batch-size 32 \
        > $OUT/mmlu_$(basename $m).txt 2> $OUT/mmlu_$(basename $m).err
    echo "$(basename $m) mmlu: $(grep -iE '^\| *avg|Avg' $OUT/mmlu_$(basename $m).txt | tail -1) ($((SECONDS - s0))s)" | tee -a $R
    [ "$(left)" -gt 60 ] || continue
    s0=$SECONDS
    "$L" eval --task viggo --model $m --data $D/viggo/test.csv --device cuda --dtype bf16 --batch-size 64 \
        --out $OUT/viggo_$(basename $m).jsonl > $OUT/viggo_$(basename $m).txt 2>&1
    echo "$(basename $m) viggo: $(tail -1 $OUT/viggo_$(basename $m).txt) ($((SECONDS - s0))s)" | tee -a $R
done
[ "$(left)" -gt 100 ] && quant gptq+act-2bit-g32 2 32 --act-order && \
    echo "gptq+act-2bit-g32 wikitext2 ppl (all windows): $(ppl /tmp/sq/gptq+act-2bit-g32 cuda)" | tee -a $R
echo "total $((SECONDS - t0))s" | tee -a $R
