"""SmolLM2-135M-Instruct imported from its GGUF, on CUDA (gpu label: fails without a CUDA device): lota's
logits equal HF transformers' on the same GPU, in f32 and bf16, and f32 greedy continuations equal HF's
greedy generate.

Tolerances: f32 is the same math in other kernels (summation order), ~1e-4 absolute on logits of size
~10-30, so 1e-3. bf16 as in test_forward_cuda.py: each of the ~10 roundings per layer can differ by one
bf16 ulp (2^-8), so the bound is relative to the logits' scale, 2e-2, plus argmax agreement on 90% of
positions (near-equal top logits may swap)."""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from lota_testlib import lota, require_cuda, smollm2_gguf, write_json

PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "Explain gravity to a child."]
F32_ABS_TOL = 1e-3
BF16_REL_TOL = 2e-2
NEW_TOKENS = 24


@pytest.fixture(autouse=True)
def cuda_device():
    require_cuda()


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    d = tmp_path_factory.mktemp("smol") / "model"
    lota("import", "--gguf", smollm2_gguf(), "--out", d, "--out-dtype", "f32")
    tok = AutoTokenizer.from_pretrained(d)
    ids = []
    for q in PROMPTS:
        r = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        ids.append(list(r["input_ids"]) if hasattr(r, "keys") else list(r))
    return d, ids


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_logits_equal_transformers_on_cuda(smol, dtype, tmp_path):
    d, ids = smol
    write_json(tmp_path / "ids.json", ids)
    lota("logits", "--model", d, "--ids", tmp_path / "ids.json", "--out", tmp_path / "l.safetensors",
         "--device", "cuda", "--dtype", dtype)
    ours = load_file(str(tmp_path / "l.safetensors"))["logits"]
    hf = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32 if dtype == "f32" else torch.bfloat16)
    hf = hf.cuda().eval()
    for b, s in enumerate(ids):
        with torch.no_grad():
            ref = hf(torch.tensor([s]).cuda()).logits.float().cpu().numpy()[0]
        o = ours[b, : len(s)]
        err = np.abs(o - ref).max()
        if dtype == "f32":
            assert err <= F32_ABS_TOL, f"prompt {b}: max abs logits err {err:.3g}"
        else:
            rel = err / np.abs(ref).max()
            assert rel <= BF16_REL_TOL, f"prompt {b}: max rel logits err {rel:.3g}"
            assert (o.argmax(-1) == ref.argmax(-1)).mean() >= 0.9, f"prompt {b}: argmax agreement"


def test_f32_greedy_equals_transformers_on_cuda(smol):
    d, ids = smol
    hf = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).cuda().eval()
    for s in ids:
        with torch.no_grad():
            out = hf.generate(torch.tensor([s]).cuda(), max_new_tokens=NEW_TOKENS, do_sample=False)
        ref = out[0, len(s):].tolist()
        got = json.loads(lota("generate", "--model", d, "--prompt-ids", json.dumps(s), "--max-new-tokens", NEW_TOKENS,
                              "--device", "cuda", "--dtype", "f32").stdout)
        assert got == ref, f"lota {got} vs HF {ref}"
