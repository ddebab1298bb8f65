#!/usr/bin/env bash
# Issue 4 on the GPU machine, part 2 (after bench/device_quant_8b.sh, which builds and leaves
# the first GGUF part in /tmp): SmolLM2-135M-Instruct imported in f32, then WikiText-2 test
# perplexity (all windows of 2048) on CUDA for 16-bit, RTN and GPTQ at 4/3/2 bits, groups 64
# and 32 (128 does not divide SmolLM2's hidden size 576), GPTQ with and without act-order;
# calibration 128 x 2048 tokens of the C4 demo file. Then CPU vs CUDA perplexity on two
# checkpoints (first 16 windows). Results in $OUT/smollm2_quant.txt.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR=/tmp/lota-build
source scripts/env.sh
L="$BUILD_DIR/lota"
D=.carry3/shared/data
WIKI=$D/wikitext2/wiki.test.joined.txt
R="$OUT/smollm2_quant.txt"
t0=$SECONDS
G=/tmp/smollm2.gguf
[ -s $G ] || cat /tmp/gguf.part00 .carry2/gguf.part01 > $G
[ -d /tmp/smol ] || "$L" import --gguf $G --out /tmp/smol --dtype f32 2>&1 | tail -1
ppl() { "$L" eval --task ppl --model "$1" --data $WIKI --seqlen 2048 --device "${2:-cuda}" --dtype f32 --json \
    ${3:+--max-windows $3} 2>/dev/null | sed -E 's/.*"ppl":([0-9.eE+-]+).*/\1/'; }
printf '%-28s %10s %10s\n' model ppl quant_s | tee $R
printf '%-28s %10.3f %10s\n' "16-bit (f32)" "$(ppl /tmp/smol)" - | tee -a $R
for bits in 4 3 2; do
    for g in 64 32; do
        for cfg in "rtn" "gptq" "gptq --act-order"; do
            name="${cfg/ --act-order/+act}-${bits}bit-g${g}"
            out=/tmp/sq/$name; rm -rf $out; mkdir -p /tmp/sq
            s0=$SECONDS
            "$L" quantize --model /tmp/smol --out $out --method $cfg --bits $bits --group-size $g \
                --calib $D/c4/c4_demo.jsonl --calib-samples 128 --calib-seqlen 2048 --device cuda >/dev/null 2>&1 \
                || { echo "$name: quantize failed" | tee -a $R; continue; }
            printf '%-28s %10.3f %10d\n' "$name" "$(ppl $out)" $((SECONDS - s0)) | tee -a $R
        done
    done
done
echo "--- CPU vs CUDA perplexity (f32, first 16 windows of 2048)" | tee -a $R
for name in gptq-4bit-g64 gptq+act-3bit-g32; do
    c=$(ppl /tmp/sq/$name cuda 16); p=$(ppl /tmp/sq/$name cpu 16)
    python3 -c "c,p=$c,$p; print(f'$name: cuda {c:.6f} cpu {p:.6f} rel diff {abs(c-p)/p:.2e}')" | tee -a $R
done
echo "total $((SECONDS - t0))s" | tee -a $R
