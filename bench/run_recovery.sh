#!/usr/bin/env bash
# Recovery of a quantized SmolLM2-135M-Instruct by fine-tuning: GPTQ at 4 and 2 bits, group 64 (calibration
# 128 windows of 2048 tokens of the C4 demo file); for each width the untuned model, LoTA-QAF (r 64,
# t-SignSGD defaults) and 16-bit LoRA (r 64, alpha 128, dropout 0.05, AdamW lr 1e-5), each trained 300 steps
# of 16 alpaca examples (alpaca_data_1k.json, 100 examples held out by a fixed shuffle), no gradient
# checkpointing. Adapters are evaluated unmerged: WikiText-2 test perplexity (first 32 windows of 2048) and
# held-out answer loss, its perplexity and KL to the 16-bit model, f32. Table: bench/recovery.md.
#
#   bench/run_recovery.sh [options] [BUILD_DIR [WORK_DIR [SMOLLM2]]]
#
# SMOLLM2: an f32 HF directory of SmolLM2-135M-Instruct or its GGUF (imported in f32); default: the GGUF
# that scripts/fetch_smollm2.sh downloads. Needs lota in BUILD_DIR (default build).
# Options (default):
#   --device cuda          or cpu
#   --data DIR             ../shared/data (alpaca/, c4/, wikitext2/)
#   --bits 4,2  --group 64  --quant-method gptq (rtn, gptq or gptq+act)
#   --methods lota,lora  --steps 300  --batch 16  --micro-batch 0 (0: = --batch)  --rank 64  --lora-lr 1e-5
#   --save-every 50        checkpoint interval
#   --max-len 0            --source-max-len and --target-max-len of training and held-out loss (0: defaults)
#   --holdout 100  --ppl-windows 32  --ppl-seqlen 2048  --eval-dtype f32
# A quick CPU check of the whole script (minutes on 2 cores):
#   bench/run_recovery.sh --device cpu --bits 4 --quant-method rtn --steps 2 --batch 2 --rank 8 --lora-lr 1e-3 \
#       --max-len 64 --holdout 4 --ppl-windows 1 --ppl-seqlen 128 build runs/bench-cpu
# Output in WORK_DIR/recovery/ (default WORK_DIR runs/bench): rows.jsonl, recovery.md, logs, adapters;
# checkpoints in WORK_DIR/models/smollm2-* (shared with the other SmolLM2 scripts).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_data="$BENCH_ROOT/../shared/data" opt_bits=4,2 opt_group=64 opt_quant_method=gptq
opt_methods=lota,lora opt_steps=300 opt_batch=16 opt_micro_batch=0 opt_rank=64 opt_lora_lr=1e-5 opt_save_every=50
opt_max_len=0 opt_holdout=100 opt_ppl_windows=32 opt_ppl_seqlen=2048 opt_eval_dtype=f32 opt_python=""
bench_parse "$@"
bench_setup recovery "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota
bench_smollm2 "${ARGS[2]:-}"
WIKI="$opt_data/wikitext2/wiki.test.joined.txt"
ALPACA="$opt_data/alpaca/alpaca_data_1k.json"
for f in "$WIKI" "$ALPACA" "$opt_data/c4/c4_demo.jsonl"; do [ -f "$f" ] || bench_die "no $f (see --data)"; done
micro=$(( opt_micro_batch > 0 ? opt_micro_batch : opt_batch ))
len=()
[ "$opt_max_len" -gt 0 ] && len=(--source-max-len "$opt_max_len" --target-max-len "$opt_max_len")

# alpaca: --holdout examples held out (a fixed shuffle; no instruction in both), the rest for training.
"$PY" - "$ALPACA" "$opt_holdout" "$OUT/alpaca_train.json" "$OUT/alpaca_heldout.json" <<'EOF'
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
print(f"alpaca: {len(train)} training examples, {len(held)} held out (of {len(ex)} in {src})", file=sys.stderr)
EOF

ROWS="$OUT/rows.jsonl"
: > "$ROWS"
evaluate() {  # NAME METHOD MODEL_DIR ADAPTER_DIR|"" TRAIN_SECONDS|""
    local name=$1 method=$2 model=$3 adapter=$4 ts=$5 tag="$1-$2"
    local ad=() kl=()
    [ -n "$adapter" ] && ad=(--adapter "$adapter")
    [ "$model" != "$SMOL" ] && kl=(--kl-reference "$SMOL")
    bench_stamp "evaluate $name $method"
    "$LOTA" eval --task ppl --model "$model" "${ad[@]}" --data "$WIKI" --seqlen "$opt_ppl_seqlen" \
        --max-windows "$opt_ppl_windows" --device "$opt_device" --dtype "$opt_eval_dtype" --json \
        > "$OUT/ppl-$tag.json" 2> "$OUT/ppl-$tag.log" || { tail -3 "$OUT/ppl-$tag.log" >&2; bench_die "ppl $tag failed"; }
    "$LOTA" eval --task loss --model "$model" "${ad[@]}" "${kl[@]}" --data "$OUT/alpaca_heldout.json" --format alpaca \
        "${len[@]}" --device "$opt_device" --dtype "$opt_eval_dtype" --json \
        > "$OUT/loss-$tag.json" 2> "$OUT/loss-$tag.log" || { tail -3 "$OUT/loss-$tag.log" >&2; bench_die "loss $tag failed"; }
    "$PY" - "$name" "$method" "$OUT/ppl-$tag.json" "$OUT/loss-$tag.json" "${adapter:+$adapter/train_log.jsonl}" "$ts" \
        <<'EOF' | tee -a "$ROWS"
import json, sys
name, method, ppl_f, loss_f, log_f, ts = sys.argv[1:7]
p, l = json.load(open(ppl_f)), json.load(open(loss_f))
row = {"model": name, "method": method, "wiki_ppl": p["ppl"], "ppl_windows": p["windows"], "ppl_seqlen": p["seqlen"],
       "heldout_loss": l["loss"], "heldout_ppl": l["ppl"], "kl": l.get("kl", 0.0),
       "heldout_examples": l["examples"], "heldout_tokens": l["tokens"], "device": p["device"], "eval_dtype": p["dtype"]}
if log_f:
    log = [json.loads(x) for x in open(log_f) if x.strip()]
    last = log[-10:]
    row.update({"steps": log[-1]["step"], "train_s": float(ts), "train_loss_first": log[0]["loss"],
                "train_loss_last10": sum(r["loss"] for r in last) / len(last),
                "train_tokens_per_s": sorted(r["tokens_per_s"] for r in log)[len(log) // 2],
                "peak_mem_mib": max(r.get("peak_mem_mib", 0) for r in log)})
print(json.dumps(row))
EOF
}

evaluate "16-bit (f32)" 16-bit "$SMOL" "" ""
for b in ${opt_bits//,/ }; do
    q="$MODELS/smollm2-$opt_quant_method-${b}bit-g$opt_group"
    name="$opt_quant_method $b-bit g$opt_group"
    qargs=(--method "${opt_quant_method%+act}" --bits "$b" --group-size "$opt_group")
    [ "$opt_quant_method" = gptq+act ] && qargs+=(--act-order)
    bench_quantize "$SMOL" "$q" "${qargs[@]}" --calib "$opt_data/c4/c4_demo.jsonl" --calib-samples 128 \
        --calib-seqlen 2048 --device "$opt_device"
    evaluate "$name" untuned "$q" "" ""
    for m in ${opt_methods//,/ }; do
        d="$OUT/adapter-$m-$b"
        rm -rf "$d"
        margs=(--rank "$opt_rank")
        [ "$m" = lora ] && margs+=(--lr "$opt_lora_lr")
        bench_stamp "train $m on $name"
        s0=$SECONDS
        "$LOTA" train --model "$q" --data "$OUT/alpaca_train.json" --format alpaca --method "$m" --out "$d" \
            --steps "$opt_steps" --batch-size "$opt_batch" --micro-batch-size "$micro" --seed 0 \
            --save-every "$opt_save_every" --device "$opt_device" "${margs[@]}" --no-gradient-checkpointing "${len[@]}" \
            > "$OUT/train-$m-$b.log" 2>&1 || { tail -3 "$OUT/train-$m-$b.log" >&2; bench_die "train $m $b-bit failed"; }
        evaluate "$name" "$m" "$q" "$d" $((SECONDS - s0))
    done
done

"$PY" - "$ROWS" <<'EOF' | tee "$OUT/recovery.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
print("| model | method | steps | train s | train loss first -> last 10 | WikiText-2 ppl | held-out loss "
      "| held-out ppl | KL to 16-bit |\n|---|---|---:|---:|---|---:|---:|---:|---:|")
for r in rows:
    tl = "-" if r.get("train_loss_first") is None else f"{r['train_loss_first']:.3f} -> {r['train_loss_last10']:.3f}"
    print(f"| {r['model']} | {r['method']} | {r.get('steps', '-')} | {f(r.get('train_s'), '.0f')} | {tl} "
          f"| {f(r['wiki_ppl'], '.3f')} | {f(r['heldout_loss'], '.4f')} | {f(r['heldout_ppl'], '.3f')} | {f(r['kl'], '.4f')} |")
r = rows[-1]
print(f"\nWikiText-2: {r['ppl_windows']} windows of {r['ppl_seqlen']} tokens; held-out: {r['heldout_examples']} alpaca "
      f"examples ({r['heldout_tokens']} answer tokens); eval dtype {r['eval_dtype']} on {r['device']}.")
EOF
bench_stamp "done: $OUT"
