#!/usr/bin/env bash
# Where a batch-1 decode step's GPU time goes, kernel by kernel: Nsight Compute times every kernel of
# bench_forward run op by op (no CUDA graph) on a 1-token context, so that every forward is decode-sized
# (1 prompt forward + 3 steps, twice: 8 forwards); the table is each kernel name's GPU time per forward,
# largest first (caches and clocks as they run, not flushed or locked). For reading, not a bench table.
# Needs a CUDA GPU and ncu.
#
#   bench/run_profile_decode.sh [options] [BUILD_DIR [WORK_DIR [MODEL_DIR]]]
#
# MODEL_DIR: default WORK_DIR/models/llama-8b-rtn4g128 (bench/run_decode.sh makes it).
# Needs bench_forward in BUILD_DIR (default build).
# Options (default):
#   --ncu PATH         ncu on PATH, else /usr/local/cuda/bin/ncu
#   --python PY        Python for the table (default: .venv's, else python3)
# Output in WORK_DIR/profile_decode/ (default WORK_DIR runs/bench): kernels.csv, kernels.txt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_ncu="$(command -v ncu || echo /usr/local/cuda/bin/ncu)" opt_python=""
bench_parse "$@"
bench_setup profile_decode "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need bench_forward
MODEL="${ARGS[2]:-$MODELS/llama-8b-rtn4g128}"
[ -f "$MODEL/config.json" ] || bench_die "no model at $MODEL (bench/run_decode.sh makes it)"
[ -x "$opt_ncu" ] || bench_die "no Nsight Compute at $opt_ncu (see --ncu)"
bench_stamp "ncu on bench_forward"
"$opt_ncu" --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none \
    "$BUILD/bench_forward" "$MODEL" --device cuda --dtype bf16 --prefill 0 --batches 1 --context 1 --steps 1 \
    --repeat 1 --graph 0 > "$OUT/kernels.csv" 2> "$OUT/ncu.log" || { tail -5 "$OUT/ncu.log" >&2; bench_die "ncu failed"; }
"$PY" - "$OUT/kernels.csv" 8 <<'EOF' | tee "$OUT/kernels.txt"
import csv, sys, collections
path, forwards = sys.argv[1], int(sys.argv[2])
rows = [r for r in csv.reader(l for l in open(path) if l.startswith('"'))]
head, body = rows[0], rows[1:]
name_i, val_i, unit_i = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
tot, cnt = collections.Counter(), collections.Counter()
for r in body:
    v = float(r[val_i].replace(",", ""))
    v = v / 1000.0 if r[unit_i] == "ns" else v * 1000.0 if r[unit_i] == "ms" else v  # -> us
    name = r[name_i].split("(")[0].replace("void ", "")[:90]
    tot[name] += v
    cnt[name] += 1
all_us = sum(tot.values()) / forwards
print(f"{len(body)} kernels, {sum(cnt.values()) / forwards:.0f} per forward, {all_us:.0f} us of GPU time per forward")
print(f"{'us/fwd':>8} {'n/fwd':>6} {'share':>6}  kernel")
for name, t in tot.most_common(30):
    print(f"{t / forwards:8.1f} {cnt[name] / forwards:6.1f} {100 * t / forwards / all_us:5.1f}%  {name}")
EOF
bench_stamp "done: $OUT"
