#!/usr/bin/env bash
# One training step of a Llama-3.1-8B-shaped 4-bit g64 model (random weights, RTN codes, r 64, 1280-token
# sequences, gradient checkpointing on), side by side: lota's LoTA-QAF, lota's 16-bit LoRA, and
# bench/eager_lota_step.py (the official layer's formulation in PyTorch eager: P, M, W' materialised in
# bf16 at every forward). lota's step time is the median of steps 2.. of train_log.jsonl (step 1 warms
# up), its peak memory the log's peak_mem_mib; on CUDA, nvidia-smi memory.used is sampled every 100 ms
# for every run, the same measure for all three. Table and method: bench/train_step.md.
#
#   bench/run_train_step.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs lota in BUILD_DIR (default build); tokenizers and torch in the Python (eager rows).
# Options (default):
#   --device cuda          or cpu (with --shape tiny)
#   --shape 8b             8b or tiny (bench/lib.sh)
#   --init-device DEV      where lota init draws and quantizes the model (default: --device; the values differ)
#   --tokenizer DIR        ../shared/tokenizers/llama3_1
#   --seq 1280             tokens per sequence (every micro-batch is full: no padding)
#   --micro-batches 4,16   micro-batch sizes, one set of runs each
#   --batch 0              examples per optimizer step; 0: one micro-batch (e.g. 64: gradient accumulation)
#   --methods lota,lora    lota's methods to run
#   --eager 1              0: no eager rows
#   --recompute all        lota's --recompute-blocks values, one run each (all: every block recomputed)
#   --offload 0            0, 1 or 0,1: runs without / with --offload
#   --steps 4              optimizer steps per lota run (eager: 1 warm-up + 3 timed)
#   --windows 64           sequences of random words in the training text
#   --python PY            Python with torch and tokenizers (default: .venv's, else python3)
# Output in WORK_DIR/train_step/ (default WORK_DIR runs/bench): rows.jsonl, train_step.md, logs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_shape=8b opt_tokenizer="$BENCH_ROOT/../shared/tokenizers/llama3_1" opt_seq=1280
opt_micro_batches=4,16 opt_batch=0 opt_methods=lota,lora opt_eager=1 opt_recompute=all opt_steps=4 opt_windows=64 opt_python="" opt_init_device="" opt_offload=0
bench_parse "$@"
bench_setup train_step "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota
bench_shape "$opt_shape"
init_device="${opt_init_device:-$opt_device}"
Q="$MODELS/llama-$opt_shape-init-rtn4g64$([ "$init_device" = cpu ] || echo "-$init_device")"
bench_init_quantized "$Q" 4 64 "$init_device" "$opt_tokenizer"
ROWS="$OUT/rows.jsonl"
: > "$ROWS"

# Random single-token words of the tokenizer that tokenize to exactly --windows windows of SEQ tokens.
TEXT="$OUT/words-$opt_seq.txt"
bench_words_text "$Q/tokenizer.json" "$TEXT" "$opt_seq" "$opt_windows"
smi_start() { bench_smi_start "$@"; }
smi_stop() { bench_smi_stop; }
trap bench_smi_stop EXIT

for mb in ${opt_micro_batches//,/ }; do
    b=$(( opt_batch > 0 ? opt_batch : mb ))
    for m in ${opt_methods//,/ }; do
      for rc in ${opt_recompute//,/ }; do
       for off in ${opt_offload//,/ }; do
        impl="lota-$m" rc_args=()
        [ "$rc" = all ] || { impl="lota-$m-recompute$rc"; rc_args=(--recompute-blocks "$rc"); }
        [ "$off" = 0 ] || { impl="$impl-offload"; rc_args+=(--offload); }
        tag="${impl#lota-}-$mb-b$b"
        d="$OUT/adapter-$tag"
        rm -rf "$d"
        bench_stamp "lota train --method $m, micro-batch $mb, batch $b"
        smi_start "$OUT/smi-$tag.txt"
        "$LOTA" train --model "$Q" --data "$TEXT" --format text --source-max-len "$opt_seq" --method "$m" --out "$d" \
            --steps "$opt_steps" --batch-size "$b" --micro-batch-size "$mb" --rank 64 --device "$opt_device" "${rc_args[@]}" \
            > "$OUT/train-$tag.log" 2>&1 || {
            smi_stop; tail -5 "$OUT/train-$tag.log" >&2
            [ "$rc" = all ] && [ "$off" = 0 ] && bench_die "lota train $tag failed"
            # A kept-activation run that does not fit is a result (the row says what stopped it).
            "$PY" -c 'import json, sys; print(json.dumps({"impl": sys.argv[1], "micro_batch": int(sys.argv[2]), "batch": int(sys.argv[3]), "step_s": None, "tokens_per_s": None, "failed": sys.argv[4][-200:]}))' \
                "$impl" "$mb" "$b" "$(grep -v '^\s*$' "$OUT/train-$tag.log" | tail -1)" | tee -a "$ROWS"
            continue; }
        smi_stop
        "$PY" - "$impl" "$mb" "$b" "$opt_seq" "$d/train_log.jsonl" "$OUT/smi-$tag.txt" <<'EOF' | tee -a "$ROWS"
import json, statistics, sys
impl, mb, b, seq, log_path, smi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
log = [json.loads(l) for l in open(log_path) if l.strip()]
timed = [r for r in log if r["step"] >= 2] or log
st = statistics.median(r["step_time_s"] for r in timed)
used = [float(x) for x in open(smi).read().split()]
print(json.dumps({"impl": impl, "micro_batch": mb, "batch": b, "seq": seq, "step_s": round(st, 4),
                  "tokens_per_s": round(b * seq / st, 1), "peak_gib": round(max(r["peak_mem_mib"] for r in timed) / 1024, 3),
                  "smi_peak_gib": round(max(used) / 1024, 3) if used else None,
                  "steps_s": [round(r["step_time_s"], 4) for r in log]}))
EOF
       done
      done
    done
    if [ "$opt_eager" = 1 ]; then
        tag="eager-$mb-b$b"
        bench_stamp "eager official formulation, micro-batch $mb, batch $b"
        smi_start "$OUT/smi-$tag.txt"
        "$PY" "$BENCH_ROOT/bench/eager_lota_step.py" --device "$opt_device" --micro-batches "$mb" --seq "$opt_seq" \
            --accum $(( b / mb )) "${SHAPE[@]}" --vocab "$(bench_json_num vocab_size "$Q/config.json")" \
            > "$OUT/$tag.jsonl" 2> "$OUT/$tag.log" || { smi_stop; tail -5 "$OUT/$tag.log" >&2; bench_die "eager $tag failed"; }
        smi_stop
        "$PY" - "$OUT/$tag.jsonl" "$OUT/smi-$tag.txt" <<'EOF' | tee -a "$ROWS"
import json, sys
used = [float(x) for x in open(sys.argv[2]).read().split()]
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        r["smi_peak_gib"] = round(max(used) / 1024, 3) if used else None
        print(json.dumps(r))
EOF
    fi
done

"$PY" - "$ROWS" <<'EOF' | tee "$OUT/train_step.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
print("| micro-batch x batch | impl | step s | tok/s | peak GiB (allocator) | nvidia-smi GiB |\n|---|---|---:|---:|---:|---:|")
key = {}
for r in rows:
    b = r.get("batch", r["micro_batch"])
    key[(r["impl"], r["micro_batch"], b)] = r
    if r.get("failed"):
        print(f"| {r['micro_batch']} x {b} | {r['impl']} | failed: {r['failed']} | | | |")
        continue
    print(f"| {r['micro_batch']} x {b} | {r['impl']} | {f(r['step_s'], '.3f')} | {f(r['tokens_per_s'], '.0f')} "
          f"| {f(r.get('peak_gib'), '.2f')} | {f(r.get('smi_peak_gib'), '.2f')} |")
for (impl, mb, b), r in key.items():
    if impl != "lota-lota":
        continue
    eager, lora = key.get(("eager-official", mb, b)), key.get(("lota-lora", mb, b))
    parts = []
    if eager and eager.get("tokens_per_s"):
        parts.append(f"tok/s {r['tokens_per_s'] / eager['tokens_per_s']:.2f}x eager")
    if eager and eager.get("peak_gib"):
        parts.append(f"peak {r['peak_gib'] / eager['peak_gib']:.3f}x eager")
    if lora:
        parts.append(f"step {r['step_s'] / lora['step_s']:.2f}x LoRA")
    print(f"\nLoTA-QAF at {mb} x {b}: " + ", ".join(parts))
EOF
bench_stamp "done: $OUT"
