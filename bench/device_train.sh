#!/usr/bin/env bash
# Issue 5 "GPU" on the GPU machine, in one call: one train step of a Llama-3.1-8B-shaped 4-bit g64 model
# (random weights, r 64, 1280-token sequences, micro-batch 4 and 16, gradient checkpointing on) for
# lota's LoTA-QAF, lota's 16-bit LoRA and bench/eager_lota_step.py (a PyTorch eager formulation of the
# official layer: P, M, W' materialised in bf16 at every forward), side by side, then the issue's three
# ratios at micro-batch 4. Results (JSON lines, logs, summary) in $OUT; partial results survive a kill.
#
#   bench/device_train.sh            # everything (build, model, quantize, 6 runs, summary)
#   bench/device_train.sh summary    # only re-print the summary from $OUT/rows.jsonl
#
# Overrides (defaults are the GPU run): BT_DEVICE=cuda BT_SEQ=1280 BT_MBS="4 16" BT_METHODS="lota lora"
# BT_EAGER=1 BT_STEPS=4 BT_WINDOWS=64 BT_BUDGET_S=570 BT_TRAIN_TIMEOUT=240 BT_BUILD=1 BT_WORK=/tmp
# BT_PREP_ONLY=0 (1: stop after build, model, quantization and text, to split the work over two calls)
# BT_BATCH= (empty: batch = micro-batch, one micro-batch per optimizer step; a number, e.g. 64, the
# trainer's default: gradient accumulation over BT_BATCH/mb micro-batches per step, eager included)
# BT_MODEL=/tmp/llama8b BT_INIT_ARGS="<8B shape>" BT_EAGER_ARGS="<8B shape>" TOK=.carry3/tok PY=python3.
# The tokenizer only has to turn the random text into ids: SmolLM2's (carried in .carry3/tok) has ids
# < 49152, which all fit the 128256-row embedding of the 8B shape.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
ROWS="$OUT/rows.jsonl"
PY="${PY:-python3}"
DEV="${BT_DEVICE:-cuda}"
SEQ="${BT_SEQ:-1280}"
MBS="${BT_MBS:-4 16}"
BATCH="${BT_BATCH:-}"
METHODS="${BT_METHODS:-lota lora}"
STEPS="${BT_STEPS:-4}"
BUDGET="${BT_BUDGET_S:-570}"
WORK="${BT_WORK:-/tmp}"
M="${BT_MODEL:-/tmp/llama8b}"
QM="$M-rtn4g64"
TOK="${TOK:-.carry3/tok}"
INIT_ARGS="${BT_INIT_ARGS:---hidden 4096 --layers 32 --heads 32 --kv-heads 8 --intermediate 14336 --vocab 128256 --rope-scaling llama3}"
EAGER_ARGS="${BT_EAGER_ARGS:-}"   # empty: the script's own defaults are the 8B shape, g64, r64, 4-bit
TEXT="$WORK/bt-text-$SEQ.txt"

summary() {
    "$PY" - "$ROWS" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        rows[(r["impl"], r["micro_batch"], r.get("batch", r["micro_batch"]))] = r
def f(v, fmt):
    return format(v, fmt) if v is not None else format("-", ">" + fmt.split(".")[0])
print(f"{'impl':16} {'mb':>3} {'batch':>5} {'seq':>5} {'step s':>8} {'tok/s':>9} {'peak GiB':>9} {'smi GiB':>8}  peak source")
for (impl, mb, b), r in sorted(rows.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
    name = impl + ("*" if r.get("complete") is False else "")
    print(f"{name:16} {mb:>3} {b:>5} {r['seq']:>5} {f(r['step_s'], '8.3f')} {f(r['tokens_per_s'], '9.0f')} "
          f"{f(r.get('peak_gib'), '9.2f')} {f(r.get('smi_peak_gib'), '8.2f')}  {r.get('peak_source', '')}")
def ratio(a, b, key):
    ra, rb = rows.get(a), rows.get(b)
    if not ra or not rb or ra.get(key) is None or not rb.get(key):
        return None
    return ra[key] / rb[key]
mb = 4
for b in sorted({k[2] for k in rows if k[1] == mb}):
    checks = [("LoTA tok/s / eager tok/s", ratio(("lota-lota", mb, b), ("eager-official", mb, b), "tokens_per_s"), ">=", 1.5),
              ("LoTA peak / eager peak (allocator peaks)", ratio(("lota-lota", mb, b), ("eager-official", mb, b), "peak_gib"), "<=", 0.7),
              ("LoTA peak / eager peak (nvidia-smi used)", ratio(("lota-lota", mb, b), ("eager-official", mb, b), "smi_peak_gib"), "<=", 0.7),
              ("LoTA step / LoRA step", ratio(("lota-lota", mb, b), ("lota-lora", mb, b), "step_s"), "<=", 1.3)]
    print(f"\nissue 5 targets at micro-batch {mb}, batch {b}:")
    for name, v, op, t in checks:
        ok = None if v is None else (v >= t if op == ">=" else v <= t)
        print(f"  {name:42} {f(v, '6.3f'):>6}  (target {op} {t})  {'-' if ok is None else ('MET' if ok else 'NOT met')}")
if any(r.get("complete") is False for r in rows.values()):
    print("* run stopped (timeout) before all steps were logged: median of the steps it logged")
if any(r.get("peak_source") == "log peak_mem_mib" for r in rows.values()):
    print("note: lota's peak_gib is train_log.jsonl's peak_mem_mib (max over steps 2..): the CUDA allocator's peak"
          " once src/kernels/device_memory is wired into the trainer, host RSS in builds before that; the"
          " nvidia-smi column (driver-level, 100 ms samples) is the same measure for all rows either way.")
EOF
}
[ "${1:-}" = summary ] && { summary; exit 0; }

T0=$SECONDS
stamp() { echo "[t=$((SECONDS - T0))s] $*"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
: > "$ROWS"

# Device memory as the driver sees it (CUDA context + caching allocator), sampled every 100 ms: the same
# measure for all three implementations, whatever each reports itself.
SMI_PID=""
smi_start() {
    SMI_FILE="$1"; : > "$SMI_FILE"; SMI_PID=""
    if [ "$DEV" = cuda ] && command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$SMI_FILE" 2>/dev/null &
        SMI_PID=$!
    fi
}
smi_stop() { [ -n "$SMI_PID" ] && { kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null; }; SMI_PID=""; }
trap smi_stop EXIT

# ---- build
export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}" LOTA_CMAKE_ARGS="${LOTA_CMAKE_ARGS:--DLOTA_WERROR=OFF}"
if [ "${BT_BUILD:-1}" = 1 ]; then
    scripts/bootstrap.sh
    scripts/build.sh -j16 lota_cli 2>&1 | grep -E "error|FAILED" -A3 | head -20
fi
source scripts/env.sh
L="$BUILD_DIR/lota"
[ -x "$L" ] || { echo "no $L (build failed?)"; exit 1; }
stamp "built: $L"

# ---- (a) random 8B-shaped bf16 model, (b) RTN 4-bit g64 quantization
[ -f "$M/config.json" ] || "$L" init --arch llama --out "$M" --seed 0 $INIT_ARGS --dtype bf16 2>&1 | tail -1
cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$M/" || { echo "no tokenizer in $TOK"; exit 1; }
stamp "model: $M"
[ -f "$QM/config.json" ] || "$L" quantize --model "$M" --out "$QM" --method rtn --bits 4 --group-size 64 --device "$DEV" 2>&1 | tail -2
cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$QM/"
stamp "quantized: $QM"

# ---- (c) random words that tokenize to exactly BT_WINDOWS full windows of SEQ tokens (so every micro-batch
# is SEQ tokens wide with no padding and no short window); single-token words taken from the tokenizer.
"$PY" - "$TOK/tokenizer.json" "$TEXT" "$SEQ" "${BT_WINDOWS:-64}" <<'EOF'
import random, re, sys
tok_path, out, seq, windows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
target = seq * windows
rng = random.Random(0)
try:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    pool = sorted(t[1:] for t in tok.get_vocab() if re.fullmatch("\u0120[a-z]{3,9}", t))
except Exception as e:  # no tokenizers package: plain words, about 1.3 tokens each
    print(f"text: tokenizers unavailable ({e}); length approximate", file=sys.stderr)
    tok, pool = None, "time people water light house music world river paper story garden friend".split()
words = [rng.choice(pool) for _ in range(int(target * (1.0 if tok else 1.2)) + 16)]
n = None
for _ in range(8):
    if tok is None:
        break
    n = len(tok.encode(" ".join(words), add_special_tokens=True).ids)
    if n == target:
        break
    if n > target:
        del words[len(words) - (n - target):]
    else:
        words += [rng.choice(pool) for _ in range(target - n)]
open(out, "w").write(" ".join(words) + "\n")
print(f"text: {len(words)} words, {n if n is not None else '?'} tokens (target {target} = {windows} x {seq})")
EOF
stamp "text: $TEXT"
[ "${BT_PREP_ONLY:-0}" = 1 ] && exit 0

# ---- one row per run
lota_row() {  # method mb batch dir smi-file
    "$PY" - "$@" "$SEQ" "$STEPS" >> "$ROWS" <<'EOF'
import json, statistics, sys
m, mb, b, d, smi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
seq, steps = int(sys.argv[6]), int(sys.argv[7])
log = [json.loads(l) for l in open(f"{d}/train_log.jsonl") if l.strip()]
timed = [r for r in log if r["step"] >= 2] or log   # step 1 is the warm-up
st = statistics.median(r["step_time_s"] for r in timed)
used = [float(x) for x in open(smi).read().split()] if smi else []
print(json.dumps({"impl": "lota-" + m, "micro_batch": mb, "batch": b, "seq": seq, "step_s": round(st, 4),
                  "tokens_per_s": round(b * seq / st, 1),
                  "log_tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in timed), 1),
                  "peak_gib": round(max(r["peak_mem_mib"] for r in timed) / 1024, 3), "peak_source": "log peak_mem_mib",
                  "smi_peak_gib": round(max(used) / 1024, 3) if used else None,
                  "steps_s": [round(r["step_time_s"], 4) for r in log], "complete": len(log) >= steps,
                  "loss": log[-1].get("loss")}))
EOF
    tail -1 "$ROWS"
}
eager_row() {  # mb smi-file json-line-file
    "$PY" - "$@" >> "$ROWS" <<'EOF'
import json, sys
mb, smi, f = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(f) if l.startswith("{")]
used = [float(x) for x in open(smi).read().split()]
for r in rows:
    r["smi_peak_gib"] = round(max(used) / 1024, 3) if used else None
    if r.get("peak_gib") is not None:
        r["peak_source"] = "torch.cuda.max_memory_allocated"
    print(json.dumps(r))
    print(json.dumps(r), file=sys.stderr)
EOF
}

# ---- (d, e) micro-batch 4 first for all three (the targets), then 16
for mb in $MBS; do
    for m in $METHODS; do
        rem=$(left)
        if [ "$rem" -lt 60 ]; then stamp "SKIP lota $m mb $mb: only ${rem}s of the budget left"; continue; fi
        to=$(( ${BT_TRAIN_TIMEOUT:-240} < rem - 20 ? ${BT_TRAIN_TIMEOUT:-240} : rem - 20 ))
        b="${BATCH:-$mb}"; tag="$m-$mb-b$b"
        d="$WORK/bt-$tag"; rm -rf "$d"
        smi_start "$OUT/smi-lota-$tag.txt"
        timeout "$to" "$L" train --model "$QM" --data "$TEXT" --format text --source-max-len "$SEQ" --method "$m" \
            --out "$d" --steps "$STEPS" --batch-size "$b" --micro-batch-size "$mb" --rank 64 --device "$DEV" \
            > "$OUT/train-$tag.log" 2>&1
        rc=$?
        smi_stop
        if [ $rc -ne 0 ] || [ ! -s "$d/train_log.jsonl" ]; then
            stamp "lota train $tag FAILED (rc $rc$([ $rc = 124 ] && echo ", timeout ${to}s")):"; tail -5 "$OUT/train-$tag.log"
            [ -s "$d/train_log.jsonl" ] || continue
        fi
        cp "$d/train_log.jsonl" "$OUT/train_log-$tag.jsonl"
        lota_row "$m" "$mb" "$b" "$d" "$OUT/smi-lota-$tag.txt"
        stamp "lota $tag done"
    done
    if [ "${BT_EAGER:-1}" = 1 ]; then
        rem=$(left)
        if [ "$rem" -lt 60 ]; then stamp "SKIP eager mb $mb: only ${rem}s of the budget left"; continue; fi
        b="${BATCH:-$mb}"; tag="$mb-b$b"
        smi_start "$OUT/smi-eager-$tag.txt"
        # shellcheck disable=SC2086
        timeout $((rem - 10)) "$PY" bench/eager_lota_step.py --device "$DEV" --micro-batches "$mb" --seq "$SEQ" \
            --accum $((b / mb)) $EAGER_ARGS > "$OUT/eager-$tag.jsonl" 2> "$OUT/eager-$tag.log"
        rc=$?
        smi_stop
        [ $rc -ne 0 ] && { stamp "eager $tag FAILED (rc $rc):"; grep -v Warning "$OUT/eager-$tag.log" | tail -5; }
        eager_row "$mb" "$OUT/smi-eager-$tag.txt" "$OUT/eager-$tag.jsonl"
        stamp "eager $tag done"
    fi
done

# ---- (f)
echo
summary | tee "$OUT/summary.txt"
stamp "all done"
