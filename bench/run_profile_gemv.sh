#!/usr/bin/env bash
# Nsight Compute on the decode-product kernels on the 4096 x 14336 layer, 4-bit g128: at 1 row of x the
# tensor-core kernel with the codes as mma's A operand and the SIMT kernel, at 16 rows the tensor-core
# kernel with the codes as B (speed of light, occupancy, launch statistics,
# memory workload, warp states, source counters, scheduler statistics; one launch each after 5). For
# reading, not a table: the reports are in the output directory and their key lines are printed. Needs a
# CUDA GPU and ncu.
#
#   bench/run_profile_gemv.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs bench_gemv in BUILD_DIR (default build).
# Options (default):
#   --ncu PATH         ncu on PATH, else /usr/local/cuda/bin/ncu
# Output in WORK_DIR/profile_gemv/ (default WORK_DIR runs/bench): ncu-<kernel>-m<rows>.txt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_ncu="$(command -v ncu || echo /usr/local/cuda/bin/ncu)"
bench_parse "$@"
bench_setup profile_gemv "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need bench_gemv
[ -x "$opt_ncu" ] || bench_die "no Nsight Compute at $opt_ncu (see --ncu)"
for spec in "quant_gemv_tc_a_kernel 1" "quant_gemv_kernel 1" "quant_gemv_tc_kernel 16"; do
    read -r kernel rows <<< "$spec"
    f="$OUT/ncu-$kernel-m$rows.txt"
    bench_stamp "ncu $kernel, $rows rows"
    "$opt_ncu" -k "regex:^$kernel" --launch-skip 5 --launch-count 1 --import-source yes \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
        --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section SourceCounters \
        --section SchedulerStats "$BUILD/bench_gemv" --bits 4 --group 128 --rows "$rows" --shapes 4096x14336 > "$f" 2>&1 \
        || { tail -5 "$f" >&2; bench_die "ncu failed on $kernel"; }
    echo "== $kernel ($rows rows)"
    grep -E "Duration|DRAM Throughput|L2 Hit|Achieved Occupancy|Theoretical Occ|Registers Per|Warp Cycles Per Issued|Issued Ipc|No Eligible|Block Limit" "$f" | head -30 || true
done
bench_stamp "done: $OUT"
