#!/usr/bin/env bash
# The main job, end to end, on a 16-bit HF model directory (scripts/demo.sh passes SmolLM2):
#   1. the 16-bit model answers the demo prompts (data/demo): training and held-out data it made
#   2. GPTQ-quantize it (calibrated on its own answers)
#   3. LoTA-QAF fine-tune the quantized model on the 16-bit model's answers (it learns to recover)
#   4. merge the ternary adapter into the integer weights, verified bit-exact
#   5. evaluate 16-bit, quantized and merged models on the held-out answers: answer loss and
#      perplexity, and KL divergence from the 16-bit model
#   6. export the merged model to GGUF (Q4_1 blocks that keep the offsets) and answer a chat prompt with
#      it in llama.cpp (llama-cpp-python; skipped with a message when it is not installed)
# Usage: scripts/pipeline.sh MODEL_DIR WORK_DIR. Knobs (environment): LOTA (binary), BITS (3),
# GROUP (64), STEPS (24), DEVICE (auto|cpu|cuda, default auto: CUDA when usable), NEW_TOKENS (64), GEN_BATCH (16),
# CHAT_PROMPT (what the exported model answers in llama.cpp).
set -euo pipefail
MODEL="$1"
WORK="$2"
LOTA="${LOTA:-build/lota}"
BITS="${BITS:-3}"
GROUP="${GROUP:-64}"
STEPS="${STEPS:-24}"
NEW_TOKENS="${NEW_TOKENS:-64}"
# Prompts per generate call. A decode step reads every weight once for the whole batch, so 96 (one
# batch of the training prompts) answers faster on a CPU (31 s against 43 s for both splits on 2 cores);
# the answers are sampled, so another batch gives other answers and another table.
GEN_BATCH="${GEN_BATCH:-16}"
DEVICE="${DEVICE:-auto}"
CHAT_PROMPT="${CHAT_PROMPT:-What is the capital of France? Answer in one sentence.}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUANT="$WORK/gptq-${BITS}bit-g${GROUP}"
ADAPTER="$WORK/lota-adapter"
MERGED="$WORK/gptq-${BITS}bit-g${GROUP}-lota"
mkdir -p "$WORK"
t_start=$SECONDS
step() { echo; echo "=== [$(( SECONDS - t_start ))s] $*"; }
# A number from lota's one-line JSON output: json_num KEY FILE
json_num() { sed -E "s/.*\"$1\":(-?[0-9.eE+-]+).*/\1/" "$2"; }

step "1/6 the 16-bit model answers the demo prompts (training data and held-out data)"
for split in train eval; do
    [ -s "$WORK/$split.jsonl" ] || "$LOTA" generate --model "$MODEL" --data "$HERE/data/demo/${split}_prompts.json" \
        --format alpaca --out "$WORK/$split.jsonl" --max-new-tokens "$NEW_TOKENS" --temperature 0.7 --top-p 0.9 \
        --seed 0 --batch-size "$GEN_BATCH" --device "$DEVICE"
done

step "2/6 GPTQ ${BITS}-bit, group ${GROUP}, calibrated on the model's own answers"
[ -d "$QUANT" ] || "$LOTA" quantize --model "$MODEL" --out "$QUANT" --method gptq --bits "$BITS" --group-size "$GROUP" \
    --calib "$WORK/train.jsonl" --calib-samples 16 --calib-seqlen 512 --device "$DEVICE"

step "3/6 LoTA-QAF fine-tuning of the ${BITS}-bit model on the 16-bit model's answers ($STEPS steps)"
[ -f "$ADAPTER/adapter_config.json" ] || "$LOTA" train --model "$QUANT" --data "$WORK/train.jsonl" --format chat \
    --method lota --out "$ADAPTER" --steps "$STEPS" --batch-size 8 --rank 16 --no-gradient-checkpointing \
    --device "$DEVICE" --save-every 8 --resume

step "4/6 merge the adapter into the integer weights (--verify: merged logits == adapter logits, bit for bit)"
rm -rf "$MERGED"
"$LOTA" merge --model "$QUANT" --adapter "$ADAPTER" --out "$MERGED" --verify --device "$DEVICE" | tee "$WORK/merge.log"
merge_exact=no
grep -q "bit-identical" "$WORK/merge.log" && merge_exact=yes

step "5/6 held-out answer loss and KL to the 16-bit model"
evaluate() {  # name model_dir
    "$LOTA" eval --task loss --model "$2" --data "$WORK/eval.jsonl" --format chat --kl-reference "$MODEL" --json \
        --device "$DEVICE" > "$WORK/eval-$1.json"
}
evaluate 16bit "$MODEL"
evaluate gptq "$QUANT"
evaluate lota "$MERGED"

echo
echo "SmolLM2 main job: held-out answers of the 16-bit model ($(json_num examples "$WORK/eval-16bit.json") prompts," \
    "$(json_num tokens "$WORK/eval-16bit.json") answer tokens)," \
    "device $(sed -E 's/.*"device":"([a-z]+)".*/\1/' "$WORK/eval-16bit.json")"
printf '%-34s %12s %12s %14s\n' model "answer loss" perplexity "KL to 16-bit"
row() { printf '%-34s %12.4f %12.3f %14.5f\n' "$1" "$(json_num loss "$2")" "$(json_num ppl "$2")" "$(json_num kl "$2")"; }
row "16-bit (before quantization)" "$WORK/eval-16bit.json"
row "GPTQ ${BITS}-bit g${GROUP}" "$WORK/eval-gptq.json"
row "GPTQ ${BITS}-bit + LoTA-QAF, merged" "$WORK/eval-lota.json"

step "6/6 export the merged model to GGUF for llama.cpp and answer a chat prompt with it there"
"$LOTA" export --model "$MERGED" --format gguf --out "$WORK/merged.gguf" --overwrite
PY="$HERE/.venv/bin/python"; [ -x "$PY" ] || PY=python3
echo "--- lota, greedy: $CHAT_PROMPT"
"$LOTA" generate --model "$MERGED" --chat --prompt "$CHAT_PROMPT" --max-new-tokens 48 --device "$DEVICE"
if "$PY" -c 'import llama_cpp' 2>/dev/null; then
    echo "--- llama.cpp (the GGUF file), greedy: $CHAT_PROMPT"
    "$PY" "$HERE/scripts/llama_cpp_chat.py" "$WORK/merged.gguf" --prompt "$CHAT_PROMPT" --max-tokens 48
else
    echo "llama-cpp-python is not installed (scripts/bootstrap.sh installs it): not running $WORK/merged.gguf"
fi
echo
echo "merge exact: $merge_exact   ($(du -sh "$MERGED" | cut -f1) merged model, still ${BITS}-bit; total $(( SECONDS - t_start ))s)"
[ "$merge_exact" = yes ]
