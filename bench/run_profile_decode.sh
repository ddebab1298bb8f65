#!/usr/bin/env bash
# Where a decode step's GPU time goes, kernel by kernel: Nsight Compute times every kernel of one decode
# step of model::generate (bench_forward --generate 1 --profile-step 3, run op by op: no CUDA graph, the
# same kernels) after a prompt of --context tokens at batch --batch; the warm-up run and the timed run each
# give one profiled step. The table is each kernel name's GPU time per step, largest first (caches and
# clocks as they run, not flushed or locked); the launch gaps a CUDA graph leaves are not in it. For
# reading, not a bench table. Needs a CUDA GPU and ncu.
#
#   bench/run_profile_decode.sh [options] [BUILD_DIR [WORK_DIR [MODEL_DIR]]]
#
# MODEL_DIR: default WORK_DIR/models/llama-8b-rtn4g128 (bench/run_decode.sh makes it).
# Needs bench_forward in BUILD_DIR (default build).
# Options (default):
#   --batch 1          rows of the decode step (more than 16: generation keeps the weights dequantized)
#   --context 512      prompt tokens before the profiled step
#   --ncu PATH         ncu on PATH, else /usr/local/cuda/bin/ncu
#   --python PY        Python for the table (default: .venv's, else python3)
# Output in WORK_DIR/profile_decode/ (default WORK_DIR runs/bench): kernels-bB-cC.csv and .txt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_batch=1 opt_context=512
opt_ncu="$(command -v ncu || echo /usr/local/cuda/bin/ncu)" opt_python=""
bench_parse "$@"
bench_setup profile_decode "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need bench_forward
MODEL="${ARGS[2]:-$MODELS/llama-8b-rtn4g128}"
[ -f "$MODEL/config.json" ] || bench_die "no model at $MODEL (bench/run_decode.sh makes it)"
[ -x "$opt_ncu" ] || bench_die "no Nsight Compute at $opt_ncu (see --ncu)"
NAME="kernels-b$opt_batch-c$opt_context"
bench_stamp "ncu on bench_forward: batch $opt_batch, context $opt_context"
"$opt_ncu" --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none --profile-from-start off \
    "$BUILD/bench_forward" "$MODEL" --device cuda --dtype bf16 --prefill 0 --batches "$opt_batch" \
    --context "$opt_context" --steps 4 --repeat 1 --graph 0 --generate 1 --profile-step 3 \
    > "$OUT/$NAME.csv" 2> "$OUT/$NAME.log" \
    || { tail -5 "$OUT/$NAME.log" >&2; bench_die "ncu failed"; }
"$PY" - "$OUT/$NAME.csv" 2 <<'EOF' | tee "$OUT/$NAME.txt"
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
print(f"{len(body)} kernels, {sum(cnt.values()) / forwards:.0f} per step, {all_us:.0f} us of GPU time per step")
print(f"{'us/step':>8} {'n/step':>6} {'share':>6}  kernel")
for name, t in tot.most_common(30):
    print(f"{t / forwards:8.1f} {cnt[name] / forwards:6.1f} {100 * t / forwards / all_us:5.1f}%  {name}")
EOF
bench_stamp "done: $OUT"
