"""The forward-parity checks on CUDA in bf16 (gpu label: fails without a CUDA device).

Tolerance: bf16 has an 8-bit mantissa (eps 2^-8 ≈ 3.9e-3). HF and lota both run bf16 matmuls
with fp32 accumulation but may pick different kernels/reduction orders, and each of the ~10
roundings per layer can differ by 1 ulp; over 2 layers logits of magnitude ~3 then differ by a
few 1e-2 in the worst element. We bound the error relative to the logits' scale:
max|ours - ref| <= 2e-2 * max|ref| (plus the same check on the argmax agreement rate)."""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

from lota_testlib import lota, require_cuda, tiny_model, write_json
from test_forward_parity import CONFIGS

REL_TOL_BF16 = 2e-2


@pytest.fixture(autouse=True)
def cuda_device():
    require_cuda()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cuda_bf16_logits(name, tmp_path):
    d = tmp_path / "model"
    tiny_model(d, 7, *CONFIGS[name], hidden=64, layers=2, intermediate=96, vocab=300)
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


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_cuda_graph_decode_equals_eager_and_cpu(dtype, tmp_path):
    """Decode steps replayed as a CUDA graph give the same tokens as launching them one by one
    (the same kernels), on a 4-bit model whose decode products go through the packed-code kernel;
    in f32 both equal the CPU's tokens."""
    d, q = tmp_path / "model", tmp_path / "q4"
    tiny_model(d, 11, *CONFIGS["llama_gqa"], hidden=128, layers=2, intermediate=256, vocab=300)
    lota("quantize", "--model", d, "--out", q, "--method", "rtn", "--bits", 4, "--group-size", 32)
    rng = np.random.default_rng(5)
    prompts = json.dumps([[int(x) for x in rng.integers(0, 300, n)] for n in (9, 4, 13)])

    def gen(*extra):
        r = lota("generate", "--model", q, "--prompt-ids", prompts, "--max-new-tokens", 24, "--dtype", dtype, *extra)
        return json.loads(r.stdout.strip().splitlines()[-1])

    graph = gen("--device", "cuda")
    eager = gen("--device", "cuda", "--no-cuda-graph")
    assert graph == eager
    assert all(len(s) > 0 for s in graph)
    if dtype == "f32":
        assert graph == gen("--device", "cpu")
