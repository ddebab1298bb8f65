#!/usr/bin/env bash
# Issue 6: where a batch-1 decode step's GPU time goes, kernel by kernel. Nsight Compute times every
# kernel of bench_forward run op by op (no CUDA graph) on a 1-token context, so that every forward
# is a decode-sized step (1 prompt forward + 3 steps, twice: 8 forwards); the table is the GPU time
# per forward of each kernel name, largest first (caches and clocks left as they run, not flushed or
# locked). The GPU machine has no Nsight Systems; this is the per-kernel view it allows.
#   bench/device_decode_kernels.sh [MODEL_DIR=/tmp/llama8b-rtn4g128] [LABEL=q4]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}"
source scripts/env.sh
MODEL="${1:-/tmp/llama8b-rtn4g128}"; LABEL="${2:-q4}"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
[ -n "$NCU" ] || { echo "no ncu on this machine"; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "no model at $MODEL (bench/device_decode_8b.sh makes it)"; exit 1; }
RAW="$OUT/decode-kernels-$LABEL.csv"
timeout 400 "$NCU" --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none \
    "$BUILD_DIR/bench_forward" "$MODEL" --device cuda --dtype bf16 --prefill 0 --batches 1 --context 1 --steps 1 \
    --repeat 1 --graph 0 --label "$LABEL" > "$RAW" 2> "$OUT/decode-kernels-$LABEL.err"
python3 - "$RAW" 8 <<'EOF'
import csv, sys, collections
path, forwards = sys.argv[1], int(sys.argv[2])
rows = [r for r in csv.reader(l for l in open(path) if l.startswith('"'))]
head, body = rows[0], rows[1:]
name_i, val_i, unit_i = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
tot, cnt = collections.Counter(), collections.Counter()
for r in body:
    v = float(r[val_i].replace(",", ""))
    v = v / 1000.0 if r[unit_i] == "ns" else v * 1000.0 if r[unit_i] == "ms" else v  # -> µs
    name = r[name_i].split("(")[0].replace("void ", "")[:90]
    tot[name] += v; cnt[name] += 1
all_us = sum(tot.values()) / forwards
print(f"{len(body)} kernels, {sum(cnt.values()) / forwards:.0f} per forward, {all_us:.0f} us of GPU time per forward")
print(f"{'us/fwd':>8} {'n/fwd':>6} {'share':>6}  kernel")
for name, t in tot.most_common(30):
    print(f"{t / forwards:8.1f} {cnt[name] / forwards:6.1f} {100 * t / forwards / all_us:5.1f}%  {name}")
EOF
