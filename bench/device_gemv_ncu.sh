#!/usr/bin/env bash
# Issue 6, the batch-1 floor of the decode product (~21 µs for a 4096 x 14336 4-bit layer whatever the
# kernel or bit width; bench/notes.md): Nsight Compute on one call of each kernel at M rows, with the
# sections that say where the time goes (throughput, occupancy, warp stall reasons with source counters).
# Results in $OUT/ncu-<kernel>-m<M>.txt. Needs a build with bench_gemv (bench/device_decode.sh makes one).
#   bench/device_gemv_ncu.sh [M=1] [SHAPE=4096x14336] [BITS=4]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
M="${1:-1}"; SHAPE="${2:-4096x14336}"; BITS="${3:-4}"
export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}"
source scripts/env.sh
B="$BUILD_DIR/bench_gemv"
[ -x "$B" ] || { echo "no $B: build bench_gemv first"; exit 1; }
command -v ncu >/dev/null || { echo "no ncu on this machine"; exit 1; }
# bench_gemv times the default path first (SIMT at 1 row, tensor cores from 2), then the SIMT kernel.
for k in quant_gemv_tc_kernel quant_gemv_kernel; do
    f="$OUT/ncu-$k-m$M.txt"
    timeout 240 ncu -k "regex:$k" --launch-skip 5 --launch-count 1 --import-source yes \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
        --section WarpStateStats --section SourceCounters --section SchedulerStats \
        "$B" --bits "$BITS" --group 128 --rows "$M" --shapes "$SHAPE" > "$f" 2>&1
    echo "== $k (M = $M): $f"
    grep -E "Duration|DRAM Throughput|Achieved Occupancy|Warp Cycles Per Issued|Issued Ipc|No Eligible|Stall" "$f" | head -20
done
