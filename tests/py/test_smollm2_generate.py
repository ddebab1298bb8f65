"""SmolLM2-135M-Instruct imported from its GGUF: lota's greedy continuations of chat prompts equal
HF transformers' greedy generate on the same imported directory (both fp32 on the CPU), and
`lota generate --chat` streams the same text."""
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lota_testlib import lota, smollm2_gguf

PROMPTS = ["What is the capital of France?", "Name two primary colors."]
NEW_TOKENS = 16


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    gguf = smollm2_gguf()
    d = tmp_path_factory.mktemp("smol") / "model"
    lota("import", "--gguf", gguf, "--out", d, "--out-dtype", "f32")
    return d


def test_greedy_chat_continuations_equal_transformers(smol):
    tok = AutoTokenizer.from_pretrained(smol)
    hf = AutoModelForCausalLM.from_pretrained(smol, dtype=torch.float32).eval()
    for q in PROMPTS:
        r = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        ids = list(r["input_ids"]) if hasattr(r, "keys") else list(r)
        with torch.no_grad():
            ref = hf.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False)[0, len(ids):].tolist()
        ours = json.loads(lota("generate", "--model", smol, "--prompt-ids", json.dumps(ids),
                               "--max-new-tokens", NEW_TOKENS, "--device", "cpu").stdout)
        assert ours == ref, f"{q!r}: lota {ours} vs HF {ref}"
        text = lota("generate", "--model", smol, "--chat", "--prompt", q, "--max-new-tokens", NEW_TOKENS,
                    "--device", "cpu").stdout
        assert text.strip() == tok.decode(ref, skip_special_tokens=True).strip()
