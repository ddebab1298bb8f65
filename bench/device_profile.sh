#!/usr/bin/env bash
# Where the GPU time goes (issues 5 and 6), in one call on the GPU machine:
#   1. bench_gemv on the 4096 x 14336 layer at 1 and 16 rows, with its two references (a plain ATen
#      read of the same code bytes, an empty graph node);
#   2. Nsight Compute on the decode kernel that runs at 1 row (SIMT) and at 16 rows (tensor cores);
#   3. with Nsight Systems: per-kernel GPU time of (a) 64 decode steps at batch 1 (CUDA graph, nodes
#      traced) and (b) 3 train steps of LoTA-QAF and of LoRA (micro-batch 4, 1280 tokens, r 64), on a
#      4-layer model of the Llama-3.1-8B width (the per-layer work is the 8B model's; the LM head is a
#      larger share). Tables in $OUT/nsys-*.txt.
#   bench/device_profile.sh [gemv] [ncu] [decode] [train]   (default: all four)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}" LOTA_CMAKE_ARGS="${LOTA_CMAKE_ARGS:--DLOTA_WERROR=OFF}"
PARTS="${*:-gemv ncu decode train}"
has() { case " $PARTS " in *" $1 "*) return 0;; esac; return 1; }
t0=$SECONDS
stamp() { echo "[t=$((SECONDS - t0))s] $*"; }
if [ ! -x "$LOTA_BUILD_DIR/bench_gemv" ] || [ "${DP_BUILD:-1}" = 1 ]; then
    scripts/bootstrap.sh >/dev/null 2>&1
    scripts/build.sh -j16 lota_cli bench_gemv bench_forward 2>&1 | grep -E "error|FAILED" -A3 | head -20
fi
source scripts/env.sh
L="$BUILD_DIR/lota"; B="$BUILD_DIR/bench_gemv"; F="$BUILD_DIR/bench_forward"
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

NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys /usr/local/cuda/nsight-systems*/bin/nsys 2>/dev/null | head -1)
[ -z "$NSYS" ] && { stamp "no nsys on this machine: parts decode/train skipped"; exit 0; }
kernels() {  # report-base label: per-kernel totals, largest first
    "$NSYS" stats -q --report cuda_gpu_kern_sum --format table "$1.nsys-rep" 2>/dev/null |
        cut -c1-220 | head -45 > "$OUT/nsys-$2.txt"
    echo "== $2"; head -25 "$OUT/nsys-$2.txt"
}
M4=/tmp/l8b4; TOK=.carry3/tok
if has decode || has train; then
    ARGS="--hidden 4096 --layers 4 --heads 32 --kv-heads 8 --intermediate 14336 --vocab 128256 --rope-scaling llama3"
    [ -f $M4/config.json ] || "$L" init --arch llama --out $M4 --seed 0 $ARGS --dtype bf16 2>&1 | tail -1
    cp $TOK/tokenizer.json $TOK/tokenizer_config.json $M4/ 2>/dev/null
fi
if has decode; then
    Q=$M4-rtn4g128
    [ -f $Q/config.json ] || "$L" quantize --model $M4 --out $Q --method rtn --bits 4 --group-size 128 --device cuda 2>&1 | tail -1
    "$NSYS" profile -q -f true -o /tmp/nsys-decode --trace cuda --cuda-graph-trace node \
        "$F" $Q --device cuda --dtype bf16 --prefill 0 --batches 1 --context 128 --steps 64 --repeat 3 --label q4 2>&1 | grep '^{'
    kernels /tmp/nsys-decode decode-b1
    stamp "decode"
fi
if has train; then
    Q=$M4-rtn4g64
    [ -f $Q/config.json ] || "$L" quantize --model $M4 --out $Q --method rtn --bits 4 --group-size 64 --device cuda 2>&1 | tail -1
    cp $TOK/tokenizer.json $TOK/tokenizer_config.json $Q/ 2>/dev/null
    BT_BUILD=0 BT_PREP_ONLY=1 BT_MODEL=$M4 BT_WINDOWS=16 bench/device_train.sh > /dev/null 2>&1
    for m in lota lora; do
        rm -rf /tmp/dp-$m
        "$NSYS" profile -q -f true -o /tmp/nsys-train-$m --trace cuda,nvtx "$L" train --model $Q \
            --data /tmp/bt-text-1280.txt --format text --source-max-len 1280 --method $m --out /tmp/dp-$m --steps 3 \
            --batch-size 4 --micro-batch-size 4 --rank 64 --device cuda > "$OUT/train-$m.log" 2>&1 || tail -3 "$OUT/train-$m.log"
        grep -h step_time_s /tmp/dp-$m/train_log.jsonl | cut -c1-200
        kernels /tmp/nsys-train-$m train-$m
    done
    stamp "train"
fi
