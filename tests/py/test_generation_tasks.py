"""`lota eval --task gsm8k|sql|viggo` end to end on a tiny random model with the real Qwen3
tokenizer and chat template (from ../shared): the predictions file has prompt, prediction, reference
and verdict for every example; prompts are the chat template's rendering of system "" + user
(checked against HF transformers' apply_chat_template); verdicts follow the answer rules (checked
by an independent Python version of them, and by scoring a file whose references are the model's
own greedy answers); bad data fails naming the file and record."""
import os

# One thread unless told otherwise, set before torch loads (here and in the lota subprocesses): on
# a small shared CPU, OpenMP threads waiting at barriers made these runs 3-25x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import re

import pytest
from transformers import AutoTokenizer

from lota_testlib import lota, need_shared, tiny_model

MAX_TOTAL_LEN = 256  # prompt + answer; short enough for a quick CPU run, long enough for every prompt


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tok = need_shared("tokenizers/qwen3")
    d = tmp_path_factory.mktemp("gen") / "model"
    tiny_model(d, 3, "--arch", "qwen3", "--tokenizer", tok, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2)
    return d


def run_task(model, task, data, out, limit, check=True):
    proc = lota("eval", "--task", task, "--model", model, "--data", data, "--limit", limit, "--batch-size", 2,
                "--max-total-len", MAX_TOTAL_LEN, "--out", out, "--json", "--device", "cpu", check=check)
    return proc if not check else json.loads(proc.stdout)


def read_jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def gsm8k_rule(pred, ref):
    # the documented rule, written independently: text after the last "####", stripped, commas
    # between digits dropped; no "####" -> wrong
    def final(s):
        return re.sub(r"(?<=\d),(?=\d)", "", s.rsplit("####", 1)[1].strip()) if "####" in s else None
    return final(pred) is not None and final(pred) == final(ref)


def test_gsm8k_predictions_file(tiny, tmp_path):
    data = need_shared("data/gsm8k/test.jsonl")
    out = tmp_path / "pred.jsonl"
    r = run_task(tiny, "gsm8k", data, out, 3)
    assert r["examples"] == 3 and r["task"] == "gsm8k" and r["out"] == str(out)
    rows = read_jsonl(out)
    records = [json.loads(line) for line in open(data, encoding="utf-8")][:3]
    tok = AutoTokenizer.from_pretrained(tiny)
    assert len(rows) == 3
    for row, rec in zip(rows, records):
        assert {"prompt", "prediction", "reference", "verdict"} <= set(row)
        messages = [{"role": "system", "content": ""}, {"role": "user", "content": rec["question"]}]
        assert row["prompt"] == tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert row["reference"] == rec["answer"]
        assert row["prediction"] == row["prediction"].strip()
        assert row["verdict"] == ("correct" if gsm8k_rule(row["prediction"], row["reference"]) else "wrong")
    assert r["correct"] == sum(row["verdict"] == "correct" for row in rows)


def test_sql_own_answers_as_references(tiny, tmp_path):
    """Greedy is deterministic: with the model's own answers as references every verdict is
    "correct"; one reference with an extra space inside becomes "wrong" (exact match)."""
    data = need_shared("data/sql/valid.jsonl")
    first = run_task(tiny, "sql", data, tmp_path / "p1.jsonl", 4)
    rows = read_jsonl(tmp_path / "p1.jsonl")
    assert first["examples"] == 4 and len(rows) == 4
    records = [json.loads(line) for line in open(data, encoding="utf-8")][:4]
    for i, (rec, row) in enumerate(zip(records, rows)):
        answer = row["prediction"]
        if i == 0:
            answer = answer.replace(" ", "  ", 1) if " " in answer else answer + " x"
        rec["messages"][-1]["content"] = answer
    own = tmp_path / "own.jsonl"
    own.write_text("".join(json.dumps(rec) + "\n" for rec in records), encoding="utf-8")
    second = run_task(tiny, "sql", own, tmp_path / "p2.jsonl", 4)
    verdicts = [row["verdict"] for row in read_jsonl(tmp_path / "p2.jsonl")]
    assert verdicts == ["wrong", "correct", "correct", "correct"], verdicts
    assert second["correct"] == 3 and second["accuracy"] == pytest.approx(0.75)


def test_viggo_runs(tiny, tmp_path):
    data = need_shared("data/viggo/test.csv")
    r = run_task(tiny, "viggo", data, tmp_path / "p.jsonl", 2)
    rows = read_jsonl(tmp_path / "p.jsonl")
    assert r["examples"] == 2 and len(rows) == 2
    assert rows[0]["reference"].startswith("verify_attribute(name[Little Big Adventure]")
    assert "Given a target sentence construct" in rows[0]["prompt"]
    assert "I remember you saying you found Little Big Adventure to be average." in rows[0]["prompt"]


def test_bad_data(tiny, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n" +
                   json.dumps({"question": "2+2?", "answer": "4"}) + "\n")
    proc = run_task(tiny, "gsm8k", bad, tmp_path / "p.jsonl", -1, check=False)
    assert proc.returncode != 0 and "bad.jsonl record 1: the answer has no \"####" in proc.stderr, proc.stderr
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("mr,ref\n\"inform(name[X]\",A sentence.\n")
    proc = run_task(tiny, "viggo", bad_csv, tmp_path / "p.jsonl", -1, check=False)
    assert proc.returncode != 0 and "bad.csv record 0: the meaning representation" in proc.stderr, proc.stderr
    proc = run_task(tiny, "sql", tmp_path / "absent.jsonl", tmp_path / "p.jsonl", -1, check=False)
    assert proc.returncode != 0 and "absent.jsonl" in proc.stderr, proc.stderr
    assert not (tmp_path / "p.jsonl").exists()
