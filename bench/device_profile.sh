#!/usr/bin/env bash
# Where the decode product's time goes (issue 6), in one call on the GPU machine:
#   1. bench_gemv on the 4096 x 14336 and 4096 x 1024 layers at 1 and 16 rows (and 2-bit at 1 row),
#      with its reference (an empty graph node);
#   2. Nsight Compute on the kernel that runs at 1 row (SIMT) and at 16 rows (tensor cores): speed of
#      light, occupancy, warp stalls, source counters, in $OUT/ncu-*.txt.
# (The GPU machine has no Nsight Systems; bench/device_decode_kernels.sh gives a decode step's
# per-kernel times through Nsight Compute instead.)
#   bench/device_profile.sh [gemv] [ncu]   (default: both)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}" LOTA_CMAKE_ARGS="${LOTA_CMAKE_ARGS:--DLOTA_WERROR=OFF}"
PARTS="${*:-gemv ncu}"
has() { case " $PARTS " in *" $1 "*) return 0;; esac; return 1; }
t0=$SECONDS
stamp() { echo "[t=$((SECONDS - t0))s] $*"; }
if [ ! -x "$LOTA_BUILD_DIR/bench_gemv" ] || [ "${DP_BUILD:-1}" = 1 ]; then
    scripts/bootstrap.sh >/dev/null 2>&1
    scripts/build.sh -j16 bench_gemv 2>&1 | grep -E "error|FAILED" -A3 | head -20
fi
source scripts/env.sh
B="$BUILD_DIR/bench_gemv"
stamp "built"

if has gemv; then
    "$B" --bits 4 --group 128 --rows 1,16 --shapes 4096x14336,4096x1024 | tee "$OUT/gemv_bench.jsonl"
    "$B" --bits 2 --group 128 --rows 1 --shapes 4096x14336 | grep gemv | tee -a "$OUT/gemv_bench.jsonl"
    stamp "bench_gemv"
fi

NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
if has ncu && [ -n "$NCU" ]; then
    for spec in "quant_gemv_kernel 1" "quant_gemv_tc_kernel 16"; do
        set -- $spec
        f="$OUT/ncu-$1-m$2.txt"
        timeout 200 "$NCU" -k "regex:^$1" --launch-skip 5 --launch-count 1 --import-source yes \
            --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
            --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section SourceCounters \
            --section SchedulerStats "$B" --bits 4 --group 128 --rows "$2" --shapes 4096x14336 > "$f" 2>&1
        echo "== $1 (M = $2)"
        grep -E "Duration|DRAM Throughput|L2 Hit|Achieved Occupancy|Theoretical Occ|Registers Per|Warp Cycles Per Issued|Issued Ipc|No Eligible|Stall|Block Limit" "$f" | head -30
    done
    stamp "ncu"
fi

