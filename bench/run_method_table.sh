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
# Use a new OUT_DIR when changing settings. lota comes from $LOTA_BUILD_DIR (default build). Needs only bash,
# coreutils, awk and a Python 3 standard library ($LOTA_PYTHON, e.g. LOTA_PYTHON=python3): no network, no
# packages.
#
# Resumable: a row whose OUT_DIR/rows/BITS-METHOD.json exists is skipped (REDO=1 recomputes it), quantized
# models are reused, and DEADLINE_S stops before starting a step once that many seconds have passed (the rows
# done so far are kept), so the same command run again continues where the last one stopped; finished training
# runs are kept, and one killed part-way (say by a time limit on the invocation) continues from its last
# checkpoint (SAVE_EVERY=K: every K steps; its wall time is marked * in the table). The whole table
# in a few invocations (each ≤ 9 minutes on an H100 with the PRESET=quick settings; the first invocation's
# logs/*.time and rows' train_s show what a row costs):
#   STAGE=quantize bench/run_method_table.sh M D OUT      # GPTQ at every width of BITS, nothing else
#   BITS=2 bench/run_method_table.sh M D OUT              # the 16-bit row and every row of width 2
#   BITS=3 ...; BITS=4 ...                                 # (add OMEGAS=... to one of them for the ω sweep)
#   STAGE=table bench/run_method_table.sh M D OUT         # only OUT/method_table.md from the rows
# Knobs (environment, default):
#   STAGE=all (quantize | all | table)  REDO=0  DEADLINE_S=0 (0: none)  PRESET= (quick: the settings below)
#   PARALLEL=0 (1: the widths of BITS side by side, each in OUT_DIR/w<bits>, then one table; for small models,
#     which leave most of a GPU idle; the wall times then include the other widths' share of the device)
#   BASE_ROW=1 (0: no 16-bit row)
#   DEVICE=auto  TRAIN_DTYPE=auto  EVAL_DTYPE=f32  BITS="2 3 4"  GROUP=64  METHODS="lora qalora lota"
#     METHODS entries: lora, qalora, lota, lota-mom (LoTA-QAF with --tsign-momentum $TSIGN_MOMENTUM)
#   TSIGN_MOMENTUM=0.9  OMEGAS= (e.g. "0.5 0.625 0.75 0.875": LoTA-QAF rows "lota ω=F·r" at width OMEGA_BITS,
#     Alpaca only unless OMEGAS_VIGGO=1)  OMEGA_BITS=first of BITS  OMEGAS_VIGGO=0
#   QSCHEDULES= (e.g. "paper 0.9:0.999:0.9999": LoTA-QAF rows with another t-SignSGD quantile schedule at width
#     OMEGA_BITS, Alpaca only unless QSCHEDULES_VIGGO=1; "paper": the paper's (q_end held for the last 20 %),
#     "S:M:E": the official interpolation from quantile S through M at 80 % of the steps to E)  QSCHEDULES_VIGGO=0
#   CALIB_SAMPLES=128  CALIB_SEQLEN=2048 (C4 demo calibration; the paper used 1024 C4 samples)
#   STEPS=300  BATCH=64  MICRO_BATCH=0 (0: = BATCH)  SOURCE_MAX_LEN=1024  TARGET_MAX_LEN=256  SEED=0
#   ADAPTER_RANK=64 (r; not RANK, which is torchrun's)  LORA_ALPHA=0 (0: 2r)  LORA_LR=1e-5  QALORA_LR=$LORA_LR
#   LORA_DROPOUT=0.05  OMEGA=0 (0: 0.75r)
#   QALORA_POOLING=mean  GRAD_CKPT=1  SAVE_EVERY=0
#   ALPACA="alpaca/alpaca_data_1k.json alpaca/alpaca_en_demo.json" (merged, deduplicated)  HOLDOUT=100
#   PPL_WINDOWS=-1 (-1: all)  PPL_SEQLEN=2048  EVAL_LIMIT=-1 (held-out examples scored; -1: all)
#   VIGGO=0  VIGGO_LR=5e-4  VIGGO_OMEGA=0 (0: 0.875r)  VIGGO_EPOCHS=1  VIGGO_LIMIT=-1  VIGGO_TRAIN_LIMIT=-1
#   VIGGO_EVAL_BATCH=64
# PRESET=quick (any knob set explicitly wins): STEPS=30 CALIB_SAMPLES=32 PPL_WINDOWS=40 VIGGO=1
#   VIGGO_TRAIN_LIMIT=1920 (30 steps of 64: the same steps as Alpaca) VIGGO_LIMIT=512 GRAD_CKPT=0. Sized from
#   bench/recovery.md (H100: ~0.3-0.45 s a step of 16 on this model), not measured at these settings.
# Only ~1.9k Alpaca records are available here (the paper: 52k), so 300 steps of 64 see each about 10 times.
# A CPU check of the whole script on a tiny `lota init` model (12.5 min on a busy 2-core machine):
#   lota init --arch llama --out /tmp/tiny --hidden 128 --intermediate 256 --layers 2 --tokenizer ../shared/tokenizers/llama2
#   DEVICE=cpu BITS="2 4" STEPS=2 BATCH=4 ADAPTER_RANK=4 LORA_LR=1e-3 SOURCE_MAX_LEN=64 TARGET_MAX_LEN=32 HOLDOUT=8 \
#     PPL_WINDOWS=2 PPL_SEQLEN=128 CALIB_SAMPLES=4 CALIB_SEQLEN=128 VIGGO=1 VIGGO_LIMIT=4 VIGGO_TRAIN_LIMIT=8 \
#     METHODS="lora qalora lota lota-mom" OMEGAS="0.5 0.875" \
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
# lota reads torchrun's variables (RANK, WORLD_SIZE, ...): this script runs one process per command.
[ -z "${RANK:-}${WORLD_SIZE:-}${LOCAL_RANK:-}" ] \
    || die "RANK/WORLD_SIZE/LOCAL_RANK are set (torchrun's variables, which lota reads); unset them" \
           "(the adapter rank is ADAPTER_RANK)"
if [ "${PRESET:-}" = quick ]; then
    STEPS=${STEPS:-30} CALIB_SAMPLES=${CALIB_SAMPLES:-32} PPL_WINDOWS=${PPL_WINDOWS:-40} VIGGO=${VIGGO:-1}
    VIGGO_TRAIN_LIMIT=${VIGGO_TRAIN_LIMIT:-1920} VIGGO_LIMIT=${VIGGO_LIMIT:-512} GRAD_CKPT=${GRAD_CKPT:-0}
elif [ -n "${PRESET:-}" ]; then
    die "PRESET must be quick or empty, got '$PRESET'"
fi
STAGE=${STAGE:-all} REDO=${REDO:-0} DEADLINE_S=${DEADLINE_S:-0} BASE_ROW=${BASE_ROW:-1}
case "$STAGE" in quantize | all | table) ;; *) die "STAGE must be quantize, all or table, got '$STAGE'" ;; esac
DEVICE=${DEVICE:-auto} TRAIN_DTYPE=${TRAIN_DTYPE:-auto} EVAL_DTYPE=${EVAL_DTYPE:-f32} BITS=${BITS:-2 3 4}
GROUP=${GROUP:-64} METHODS=${METHODS:-lora qalora lota} CALIB_SAMPLES=${CALIB_SAMPLES:-128}
CALIB_SEQLEN=${CALIB_SEQLEN:-2048} STEPS=${STEPS:-300} BATCH=${BATCH:-64} MICRO_BATCH=${MICRO_BATCH:-0}
SOURCE_MAX_LEN=${SOURCE_MAX_LEN:-1024} TARGET_MAX_LEN=${TARGET_MAX_LEN:-256} SEED=${SEED:-0}
ADAPTER_RANK=${ADAPTER_RANK:-64}
LORA_ALPHA=${LORA_ALPHA:-0} LORA_LR=${LORA_LR:-1e-5} QALORA_LR=${QALORA_LR:-$LORA_LR} LORA_DROPOUT=${LORA_DROPOUT:-0.05}
OMEGA=${OMEGA:-0} QALORA_POOLING=${QALORA_POOLING:-mean} GRAD_CKPT=${GRAD_CKPT:-1} SAVE_EVERY=${SAVE_EVERY:-0}
ALPACA=${ALPACA:-alpaca/alpaca_data_1k.json alpaca/alpaca_en_demo.json} HOLDOUT=${HOLDOUT:-100}
PPL_WINDOWS=${PPL_WINDOWS:--1} PPL_SEQLEN=${PPL_SEQLEN:-2048} EVAL_LIMIT=${EVAL_LIMIT:--1}
VIGGO=${VIGGO:-0} VIGGO_LR=${VIGGO_LR:-5e-4} VIGGO_OMEGA=${VIGGO_OMEGA:-0} VIGGO_EPOCHS=${VIGGO_EPOCHS:-1}
VIGGO_LIMIT=${VIGGO_LIMIT:--1} VIGGO_TRAIN_LIMIT=${VIGGO_TRAIN_LIMIT:--1} VIGGO_EVAL_BATCH=${VIGGO_EVAL_BATCH:-64}
TSIGN_MOMENTUM=${TSIGN_MOMENTUM:-0.9} OMEGAS=${OMEGAS:-} OMEGAS_VIGGO=${OMEGAS_VIGGO:-0} QSCHEDULES=${QSCHEDULES:-}
QSCHEDULES_VIGGO=${QSCHEDULES_VIGGO:-0}
read -r FIRST_BITS _ <<< "$BITS"
OMEGA_BITS=${OMEGA_BITS:-$FIRST_BITS}
for m in $METHODS; do
    case "$m" in
        lora | qalora | lota | lota-mom) ;;
        *) die "METHODS: unknown entry '$m' (lora, qalora, lota, lota-mom)" ;;
    esac
done
for f in $OMEGAS; do
    [[ "$f" =~ ^0?\.[0-9]+$ ]] && awk -v f="$f" 'BEGIN {exit !(f > 0 && f < 1)}' \
        || die "OMEGAS: '$f' is not a fraction of r in (0, 1), e.g. 0.625"
done
for s in $QSCHEDULES; do
    [ "$s" = paper ] || [[ "$s" =~ ^0?\.[0-9]+:0?\.[0-9]+:0?\.[0-9]+$ ]] \
        || die "QSCHEDULES: '$s' is neither paper nor START:MID:END quantiles, e.g. 0.9:0.999:0.9999"
done
[ "$DEVICE" = auto ] && DEVICE=$("$LOTA" version --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["auto_device"])')
# The processor every row of this invocation ran on (rows of several invocations may come from several machines).
if [ "$DEVICE" = cuda ]; then ACCEL=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
else ACCEL=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true); fi
ACCEL=${ACCEL:-unknown}
WIKI="$DATA/wikitext2/wiki.test.joined.txt" CALIB="$DATA/c4/c4_demo.jsonl"
for f in "$WIKI" "$CALIB" $(for a in $ALPACA; do echo "$DATA/$a"; done); do [ -f "$f" ] || die "no $f"; done
[ "$VIGGO" = 1 ] && { [ -f "$DATA/viggo/train.csv" ] && [ -f "$DATA/viggo/test.csv" ] || die "no $DATA/viggo/{train,test}.csv"; }
T0=$SECONDS
stamp() { echo "[$((SECONDS - T0)) s] $*" >&2; }
# deadline WHAT: stops the script (exit 0, rows so far kept) when DEADLINE_S seconds have passed.
deadline() {
    if [ "$DEADLINE_S" != 0 ] && [ $((SECONDS - T0)) -ge "$DEADLINE_S" ]; then
        stamp "DEADLINE_S=$DEADLINE_S reached before $1; rows done: $(ls "$OUT/rows" 2>/dev/null | tr '\n' ' ')"
        stamp "run the same command again to continue"
        exit 0
    fi
}
# row_wanted TAG: true when OUT_DIR/rows/TAG.json is still to be made (or REDO=1).
row_wanted() {
    if [ "$REDO" != 1 ] && [ -f "$OUT/rows/$1.json" ]; then stamp "row $1: done before (REDO=1 recomputes)"; return 1; fi
    return 0
}

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
    if [ "$STAGE" != table ] && [ ! -f "$BASE/config.json" ]; then
        stamp "import $MODEL_ARG"
        run import "$LOTA" import --gguf "$MODEL_ARG" --out "$BASE" --out-dtype f32
    fi
else
    die "no model directory or GGUF file at $MODEL_ARG"
fi

# PARALLEL=1: each width of BITS in its own invocation, side by side, in OUT_DIR/w<bits>, all on the one imported
# 16-bit model (only the first width makes the 16-bit row; METHODS rotated per width, so the memory-heavy runs do
# not all start together), then the table of all their rows in OUT_DIR. Stops with the failed widths' log tails if
# any failed; run it again to continue.
if [ "${PARALLEL:-0}" = 1 ] && [ "$STAGE" = all ]; then
    read -r -a widths <<< "$BITS"
    read -r -a methods <<< "$METHODS"
    pids=()
    for i in "${!widths[@]}"; do
        b=${widths[$i]} rotated=()
        for j in "${!methods[@]}"; do rotated+=("${methods[$(((i + j) % ${#methods[@]}))]}"); done
        base_row=0
        [ "$i" = 0 ] && base_row=$BASE_ROW
        echo "width $b: METHODS=\"${rotated[*]}\" OUT_DIR=$OUT/w$b (log: $LOGS/w$b.log)" >&2
        PARALLEL=0 BITS=$b BASE_ROW=$base_row METHODS="${rotated[*]}" OMEGA_BITS=$OMEGA_BITS \
            "$0" "$BASE" "$DATA" "$OUT/w$b" > "$LOGS/w$b.log" 2>&1 &
        pids+=($!)
    done
    failed=()
    for i in "${!widths[@]}"; do wait "${pids[$i]}" || failed+=("${widths[$i]}"); done
    for b in "${failed[@]}"; do echo "--- width $b failed:" >&2; tail -5 "$LOGS/w$b.log" >&2; done
    [ ${#failed[@]} -eq 0 ] \
        || die "width(s) ${failed[*]} failed (logs in $LOGS); run the same command again to continue"
    mkdir -p "$OUT/rows"
    for b in "${widths[@]}"; do cp "$OUT/w$b/rows/"*.json "$OUT/rows/" 2>/dev/null || true; done
    STAGE=table
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

# evaluate BITS METHOD MODEL ADAPTER|"" MERGED(yes|no|-) TRAIN_NAME|"" VIGGO_MODEL VIGGO_ADAPTER VIGGO_TRAIN|""
# VIGGO(0|1): the three metrics (and ViGGO) of one row, written to OUT_DIR/rows/BITS-METHOD.json.
evaluate() {
    local bits=$1 method=$2 model=$3 adapter=$4 merged=$5 tname=$6 vmodel=$7 vadapter=$8 vtrain=$9 viggo=${10}
    local tag="$1-$2"
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
    if [ "$viggo" = 1 ]; then
        rm -f "$LOGS/viggo-$tag.jsonl"
        run "viggo-$tag" "$LOTA" eval --task viggo --model "$vmodel" "${vad[@]}" --data "$DATA/viggo/test.csv" \
            --limit "$VIGGO_LIMIT" --batch-size "$VIGGO_EVAL_BATCH" --out "$LOGS/viggo-$tag.jsonl" --device "$DEVICE" \
            --json
    fi
    "$PY" - "$LOGS" "$tag" "$bits" "$method" "$merged" "$tname" "$vtrain" "$ACCEL" > "$ROWS/.$tag.json.tmp" <<'EOF'
import json, os, sys
logs, tag, bits, method, merged, tname, vtrain, accel = sys.argv[1:9]
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
    info = {}
    resumed = os.path.join(logs, "train-" + name + ".resumed")
    if os.path.exists(resumed):  # stopped and resumed: the last piece's wall + the step times before it
        at = int(open(resumed).read().split()[-1])
        wall += sum(r["step_time_s"] for r in log if r["step"] <= at)
        info[f"{key}_resumed_at_step"] = at
    return info | {f"{key}_steps": log[-1]["step"], f"{key}_target_tokens": sum(r["target_tokens"] for r in log),
            f"{key}_wall_s": wall, f"{key}_peak_device_mib": max(r.get("peak_mem_mib", 0) for r in log),
            f"{key}_peak_host_mib": rss, f"{key}_loss_first": log[0]["loss"],
            f"{key}_loss_last10": sum(r["loss"] for r in log[-10:]) / len(log[-10:]),
            f"{key}_step_s_median": sorted(r["step_time_s"] for r in log)[len(log) // 2]}
p, l, v = load("ppl-" + tag), load("loss-" + tag), load("viggo-" + tag)
row = {"bits": bits, "method": method, "merged": merged, "wiki_ppl": p["ppl"], "ppl_windows": p["windows"],
       "ppl_seqlen": p["seqlen"], "heldout_loss": l["loss"], "heldout_ppl": l["ppl"], "kl": l.get("kl", 0.0),
       "heldout_examples": l["examples"], "heldout_tokens": l["tokens"], "device": p["device"], "accelerator": accel,
       "eval_dtype": p["dtype"], "eval_wall_s": timing("ppl-" + tag)[0] + timing("loss-" + tag)[0]}
row.update(train_info(tname, "train"))
if v is not None:
    row.update({"viggo_accuracy": v["accuracy"], "viggo_examples": v["examples"]})
    row.update(train_info(vtrain, "viggo_train"))
print(json.dumps(row))
EOF
    mv "$ROWS/.$tag.json.tmp" "$ROWS/$tag.json"
    cat "$ROWS/$tag.json"
}

# train NAME QUANT DATA FORMAT LR OMEGA [ARGS...]: lota train of method ${NAME%%-*} into LOGS/NAME (timed).
train() {
    local name=$1 q=$2 data=$3 fmt=$4 lr=$5 omega=$6 m=${1%%-*}
    shift 6
    local margs=(--rank "$ADAPTER_RANK")
    [ "$LORA_ALPHA" != 0 ] && margs+=(--lora-alpha "$LORA_ALPHA")
    case "$m" in
        lora) margs+=(--lr "$lr" --lora-dropout "$LORA_DROPOUT") ;;
        qalora) margs+=(--lr "$lr" --qalora-pooling "$QALORA_POOLING") ;;
        lota) [ "$omega" != 0 ] && margs+=(--omega "$omega") ;;
    esac
    # A finished run is kept; one stopped part-way (the invocation killed at a time limit) continues from its
    # last checkpoint (SAVE_EVERY) with the same settings; LOGS/NAME.resumed records where, for the wall time.
    local resume=()
    if [ "$REDO" != 1 ] && [ -f "$LOGS/train-$name.time" ]; then
        stamp "train $name: done before (REDO=1 recomputes)"
        return 0
    elif [ "$REDO" != 1 ] && [ -f "$LOGS/$name/train_log.jsonl" ]; then
        resume=(--resume)
        awk -v k="$SAVE_EVERY" 'END {print (k > 0 ? NR - NR % k : 0)}' "$LOGS/$name/train_log.jsonl" \
            >> "$LOGS/train-$name.resumed"  # the step of the checkpoint it continues from
        stamp "train $name: resuming from step $(tail -1 "$LOGS/train-$name.resumed")"
    else
        rm -rf "${LOGS:?}/$name" "$LOGS/train-$name.time" "$LOGS/train-$name.resumed"
        stamp "train $name"
    fi
    run "train-$name" "$LOTA" train --model "$q" --data "$data" --format "$fmt" --method "$m" --out "$LOGS/$name" \
        --batch-size "$BATCH" --micro-batch-size "$MICRO" --seed "$SEED" --save-every "$SAVE_EVERY" \
        --device "$DEVICE" --dtype "$TRAIN_DTYPE" "${margs[@]}" "${CKPT[@]}" "${resume[@]}" "$@"
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
[ "$VIGGO_OMEGA" = 0 ] && VIGGO_OMEGA_EFF=$("$PY" -c "print(0.875 * $ADAPTER_RANK)")

# method_row BITS ENTRY OMEGA VIGGO_OMEGA VIGGO(0|1) [TRAIN ARGS...]: trains, merges (all but lora) and
# evaluates one row; ENTRY is lora, qalora, lota or lota-<variant> (lota's CLI method with the extra args).
method_row() {
    local b=$1 m=$2 omega=$3 vomega=$4 viggo=$5 q="$OUT/models/gptq-${1}bit-g$GROUP" lr
    shift 5
    row_wanted "$b-$m" || return 0
    case "$m" in lora) lr=$LORA_LR ;; qalora) lr=$QALORA_LR ;; *) lr=0 ;; esac
    deadline "training $m-$b"
    train "$m-$b" "$q" "$OUT/alpaca_train.json" alpaca "$lr" "$omega" --steps "$STEPS" "${LEN[@]}" "$@"
    local vname="" vmodel="$q" vadapter=""
    if [ "$viggo" = 1 ]; then
        vname="$m-$b-viggo"
        deadline "training $vname"
        train "$vname" "$q" "$VIGGO_TRAIN" viggo "$VIGGO_LR" "$vomega" --epochs "$VIGGO_EPOCHS" "$@"
    fi
    deadline "evaluating $b-$m"
    if [ "$m" = lora ]; then  # 16-bit factors: no exact merge into b-bit codes; evaluated unmerged
        vadapter=${vname:+$LOGS/$vname}
        evaluate "$b" "$m" "$q" "$LOGS/$m-$b" no "$m-$b" "$vmodel" "$vadapter" "$vname" "$viggo"
    else
        merge "$m-$b" "$q"
        if [ -n "$vname" ]; then merge "$vname" "$q"; vmodel="$OUT/models/$vname-merged"; fi
        evaluate "$b" "$m" "$OUT/models/$m-$b-merged" "" "yes ($b-bit)" "$m-$b" "$vmodel" "" "$vname" "$viggo"
    fi
}

if [ "$STAGE" != table ]; then
    if [ "$STAGE" = all ] && [ "$BASE_ROW" = 1 ] && row_wanted "16-16-bit"; then
        deadline "the 16-bit row"
        evaluate 16 "16-bit" "$BASE" "" - "" "$BASE" "" "" "$VIGGO"
    fi
    for b in $BITS; do
        q="$OUT/models/gptq-${b}bit-g$GROUP"
        if [ ! -f "$q/config.json" ]; then
            deadline "quantizing $b-bit"
            stamp "quantize $b-bit"
            rm -rf "$q"
            run "quantize-$b" "$LOTA" quantize --model "$BASE" --out "$q" --method gptq --bits "$b" \
                --group-size "$GROUP" --calib "$CALIB" --calib-samples "$CALIB_SAMPLES" --calib-seqlen "$CALIB_SEQLEN" \
                --device "$DEVICE"
        fi
        [ "$STAGE" = quantize ] && continue
        if row_wanted "$b-untuned"; then
            deadline "evaluating $b-untuned"
            evaluate "$b" untuned "$q" "" - "" "$q" "" "" "$VIGGO"
        fi
        for m in $METHODS; do
            case "$m" in
                lota-mom)
                    method_row "$b" "$m" "$OMEGA" "$VIGGO_OMEGA_EFF" "$VIGGO" --tsign-momentum "$TSIGN_MOMENTUM" ;;
                *) method_row "$b" "$m" "$OMEGA" "$VIGGO_OMEGA_EFF" "$VIGGO" ;;
            esac
        done
        if [ -n "$OMEGAS" ] && [ "$b" = "$OMEGA_BITS" ]; then
            for f in $OMEGAS; do
                w=$(awk -v f="$f" -v r="$ADAPTER_RANK" 'BEGIN {print f * r}')
                method_row "$b" "lota-w$f" "$w" "$w" "$((VIGGO == 1 && OMEGAS_VIGGO == 1))"
            done
        fi
        if [ -n "$QSCHEDULES" ] && [ "$b" = "$OMEGA_BITS" ]; then
            for s in $QSCHEDULES; do
                if [ "$s" = paper ]; then
                    qargs=(--tsign-schedule paper)
                else
                    IFS=: read -r qs qm qe <<< "$s"
                    qargs=(--tsign-q-start "$qs" --tsign-q-mid "$qm" --tsign-q-end "$qe")
                fi
                method_row "$b" "lota-q$s" "$OMEGA" "$VIGGO_OMEGA_EFF" "$((VIGGO == 1 && QSCHEDULES_VIGGO == 1))" \
                    "${qargs[@]}"
            done
        fi
    done
fi
[ "$STAGE" = quantize ] && { stamp "quantized: $(ls -d "$OUT"/models/gptq-* | tr '\n' ' ')"; exit 0; }

"$PY" - "$ROWS" "$TSIGN_MOMENTUM" > "$OUT/.method_table.md.tmp" <<'EOF'
import glob, json, os, sys
momentum = sys.argv[2]
names = {"16-bit": "16-bit", "untuned": "GPTQ (untuned)", "lora": "16-bit LoRA", "qalora": "QA-LoRA",
         "lota": "LoTA-QAF", "lota-mom": f"LoTA-QAF, t-SignSGD momentum β={momentum}"}
order = list(names)
def name(m):
    if m.startswith("lota-w"):
        return f"LoTA-QAF ω={m[len('lota-w'):]}·r"
    if m == "lota-qpaper":
        return "LoTA-QAF, the paper's quantile schedule (q_end for the last 20 %)"
    if m.startswith("lota-q"):
        return "LoTA-QAF, quantiles " + " → ".join(m[len("lota-q"):].split(":"))
    return names.get(m, m)
def rank(m):
    if m in order:
        return (order.index(m), 0.0)
    if m.startswith("lota-w"):
        return (len(order), float(m[len("lota-w"):]))
    if m.startswith("lota-q"):
        return (len(order) + 1, -1.0 if m == "lota-qpaper" else float(m[len("lota-q"):].split(":")[0]))
    return (len(order) + 2, 0.0)
rows = [json.load(open(p)) for p in glob.glob(os.path.join(sys.argv[1], "*.json"))]
if not rows:
    sys.exit(f"no rows in {sys.argv[1]}")
rows.sort(key=lambda r: (r["bits"] != "16", int(r["bits"]), rank(r["method"])))
viggo = any("viggo_accuracy" in r for r in rows)
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
def mark(r, key):
    return "*" if f"{key}_resumed_at_step" in r else ""
head = ("| bits | method | merged | WikiText-2 ppl | held-out loss | held-out ppl | KL to 16-bit | train tokens "
        "| train s | peak device MiB | peak host MiB |")
if viggo:
    head += " ViGGO acc. % | ViGGO train s |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for r in rows:
    line = (f"| {r['bits']} | {name(r['method'])} | {r['merged']} | {f(r['wiki_ppl'], '.3f')} "
            f"| {f(r['heldout_loss'], '.4f')} | {f(r['heldout_ppl'], '.3f')} | {f(r['kl'], '.4f')} "
            f"| {r.get('train_target_tokens', '-')} | {f(r.get('train_wall_s'), '.0f')}{mark(r, 'train')} "
            f"| {f(r.get('train_peak_device_mib'), '.0f')} | {f(r.get('train_peak_host_mib'), '.0f')} |")
    if viggo:
        acc = r.get("viggo_accuracy")
        line += (f" {f(None if acc is None else 100 * acc, '.2f')} "
                 f"| {f(r.get('viggo_train_wall_s'), '.0f')}{mark(r, 'viggo_train')} |")
    print(line)
r = rows[-1]
print(f"\nWikiText-2: {r['ppl_windows']} windows of {r['ppl_seqlen']} tokens; held-out: {r['heldout_examples']} "
      f"Alpaca records ({r['heldout_tokens']} answer tokens); eval dtype {r['eval_dtype']} on {r['device']}. "
      "Train tokens: target (answer) tokens of all steps. MMLU is not part of the table (at chance for a 135M "
      "model).")
by_accel = {}
for r in rows:
    by_accel.setdefault(r.get("accelerator", "not recorded"), []).append(f"{r['bits']} {name(r['method'])}")
if len(by_accel) == 1:
    print(f"\nEvery row ran on {next(iter(by_accel))}.")
else:
    print("\nRows by processor (wall times compare only within one): " +
          "; ".join(f"{a}: {', '.join(tags)}" for a, tags in by_accel.items()) + ".")
if any(k.endswith("_resumed_at_step") for r in rows for k in r):
    print("\n\\* stopped at an invocation's time limit and resumed from its last checkpoint: the last part's wall "
          "time plus the step times before it (the earlier parts' start-up is not counted).")
for key in ("train_target_tokens", "viggo_train_target_tokens"):
    tokens = {r[key] for r in rows if r.get(key)}
    if len(tokens) > 1:
        sys.exit(f"the runs saw different numbers of training tokens ({key}): {sorted(tokens)}")
EOF
mv "$OUT/.method_table.md.tmp" "$OUT/method_table.md"
cat "$OUT/method_table.md"
stamp "done: $OUT/method_table.md"
