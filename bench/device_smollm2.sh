#!/usr/bin/env bash
# Issue 3 on the GPU machine: import SmolLM2-135M-Instruct from its GGUF (carried in two parts:
# the machine has no network and a call carries at most 64 MiB), logits parity on CUDA (f32 and
# bf16) against HF transformers on the same GPU, greedy tokens vs HF generate, `lota generate
# --chat` there, and prefill/decode tokens/s. Needs the build of bench/device_forward.sh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR=/tmp/lota-build
source scripts/env.sh
L="$BUILD_DIR/lota"
G=/tmp/smollm2.gguf
[ -s $G ] || cat /tmp/gguf.part00 .carry2/gguf.part01 > $G
rm -rf /tmp/smol && "$L" import --gguf $G --out /tmp/smol --dtype f32 2>&1 | tail -1
python3 bench/smollm2_cuda_parity.py "$L" /tmp/smol 2>&1 | grep -v Warning | tee "$OUT/smollm2_cuda.txt"
echo "--- lota generate --chat on CUDA (bf16)"
/usr/bin/time -f "wall %e s" "$L" generate --model /tmp/smol --chat --prompt "Give three tips for staying healthy." \
    --max-new-tokens 96 --device cuda --dtype bf16 2>&1 | tee -a "$OUT/smollm2_cuda.txt"
"$BUILD_DIR/bench_forward" /tmp/smol --device cuda --dtype bf16 --prefill 512 --batches 1,16 --context 64 --steps 128 \
    --repeat 5 | tee -a "$OUT/smollm2_cuda.txt"
