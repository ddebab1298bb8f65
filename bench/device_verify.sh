#!/usr/bin/env bash
# First call of a GPU session (one call, < 10 minutes): build, then the CUDA tests of the parts that
# the CPU cannot check (fused re-merge, 16-bit adapter backward, decode products, fused ops, fused
# projections), `bench_lota_step` (per-layer re-merge and adapter-backward times on the 8B shapes),
# and the model/data preparation of bench/device_train.sh, so the next calls only time training.
# Logs and JSON in $OUT. Needs `.deps` and `.carry3` carried.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}" LOTA_CMAKE_ARGS="${LOTA_CMAKE_ARGS:--DLOTA_WERROR=OFF}"
t0=$SECONDS
stamp() { echo "[t=$((SECONDS - t0))s] $*"; }
scripts/bootstrap.sh >/dev/null 2>&1
scripts/build.sh -j16 lota_cli lota_tests_lota lota_tests_quant bench_lota_step bench_gemv bench_forward 2>&1 |
    grep -E "error|FAILED" -A3 | head -30
source scripts/env.sh
stamp "built"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for t in "lota_tests_lota LotaCuda*:LotaRemerge*:LotaBackward*" "lota_tests_quant QuantGemv*:R*:FusedLinear*"; do
    set -- $t
    "$BUILD_DIR/$1" --gtest_filter="$2" > "$OUT/$1.log" 2>&1
    echo "$1 ($2): rc $?"; grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/$1.log"
done
stamp "tests"
timeout 120 "$BUILD_DIR/bench_lota_step" | tee "$OUT/bench_lota_step.jsonl"
stamp "bench_lota_step"
BT_BUILD=0 BT_PREP_ONLY=1 bench/device_train.sh 2>&1 | tail -6
stamp "train prep done"
