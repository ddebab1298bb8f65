#!/usr/bin/env bash
# Issue 5 "GPU", the SmolLM2 recovery run: SmolLM2-135M-Instruct (imported in f32 from its Q4_1 GGUF) quantized
# with GPTQ at 4 and 2 bits, group 64 (calibration 128 x 2048 tokens of the C4 demo file, as
# bench/device_smollm2_quant.sh does); then for each width: the untuned GPTQ model, LoTA-QAF and 16-bit LoRA,
# each trained DR_STEPS (300) steps of DR_BATCH (16) alpaca examples, evaluated by WikiText-2 test perplexity
# (the first DR_PPL_WINDOWS windows of 2048) and by answer loss (and KL to the 16-bit model) on alpaca examples
# held out of training. Adapters are evaluated unmerged (`--adapter`). Prints one markdown table; rows as JSON
# lines in $OUT/recovery_rows.jsonl, table in $OUT/recovery.md, logs in $OUT/. Partial results survive a kill.
#
#   bench/device_recovery.sh           # everything (build, import, quantize, evaluate, train, evaluate)
#   bench/device_recovery.sh table     # only re-print the table from $OUT/recovery_rows.jsonl
#
# Model source on the GPU machine (no network, 64 MiB per call): /tmp/smollm2.gguf if present, else the two
# carried parts /tmp/gguf.part00 (or .carry1/gguf.part00) + .carry2/gguf.part01; data from .carry3/shared/data.
# Time: stops starting work when less than DR_MIN_LEFT_S (45) of DR_BUDGET_S (540) is left; each training run is
# bounded by DR_TRAIN_TIMEOUT (120 s) and, when cut, evaluated at its last checkpoint (every DR_SAVE_EVERY steps).
# Everything made is kept under DR_WORK and reused, so DR_PREP_ONLY=1 (build, import, quantize, data split) in one
# call and the rest in a second call on the still-warm machine split the work when one call is too short.
#
# Overrides (defaults are the GPU run): DR_DEVICE=cuda DR_BITS="4 2" DR_GROUP=64 DR_QUANT_METHOD=gptq
# DR_QUANT_ARGS="" (e.g. --act-order) DR_CALIB_SAMPLES=128 DR_CALIB_SEQLEN=2048 DR_STEPS=300 DR_BATCH=16
# DR_MICRO_BATCH=(= DR_BATCH) DR_RANK=64 DR_LORA_LR=1e-5 (the paper's recovery rate) DR_METHODS="lota lora"
# DR_TRAIN_ARGS="--no-gradient-checkpointing" DR_MAX_LEN="" (--source-max-len/--target-max-len; "" = defaults)
# DR_HOLDOUT=100 DR_PPL_WINDOWS=32 DR_PPL_SEQLEN=2048 DR_EVAL_DTYPE=f32 DR_REF=1 (16-bit row) DR_BUDGET_S=540
# DR_TRAIN_TIMEOUT=120 DR_SAVE_EVERY=50 DR_BUILD=1 DR_PREP_ONLY=0 DR_WORK=/tmp/dr DR_GGUF=/tmp/smollm2.gguf
# DR_DATA_DIR=.carry3/shared/data DR_LOTA=<binary; default the build's> PY=python3.
# Tiny CPU check (2 cores, a few minutes): DR_DEVICE=cpu DR_BUILD=0 DR_BITS=4 DR_QUANT_METHOD=rtn DR_STEPS=2
# DR_BATCH=2 DR_RANK=8 DR_LORA_LR=1e-3 DR_MAX_LEN=64 DR_HOLDOUT=4 DR_PPL_WINDOWS=1 DR_PPL_SEQLEN=128
# DR_GGUF=<SmolLM2 gguf> DR_DATA_DIR=../shared/data DR_WORK=/tmp/dr-cpu bench/device_recovery.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
ROWS="$OUT/recovery_rows.jsonl"
PY="${PY:-python3}"
DEV="${DR_DEVICE:-cuda}"
BITS="${DR_BITS:-4 2}"
GROUP="${DR_GROUP:-64}"
QMETHOD="${DR_QUANT_METHOD:-gptq}"
STEPS="${DR_STEPS:-300}"
BATCH="${DR_BATCH:-16}"
MICRO="${DR_MICRO_BATCH:-$BATCH}"
RANK="${DR_RANK:-64}"
LORA_LR="${DR_LORA_LR:-1e-5}"
METHODS="${DR_METHODS:-lota lora}"
TRAIN_ARGS="${DR_TRAIN_ARGS---no-gradient-checkpointing}"
MAX_LEN="${DR_MAX_LEN:-}"
WINDOWS="${DR_PPL_WINDOWS:-32}"
SEQLEN="${DR_PPL_SEQLEN:-2048}"
EDTYPE="${DR_EVAL_DTYPE:-f32}"
BUDGET="${DR_BUDGET_S:-540}"
MIN_LEFT="${DR_MIN_LEFT_S:-45}"
WORK="${DR_WORK:-/tmp/dr}"
DATA="${DR_DATA_DIR:-.carry3/shared/data}"
WIKI="$DATA/wikitext2/wiki.test.joined.txt"
BASE="$WORK/smol"

table() {
    "$PY" - "$ROWS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
print("| model | method | steps | train s | train loss first -> last10 | WikiText-2 ppl | held-out loss "
      "| held-out ppl | KL to 16-bit |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    tl = "-" if r.get("train_loss_first") is None else f"{r['train_loss_first']:.3f} -> {r['train_loss_last10']:.3f}"
    steps = "-" if r.get("steps") is None else f"{r['steps']}{'' if r.get('complete', True) else '*'}"
    print(f"| {r['model']} | {r['method']} | {steps} | {f(r.get('train_s'), '.0f')} | {tl} | {f(r.get('wiki_ppl'), '.3f')} "
          f"| {f(r.get('heldout_loss'), '.4f')} | {f(r.get('heldout_ppl'), '.3f')} | {f(r.get('kl'), '.4f')} |")
if rows:
    r = rows[-1]
    print(f"\nWikiText-2: {r.get('ppl_windows')} windows of {r.get('ppl_seqlen')} tokens; held-out: "
          f"{r.get('heldout_examples')} alpaca examples ({r.get('heldout_tokens')} answer tokens); eval dtype "
          f"{r.get('eval_dtype')} on {r.get('device')}.")
if any(not r.get("complete", True) for r in rows):
    print("* training cut by its time limit: evaluated at its last checkpoint")
EOF
}
[ "${1:-}" = table ] && { table; exit 0; }

T0=$SECONDS
stamp() { echo "[t=$((SECONDS - T0))s] $*"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
enough() {  # enough SECONDS WHAT: true when SECONDS (at least DR_MIN_LEFT_S) are left, else says what is skipped
    local need=$(( $1 > MIN_LEFT ? $1 : MIN_LEFT ))
    [ "$(left)" -ge "$need" ] && return 0
    stamp "SKIP $2: only $(left)s of the ${BUDGET}s budget left"; return 1
}

# ---- build
if [ "${DR_BUILD:-1}" = 1 ]; then
    export LOTA_BUILD_DIR="${LOTA_BUILD_DIR:-/tmp/lota-build}" LOTA_CMAKE_ARGS="${LOTA_CMAKE_ARGS:--DLOTA_WERROR=OFF}"
    scripts/bootstrap.sh
    scripts/build.sh -j16 lota_cli 2>&1 | grep -E "error|FAILED" -A3 | head -20
fi
source scripts/env.sh
L="${DR_LOTA:-$BUILD_DIR/lota}"
[ -x "$L" ] || { echo "no $L (build failed?)"; exit 1; }
stamp "lota: $L"
DTRAIN=bf16; [ "$DEV" = cpu ] && DTRAIN=f32
mkdir -p "$WORK"

# ---- SmolLM2 16-bit (f32), from the GGUF
if [ ! -f "$BASE/config.json" ]; then
    G="${DR_GGUF:-/tmp/smollm2.gguf}"
    if [ ! -s "$G" ]; then
        P0=/tmp/gguf.part00; [ -s "$P0" ] || P0=.carry1/gguf.part00
        [ -s "$P0" ] && [ -s .carry2/gguf.part01 ] || { echo "no SmolLM2 GGUF: $G, or $P0 + .carry2/gguf.part01"; exit 1; }
        cat "$P0" .carry2/gguf.part01 > "$G.tmp" && mv "$G.tmp" "$G"
    fi
    rm -rf "$BASE"
    "$L" import --gguf "$G" --out "$BASE" --dtype f32 2>&1 | tail -1
fi
[ -f "$BASE/config.json" ] || { echo "import failed"; exit 1; }
stamp "model: $BASE"

# ---- alpaca: DR_HOLDOUT examples held out (a fixed shuffle), the rest for training
"$PY" - "$DATA/alpaca/alpaca_data_1k.json" "${DR_HOLDOUT:-100}" "$WORK/alpaca_train.json" "$WORK/alpaca_heldout.json" <<'EOF' || exit 1
import json, random, sys
src, n_hold, train_out, held_out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ex = json.load(open(src))
idx = list(range(len(ex)))
random.Random(0).shuffle(idx)
held = [ex[i] for i in idx[:n_hold]]
seen = {(e["instruction"], e.get("input", "")) for e in held}
train = [ex[i] for i in idx[n_hold:] if (ex[i]["instruction"], ex[i].get("input", "")) not in seen]
json.dump(train, open(train_out, "w"))
json.dump(held, open(held_out, "w"))
print(f"alpaca: {len(train)} training examples, {len(held)} held out (of {len(ex)} in {src})")
EOF

# ---- GPTQ quantization
for b in $BITS; do
    q="$WORK/$QMETHOD-${b}bit-g$GROUP"
    [ -f "$q/config.json" ] && continue
    enough 60 "quantize $b-bit" || continue
    s0=$SECONDS
    # shellcheck disable=SC2086
    "$L" quantize --model "$BASE" --out "$q" --method "$QMETHOD" --bits "$b" --group-size "$GROUP" \
        --calib "$DATA/c4/c4_demo.jsonl" --calib-samples "${DR_CALIB_SAMPLES:-128}" \
        --calib-seqlen "${DR_CALIB_SEQLEN:-2048}" --device "$DEV" ${DR_QUANT_ARGS:-} > "$OUT/quantize-$b.log" 2>&1 \
        || { stamp "quantize $b-bit FAILED:"; tail -5 "$OUT/quantize-$b.log"; continue; }
    stamp "quantized $q ($((SECONDS - s0))s)"
done
[ "${DR_PREP_ONLY:-0}" = 1 ] && { stamp "prep only: done"; exit 0; }

# ---- evaluation and one row per model
evaluate() {  # name method model_dir adapter_dir(or "") train_dir(or "") train_s
    local name=$1 method=$2 model=$3 adapter=$4 tdir=$5 ts=$6 tag="$1-$2"
    local ad=(); [ -n "$adapter" ] && ad=(--adapter "$adapter")
    local kl=(); [ "$model" != "$BASE" ] && kl=(--kl-reference "$BASE")
    "$L" eval --task ppl --model "$model" "${ad[@]}" --data "$WIKI" --seqlen "$SEQLEN" --max-windows "$WINDOWS" \
        --device "$DEV" --dtype "$EDTYPE" --json > "$OUT/eval-ppl-$tag.json" 2> "$OUT/eval-ppl-$tag.log" \
        || { stamp "ppl $tag FAILED:"; tail -3 "$OUT/eval-ppl-$tag.log"; }
    "$L" eval --task loss --model "$model" "${ad[@]}" "${kl[@]}" --data "$WORK/alpaca_heldout.json" --format alpaca \
        ${MAX_LEN:+--source-max-len $MAX_LEN --target-max-len $MAX_LEN} --device "$DEV" --dtype "$EDTYPE" --json \
        > "$OUT/eval-loss-$tag.json" 2> "$OUT/eval-loss-$tag.log" \
        || { stamp "loss $tag FAILED:"; tail -3 "$OUT/eval-loss-$tag.log"; }
    "$PY" - "$name" "$method" "$OUT/eval-ppl-$tag.json" "$OUT/eval-loss-$tag.json" "$tdir" "$ts" "$STEPS" "$DEV" \
        "$EDTYPE" "$SEQLEN" "$adapter" >> "$ROWS" <<'EOF'
import json, os, sys
name, method, ppl_f, loss_f, tdir, ts, steps, dev, edtype, seqlen, adapter = sys.argv[1:12]
def load(f):
    try:
        return json.loads(open(f).read().strip().splitlines()[-1])
    except Exception:
        return {}
p, l = load(ppl_f), load(loss_f)
row = {"model": name, "method": method, "device": dev, "eval_dtype": edtype, "wiki_ppl": p.get("ppl"),
       "ppl_windows": p.get("windows"), "ppl_seqlen": int(seqlen), "ppl_tokens": p.get("tokens"),
       "heldout_loss": l.get("loss"), "heldout_ppl": l.get("ppl"), "kl": l.get("kl", 0.0 if method == "16-bit" else None),
       "heldout_examples": l.get("examples"), "heldout_tokens": l.get("tokens"), "adapter": adapter or None}
if tdir and os.path.exists(os.path.join(tdir, "train_log.jsonl")):
    log = [json.loads(x) for x in open(os.path.join(tdir, "train_log.jsonl")) if x.strip()]
    done = log[-1]["step"] if log else 0
    if os.path.basename(adapter.rstrip("/")).startswith("checkpoint-"):  # a cut run: evaluated at its checkpoint
        done = int(os.path.basename(adapter.rstrip("/"))[len("checkpoint-"):])
        log = [r for r in log if r["step"] <= done]
    last = log[-10:]
    row.update({"steps": done, "complete": done >= int(steps),
                "train_s": float(ts), "train_loss_first": log[0]["loss"] if log else None,
                "train_loss_last10": sum(r["loss"] for r in last) / len(last) if last else None,
                "train_tokens_per_s": sorted(r["tokens_per_s"] for r in log)[len(log) // 2] if log else None,
                "peak_mem_mib": max((r.get("peak_mem_mib", 0) for r in log), default=None)})
print(json.dumps(row))
EOF
    tail -1 "$ROWS"
}

: > "$ROWS"
if [ "${DR_REF:-1}" = 1 ] && enough 30 "16-bit evaluation"; then
    evaluate "16-bit (f32)" 16-bit "$BASE" "" "" 0
    stamp "16-bit evaluated"
fi
for b in $BITS; do
    q="$WORK/$QMETHOD-${b}bit-g$GROUP"
    name="$QMETHOD $b-bit g$GROUP"
    [ -f "$q/config.json" ] || { stamp "SKIP $name: not quantized"; continue; }
    if enough 30 "$name untuned"; then
        evaluate "$name" untuned "$q" "" "" 0
        stamp "$name untuned evaluated"
    fi
    for m in $METHODS; do
        enough 90 "$name $m" || continue
        d="$WORK/adapter-$m-$b"; rm -rf "$d"
        margs=(--rank "$RANK"); [ "$m" = lora ] && margs+=(--lr "$LORA_LR")
        rem=$(left); to=$(( ${DR_TRAIN_TIMEOUT:-120} < rem - 40 ? ${DR_TRAIN_TIMEOUT:-120} : rem - 40 ))
        s0=$SECONDS
        # shellcheck disable=SC2086
        timeout "$to" "$L" train --model "$q" --data "$WORK/alpaca_train.json" --format alpaca --method "$m" \
            --out "$d" --steps "$STEPS" --batch-size "$BATCH" --micro-batch-size "$MICRO" --seed 0 \
            --save-every "${DR_SAVE_EVERY:-50}" --device "$DEV" "${margs[@]}" $TRAIN_ARGS \
            ${MAX_LEN:+--source-max-len $MAX_LEN --target-max-len $MAX_LEN} > "$OUT/train-$m-$b.log" 2>&1
        rc=$?
        ts=$((SECONDS - s0))
        cp "$d/train_log.jsonl" "$OUT/train_log-$m-$b.jsonl" 2>/dev/null
        adapter="$d"
        if [ $rc -ne 0 ] || [ ! -f "$d/adapter_model.safetensors" ]; then
            last=$(ls "$d" 2>/dev/null | sed -n 's/^checkpoint-\([0-9][0-9]*\)$/\1/p' | sort -n | tail -1)
            adapter=""; [ -n "$last" ] && adapter="$d/checkpoint-$last"  # complete checkpoints only, not *.tmp-*
            stamp "train $m $b-bit stopped (rc $rc$([ $rc = 124 ] && echo ", time limit ${to}s")); last checkpoint: ${adapter:-none}"
            tail -3 "$OUT/train-$m-$b.log" | tr '\r' '\n' | tail -3
            [ -n "$adapter" ] || continue
        fi
        stamp "$name $m trained (${ts}s)"
        evaluate "$name" "$m" "$q" "$adapter" "$d" "$ts"
        stamp "$name $m evaluated"
    done
done

echo
table | tee "$OUT/recovery.md"
stamp "all done"
