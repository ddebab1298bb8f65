#!/usr/bin/env bash
# Issue 6 on the GPU machine, part 2: decode tokens/s of a Llama-3.1-8B-shaped model (random
# weights) at batch 1 and 16 (prompt 128 tokens, 64 greedy steps timed after one eager and one
# captured step, median of 3): bf16, 4-bit GPTQ checkpoint (RTN codes, g128), the same + an unmerged
# 16-bit LoRA r64 on every projection, and a merged LoTA-QAF model (1 LoTA step r64, `lota merge`:
# codes + offsets), side by side in one call (q/k/v and gate/up fused, as lota's commands run them); then
# the 4-bit model through dequant + GEMM, bf16 without the CUDA graph, and bf16 and merged with separate
# q/k/v, gate/up products (--fuse 0), for comparison. JSON lines in $OUT/decode_8b.jsonl.
# DD_BUDGET_S (default 570): rows are skipped when less than a minute would be left.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR=/tmp/lota-build LOTA_CMAKE_ARGS="-DLOTA_WERROR=OFF"
BUDGET=${DD_BUDGET_S:-570}
t0=$SECONDS
left() { echo $((BUDGET - (SECONDS - t0))); }
stamp() { echo "[t=$((SECONDS - t0))s] $*"; }
[ -x /tmp/lota-build/bench_forward ] || { scripts/bootstrap.sh >/dev/null 2>&1; scripts/build.sh -j16 lota_cli bench_forward 2>&1 | grep -E "error" -A3 | head; }
source scripts/env.sh
L="$BUILD_DIR/lota"; B="$BUILD_DIR/bench_forward"
M=/tmp/llama8b; Q=/tmp/llama8b-rtn4g128; MG=/tmp/llama8b-lota-merged
R="$OUT/decode_8b.jsonl"
[ -f $M/config.json ] || "$L" init --arch llama --out $M --seed 0 --hidden 4096 --layers 32 --heads 32 --kv-heads 8 \
    --intermediate 14336 --vocab 128256 --rope-scaling llama3 --dtype bf16 2>&1 | tail -1
stamp "model"
[ -f $Q/config.json ] || "$L" quantize --model $M --out $Q --method rtn --bits 4 --group-size 128 --device cuda 2>&1 | tail -1
stamp "quantized"
bench() {  # label model [args]
    [ "$(left)" -gt 60 ] || { echo "{\"impl\":\"$1\",\"skipped\":\"budget\"}" | tee -a $R; return; }
    local label=$1 model=$2; shift 2
    "$B" $model --device cuda --dtype bf16 --prefill 0 --batches 1,16 --context 128 --steps 64 --repeat 3 \
        --label $label "$@" 2>&1 | grep '^{' | tee -a $R
}
bench bf16 $M
bench gptq4-g128 $Q
# Merged LoTA-QAF: one real LoTA step (r 64) on a few random words, then lota merge (codes + offsets F).
if [ ! -f $MG/config.json ] && [ "$(left)" -gt 150 ]; then
    cp .carry3/tok/tokenizer.json .carry3/tok/tokenizer_config.json $Q/ 2>/dev/null
    python3 -c "import random; r=random.Random(0); w='time people water light house music world river paper story'.split(); print(' '.join(r.choice(w) for _ in range(4000)))" > /tmp/dd-text.txt
    "$L" train --model $Q --data /tmp/dd-text.txt --format text --method lota --rank 64 --steps 1 --batch-size 1 \
        --micro-batch-size 1 --source-max-len 256 --device cuda --out /tmp/dd-adapter 2>&1 | tail -1
    "$L" merge --model $Q --adapter /tmp/dd-adapter --out $MG 2>&1 | tail -1
    stamp "merged"
fi
[ -f $MG/config.json ] && bench lota-merged-g128 $MG
bench gptq4-g128+lora64 $Q --lora-rank 64
bench gptq4-g128-dequant-gemm $Q --gemv 0
bench bf16-no-graph $M --graph 0
bench bf16-unfused $M --fuse 0
bench lota-merged-g128-unfused $MG --fuse 0
stamp "done"
