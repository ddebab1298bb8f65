"""`lota eval --task mmlu` against an independent computation with HF transformers on SmolLM2-135M-
Instruct (imported from its GGUF, fp32 on the CPU): the test builds lm-eval-harness's k-shot MMLU
prompt itself from the CSVs, tokenizes with HF `tokenizers` the way lm-eval's HF model does
(continuation = encode(context + " X")[len(encode(context)):], no BOS), and sums the log-softmax of
the continuation tokens. Every question must get the same letter, every log-likelihood must agree
within 1e-3, and the subject/category/average accuracies must follow from the answers."""
import os

# One thread unless told otherwise, set before torch loads (here and in the lota subprocesses): on
# a small shared CPU, OpenMP threads waiting at barriers made these runs 3-25x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import csv
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lota_testlib import lota, need_shared, smollm2_gguf

# One subject per category (lm-eval's table), two questions each, 2-shot (5-shot prompts are 2-3x
# longer): keeps the CPU time of the test near a minute. Two questions per subject put sequences
# of different lengths into one padded batch.
SUBJECTS = {"abstract_algebra": "stem", "high_school_geography": "social_sciences",
            "philosophy": "humanities", "marketing": "other"}
LIMIT = 2
SHOTS = 2
# fp32 on both sides; lota runs padded batches (--batch-size 3), HF one unpadded sequence, so the
# sums differ by accumulation-order rounding only (~1e-5 on values of ~1-10).
ATOL_LOGLIK = 1e-3


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["question", "choice0", "choice1", "choice2", "choice3", "answer"], path
    return rows[1:]


def doc_text(row):
    # lm-eval tasks/mmlu/default: "{{question.strip()}}\nA. {{choices[0]}}...\nAnswer:"
    return row[0].strip() + "".join(f"\n{l}. {c}" for l, c in zip("ABCD", row[1:5])) + "\nAnswer:"


def prompt(subject, dev, row):
    s = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    for ex in dev[:SHOTS]:
        s += doc_text(ex) + " " + "ABCD"[int(ex[5])] + "\n\n"
    return s + doc_text(row)


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    gguf = smollm2_gguf()
    d = tmp_path_factory.mktemp("smol") / "model"
    lota("import", "--gguf", gguf, "--out", d, "--out-dtype", "f32")
    return d


@pytest.fixture(scope="module")
def hf(smol):
    return (AutoModelForCausalLM.from_pretrained(smol, dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(smol))


def reference_logliks(hf, context):
    model, tok = hf
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    ctx = enc(context)
    out, cache = [], {}
    for cont_text in [" A", " B", " C", " D"]:
        cont = enc(context + cont_text)[len(ctx):]
        inp = tuple(ctx + cont[:-1])
        if inp not in cache:  # single-token continuations all condition on the same input
            with torch.no_grad():
                cache[inp] = torch.log_softmax(model(torch.tensor([inp])).logits[0].float(), -1)
        logp = cache[inp]
        out.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
    return out, len(ctx)


def test_mmlu_equals_transformers(smol, hf):
    data = need_shared("data/mmlu")
    r = json.loads(lota("eval", "--task", "mmlu", "--model", smol, "--data", data, "--subjects", ",".join(SUBJECTS),
                        "--limit", LIMIT, "--shots", SHOTS, "--batch-size", 3, "--json", "--device", "cpu").stdout)
    questions = r["questions"]
    assert [q["subject"] for q in questions] == [s for s in SUBJECTS for _ in range(LIMIT)]
    worst = 0.0
    for q in questions:
        dev = read_rows(data / "dev" / f"{q['subject']}_dev.csv")
        row = read_rows(data / "test" / f"{q['subject']}_test.csv")[q["index"]]
        ref, n_ctx = reference_logliks(hf, prompt(q["subject"], dev, row))
        where = f"{q['subject']} #{q['index']}"
        assert q["tokens"] == n_ctx, where
        assert q["answer"] == "ABCD"[int(row[5])], where
        assert q["predicted"] == "ABCD"[max(range(4), key=lambda i: ref[i])], (where, q["loglik"], ref)
        err = max(abs(a - b) for a, b in zip(q["loglik"], ref))
        worst = max(worst, err)
        assert err < ATOL_LOGLIK, (where, q["loglik"], ref)
    print(f"max |loglik lota - HF| = {worst:.2e} over {len(questions)} questions")

    correct = lambda qs: sum(q["predicted"] == q["answer"] for q in qs)
    for s in r["subjects"]:
        qs = [q for q in questions if q["subject"] == s["name"]]
        assert (s["n"], s["correct"], s["category"]) == (LIMIT, correct(qs), SUBJECTS[s["name"]])
    cats = {c["name"]: c for c in r["categories"]}
    assert list(cats) == ["humanities", "stem", "social_sciences", "other"]
    for name, c in cats.items():
        qs = [q for q in questions if SUBJECTS[q["subject"]] == name]
        assert (c["n"], c["correct"]) == (len(qs), correct(qs))
    assert r["average"] == pytest.approx(correct(questions) / len(questions))
    assert r["category_mean"] == pytest.approx(sum(c["acc"] for c in cats.values()) / 4)
    assert r["truncated"] == 0


def test_mmlu_left_truncation(smol, hf):
    """A context longer than --max-len keeps its last tokens and is reported."""
    data = need_shared("data/mmlu")
    r = json.loads(lota("eval", "--task", "mmlu", "--model", smol, "--data", data, "--subjects", "marketing",
                        "--limit", 1, "--shots", 1, "--max-len", 24, "--json", "--device", "cpu").stdout)
    q = r["questions"][0]
    assert r["truncated"] == 1 and q["truncated"] and q["tokens"] > 24
    model, tok = hf
    dev = read_rows(data / "dev" / "marketing_dev.csv")
    context = prompt("marketing", dev[:1], read_rows(data / "test" / "marketing_test.csv")[0])
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    for i, letter in enumerate("ABCD"):
        full = tok(context + " " + letter, add_special_tokens=False)["input_ids"]
        inp = (ctx + full[len(ctx):])[-25:]  # lm-eval: the last max_len + 1 tokens, the last one predicted
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([inp[:-1]])).logits[0, -1].float(), -1)
        assert abs(q["loglik"][i] - logp[inp[-1]].item()) < ATOL_LOGLIK, letter


def test_mmlu_bad_data(smol, tmp_path):
    data = need_shared("data/mmlu")
    proc = lota("eval", "--task", "mmlu", "--model", smol, "--data", data, "--subjects", "astrology", check=False)
    assert proc.returncode != 0 and "astrology_test.csv: missing" in proc.stderr, proc.stderr
    for split in ["dev", "test"]:
        (tmp_path / split).mkdir()
    (tmp_path / "test" / "marketing_test.csv").write_text("What?,a,b,c,d,A\nWhy?,a,b,c,E\n")
    (tmp_path / "dev" / "marketing_dev.csv").write_text("What?,a,b,c,d,A\n")
    proc = lota("eval", "--task", "mmlu", "--model", smol, "--data", tmp_path, "--shots", 1, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "marketing_test.csv row 2: expected 6 fields" in proc.stderr, proc.stderr
    (tmp_path / "test" / "marketing_test.csv").write_text("What?,a,b,c,d,A\n")
    proc = lota("eval", "--task", "mmlu", "--model", smol, "--data", tmp_path, "--shots", 5, check=False)
    assert proc.returncode != 0 and "marketing_dev.csv: 1 examples, 5-shot prompts need 5" in proc.stderr, proc.stderr
