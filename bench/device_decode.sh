#!/usr/bin/env bash
# Issue 6 on the GPU machine, part 1: build, the packed-code product kernel against its float64
# reference (gtest), the CUDA-graph decode test (pytest), and the kernel's bandwidth on the
# Llama-3.1-8B MLP shapes (bench_gemv). Results in $OUT. Part 2 is bench/device_decode_8b.sh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR=/tmp/lota-build LOTA_CMAKE_ARGS="-DLOTA_WERROR=OFF"
[ -f .carry1/gguf.part00 ] && cp .carry1/gguf.part00 /tmp/gguf.part00   # for a later SmolLM2 call
t0=$SECONDS
scripts/bootstrap.sh >/dev/null 2>&1
scripts/build.sh -j16 lota_cli bench_forward bench_gemv lota_tests_quant 2>&1 | grep -E "error|FAILED" -A3 | head -30
echo "build $((SECONDS - t0))s"
source scripts/env.sh
"$BUILD_DIR/lota_tests_quant" --gtest_filter='QuantGemv*:DequantCuda.BitExact*' 2>&1 | tail -8 | tee "$OUT/gemv_tests.txt"
"$BUILD_DIR/bench_gemv" --bits 4 --group 128 --rows 1,2,4,8,16 | tee "$OUT/gemv_bench.jsonl"
"$BUILD_DIR/bench_gemv" --bits 4 --group 64 --offset 1 --rows 1,16 | tee -a "$OUT/gemv_bench.jsonl"
for b in 3 2 8; do "$BUILD_DIR/bench_gemv" --bits $b --group 128 --rows 1 | grep gemv | tee -a "$OUT/gemv_bench.jsonl"; done
export LOTA_BIN="$BUILD_DIR/lota"
python3 -m pytest -q -rs -p no:cacheprovider tests/py/test_forward_cuda.py 2>&1 | tail -6 | tee "$OUT/pytest_cuda.txt"
echo "total $((SECONDS - t0))s"
