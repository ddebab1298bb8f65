"""Data-parallel lota on the CPU with Gloo (PyTorch's c10d, src/dist): 2 ranks started by torchrun
(`torchrun --standalone --nproc-per-node 2 --no-python lota ...`) against one process, on a tiny random
Llama quantized with RTN 4-bit g32 (the model of test_train.py):
  - train: LoTA-QAF (also with --tsign-momentum), LoRA and QA-LoRA adapters of 2 ranks == one process's,
    byte for byte (Note [exact gradient sums] in src/train/grad_reduce.h), and so are the logged losses;
    3 ranks on 4 micro-batches too;
    a run stopped after 2 steps by one process and resumed by 2 ranks == the uninterrupted run;
  - quantize (GPTQ): the checkpoint of 2 ranks == one process's, byte for byte;
  - eval (ppl, loss): the same scores as one process; mmlu (2 and 3 ranks, uneven shares of the batches)
    and gsm8k/sql/viggo (a tiny Qwen3 with its chat template): the same JSON result, per-question
    log-likelihoods included, and the same --out predictions file, byte for byte, written by rank 0;
    ranks given different MMLU folders (one file inside test/ differs) or flags stop at the start;
  - failures: a rank killed with SIGKILL is named by the other, which exits non-zero with no adapter
    written (training) or no predictions file (eval); ranks given different data stop at the start, naming what differs; a rank that fails on
    its own (its --out is not empty) is named with its error by the other.
Every process runs one OpenMP thread (as torchrun's ranks do), so that CPU kernels sum in the same order."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lota_testlib import lota, lota_ranks, need_shared, tiny_model, torchrun, write_json

os.environ["OMP_NUM_THREADS"] = "1"

EXAMPLES = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "2 plus 3 is 5."},
    {"instruction": "Name a color.", "input": "", "output": "Blue is a color."},
    {"instruction": "Say hello.", "input": "", "output": "Hello there, friend!"},
    {"instruction": "Count to three.", "input": "", "output": "One, two, three."},
    {"instruction": "What is ice?", "input": "", "output": "Ice is frozen water."},
]
LOTA_ARGS = ["--method", "lota", "--rank", 8, "--omega", 2]
LORA_ARGS = ["--method", "lora", "--rank", 8, "--lr", "5e-3", "--warmup-ratio", 0]
QALORA_ARGS = ["--method", "qalora", "--rank", 8, "--lr", "5e-3", "--warmup-ratio", 0]
METHOD_ARGS = {"lota": LOTA_ARGS, "lora": LORA_ARGS, "qalora": QALORA_ARGS,
               "lota_momentum": [*LOTA_ARGS, "--tsign-momentum", 0.9]}
TEXT = ("The quick brown fox jumps over the lazy dog. " * 3 + "Paris is the capital of France. ") * 12


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = need_shared("tokenizers/llama2")
    root = tmp_path_factory.mktemp("dist")
    base, quant = root / "base", root / "quant"
    tiny_model(base, 0, "--arch", "llama", "--tokenizer", tok, hidden=64, intermediate=128, layers=2)
    lota("quantize", "--model", base, "--out", quant, "--method", "rtn", "--bits", 4, "--group-size", 32,
         "--device", "cpu")
    data = write_json(root / "data.json", EXAMPLES * 3)
    text = root / "calib.txt"
    text.write_text(TEXT)
    return root, base, quant, data, text


def train_args(quant, data, out, method_args, steps=4, extra=()):
    return ["train", "--model", quant, "--data", data, "--format", "alpaca", "--out", out, "--steps", steps,
            "--batch-size", 4, "--micro-batch-size", 1, "--seed", 1, "--device", "cpu", *method_args, *extra]


def same_file(a, b, name="adapter_model.safetensors"):
    return (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes()


def losses(out):
    return [json.loads(line)["loss"] for line in (Path(out) / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["lota", "lora", "qalora", "lota_momentum"])
def test_train_two_ranks_equal_one_process(setup, method):
    root, _, quant, data, _ = setup
    args = METHOD_ARGS[method]
    one, two = root / f"{method}_one", root / f"{method}_two"
    lota(*train_args(quant, data, one, args))
    proc = torchrun(2, *train_args(quant, data, two, args))
    assert "2 ranks, gloo" in proc.stderr
    # LoTA-QAF's layers start their buckets' all-reduce from the backward; LoRA's start after it
    m = re.search(r"gradient all-reduce: (\d+) bucket\(s\), [0-9.]+ MiB .*; (\d+) started during the backward",
                  proc.stderr)
    assert m, proc.stderr
    assert int(m[2]) == (int(m[1]) if method.startswith("lota") else 0), m[0]
    assert same_file(one, two), "2 ranks trained another adapter than one process"
    assert losses(one) == losses(two)
    assert not any(p.name.startswith(".") for p in two.iterdir()), "a rank left a temporary file"


def test_train_three_ranks_uneven_and_resume_on_other_rank_count(setup):
    root, _, quant, data, _ = setup
    one = root / "lota_one"  # from the test above when it ran first; else made here
    if not (one / "adapter_model.safetensors").exists():
        lota(*train_args(quant, data, one, LOTA_ARGS))
    three = root / "lota_three"
    proc = torchrun(3, *train_args(quant, data, three, LOTA_ARGS))  # 4 micro-batches on 3 ranks
    assert "some ranks run one more" in proc.stderr
    assert same_file(one, three)
    resumed = root / "lota_resumed"
    lota(*train_args(quant, data, resumed, LOTA_ARGS, extra=["--save-every", 1, "--stop-after", 2]))
    torchrun(2, *train_args(quant, data, resumed, LOTA_ARGS, extra=["--save-every", 1, "--resume"]))
    assert same_file(one, resumed), "stopped by 1 process, resumed by 2 ranks: another adapter"
    assert losses(one) == losses(resumed)


def test_quantize_two_ranks_equal_one_process(setup):
    root, base, _, _, text = setup
    args = ["quantize", "--model", base, "--method", "gptq", "--bits", 4, "--group-size", 32, "--calib", text,
            "--calib-samples", 6, "--calib-seqlen", 32, "--device", "cpu"]
    lota(*args, "--out", root / "gptq_one")
    proc = torchrun(2, *args, "--out", root / "gptq_two")
    assert "rank 1 of 2" in proc.stderr
    files = sorted(p.name for p in (root / "gptq_one").iterdir())
    assert files == sorted(p.name for p in (root / "gptq_two").iterdir())
    for name in files:
        assert same_file(root / "gptq_one", root / "gptq_two", name), name


@pytest.mark.parametrize("task", ["ppl", "loss"])
def test_eval_two_ranks_equal_one_process(setup, task):
    root, base, quant, data, text = setup
    if task == "ppl":
        args = ["eval", "--task", "ppl", "--model", quant, "--data", text, "--seqlen", 24, "--kl-reference", base]
    else:
        args = ["eval", "--task", "loss", "--model", quant, "--data", data, "--format", "alpaca", "--batch-size", 2,
                "--kl-reference", base]
    one = json.loads(lota(*args, "--device", "cpu", "--json").stdout)
    proc = torchrun(2, *args, "--device", "cpu", "--json")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"rank 0 alone prints the result, got {proc.stdout!r}"
    two = json.loads(lines[0])
    assert two.pop("ranks") == 2
    for key in ("seconds",):
        one.pop(key, None)
        two.pop(key, None)
    assert one == two


MMLU_SUBJECTS = ["marketing", "astronomy"]


def eval_json(proc_stdout, ranks):
    """The one JSON line a run printed, without its timing (and the rank count, checked)."""
    lines = [line for line in proc_stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"rank 0 alone prints the result, got {proc_stdout!r}"
    r = json.loads(lines[0])
    assert r.pop("ranks", 1) == ranks
    r.pop("seconds", None)
    return r


@pytest.fixture(scope="module")
def mmlu_data(tmp_path_factory):
    """Two subjects of ../shared/data/mmlu in a folder of their own (dev/ and test/)."""
    src = need_shared("data/mmlu")
    d = tmp_path_factory.mktemp("mmlu") / "mmlu"
    for split in ("dev", "test"):
        (d / split).mkdir(parents=True)
        for s in MMLU_SUBJECTS:
            shutil.copy(Path(src) / split / f"{s}_{split}.csv", d / split)
    return d


@pytest.mark.parametrize("ranks", [2, 3])
def test_eval_mmlu_ranks_equal_one_process(setup, mmlu_data, ranks):
    """5 questions of 2 subjects in batches of 2: 6 batches, 3 + 3 on 2 ranks, 2 + 2 + 2 on 3."""
    _, _, quant, _, _ = setup
    args = ["eval", "--task", "mmlu", "--model", quant, "--data", mmlu_data, "--limit", 5, "--shots", 1,
            "--batch-size", 2, "--device", "cpu", "--json"]
    one = eval_json(lota(*args).stdout, 1)
    many = eval_json(torchrun(ranks, *args).stdout, ranks)
    assert one["n"] == 10 and len(one["questions"]) == 10
    assert one == many


@pytest.mark.parametrize("differs", ["data", "flags"])
def test_eval_mmlu_ranks_that_disagree_stop_at_the_start(setup, mmlu_data, tmp_path, differs):
    """Rank 1 reads a copy of the MMLU folder with one choice changed inside test/, or runs 2 shots."""
    _, _, quant, _, _ = setup
    other = tmp_path / "mmlu"
    shutil.copytree(mmlu_data, other)
    f = other / "test" / "marketing_test.csv"
    f.write_bytes(f.read_bytes().replace(b",A", b",B", 1))
    args = ["eval", "--task", "mmlu", "--model", quant, "--limit", 2, "--device", "cpu", "--data", mmlu_data]
    rank1 = [*args[:-1], other, "--shots", 1] if differs == "data" else [*args, "--shots", 2]
    procs = lota_ranks(2, *args, "--shots", 1, env={"LOTA_DIST_TIMEOUT": "10"}, stderr=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True, rank_args={1: rank1})
    expected = "ranks disagree on the data" if differs == "data" else "ranks disagree on the evaluation settings"
    for rc, err in run_ranks(procs):
        assert rc != 0
        assert expected in err, err


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    """A tiny random Qwen3 with the real Qwen3 tokenizer and chat template (test_generation_tasks.py's)."""
    tok = need_shared("tokenizers/qwen3")
    d = tmp_path_factory.mktemp("dist_gen") / "model"
    tiny_model(d, 3, "--arch", "qwen3", "--tokenizer", tok, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2)
    return d


@pytest.mark.parametrize("task,data", [("gsm8k", "data/gsm8k/test.jsonl"), ("sql", "data/sql/valid.jsonl"),
                                       ("viggo", "data/viggo/test.csv")])
def test_eval_generation_two_ranks_equal_one_process(chat_model, tmp_path, task, data):
    """5 examples in batches of 2 (prompts of different lengths, so batches are padded): 3 batches, 2 on
    rank 0 and 1 on rank 1; the same answers, scores and predictions file as one process."""
    args = ["eval", "--task", task, "--model", chat_model, "--data", need_shared(data), "--limit", 5,
            "--batch-size", 2, "--max-total-len", 200, "--device", "cpu", "--json"]
    one = eval_json(lota(*args, "--out", tmp_path / "one.jsonl").stdout, 1)
    two = eval_json(torchrun(2, *args, "--out", tmp_path / "two.jsonl").stdout, 2)
    assert one.pop("out").endswith("one.jsonl") and two.pop("out").endswith("two.jsonl")
    assert one["examples"] == 5 and one["new_tokens"] > 5
    assert one == two
    rows = (tmp_path / "one.jsonl").read_bytes()
    assert rows.count(b"\n") == 5
    assert rows == (tmp_path / "two.jsonl").read_bytes(), "2 ranks wrote another predictions file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "two.jsonl"], "a temporary file was left"


def kill_rank_1(procs, wait_until_busy, timeout):
    """Waits with wait_until_busy(), SIGKILLs rank 1 and returns rank 0's stderr; no rank outlives the test."""
    try:
        wait_until_busy()
        procs[1].send_signal(signal.SIGKILL)
        return procs[0].communicate(timeout=timeout)[1]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_killed_rank_is_named(setup):
    root, _, quant, data, _ = setup
    out = root / "killed"
    procs = lota_ranks(2, *train_args(quant, data, out, LOTA_ARGS, steps=2000, extra=["--save-every", 1]),
                       env={"LOTA_DIST_TIMEOUT": "10"}, stderr=subprocess.PIPE, text=True)

    def under_way():
        deadline = time.time() + 120
        while not list(out.glob("checkpoint-*")) and time.time() < deadline:  # training is under way
            time.sleep(0.2)
        assert list(out.glob("checkpoint-*")), "no checkpoint within 120 s"

    def under_way_ignoring_sigpipe():
        under_way()
        # Gloo writes to a peer with writev(): with SIGPIPE's default action, a write to the killed
        # rank's socket would end rank 0 silently (signal 13) instead of failing the collective.
        status = Path(f"/proc/{procs[0].pid}/status")
        if status.exists():
            ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status.read_text(), re.M).group(1), 16)
            assert ignored >> (signal.SIGPIPE - 1) & 1, "rank 0 does not ignore SIGPIPE"

    err = kill_rank_1(procs, under_way_ignoring_sigpipe, timeout=60)
    assert procs[0].returncode == 1, (procs[0].returncode, err)
    assert "rank 1 stopped" in err, err
    assert not (out / "adapter_model.safetensors").exists()


def test_killed_rank_during_eval_leaves_no_predictions(chat_model, tmp_path):
    """Rank 1 killed while it generates: rank 0 stops naming it, and no predictions file appears."""
    out = tmp_path / "pred.jsonl"
    args = ["eval", "--task", "gsm8k", "--model", chat_model, "--data", need_shared("data/gsm8k/test.jsonl"),
            "--limit", 40, "--batch-size", 2, "--max-total-len", 512, "--out", out, "--device", "cpu"]
    procs = lota_ranks(2, *args, env={"LOTA_DIST_TIMEOUT": "10"}, stderr=subprocess.PIPE, text=True)

    def generating():
        time.sleep(4)  # both ranks joined and are generating (each has 10 batches of ~300 new tokens)
        assert procs[1].poll() is None, "rank 1 finished before it could be killed: make the run longer"

    err = kill_rank_1(procs, generating, timeout=120)
    assert procs[0].returncode != 0
    assert "rank 1 of 2 stopped" in err or "rank 1 stopped" in err, err
    assert list(tmp_path.iterdir()) == [], "a predictions (or temporary) file was written"


def run_ranks(procs, timeout=120):
    """Waits for every rank; returns [(returncode, stderr)]."""
    try:
        return [(p.communicate(timeout=timeout)[1], p.returncode)[::-1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_ranks_that_disagree_stop_at_the_start(setup):
    root, _, quant, data, _ = setup
    other = write_json(root / "other.json", EXAMPLES[::-1] * 3)
    args = train_args(quant, data, root / "bad", LOTA_ARGS, steps=2)
    procs = lota_ranks(2, *args, env={"LOTA_DIST_TIMEOUT": "10"}, stderr=subprocess.PIPE, text=True,
                       rank_args={1: train_args(quant, other, root / "bad", LOTA_ARGS, steps=2)})
    for rc, err in run_ranks(procs):
        assert rc != 0
        assert "ranks disagree on the training data" in err, err
    assert not (root / "bad" / "adapter_model.safetensors").exists()


def test_rank_failing_on_its_own_is_named(setup):
    root, _, quant, data, _ = setup
    out = root / "not_empty"
    out.mkdir()
    (out / "something").write_text("x")
    procs = lota_ranks(2, *train_args(quant, data, out, LOTA_ARGS, steps=2), env={"LOTA_DIST_TIMEOUT": "10"},
                       stderr=subprocess.PIPE, text=True)
    (rc0, err0), (rc1, err1) = run_ranks(procs)
    assert rc0 != 0 and "output directory exists and is not empty" in err0, err0
    assert rc1 != 0 and "rank 0 of 2 failed" in err1 and "output directory exists" in err1, err1
