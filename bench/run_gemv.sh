#!/usr/bin/env bash
# The decode-sized quantized product (kernels/quant_gemv) on Llama-3.1-8B layer shapes: for M = 1..16 rows of
# bf16 x, the kernel lota runs, each tensor-core kernel (codes as mma's A operand up to 8 rows, as B) and the
# SIMT kernel alone, dequantize + GEMM and a dense bf16 GEMM, in GPU time
# (100 calls in a CUDA graph, median of 7 replays, cycling through --copies random copies of the layer so
# that its codes come from device memory as in a decode step), and the kernel's bandwidth as a fraction of
# the measured device copy bandwidth. 4-bit g128 on the four layer shapes of a decode step (q/k/v and
# gate/up fused); 4-bit g64 with LoTA offsets; 2-, 3- and 8-bit.
# Table: bench/gemv.md. Needs a CUDA GPU.
#
#   bench/run_gemv.sh [options] [BUILD_DIR [WORK_DIR]]
#
# Needs bench_gemv in BUILD_DIR (default build).
# Options (default):
#   --sweep 0          1: instead, sweep the kernels' plan knobs (GemvTuning) on the four shapes at 1 and 16 rows
#   --copies 8         copies of each layer the calls cycle through (1: one layer, read from L2 when it fits)
#   --python PY        Python for the table (default: .venv's, else python3)
# Output in WORK_DIR/gemv/ (default WORK_DIR runs/bench): gemv.jsonl, gemv.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
opt_sweep=0 opt_copies=8 opt_python=""
bench_parse "$@"
bench_setup gemv "${ARGS[0]:-build}" "${ARGS[1]:-runs/bench}"
bench_need bench_gemv
B="$BUILD/bench_gemv"
R="$OUT/gemv.jsonl"
: > "$R"
if [ "$opt_sweep" = 1 ]; then
    "$B" --bits 4 --group 128 --rows 1,16 --copies "$opt_copies" --sweep 1 \
        --shapes 4096x28672,14336x4096,4096x6144,4096x4096 | tee -a "$R"
    exit 0
fi
"$B" --bits 4 --group 128 --rows 1,2,4,8,16 --copies "$opt_copies" \
    --shapes 4096x28672,14336x4096,4096x6144,4096x4096 | tee -a "$R"
"$B" --bits 4 --group 64 --offset 1 --rows 1,16 --copies "$opt_copies" --shapes 4096x28672 | grep '"gemv"' | tee -a "$R"
for bits in 2 3 8; do
    "$B" --bits "$bits" --group 128 --rows 1,16 --copies "$opt_copies" --shapes 4096x28672 | grep '"gemv"' | tee -a "$R"
done

"$PY" - "$R" <<'EOF' | tee "$OUT/gemv.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"gemv"' in l]
copy = [json.loads(l) for l in open(sys.argv[1]) if '"copy"' in l]
print(f"copy bandwidth {copy[0]['gb_per_s']:.0f} GB/s\n" if copy else "", end="")
print("| layer K x N | bits, group | M | kernel us | fraction of copy BW | tensor cores, codes as A us "
      "| codes as B us | SIMT us | dequant + GEMM us | bf16 GEMM us |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    g = f"{r['bits']}-bit g{r['group']}" + (" + offsets" if r["offset"] else "")
    a = f"{r['tc_codes_a_us']:.2f}" if r["tc_codes_a_us"] > 0 else "-"
    print(f"| {r['K']} x {r['N']} | {g} | {r['M']} | {r['kernel_us']:.2f} | {r['fraction_of_copy_bw']:.3f} "
          f"| {a} | {r['tc_codes_b_us']:.2f} | {r['simt_kernel_us']:.2f} | {r['dequant_gemm_us']:.1f} "
          f"| {r['bf16_gemm_us']:.1f} |")
EOF
bench_stamp "done: $OUT"
