#!/usr/bin/env bash
# Issue 4 on the GPU machine, part 1: build, then GPTQ of a Llama-3.1-8B-shaped model (random
# weights, bf16 on disk) at 4 bits g128 with 128 windows x 2048 tokens of calibration: wall time
# and peak GPU memory (the issue's target: under 10 minutes on one H100). Results in $OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
[ -f .carry1/gguf.part00 ] && cp .carry1/gguf.part00 /tmp/gguf.part00  # SmolLM2, for the next call
export LOTA_BUILD_DIR=/tmp/lota-build LOTA_CMAKE_ARGS="-DLOTA_WERROR=OFF"
t0=$SECONDS
scripts/bootstrap.sh >/dev/null
scripts/build.sh -j16 lota_cli bench_forward 2>&1 | grep -E "error|FAILED" -A3 | head -20
source scripts/env.sh
L="$BUILD_DIR/lota"
echo "build done at $((SECONDS - t0))s" | tee "$OUT/quant8b.txt"
M=/tmp/llama8b
[ -d $M ] || "$L" init --arch llama --out $M --seed 0 --hidden 4096 --layers 32 --heads 32 --kv-heads 8 \
    --intermediate 14336 --vocab 128256 --rope-scaling llama3 --dtype bf16 2>&1 | tail -1
cp .carry3/tok/tokenizer.json .carry3/tok/tokenizer_config.json $M/  # SmolLM2's tokenizer: ids < 49152 fit the vocab
echo "init done at $((SECONDS - t0))s" | tee -a "$OUT/quant8b.txt"
rm -rf /tmp/llama8b-gptq4g128
timeout "${GPTQ_TIMEOUT:-450}" "$L" quantize --model $M --out /tmp/llama8b-gptq4g128 --method gptq --bits 4 \
    --group-size 128 --calib .carry3/shared/data/c4/c4_demo.jsonl --calib-samples 128 --calib-seqlen 2048 \
    --device cuda 2>&1 | grep -E "layer (1|2|4|8|12|16|20|24|28|32)/|quantized|calibration|error|warning" | tee -a "$OUT/quant8b.txt"
echo "gptq done at $((SECONDS - t0))s" | tee -a "$OUT/quant8b.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$OUT/quant8b.txt"
