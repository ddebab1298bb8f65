"""The forward-parity checks on CUDA in bf16 (GPU machine only; skipped without CUDA).

Tolerance: bf16 has an 8-bit mantissa (eps 2^-8 ≈ 3.9e-3). HF and lota both run bf16 matmuls
with fp32 accumulation but may pick different kernels/reduction orders, and each of the ~10
roundings per layer can differ by 1 ulp; over 2 layers logits of magnitude ~3 then differ by a
few 1e-2 in the worst element. We bound the error relative to the logits' scale:
max|ours - ref| <= 2e-2 * max|ref| (plus the same check on the argmax agreement rate)."""
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

from lota_testlib import lota, write_json
from test_forward_parity import CONFIGS

REL_TOL_BF16 = 2e-2

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (runs on the GPU machine)")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cuda_bf16_logits(name, tmp_path):
    d = tmp_path / "model"
    lota("init", "--out", d, "--seed", 7, "--hidden", 64, "--layers", 2, "--intermediate", 96, "--vocab", 300,
         *CONFIGS[name])
    hf = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).cuda().eval()
    rng = np.random.default_rng(3)
    seqs = [[int(x) for x in rng.integers(0, 300, n)] for n in (41, 17)]
    write_json(tmp_path / "ids.json", seqs)
    lota("logits", "--model", d, "--ids", tmp_path / "ids.json", "--out", tmp_path / "l.safetensors",
         "--device", "cuda", "--dtype", "bf16")
    ours = load_file(str(tmp_path / "l.safetensors"))["logits"]
    T = max(map(len, seqs))
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, : len(s)] = 1
    with torch.no_grad():
        ref = hf(ids.cuda(), attention_mask=mask.cuda()).logits.float().cpu().numpy()
    for b, s in enumerate(seqs):
        o, r = ours[b, : len(s)], ref[b, : len(s)]
        err = np.abs(o - r).max() / np.abs(r).max()
        assert err <= REL_TOL_BF16, f"{name} row {b}: max rel err {err:.3g}"
        assert (o.argmax(-1) == r.argmax(-1)).mean() >= 0.9
