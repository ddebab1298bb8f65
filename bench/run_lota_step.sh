#!/usr/bin/env bash
# Per-layer cost of the two LoTA-QAF training pieces that LoRA does not have, on the Llama-3.1-8B layer
# shapes (4-bit g64, r 64, 5120 tokens): the re-merge after each optimizer step (fused CUDA kernel and
# the tensor-op formulation) and the adapter backward per micro-batch (16-bit and float32 weight
# gradient), with the totals for 32 layers. Table: bench/lota_step.md. Needs a CUDA GPU.
#
#   bench/run_lota_step.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs bench_lota_step in BUILD_DIR (default build).
# Options (default):
#   --bits 4  --group 64  --rank 64  --tokens 5120
#   --python PY        Python for the table (default: .venv's, else python3)
# Output in WORK_DIR/lota_step/ (default WORK_DIR runs/bench): lota_step.jsonl, lota_step.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_bits=4 opt_group=64 opt_rank=64 opt_tokens=5120 opt_python=""
bench_parse "$@"
bench_setup lota_step "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need bench_lota_step
R="$OUT/lota_step.jsonl"
"$BUILD/bench_lota_step" --bits "$opt_bits" --group "$opt_group" --rank "$opt_rank" --tokens "$opt_tokens" \
    --layers 32 | tee "$R"

"$PY" - "$R" <<'EOF' | tee "$OUT/lota_step.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| layer (K x N) | re-merge fused ms | re-merge tensor ops ms | backward bf16 ms | backward fp32 ms |")
print("|---|---:|---:|---:|---:|")
for r in rows:
    if "layer" in r:
        print(f"| {r['layer']} ({r['K']} x {r['N']}) | {r['remerge_fused_ms']:.3f} | {r['remerge_ops_ms']:.3f} "
              f"| {r['backward16_ms']:.3f} | {r['backward32_ms']:.3f} |")
    else:
        print(f"| {r['what']} | {r['remerge_fused_s']:.3f} s | {r['remerge_ops_s']:.3f} s "
              f"| {r['backward16_s_per_microbatch']:.3f} s / micro-batch | {r['backward32_s_per_microbatch']:.3f} s |")
EOF
bench_stamp "done: $OUT"
