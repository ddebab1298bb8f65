#!/usr/bin/env bash
# Issue 2 on the GPU machine: build, CUDA bf16 parity suite, and the Llama-3.1-8B-shaped
# prefill/decode benchmark against HF transformers (same shapes, same run). Results in $OUT.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR=/tmp/lota-build LOTA_CMAKE_ARGS="-DLOTA_WERROR=OFF"
scripts/bootstrap.sh
scripts/build.sh -j16 lota_cli bench_forward 2>&1 | grep -E "error|FAILED" -A3 | head -20
source scripts/env.sh
export LOTA_BIN="$BUILD_DIR/lota" LOTA_TEST_DEVICE=cuda
python3 -m pytest -q -rs -p no:cacheprovider tests/py/test_forward_parity.py tests/py/test_forward_cuda.py 2>&1 | tail -15 | tee "$OUT/parity.txt"
if [ "${LOTA_BENCH_8B:-1}" = 1 ]; then
    M=/tmp/llama8b
    [ -d $M ] || "$LOTA_BIN" init --arch llama --out $M --seed 0 --hidden 4096 --layers 32 --heads 32 --kv-heads 8 \
        --intermediate 14336 --vocab 128256 --rope-scaling llama3 --dtype bf16 2>&1 | tail -1
    "$BUILD_DIR/bench_forward" $M --device cuda --dtype bf16 --prefill 2048 --batches 1,16 --context 128 --steps 64 --repeat 5 | tee "$OUT/bench_lota.jsonl"
    python3 bench/hf_forward.py $M --prefill 2048 --batches 1,16 --context 128 --steps 64 --repeat 5 2>/dev/null | tee "$OUT/bench_hf.jsonl"
fi
