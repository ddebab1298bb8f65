"""Logits and greedy generation of lota vs HF transformers on tiny `lota init` models of every
supported architecture feature (GQA, tied embeddings, llama3 rope scaling, Qwen2 q/k/v bias,
Qwen3 q/k norm and explicit head_dim), computed by both in the same run."""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

from lota_testlib import lota, tiny_model, write_json

# fp32 on both sides, same op order: differences are accumulation-order rounding (~1e-6).
ATOL_FP32 = 1e-4

CONFIGS = {
    "llama_gqa": ["--arch", "llama", "--heads", "4", "--kv-heads", "2"],
    "llama_tied_rope3": ["--arch", "llama", "--heads", "4", "--kv-heads", "1", "--tie-embeddings",
                         "--rope-scaling", "llama3"],
    "mistral": ["--arch", "mistral", "--heads", "4", "--kv-heads", "2"],
    "qwen2_bias": ["--arch", "qwen2", "--heads", "4", "--kv-heads", "2", "--tie-embeddings"],
    "qwen3_qknorm": ["--arch", "qwen3", "--heads", "4", "--kv-heads", "2", "--head-dim", "32"],
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def model(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param) / "model"
    tiny_model(d, 7, *CONFIGS[request.param], hidden=64, layers=2, intermediate=96, vocab=300)
    hf = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    return d, hf


def lota_logits(d, ids, tmp_path):
    write_json(tmp_path / "ids.json", ids)
    lota("logits", "--model", d, "--ids", tmp_path / "ids.json", "--out", tmp_path / "l.safetensors", "--overwrite",
         "--device", "cpu")
    return load_file(str(tmp_path / "l.safetensors"))["logits"]


def assert_close(ours, ref, what):
    err = np.abs(ours - ref)
    i = np.unravel_index(err.argmax(), err.shape)
    assert err.max() <= ATOL_FP32, f"{what}: max abs err {err.max():.3g} at {i}: ours {ours[i]} ref {ref[i]}"


def test_single_sequence_logits(model, tmp_path):
    d, hf = model
    ids = list(np.random.default_rng(1).integers(0, 300, 37))
    ids = [int(x) for x in ids]
    ours = lota_logits(d, ids, tmp_path)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits.numpy()
    assert ours.shape == ref.shape
    assert np.abs(ref).max() > 0.5, "reference logits are degenerate; the test would prove nothing"
    assert_close(ours, ref, "single sequence")


def test_padded_batch_logits(model, tmp_path):
    d, hf = model
    rng = np.random.default_rng(2)
    seqs = [[int(x) for x in rng.integers(0, 300, n)] for n in (23, 9, 16)]
    ours = lota_logits(d, seqs, tmp_path)
    T = max(map(len, seqs))
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, : len(s)] = 1
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask).logits.numpy()
    for b, s in enumerate(seqs):
        assert_close(ours[b, : len(s)], ref[b, : len(s)], f"batch row {b}")
        # each padded row also equals the unpadded single-sequence result
        with torch.no_grad():
            single = hf(torch.tensor([s])).logits.numpy()[0]
        assert_close(ours[b, : len(s)], single, f"batch row {b} vs alone")


def test_greedy_generation_cache_and_reference(model):
    d, hf = model
    prompt = [5, 17, 42, 99, 3, 250, 7]
    n = 12
    cached = json.loads(lota("generate", "--model", d, "--prompt-ids", json.dumps(prompt),
                             "--max-new-tokens", n, "--device", "cpu").stdout)
    nocache = json.loads(lota("generate", "--model", d, "--prompt-ids", json.dumps(prompt),
                              "--max-new-tokens", n, "--no-kv-cache", "--device", "cpu").stdout)
    assert cached == nocache
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, min_new_tokens=n,
                          pad_token_id=0)
    assert cached == out[0, len(prompt):].tolist()


def test_batched_generation_equals_one_by_one(model):
    d, _ = model
    prompts = [[5, 17, 42, 99, 3], [250, 7], [1, 2, 3, 4, 5, 6, 7, 8]]
    batch = json.loads(lota("generate", "--model", d, "--prompt-ids", json.dumps(prompts),
                            "--max-new-tokens", 8, "--device", "cpu").stdout)
    for p, got in zip(prompts, batch):
        alone = json.loads(lota("generate", "--model", d, "--prompt-ids", json.dumps(p), "--max-new-tokens", 8,
                                "--device", "cpu").stdout)
        assert got == alone


def test_cli_bad_inputs_exit_nonzero_and_name_the_file(tmp_path):
    d = tmp_path / "m"
    tiny_model(d, 1, "--arch", "llama")
    st = d / "model.safetensors"
    data = st.read_bytes()
    (tmp_path / "ids.json").write_text("[1, 2, 3]")
    st.write_bytes(data[: len(data) // 2])  # truncated
    p = lota("logits", "--model", d, "--ids", tmp_path / "ids.json", "--out", tmp_path / "o.safetensors", check=False)
    assert p.returncode != 0 and "model.safetensors" in p.stderr and "past the end" in p.stderr, p.stderr
    st.write_bytes(data)
    (d / "config.json").write_text((d / "config.json").read_text().replace("LlamaForCausalLM", "GPT2LMHeadModel"))
    p = lota("inspect", "--model", d, check=False)
    assert p.returncode != 0 and "unsupported architecture GPT2LMHeadModel" in p.stderr, p.stderr
    (d / "config.json").write_text("{ not json")
    p = lota("inspect", "--model", d, check=False)
    assert p.returncode != 0 and "config.json: malformed JSON" in p.stderr, p.stderr
    (tmp_path / "bad_ids.json").write_text("[1, -2]")
    p = lota("logits", "--model", d, "--ids", tmp_path / "bad_ids.json", "--out", tmp_path / "o.safetensors",
             check=False)
    assert p.returncode != 0 and "bad_ids.json" in p.stderr, p.stderr
    assert not (tmp_path / "o.safetensors").exists()
