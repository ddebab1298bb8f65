"""`lota generate --data` and `lota eval --task loss [--kl-reference]` on tiny random models with
the real Qwen3 tokenizer and chat template (from ../shared), checked against HF transformers:
the generated chat JSONL holds the model's own greedy answers (== HF generate on the same
rendering); the held-out loss is the mean NLL of the answer tokens (independently recomputed with
HF from apply_chat_template); KL to the model itself is 0 and KL to a different model equals HF's
KL(p_ref || p_model) over the same answer tokens."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lota_testlib import lota, need_shared, tiny_model

PROMPTS = [
    {"instruction": "Name a colour.", "input": "", "output": ""},
    {"instruction": "Say something about the sea in a few words.", "input": "", "output": ""},
    {"instruction": "Count to three.", "input": "", "output": ""},
]


def make_model(root, seed):
    d = root / f"m{seed}"
    tiny_model(d, seed, "--arch", "qwen3", "--tokenizer", need_shared("tokenizers/qwen3"), hidden=64, intermediate=128,
               layers=2, heads=4, kv_heads=2)
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("loss")
    return make_model(root, 1), make_model(root, 2)


def answer_spans(tok, messages):
    """ids of system "" + user + assistant rendered by the chat template, and where the answer starts."""
    prompt = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(messages, tokenize=False)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tok(full, add_special_tokens=False)["input_ids"]
    assert f_ids[:len(p_ids)] == p_ids
    return f_ids, len(p_ids)


def hf_logp(model_dir, ids):
    m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        return torch.log_softmax(m(torch.tensor([ids])).logits[0].double(), -1)


def test_generate_prompts_then_loss_and_kl(models, tmp_path):
    m1, m2 = models
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(PROMPTS))
    data = tmp_path / "answers.jsonl"
    lota("generate", "--model", m1, "--data", prompts, "--format", "alpaca", "--out", data,
         "--max-new-tokens", 12, "--batch-size", 2, "--device", "cpu")
    rows = [json.loads(line) for line in open(data, encoding="utf-8")]
    assert len(rows) == len(PROMPTS)
    tok = AutoTokenizer.from_pretrained(m1)
    hf1 = AutoModelForCausalLM.from_pretrained(m1, torch_dtype=torch.float32).eval()
    nll, kl12, n = 0.0, 0.0, 0
    for row, p in zip(rows, PROMPTS):
        msgs = row["messages"]
        assert [x["role"] for x in msgs] == ["system", "user", "assistant"]
        assert msgs[0]["content"] == "" and msgs[1]["content"] == p["instruction"]
        # the answer is m1's greedy continuation of the rendered prompt (HF generate, same ids)
        prompt_ids = tok.apply_chat_template(msgs[:-1], tokenize=True, add_generation_prompt=True,
                                             return_dict=False)
        with torch.no_grad():
            gen = hf1.generate(torch.tensor([prompt_ids]), max_new_tokens=12, do_sample=False)[0][len(prompt_ids):]
        gen = gen.tolist()
        stops = {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")}
        cut = next((i + 1 for i, t in enumerate(gen) if t in stops), len(gen))  # lota stops there too
        assert msgs[2]["content"] == tok.decode(gen[:cut], skip_special_tokens=True)
        ids, start = answer_spans(tok, msgs)
        lp1, lp2 = hf_logp(m1, ids), hf_logp(m2, ids)
        for t in range(start, len(ids)):  # logits at t-1 predict token t
            nll -= lp1[t - 1, ids[t]].item()
            kl12 += (lp1[t - 1].exp() * (lp1[t - 1] - lp2[t - 1])).sum().item()
            n += 1

    def loss(model, ref):
        proc = lota("eval", "--task", "loss", "--model", model, "--data", data, "--format", "chat",
                    "--kl-reference", ref, "--json", "--batch-size", 2, "--device", "cpu")
        return json.loads(proc.stdout)

    self_ = loss(m1, m1)
    assert self_["tokens"] == n
    assert abs(self_["loss"] - nll / n) < 1e-4, (self_["loss"], nll / n)
    assert abs(self_["kl"]) < 1e-6
    cross = loss(m2, m1)  # KL(p_m1 || p_m2) per answer token
    assert abs(cross["kl"] - kl12 / n) < 1e-4 * max(1.0, kl12 / n), (cross["kl"], kl12 / n)
    assert cross["kl"] > 1e-3  # different random models really differ
