#!/usr/bin/env bash
# The LoTA-QAF paper's four-way comparison on one model: for GPTQ g64 at 2, 3 and 4 bits, the untuned model,
# 16-bit LoRA, QA-LoRA and LoTA-QAF, each trained on the same Alpaca tokens (same data file, seed, steps,
# batch and length limits, hence the same examples in the same order; the script checks the token counts).
# QA-LoRA and LoTA-QAF are merged (`lota merge --verify`: bit-identical logits) and the merged b-bit models
# are evaluated; 16-bit LoRA does not merge into the grid and is evaluated unmerged. Metrics: WikiText-2
# test perplexity, held-out Alpaca answer loss (and its perplexity), KL divergence from the 16-bit model
# on those answers. Per run: wall time, peak device memory (train log: CUDA allocator peak, or peak RSS on
# the CPU) and peak host RSS. Optional task column (VIGGO=1): one epoch of ViGGO training per method and
# ViGGO test accuracy with the official rule (lota eval --task viggo).
#
#   bench/run_method_table.sh MODEL_DIR DATA_DIR OUT_DIR
#
# MODEL_DIR: the 16-bit model (HF directory; a .gguf file is imported in f32 first), e.g. SmolLM2-135M-Instruct.
# DATA_DIR: ../shared/data (alpaca/, wikitext2/, c4/, viggo/). OUT_DIR: models, adapters, logs, rows/ and
# method_table.md (from every row in OUT_DIR/rows/, so widths or methods can be run in separate invocations).
# Use a new OUT_DIR when changing settings. lota comes from $LOTA_BUILD_DIR (default build). Re-running reuses
# the quantized models.
# Knobs (environment, default):
#   DEVICE=auto  TRAIN_DTYPE=auto  EVAL_DTYPE=f32  BITS="2 3 4"  GROUP=64  METHODS="lora qalora lota"
#   CALIB_SAMPLES=128  CALIB_SEQLEN=2048 (C4 demo calibration; the paper used 1024 C4 samples)
#   STEPS=300  BATCH=64  MICRO_BATCH=0 (0: = BATCH)  SOURCE_MAX_LEN=1024  TARGET_MAX_LEN=256  SEED=0
#   RANK=64  LORA_ALPHA=0 (0: 2*RANK)  LORA_LR=1e-5  QALORA_LR=$LORA_LR  LORA_DROPOUT=0.05  OMEGA=0 (0: 0.75*RANK)
#   QALORA_POOLING=mean  GRAD_CKPT=1  SAVE_EVERY=0
#   ALPACA="alpaca/alpaca_data_1k.json alpaca/alpaca_en_demo.json" (merged, deduplicated)  HOLDOUT=100
#   PPL_WINDOWS=-1 (-1: all)  PPL_SEQLEN=2048  EVAL_LIMIT=-1 (held-out examples scored; -1: all)
#   VIGGO=0  VIGGO_LR=5e-4  VIGGO_OMEGA=0 (0: 0.875*RANK)  VIGGO_EPOCHS=1  VIGGO_LIMIT=-1  VIGGO_TRAIN_LIMIT=-1
# Only ~1.9k Alpaca records are available here (the paper: 52k), so 300 steps of 64 see each about 10 times.
# A CPU check of the whole script on a tiny `lota init` model (12.5 min on a busy 2-core machine):
#   lota init --arch llama --out /tmp/tiny --hidden 128 --intermediate 256 --layers 2 --tokenizer ../shared/tokenizers/llama2
#   DEVICE=cpu BITS="2 4" STEPS=2 BATCH=4 RANK=4 LORA_LR=1e-3 SOURCE_MAX_LEN=64 TARGET_MAX_LEN=32 HOLDOUT=8 \
#     PPL_WINDOWS=2 PPL_SEQLEN=128 CALIB_SAMPLES=4 CALIB_SEQLEN=128 VIGGO=1 VIGGO_LIMIT=4 VIGGO_TRAIN_LIMIT=8 \
#     bench/run_method_table.sh /tmp/tiny ../shared/data /tmp/method-table
set -euo pipefail
[ "${1:-}" = -h ] || [ "${1:-}" = --help ] && { awk 'NR>1 && /^#/ {sub(/^# ?/,""); print; next} NR>1 {exit}' "$0"; exit 0; }
[ $# -eq 3 ] || { echo "usage: $0 MODEL_DIR DATA_DIR OUT_DIR (see --help)" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../scripts/env.sh
source "$ROOT/scripts/env.sh"
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
LOTA="$BUILD_DIR/lota"
[ -x "$LOTA" ] || die "no $LOTA: build it with LOTA_BUILD_DIR=$BUILD_DIR scripts/build.sh lota_cli"
PY="$LOTA_PYTHON"
MODEL_ARG=$1 DATA="$(cd "$2" && pwd)" || die "no data directory $2"
mkdir -p "$3/logs" "$3/models"
OUT="$(cd "$3" && pwd)"
LOGS="$OUT/logs"
DEVICE=${DEVICE:-auto} TRAIN_DTYPE=${TRAIN_DTYPE:-auto} EVAL_DTYPE=${EVAL_DTYPE:-f32} BITS=${BITS:-2 3 4}
GROUP=${GROUP:-64} METHODS=${METHODS:-lora qalora lota} CALIB_SAMPLES=${CALIB_SAMPLES:-128}
CALIB_SEQLEN=${CALIB_SEQLEN:-2048} STEPS=${STEPS:-300} BATCH=${BATCH:-64} MICRO_BATCH=${MICRO_BATCH:-0}
SOURCE_MAX_LEN=${SOURCE_MAX_LEN:-1024} TARGET_MAX_LEN=${TARGET_MAX_LEN:-256} SEED=${SEED:-0} RANK=${RANK:-64}
LORA_ALPHA=${LORA_ALPHA:-0} LORA_LR=${LORA_LR:-1e-5} QALORA_LR=${QALORA_LR:-$LORA_LR} LORA_DROPOUT=${LORA_DROPOUT:-0.05}
OMEGA=${OMEGA:-0} QALORA_POOLING=${QALORA_POOLING:-mean} GRAD_CKPT=${GRAD_CKPT:-1} SAVE_EVERY=${SAVE_EVERY:-0}
ALPACA=${ALPACA:-alpaca/alpaca_data_1k.json alpaca/alpaca_en_demo.json} HOLDOUT=${HOLDOUT:-100}
PPL_WINDOWS=${PPL_WINDOWS:--1} PPL_SEQLEN=${PPL_SEQLEN:-2048} EVAL_LIMIT=${EVAL_LIMIT:--1}
VIGGO=${VIGGO:-0} VIGGO_LR=${VIGGO_LR:-5e-4} VIGGO_OMEGA=${VIGGO_OMEGA:-0} VIGGO_EPOCHS=${VIGGO_EPOCHS:-1}
VIGGO_LIMIT=${VIGGO_LIMIT:--1} VIGGO_TRAIN_LIMIT=${VIGGO_TRAIN_LIMIT:--1}
[ "$DEVICE" = auto ] && DEVICE=$("$LOTA" version --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["auto_device"])')
WIKI="$DATA/wikitext2/wiki.test.joined.txt" CALIB="$DATA/c4/c4_demo.jsonl"
for f in "$WIKI" "$CALIB" $(for a in $ALPACA; do echo "$DATA/$a"; done); do [ -f "$f" ] || die "no $f"; done
[ "$VIGGO" = 1 ] && { [ -f "$DATA/viggo/train.csv" ] && [ -f "$DATA/viggo/test.csv" ] || die "no $DATA/viggo/{train,test}.csv"; }
T0=$SECONDS
stamp() { echo "[$((SECONDS - T0)) s] $*" >&2; }

# run NAME CMD...: runs CMD with stdout to LOGS/NAME.out and stderr to LOGS/NAME.log; writes LOGS/NAME.time
# ("wall_s max_rss_kib"). Stops the script with the log's tail on failure.
if /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null; then HAVE_TIME=1; else HAVE_TIME=0; fi
run() {
    local name=$1 t0
    shift
    t0=$(date +%s.%N)
    if [ "$HAVE_TIME" = 1 ]; then
        /usr/bin/time -f '%e %M' -o "$LOGS/$name.rss" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.log" \
            || { tail -5 "$LOGS/$name.log" >&2; die "$name failed (log: $LOGS/$name.log)"; }
    else
        "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.log" || { tail -5 "$LOGS/$name.log" >&2; die "$name failed"; }
    fi
    local rss=0
    [ -f "$LOGS/$name.rss" ] && rss=$(awk 'END {print $2}' "$LOGS/$name.rss")
    echo "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}') $rss" > "$LOGS/$name.time"
}

# The 16-bit model as an HF directory.
if [ -f "$MODEL_ARG/config.json" ]; then
    BASE="$(cd "$MODEL_ARG" && pwd)"
elif [ -f "$MODEL_ARG" ]; then
    BASE="$OUT/models/base-f32"
    [ -f "$BASE/config.json" ] || { stamp "import $MODEL_ARG"; run import "$LOTA" import --gguf "$MODEL_ARG" --out "$BASE" --out-dtype f32; }
else
    die "no model directory or GGUF file at $MODEL_ARG"
fi

# Alpaca: the files merged and deduplicated, HOLDOUT records held out by a fixed shuffle (no instruction in both).
"$PY" - "$OUT/alpaca_train.json" "$OUT/alpaca_heldout.json" "$HOLDOUT" $(for a in $ALPACA; do echo "$DATA/$a"; done) <<'EOF'
import json, random, sys
train_out, held_out, n_hold, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
seen, ex = set(), []
for f in files:
    for e in json.load(open(f)):
        key = (e["instruction"], e.get("input", ""), e["output"])
        if key not in seen:
            seen.add(key)
            ex.append({"instruction": e["instruction"], "input": e.get("input", ""), "output": e["output"]})
random.Random(0).shuffle(ex)
held = ex[:n_hold]
asked = {(e["instruction"], e["input"]) for e in held}
train = [e for e in ex[n_hold:] if (e["instruction"], e["input"]) not in asked]
json.dump(train, open(train_out, "w"))
json.dump(held, open(held_out, "w"))
print(f"alpaca: {len(train)} training records, {len(held)} held out", file=sys.stderr)
EOF

# One JSON row per (bits, method) in OUT_DIR/rows/, replaced when that row is run again; the table is made
# from every row there, so widths or methods can be run in separate invocations (BITS=2, then BITS="3 4").
ROWS="$OUT/rows"
mkdir -p "$ROWS"
LEN=(--source-max-len "$SOURCE_MAX_LEN" --target-max-len "$TARGET_MAX_LEN")
MICRO=$(( MICRO_BATCH > 0 ? MICRO_BATCH : BATCH ))
CKPT=()
[ "$GRAD_CKPT" = 1 ] || CKPT=(--no-gradient-checkpointing)

# evaluate BITS METHOD MODEL ADAPTER|"" MERGED(yes|no|-) TRAIN_NAME|"" VIGGO_MODEL VIGGO_ADAPTER VIGGO_TRAIN|"":
# the three metrics (and ViGGO) of one row, written to OUT_DIR/rows/BITS-METHOD.json.
evaluate() {
    local bits=$1 method=$2 model=$3 adapter=$4 merged=$5 tname=$6 vmodel=$7 vadapter=$8 vtrain=$9 tag="$1-$2"
    local ad=() kl=() vad=()
    [ -n "$adapter" ] && ad=(--adapter "$adapter")
    [ -n "$vadapter" ] && vad=(--adapter "$vadapter")
    [ "$model" != "$BASE" ] && kl=(--kl-reference "$BASE")
    stamp "evaluate $tag"
    run "ppl-$tag" "$LOTA" eval --task ppl --model "$model" "${ad[@]}" --data "$WIKI" --seqlen "$PPL_SEQLEN" \
        --max-windows "$PPL_WINDOWS" --device "$DEVICE" --dtype "$EVAL_DTYPE" --json
    run "loss-$tag" "$LOTA" eval --task loss --model "$model" "${ad[@]}" "${kl[@]}" --data "$OUT/alpaca_heldout.json" \
        --format alpaca "${LEN[@]}" --limit "$EVAL_LIMIT" --device "$DEVICE" --dtype "$EVAL_DTYPE" --json
    rm -f "$LOGS/viggo-$tag.out"  # no stale ViGGO result in a row run without VIGGO=1
    if [ "$VIGGO" = 1 ]; then
        run "viggo-$tag" "$LOTA" eval --task viggo --model "$vmodel" "${vad[@]}" --data "$DATA/viggo/test.csv" \
            --limit "$VIGGO_LIMIT" --out "$LOGS/viggo-$tag.jsonl" --device "$DEVICE" --json
    fi
    "$PY" - "$LOGS" "$tag" "$bits" "$method" "$merged" "$tname" "$vtrain" <<'EOF' | tee "$ROWS/$tag.json"
import json, os, sys
logs, tag, bits, method, merged, tname, vtrain = sys.argv[1:8]
def load(name):
    p = os.path.join(logs, name + ".out")
    return json.load(open(p)) if os.path.exists(p) else None
def timing(name):
    wall, rss = open(os.path.join(logs, name + ".time")).read().split()
    return float(wall), int(rss) / 1024.0
def train_info(name, key):
    if not name:
        return {}
    log = [json.loads(x) for x in open(os.path.join(logs, name, "train_log.jsonl")) if x.strip()]
    wall, rss = timing("train-" + name)
    return {f"{key}_steps": log[-1]["step"], f"{key}_target_tokens": sum(r["target_tokens"] for r in log),
            f"{key}_wall_s": wall, f"{key}_peak_device_mib": max(r.get("peak_mem_mib", 0) for r in log),
            f"{key}_peak_host_mib": rss, f"{key}_loss_first": log[0]["loss"],
            f"{key}_loss_last10": sum(r["loss"] for r in log[-10:]) / len(log[-10:])}
p, l, v = load("ppl-" + tag), load("loss-" + tag), load("viggo-" + tag)
row = {"bits": bits, "method": method, "merged": merged, "wiki_ppl": p["ppl"], "ppl_windows": p["windows"],
       "ppl_seqlen": p["seqlen"], "heldout_loss": l["loss"], "heldout_ppl": l["ppl"], "kl": l.get("kl", 0.0),
       "heldout_examples": l["examples"], "heldout_tokens": l["tokens"], "device": p["device"],
       "eval_dtype": p["dtype"], "eval_wall_s": timing("ppl-" + tag)[0] + timing("loss-" + tag)[0]}
row.update(train_info(tname, "train"))
if v is not None:
    row.update({"viggo_accuracy": v["accuracy"], "viggo_examples": v["examples"]})
    row.update(train_info(vtrain, "viggo_train"))
print(json.dumps(row))
EOF
}

# train NAME QUANT DATA FORMAT LR OMEGA [ARGS...]: lota train of method ${NAME%%-*} into LOGS/NAME (timed).
train() {
    local name=$1 q=$2 data=$3 fmt=$4 lr=$5 omega=$6 m=${1%%-*}
    shift 6
    local margs=(--rank "$RANK")
    [ "$LORA_ALPHA" != 0 ] && margs+=(--lora-alpha "$LORA_ALPHA")
    case "$m" in
        lora) margs+=(--lr "$lr" --lora-dropout "$LORA_DROPOUT") ;;
        qalora) margs+=(--lr "$lr" --qalora-pooling "$QALORA_POOLING") ;;
        lota) [ "$omega" != 0 ] && margs+=(--omega "$omega") ;;
    esac
    rm -rf "${LOGS:?}/$name"
    stamp "train $name"
    run "train-$name" "$LOTA" train --model "$q" --data "$data" --format "$fmt" --method "$m" --out "$LOGS/$name" \
        --batch-size "$BATCH" --micro-batch-size "$MICRO" --seed "$SEED" --save-every "$SAVE_EVERY" \
        --device "$DEVICE" --dtype "$TRAIN_DTYPE" "${margs[@]}" "${CKPT[@]}" "$@"
}

# merge NAME QUANT: the exact merge of LOGS/NAME into OUT/models/NAME-merged, verified on the eval device/dtype.
merge() {
    rm -rf "${OUT:?}/models/$1-merged"
    run "merge-$1" "$LOTA" merge --model "$2" --adapter "$LOGS/$1" --out "$OUT/models/$1-merged" --verify \
        --device "$DEVICE" --dtype "$EVAL_DTYPE" --json
    grep -q '"verify":"bit-identical"' "$LOGS/merge-$1.out" || die "merge $1: not verified bit-identical"
}

VIGGO_TRAIN="$OUT/viggo_train.csv"
if [ "$VIGGO" = 1 ]; then
    if [ "$VIGGO_TRAIN_LIMIT" -ge 0 ]; then head -n $((VIGGO_TRAIN_LIMIT + 1)) "$DATA/viggo/train.csv" > "$VIGGO_TRAIN"
    else cp "$DATA/viggo/train.csv" "$VIGGO_TRAIN"; fi
fi
VIGGO_OMEGA_EFF=$VIGGO_OMEGA
[ "$VIGGO_OMEGA" = 0 ] && VIGGO_OMEGA_EFF=$("$PY" -c "print(0.875 * $RANK)")

evaluate 16 "16-bit" "$BASE" "" - "" "$BASE" "" ""
for b in $BITS; do
    q="$OUT/models/gptq-${b}bit-g$GROUP"
    if [ ! -f "$q/config.json" ]; then
        stamp "quantize $b-bit"
        run "quantize-$b" "$LOTA" quantize --model "$BASE" --out "$q" --method gptq --bits "$b" --group-size "$GROUP" \
            --calib "$CALIB" --calib-samples "$CALIB_SAMPLES" --calib-seqlen "$CALIB_SEQLEN" --device "$DEVICE"
    fi
    evaluate "$b" untuned "$q" "" - "" "$q" "" ""
    for m in $METHODS; do
        case "$m" in lora) lr=$LORA_LR ;; qalora) lr=$QALORA_LR ;; lota) lr=0 ;; *) die "unknown method $m" ;; esac
        train "$m-$b" "$q" "$OUT/alpaca_train.json" alpaca "$lr" "$OMEGA" --steps "$STEPS" "${LEN[@]}"
        vname="" vmodel="$q" vadapter=""
        if [ "$VIGGO" = 1 ]; then
            vname="$m-$b-viggo"
            train "$vname" "$q" "$VIGGO_TRAIN" viggo "$VIGGO_LR" "$VIGGO_OMEGA_EFF" --epochs "$VIGGO_EPOCHS"
        fi
        if [ "$m" = lora ]; then  # 16-bit factors: no exact merge into b-bit codes; evaluated unmerged
            vadapter=${vname:+$LOGS/$vname}
            evaluate "$b" "$m" "$q" "$LOGS/$m-$b" no "$m-$b" "$vmodel" "$vadapter" "$vname"
        else
            merge "$m-$b" "$q"
            if [ -n "$vname" ]; then merge "$vname" "$q"; vmodel="$OUT/models/$vname-merged"; fi
            evaluate "$b" "$m" "$OUT/models/$m-$b-merged" "" "yes ($b-bit)" "$m-$b" "$vmodel" "" "$vname"
        fi
    done
done

"$PY" - "$ROWS" <<'EOF' | tee "$OUT/method_table.md"
import glob, json, os, sys
names = {"16-bit": "16-bit", "untuned": "GPTQ (untuned)", "lora": "16-bit LoRA", "qalora": "QA-LoRA", "lota": "LoTA-QAF"}
order = list(names)
rows = [json.load(open(p)) for p in glob.glob(os.path.join(sys.argv[1], "*.json"))]
rows.sort(key=lambda r: (r["bits"] != "16", int(r["bits"]), order.index(r["method"]) if r["method"] in order else 9))
viggo = any("viggo_accuracy" in r for r in rows)
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
head = ("| bits | method | merged | WikiText-2 ppl | held-out loss | held-out ppl | KL to 16-bit | train tokens "
        "| train s | peak device MiB | peak host MiB |")
if viggo:
    head += " ViGGO acc. % | ViGGO train s |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for r in rows:
    line = (f"| {r['bits']} | {names.get(r['method'], r['method'])} | {r['merged']} | {f(r['wiki_ppl'], '.3f')} "
            f"| {f(r['heldout_loss'], '.4f')} | {f(r['heldout_ppl'], '.3f')} | {f(r['kl'], '.4f')} "
            f"| {r.get('train_target_tokens', '-')} | {f(r.get('train_wall_s'), '.0f')} "
            f"| {f(r.get('train_peak_device_mib'), '.0f')} | {f(r.get('train_peak_host_mib'), '.0f')} |")
    if viggo:
        acc = r.get("viggo_accuracy")
        line += f" {f(None if acc is None else 100 * acc, '.2f')} | {f(r.get('viggo_train_wall_s'), '.0f')} |"
    print(line)
r = rows[-1]
print(f"\nWikiText-2: {r['ppl_windows']} windows of {r['ppl_seqlen']} tokens; held-out: {r['heldout_examples']} "
      f"Alpaca records ({r['heldout_tokens']} answer tokens); eval dtype {r['eval_dtype']} on {r['device']}. "
      "Train tokens: target (answer) tokens of all steps. MMLU is not part of the table (at chance for a 135M "
      "model).")
for key in ("train_target_tokens", "viggo_train_target_tokens"):
    tokens = {r[key] for r in rows if r.get(key)}
    if len(tokens) > 1:
        sys.exit(f"the runs saw different numbers of training tokens ({key}): {sorted(tokens)}")
EOF
stamp "done: $OUT/method_table.md"
