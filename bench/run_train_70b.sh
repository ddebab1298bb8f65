#!/usr/bin/env bash
# LoTA-QAF training of a Llama-3.3-70B-shaped 4-bit g64 model on one GPU. The model is made by
# `lota init --bits 4 --group-size 64 --device cuda` (random weights drawn and RTN-quantized on the GPU,
# written layer by layer: no 16-bit intermediate), then `lota train --method lota` runs a few steps of r 64 on 1280-token sequences with
# gradient checkpointing at each micro-batch size. tokens/s is the median of steps 2.. of train_log.jsonl
# (step 1 warms up), peak memory the log's peak_mem_mib (allocator) and the nvidia-smi memory.used peak
# (sampled every 100 ms). A run that fails (e.g. out of memory) gets a row with its last error line,
# which names the allocation that did not fit. Table and method: bench/train_70b.md.
#
#   bench/run_train_70b.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs lota in BUILD_DIR (default build); tokenizers in the Python (training text).
# Resources for --shape 70b (8192 hidden, 28672 MLP, 80 layers, vocab 128256):
#   disk  ~41 GB (38.3 GiB) in WORK_DIR/models: codes 34.2 GB (68.4e9 weights x 4 bits), fp16 scales
#         2.1 GB and packed zeros 0.5 GB (one each per 64 weights), bf16 embeddings + LM head 4.2 GB;
#         the adapter and its checkpoint (int8 r 64) well under 1 GB.
#   host  init: the shard being written (--shard-mib, 4 GiB) + one float32 projection with RTN's
#         temporaries (~5 GB for the 28672 x 8192 ones; the 128256 x 8192 embedding draw ~6 GB):
#         ~12 GB. Training: what the loader holds while moving the weights to the GPU (<= the model).
#   time  init on the GPU: bounded by packing the codes and writing 41 GB (init.log has each layer's
#         time); on the CPU (--init-device cpu) 15-25 minutes for 70B on 16 cores (bench/train_70b.md).
#         Each training run loads the model again. The model is made once per WORK_DIR and reused.
# Options (default):
#   --device cuda          or cpu (with --shape tiny)
#   --init-device DEV      where lota init draws and quantizes (default: --device); the values differ
#   --offload 0            1: lota train --offload (embedding table and block checkpoints in host memory)
#   --shape 70b            70b, 8b or tiny (bench/lib.sh)
#   --tokenizer DIR        ../shared/tokenizers/llama3_1
#   --seq 1280             tokens per sequence (every micro-batch is full: no padding)
#   --micro-batches 1,2,4  micro-batch sizes, one run each (batch = micro-batch)
#   --steps 3              optimizer steps per run
#   --rank 64              adapter rank r
#   --shard-mib 4096       init's largest safetensors file
#   --python PY            Python with tokenizers (default: .venv's, else python3)
# Output in WORK_DIR/train_70b/ (default WORK_DIR runs/bench): init.json, rows.jsonl, train_70b.md, logs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_shape=70b opt_tokenizer="$BENCH_ROOT/../shared/tokenizers/llama3_1" opt_seq=1280
opt_micro_batches=1,2,4 opt_steps=3 opt_rank=64 opt_shard_mib=4096 opt_python="" opt_init_device="" opt_offload=0
bench_parse "$@"
init_device="${opt_init_device:-$opt_device}"
bench_setup train_70b "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota
bench_shape "$opt_shape"
[ -f "$opt_tokenizer/tokenizer.json" ] || bench_die "no tokenizer.json in $opt_tokenizer (see --tokenizer)"
Q="$MODELS/llama-$opt_shape-init-rtn4g64$([ "$init_device" = cpu ] || echo "-$init_device")"
INIT_JSON="$OUT/init.json"

if [ ! -f "$Q/config.json" ]; then
    # Free space first: a full disk would only show after minutes of writing.
    need_gib=$(case "$opt_shape" in 70b) echo 40 ;; 8b) echo 6 ;; *) echo 1 ;; esac)
    free_gib=$(df -Pk "$MODELS" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
    [ "$free_gib" -ge "$need_gib" ] || bench_die "$MODELS has ${free_gib} GiB free, the $opt_shape 4-bit model needs ~${need_gib} GiB"
    bench_stamp "lota init --bits 4 --group-size 64 --device $init_device -> $Q"
    "$LOTA" init --arch llama --out "$Q" --seed 0 "${SHAPE[@]}" --rope-scaling llama3 --tokenizer "$opt_tokenizer" \
        --out-dtype bf16 --bits 4 --group-size 64 --shard-mib "$opt_shard_mib" --device "$init_device" --json \
        > "$INIT_JSON" 2> "$OUT/init.log" \
        || { tail -5 "$OUT/init.log" >&2; bench_die "lota init failed"; }
    bench_stamp "init: $(bench_json_num seconds "$INIT_JSON") s, peak resident $(bench_json_num peak_memory_mib "$INIT_JSON") MiB"
fi
du -sk "$Q" | awk '{ printf "%.2f\n", $1 / 1048576 }' > "$OUT/model_gib.txt"

ROWS="$OUT/rows.jsonl"
: > "$ROWS"
max_mb=0
for mb in ${opt_micro_batches//,/ }; do max_mb=$(( mb > max_mb ? mb : max_mb )); done
TEXT="$OUT/words-$opt_seq.txt"
bench_words_text "$Q/tokenizer.json" "$TEXT" "$opt_seq" $(( max_mb * opt_steps ))
trap bench_smi_stop EXIT

for mb in ${opt_micro_batches//,/ }; do
    d="$OUT/adapter-mb$mb"
    rm -rf "$d"
    bench_stamp "lota train --method lota, micro-batch $mb"
    bench_smi_start "$OUT/smi-mb$mb.txt"
    status=ok
    "$LOTA" train --model "$Q" --data "$TEXT" --format text --source-max-len "$opt_seq" --method lota --out "$d" \
        --steps "$opt_steps" --batch-size "$mb" --micro-batch-size "$mb" --rank "$opt_rank" --device "$opt_device" \
        $([ "$opt_offload" = 0 ] || echo --offload) \
        > "$OUT/train-mb$mb.log" 2>&1 || status=failed
    bench_smi_stop
    [ "$status" = ok ] || tail -3 "$OUT/train-mb$mb.log" >&2
    "$PY" - "$mb" "$opt_seq" "$status" "$d/train_log.jsonl" "$OUT/smi-mb$mb.txt" "$OUT/train-mb$mb.log" <<'EOF' | tee -a "$ROWS"
import json, os, statistics, sys
mb, seq, status, log_path, smi, out_log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
log = [json.loads(l) for l in open(log_path) if l.strip()] if os.path.exists(log_path) else []
used = [float(x) for x in open(smi).read().split()]
row = {"micro_batch": mb, "seq": seq, "status": status, "smi_peak_gib": round(max(used) / 1024, 3) if used else None}
if log:
    timed = [r for r in log if r["step"] >= 2] or log
    st = statistics.median(r["step_time_s"] for r in timed)
    row.update({"step_s": round(st, 4), "tokens_per_s": round(mb * seq / st, 1),
                "peak_gib": round(max(r["peak_mem_mib"] for r in log) / 1024, 3),
                "steps_s": [round(r["step_time_s"], 4) for r in log]})
if status != "ok":
    lines = [l.strip() for l in open(out_log, errors="replace") if l.strip()]
    row["error"] = lines[-1][:400] if lines else ""
print(json.dumps(row))
EOF
done

"$PY" - "$ROWS" "$INIT_JSON" "$OUT/model_gib.txt" "$opt_shape" <<'EOF' | tee "$OUT/train_70b.md"
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
init = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {}
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
if init:
    print(f"init ({sys.argv[4]}, 4-bit g64): {init['params']:.4g} parameters in {init['seconds']:.0f} s, "
          f"peak resident {init['peak_memory_mib'] / 1024:.1f} GiB; model on disk {open(sys.argv[3]).read().strip()} GiB\n")
print("| micro-batch | status | step s | tok/s | peak GiB (allocator) | nvidia-smi GiB |\n|---:|---|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['micro_batch']} | {r['status']} | {f(r.get('step_s'), '.3f')} | {f(r.get('tokens_per_s'), '.0f')} "
          f"| {f(r.get('peak_gib'), '.2f')} | {f(r.get('smi_peak_gib'), '.2f')} |")
for r in rows:
    if r.get("error"):
        print(f"\nmicro-batch {r['micro_batch']}: {r['error']}")
EOF
bench_stamp "done: $OUT"
