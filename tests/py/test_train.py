"""LoTA-QAF, LoRA and QA-LoRA fine-tuning, the exact merge and resume, end to end through the lota CLI on a
tiny random Llama (`lota init`, llama2 tokenizer from ../shared, no chat template so the plain
prompt is used) quantized with RTN 4-bit g32:
  - every method lowers the training loss on a tiny repeated dataset;
  - `lota merge --verify` passes and merged logits == adapter logits (`lota logits --adapter`) bit for bit
    (LoTA-QAF and QA-LoRA);
  - a run killed with SIGKILL and resumed == the uninterrupted run (bit-identical adapter files);
  - t-SignSGD with --tsign-momentum: 0 is the plain rule, > 0 merges exactly and resumes exactly;
  - bad adapters (wrong rank, missing module, LoRA) -> non-zero exit and no output directory."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lota_testlib import lota, lota_popen, need_shared, tiny_model, write_json

EXAMPLES = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "2 plus 3 is 5."},
    {"instruction": "Name a color.", "input": "", "output": "Blue is a color."},
    {"instruction": "Say hello.", "input": "", "output": "Hello there, friend!"},
]
LOTA_ARGS = ["--method", "lota", "--rank", 8, "--omega", 2]
LORA_ARGS = ["--method", "lora", "--rank", 8, "--lr", "5e-3", "--warmup-ratio", 0]
QALORA_ARGS = ["--method", "qalora", "--rank", 8, "--lr", "5e-3", "--warmup-ratio", 0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tok = need_shared("tokenizers/llama2")
    root = tmp_path_factory.mktemp("train")
    base, quant = root / "base", root / "quant"
    tiny_model(base, 0, "--arch", "llama", "--tokenizer", tok, hidden=64, intermediate=128, layers=2)
    lota("quantize", "--model", base, "--out", quant, "--method", "rtn", "--bits", 4, "--group-size", 32,
         "--device", "cpu")
    data = write_json(root / "data.json", EXAMPLES * 4)
    return root, quant, data


def train(quant, data, out, method_args, steps=8, extra=(), check=True):
    return lota("train", "--model", quant, "--data", data, "--format", "alpaca", "--out", out, "--steps", steps,
                "--batch-size", 4, "--micro-batch-size", 2, "--seed", 1, "--device", "cpu", *method_args, *extra,
                check=check)


def log(out):
    return [json.loads(line) for line in (Path(out) / "train_log.jsonl").read_text().splitlines()]


def files_equal(a, b, name="adapter_model.safetensors"):
    return (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes()


def test_lota_lowers_loss_and_logs(setup):
    root, quant, data = setup
    out = root / "lota"
    proc = train(quant, data, out, LOTA_ARGS)
    assert "train lota 8/8 | loss" in proc.stderr  # the progress line of the last step
    recs = log(out)
    assert [r["step"] for r in recs] == list(range(1, 9))
    for key in ("loss", "tokens_per_s", "sigma_t", "markers_pos", "markers_neg", "mean_abs_offset", "grad_norm",
                "peak_mem_mib"):
        assert key in recs[0], key
    assert recs[0]["sigma_t"] == pytest.approx(0.95 + (1 / 6.4) * (0.999 - 0.95))
    assert recs[0]["markers_pos"] == 0 and recs[0]["mean_abs_offset"] == 0  # B = 0 at step 1
    assert any(r["markers_pos"] + r["markers_neg"] > 0 for r in recs), "markers never fired with omega 2"
    first, last = recs[0]["loss"], min(r["loss"] for r in recs[-2:])
    print(f"\nLoTA-QAF loss {first:.4f} -> {last:.4f}")
    assert last < first, recs
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lota"]["omega"] == 2
    assert (out / "loss_curve.svg").exists()


def test_lora_lowers_loss(setup):
    root, quant, data = setup
    out = root / "lora"
    train(quant, data, out, LORA_ARGS)
    recs = log(out)
    first, last = recs[0]["loss"], min(r["loss"] for r in recs[-2:])
    print(f"\nLoRA loss {first:.4f} -> {last:.4f}")
    assert last < first, recs
    assert json.loads((out / "adapter_config.json").read_text())["lora_alpha"] == 16


def test_merge_verify_and_logits_bit_identical(setup):
    root, quant, data = setup
    adapter = root / "lota"
    if not (adapter / "adapter_model.safetensors").exists():
        train(quant, data, adapter, LOTA_ARGS)
    merged = root / "merged"
    proc = lota("merge", "--model", quant, "--adapter", adapter, "--out", merged, "--verify", "--device", "cpu")
    assert "bit-identical" in proc.stdout
    qc = json.loads((merged / "quantize_config.json").read_text())
    assert qc["lota_offset"] is True
    ids = write_json(root / "ids.json", [[1, 450, 7483, 310, 3444, 338], [1, 15043, 727, 0, 0, 0][:3]])
    lota("logits", "--model", merged, "--ids", ids, "--out", root / "merged_logits.safetensors", "--device", "cpu")
    lota("logits", "--model", quant, "--adapter", adapter, "--ids", ids, "--out", root / "adapter_logits.safetensors",
         "--device", "cpu")
    lota("logits", "--model", quant, "--ids", ids, "--out", root / "base_logits.safetensors", "--device", "cpu")
    a = (root / "merged_logits.safetensors").read_bytes()
    b = (root / "adapter_logits.safetensors").read_bytes()
    assert a == b, "merged logits differ from adapter logits"
    assert a != (root / "base_logits.safetensors").read_bytes(), "the adapter changed nothing"
    # LoRA adapters evaluate unmerged too.
    lota("logits", "--model", quant, "--adapter", root / "lora", "--ids", ids, "--out",
         root / "lora_logits.safetensors", "--device", "cpu")


def test_qalora_lowers_loss_and_merges_exactly(setup):
    root, quant, data = setup
    out = root / "qalora"
    train(quant, data, out, QALORA_ARGS)
    recs = log(out)
    first, last = recs[0]["loss"], min(r["loss"] for r in recs[-2:])
    print(f"\nQA-LoRA loss {first:.4f} -> {last:.4f}")
    assert last < first, recs
    assert recs[0]["mean_abs_offset"] == 0 and recs[-1]["mean_abs_offset"] > 0  # B = 0 at step 1
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["use_qalora"] is True and cfg["qalora_group_size"] == 32 and cfg["lora_dropout"] == 0
    assert cfg["qalora"]["pooling"] == "mean" and cfg["qalora"]["bits"] == 4
    merged = root / "qalora_merged"
    proc = lota("merge", "--model", quant, "--adapter", out, "--out", merged, "--verify", "--device", "cpu")
    assert "bit-identical" in proc.stdout
    qc = json.loads((merged / "quantize_config.json").read_text())
    assert qc["lota_offset"] is True and qc["lota_adapter"]["method"] == "qa-lora"
    ids = write_json(root / "ids_qalora.json", [[1, 450, 7483, 310, 3444, 338], [1, 15043, 727, 0, 0, 0]])
    outs = {}
    for name, model, extra in [("merged", merged, []), ("adapter", quant, ["--adapter", out]), ("base", quant, [])]:
        path = root / f"qalora_{name}_logits.safetensors"
        lota("logits", "--model", model, *extra, "--ids", ids, "--out", path, "--device", "cpu")
        outs[name] = path.read_bytes()
    assert outs["merged"] == outs["adapter"], "merged logits differ from QA-LoRA adapter logits"
    assert outs["merged"] != outs["base"], "the adapter changed nothing"
    # The merged model runs the evaluation path too (fused q/k/v and gate/up layers with offsets).
    assert lota("eval", "--task", "ppl", "--model", merged, "--data", root / "data.json", "--seqlen", 32,
                "--device", "cpu", "--json").returncode == 0


def test_qalora_refuses_dropout_and_act_order(setup):
    root, quant, data = setup
    proc = train(quant, data, root / "qalora_dropout", QALORA_ARGS, steps=1, extra=["--lora-dropout", 0.1],
                 check=False)
    assert proc.returncode != 0 and "QA-LoRA trains without dropout" in proc.stderr, proc.stderr
    base = root / "base"
    act = root / "quant_act"
    lota("quantize", "--model", base, "--out", act, "--method", "gptq", "--act-order", "--bits", 4, "--group-size",
         32, "--calib", data, "--device", "cpu")
    proc = train(act, data, root / "qalora_act", QALORA_ARGS, steps=1, check=False)
    assert proc.returncode != 0 and "act-order" in proc.stderr, proc.stderr
    assert not (root / "qalora_act" / "adapter_model.safetensors").exists()


def test_kill_and_resume_is_bit_identical(setup):
    root, quant, data = setup
    for name, args in [("lota", LOTA_ARGS), ("lora", LORA_ARGS), ("qalora", QALORA_ARGS)]:
        full, cut = root / f"full_{name}", root / f"cut_{name}"
        train(quant, data, full, args, steps=6, extra=["--save-every", 2])
        proc = lota_popen("train", "--model", quant, "--data", data, "--format", "alpaca", "--out", cut, "--steps", 6,
                          "--batch-size", 4, "--micro-batch-size", 2, "--seed", 1, "--device", "cpu", *args,
                          "--save-every", 2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 600
        while not (cut / "checkpoint-2").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (cut / "adapter_model.safetensors").exists() or (cut / "checkpoint-6").exists()
        lota("train", "--model", quant, "--data", data, "--format", "alpaca", "--out", cut, "--steps", 6,
             "--batch-size", 4, "--micro-batch-size", 2, "--seed", 1, "--device", "cpu", *args, "--save-every", 2,
             "--resume")
        assert files_equal(full, cut), f"{name}: resumed adapter differs from the uninterrupted run"
        assert [r["loss"] for r in log(full)] == [r["loss"] for r in log(cut)]
        # A deterministic interruption point too (--stop-after), resumed at step 3.
        cut3 = root / f"cut3_{name}"
        train(quant, data, cut3, args, steps=6, extra=["--stop-after", 3])
        train(quant, data, cut3, args, steps=6, extra=["--resume"])
        assert files_equal(full, cut3), f"{name}: --stop-after 3 + --resume differs"


def safetensors_names(path):
    header = Path(path).read_bytes()
    n = int.from_bytes(header[:8], "little")
    return sorted(k for k in json.loads(header[8:8 + n]) if k != "__metadata__")


def test_tsign_momentum(setup):
    """--tsign-momentum: 0 is the paper's rule byte for byte; 0.9 trains another ternary adapter that still
    merges exactly, is recorded in adapter_config.json and the log, keeps its moving average in the
    checkpoint and resumes bit-identically; a resume with another beta is refused."""
    root, quant, data = setup
    plain, zero = root / "mom_plain", root / "mom_zero"
    train(quant, data, plain, LOTA_ARGS, steps=6)
    train(quant, data, zero, LOTA_ARGS, steps=6, extra=["--tsign-momentum", 0])
    assert files_equal(plain, zero), "--tsign-momentum 0 changed the adapter"
    assert files_equal(plain, zero, "adapter_config.json")
    timing = ("tokens_per_s", "step_time_s", "peak_mem_mib")
    strip = lambda recs: [{k: v for k, v in r.items() if k not in timing} for r in recs]  # noqa: E731
    assert strip(log(plain)) == strip(log(zero))
    assert json.loads((zero / "adapter_config.json").read_text())["lota"]["momentum"] == 0

    ema, cut = root / "mom_ema", root / "mom_cut"
    args = [*LOTA_ARGS, "--tsign-momentum", 0.9]
    train(quant, data, ema, args, steps=6)
    assert not files_equal(plain, ema), "momentum 0.9 took the same steps as none"
    assert json.loads((ema / "adapter_config.json").read_text())["lota"]["momentum"] == 0.9
    assert all(r["tsign_momentum"] == 0.9 for r in log(ema))
    merged = root / "mom_merged"
    proc = lota("merge", "--model", quant, "--adapter", ema, "--out", merged, "--verify", "--device", "cpu")
    assert "bit-identical" in proc.stdout

    train(quant, data, cut, args, steps=6, extra=["--stop-after", 3])
    names = safetensors_names(cut / "checkpoint-3" / "optimizer.safetensors")
    assert names and all(n.endswith(".lora_A.weight.m") or n.endswith(".lora_B.weight.m") for n in names), names
    state = json.loads((cut / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["optimizer"]["momentum"] == 0.9
    other = root / "mom_other"
    shutil.copytree(cut, other)
    proc = train(quant, data, other, [*LOTA_ARGS, "--tsign-momentum", 0.5], steps=6, extra=["--resume"], check=False)
    assert proc.returncode != 0
    assert "made with --tsign-momentum 0.9, this run has 0.5" in proc.stderr, proc.stderr
    proc = train(quant, data, other, LOTA_ARGS, steps=6, extra=["--resume"], check=False)
    assert proc.returncode != 0 and "made with --tsign-momentum 0.9, this run has 0" in proc.stderr, proc.stderr
    train(quant, data, cut, args, steps=6, extra=["--resume"])
    assert files_equal(ema, cut), "momentum: --stop-after 3 + --resume differs from the uninterrupted run"
    assert [r["loss"] for r in log(ema)] == [r["loss"] for r in log(cut)]

    for bad in ("1", "-0.1", "nan"):
        proc = train(quant, data, root / "mom_bad", LOTA_ARGS, steps=1, extra=["--tsign-momentum", bad], check=False)
        assert proc.returncode != 0 and "--tsign-momentum" in proc.stderr, proc.stderr
        assert not (root / "mom_bad" / "adapter_model.safetensors").exists()


def test_bad_adapters_are_rejected(setup):
    root, quant, data = setup
    good = root / "lota"
    if not (good / "adapter_model.safetensors").exists():
        train(quant, data, good, LOTA_ARGS)
    cases = {}
    # Wrong rank: a rank-4 adapter whose config claims r = 8.
    wrong_rank = root / "bad_rank"
    shutil.copytree(good, wrong_rank, ignore=shutil.ignore_patterns("checkpoint-*"))
    cfg = json.loads((wrong_rank / "adapter_config.json").read_text())
    cfg["r"] = 4
    (wrong_rank / "adapter_config.json").write_text(json.dumps(cfg))
    cases["rank"] = (wrong_rank, "rank 8, but adapter_config.json says r = 4")
    # Adapter trained on a subset, config claiming all modules (missing module).
    subset = root / "subset"
    train(quant, data, subset, LOTA_ARGS, steps=1, extra=["--target-modules", "q_proj"])
    cfg = json.loads((subset / "adapter_config.json").read_text())
    cfg["target_modules"] = ["q_proj", "v_proj"]
    (subset / "adapter_config.json").write_text(json.dumps(cfg))
    cases["missing"] = (subset, "no tensors for module 'model.layers.0.self_attn.v_proj'")
    cases["lora"] = (root / "lora", "cannot be merged")
    for name, (adapter, message) in cases.items():
        if not adapter.exists():
            continue
        out = root / f"merged_bad_{name}"
        proc = lota("merge", "--model", quant, "--adapter", adapter, "--out", out, check=False)
        assert proc.returncode != 0, name
        assert message in proc.stderr, (name, proc.stderr)
        assert not out.exists(), name
        assert not list(root.glob(f"merged_bad_{name}.*")), name
    # Wrong model: an adapter for a differently shaped model.
    other = root / "other_base"
    tiny_model(other, 0, "--arch", "llama", hidden=32, intermediate=64, layers=2, vocab=256)
    other_q = root / "other_q"
    lota("quantize", "--model", other, "--out", other_q, "--method", "rtn", "--bits", 4, "--group-size", 32)
    proc = lota("merge", "--model", other_q, "--adapter", good, "--out", root / "merged_other", check=False)
    assert proc.returncode != 0 and "lora_A.weight' has shape [8, 128], expected [8, 64]" in proc.stderr, proc.stderr
    assert not (root / "merged_other").exists()


def test_gradient_checkpointing_changes_nothing(setup):
    """Recomputing every block in backward (the default), only the first one, or none gives the same
    adapters (LoRA's dropout masks included)."""
    root, quant, data = setup
    for name, args in [("lota", LOTA_ARGS), ("lora", LORA_ARGS)]:
        a = root / f"gc_all_{name}"
        train(quant, data, a, args, steps=3)
        for tag, extra in [("first", ["--recompute-blocks", 1]), ("off", ["--no-gradient-checkpointing"])]:
            b = root / f"gc_{tag}_{name}"
            train(quant, data, b, args, steps=3, extra=extra)
            assert [r["loss"] for r in log(a)] == [r["loss"] for r in log(b)], (name, tag)
            assert files_equal(a, b), f"{name}: recompute {tag} and all blocks give different adapters"


def test_non_finite_loss_stops_and_keeps_checkpoint(setup):
    """A run whose loss turns non-finite stops naming the first non-finite tensor; the last good checkpoint
    stays. Here the run is resumed onto a copy of the model whose block 0 overflows float32 (input norm
    weights 1e30: finite, so loading accepts them), which makes step 3's loss NaN."""
    from safetensors.numpy import load_file, save_file

    root, quant, data = setup
    out = root / "diverge"
    lora = ["--method", "lora", "--rank", 8, "--lr", "5e-3", "--warmup-ratio", 0]
    train(quant, data, out, lora, steps=6, extra=["--save-every", 1, "--stop-after", 2])
    overflow = root / "quant_overflow"
    shutil.copytree(quant, overflow)
    tensors = load_file(str(overflow / "model.safetensors"))
    name = "model.layers.0.input_layernorm.weight"
    tensors[name] = tensors[name] * 0 + 1e30
    save_file(tensors, str(overflow / "model.safetensors"), metadata={"format": "pt"})
    proc = train(overflow, data, out, lora, steps=6, extra=["--save-every", 1, "--resume"], check=False)
    assert proc.returncode == 1, proc.stderr
    assert ("step 3: loss is nan (not finite); first non-finite tensor: output of block 0 (model.layers.0)"
            in proc.stderr), proc.stderr
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-2"], "the last good checkpoint was removed"
    assert not (out / "adapter_model.safetensors").exists()
