#!/usr/bin/env bash
# SmolLM2-135M-Instruct at 16 bits and GPTQ 4-bit and 2-bit g64 (calibration 128 windows of 2048 tokens of
# the C4 demo file) on MMLU 5-shot (all 14 042 test questions, lm-eval's prompt and " A".." D"
# log-likelihoods, batch 32) and ViGGO (the 1 083 test rows, greedy, <= 512 tokens, batch 64, the official
# attribute-set rule), bf16, with the time of each evaluation. Table: bench/smollm2_eval.md.
#
#   bench/run_smollm2_eval.sh [options] [BUILD_DIR [WORK_DIR [SMOLLM2]]]
#
# SMOLLM2: an f32 HF directory of SmolLM2-135M-Instruct or its GGUF (imported in f32); default: the GGUF
# that scripts/fetch_smollm2.sh downloads. Needs lota in BUILD_DIR (default build).
# Options (default):
#   --device cuda          or cpu (slow: use --limit)
#   --data DIR             ../shared/data (mmlu/, viggo/test.csv, c4/c4_demo.jsonl)
#   --limit -1             MMLU: first N questions per subject; ViGGO: first N rows (-1: all)
# Output in WORK_DIR/smollm2_eval/ (default WORK_DIR runs/bench): smollm2_eval.md, each evaluation's output;
# checkpoints in WORK_DIR/models/smollm2-* (shared with bench/run_smollm2_quant.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_device=cuda opt_data="$BENCH_ROOT/../shared/data" opt_limit=-1
bench_parse "$@"
bench_setup smollm2_eval "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need lota
bench_smollm2 "${ARGS[2]:-}"
for f in "$opt_data/mmlu/test" "$opt_data/viggo/test.csv" "$opt_data/c4/c4_demo.jsonl"; do
    [ -e "$f" ] || bench_die "no $f (see --data)"
done
for bits in 4 2; do
    bench_quantize "$SMOL" "$MODELS/smollm2-gptq-${bits}bit-g64" --method gptq --bits "$bits" --group-size 64 \
        --calib "$opt_data/c4/c4_demo.jsonl" --calib-samples 128 --calib-seqlen 2048 --device "$opt_device"
done

R="$OUT/smollm2_eval.md"
{ echo "| model | MMLU Hums. | STEM | Social | Other | Avg. | MMLU s | ViGGO acc. | ViGGO s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"; } | tee "$R"
for q in "$SMOL" "$MODELS/smollm2-gptq-4bit-g64" "$MODELS/smollm2-gptq-2bit-g64"; do
    name=$(basename "$q")
    bench_stamp "MMLU $name"
    s0=$SECONDS
    "$LOTA" eval --task mmlu --model "$q" --data "$opt_data/mmlu" --shots 5 --limit "$opt_limit" --device "$opt_device" \
        --dtype bf16 --batch-size 32 --json > "$OUT/mmlu-$name.json" 2> "$OUT/mmlu-$name.log" \
        || { tail -3 "$OUT/mmlu-$name.log" >&2; bench_die "MMLU $name failed"; }
    mmlu_s=$((SECONDS - s0))
    bench_stamp "ViGGO $name"
    s0=$SECONDS
    "$LOTA" eval --task viggo --model "$q" --data "$opt_data/viggo/test.csv" --limit "$opt_limit" --device "$opt_device" \
        --dtype bf16 --batch-size 64 --out "$OUT/viggo-$name.jsonl" --overwrite --json > "$OUT/viggo-$name.json" 2> "$OUT/viggo-$name.log" \
        || { tail -3 "$OUT/viggo-$name.log" >&2; bench_die "ViGGO $name failed"; }
    viggo_s=$((SECONDS - s0))
    "$PY" - "$name" "$OUT/mmlu-$name.json" "$OUT/viggo-$name.json" "$mmlu_s" "$viggo_s" <<'EOF' | tee -a "$R"
import json, sys
name, mmlu_f, viggo_f, mmlu_s, viggo_s = sys.argv[1:6]
m, v = json.load(open(mmlu_f)), json.load(open(viggo_f))
cat = {c["name"]: c["acc"] for c in m.get("categories", [])}
def pct(x):
    return "-" if x is None else f"{100 * x:.2f}"
cols = [pct(cat.get(c)) for c in ("humanities", "stem", "social_sciences", "other")]
print(f"| {name} | {' | '.join(cols)} | {pct(m.get('average'))} | {mmlu_s} | {pct(v.get('accuracy'))} % | {viggo_s} |")
EOF
done
bench_stamp "done: $OUT"
