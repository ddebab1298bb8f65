"""The CLI's shared flags, on a tiny random Llama (`lota init`, llama2 tokenizer from ../shared):
  - with --json every command that produces a result prints exactly one JSON object on one line of
    stdout (logs stay on stderr), and its fields agree with what the command did (files written,
    shapes, counts, the plain output of the same command);
  - --device auto resolves to the device `lota version` reports, --dtype auto to bf16 there on CUDA
    and f32 on the CPU; --device cuda without a usable CUDA device is refused with a clear error;
  - `lota train --help` lists its flags in groups."""
import json
import math

import pytest
from safetensors.numpy import load_file

from lota_testlib import lota, need_shared, write_json

EXAMPLES = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Name a color.", "input": "", "output": "Blue is a color."},
    {"instruction": "Say hello.", "input": "", "output": "Hello there, friend!"},
]
LAYERS, HIDDEN, PROJECTIONS = 2, 64, 7
CPU = ["--device", "cpu"]  # the pipeline below runs where its numbers are checked elsewhere (test_train)


def one_json(proc):
    """The whole stdout must be one JSON object on one line."""
    out = proc.stdout
    assert out.endswith("\n") and out.count("\n") == 1, f"expected one line on stdout, got {out!r}"
    obj = json.loads(out)
    assert isinstance(obj, dict), obj
    return obj


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """init -> quantize -> train -> merge, each with --json; returns paths and the JSON results."""
    tok = need_shared("tokenizers/llama2")
    root = tmp_path_factory.mktemp("cli_json")
    r = {"root": root, "base": root / "base", "quant": root / "quant", "adapter": root / "adapter",
         "merged": root / "merged", "data": write_json(root / "data.json", EXAMPLES * 2)}
    r["init"] = one_json(lota("init", "--arch", "llama", "--out", r["base"], "--seed", 0, "--tokenizer", tok,
                              "--hidden", HIDDEN, "--intermediate", 128, "--layers", LAYERS, "--json"))
    r["quantize"] = one_json(lota("quantize", "--model", r["base"], "--out", r["quant"], "--method", "rtn",
                                  "--bits", 4, "--group-size", 32, "--json", *CPU))
    r["train"] = one_json(lota("train", "--model", r["quant"], "--data", r["data"], "--format", "alpaca",
                               "--out", r["adapter"], "--steps", 2, "--batch-size", 2, "--rank", 8, "--omega", 2,
                               "--seed", 1, "--json", *CPU))
    r["merge"] = one_json(lota("merge", "--model", r["quant"], "--adapter", r["adapter"], "--out", r["merged"],
                               "--verify", "--json", *CPU))
    r["vocab"] = json.loads((r["base"] / "config.json").read_text())["vocab_size"]
    return r


def test_init_quantize_train_merge_report_what_they_did(tiny):
    init, quant, train, merge = tiny["init"], tiny["quantize"], tiny["train"], tiny["merge"]
    assert init["out"] == str(tiny["base"]) and init["arch"] == "llama" and init["hidden"] == HIDDEN
    assert (tiny["base"] / "config.json").exists()
    qc = json.loads((tiny["quant"] / "quantize_config.json").read_text())
    assert (quant["bits"], quant["group_size"]) == (qc["bits"], qc["group_size"]) == (4, 32)
    assert quant["linears"] == LAYERS * PROJECTIONS and quant["method"] == "rtn" and quant["device"] == "cpu"
    assert "mean_rel_output_error" not in quant  # RTN has no calibration data
    assert train["steps"] == 2 and train["out"] == str(tiny["adapter"]) and train["method"] == "lota"
    assert math.isfinite(train["first_loss"]) and math.isfinite(train["last_loss"]) and train["first_loss"] > 0
    assert (train["device"], train["dtype"]) == ("cpu", "f32")
    log = [json.loads(line) for line in (tiny["adapter"] / "train_log.jsonl").read_text().splitlines()]
    assert train["last_loss"] == log[-1]["loss"]
    assert merge["verify"] == "bit-identical" and merge["merged_modules"] == LAYERS * PROJECTIONS
    assert isinstance(merge["markers"], int) and merge["markers"] >= 0
    assert (merge["device"], merge["dtype"]) == ("cpu", "f32")
    assert merge["verified_values"] == 2 * 16 * tiny["vocab"]  # MergeOptions' sample inputs [2, 16]
    assert json.loads((tiny["merged"] / "quantize_config.json").read_text())["lota_offset"] is True


def test_inspect(tiny):
    r = one_json(lota("inspect", "--model", tiny["quant"], "--json"))
    assert r["layers"] == LAYERS and r["hidden_size"] == HIDDEN and r["quantization"]["bits"] == 4
    assert any(name.endswith("qweight") for name in r["tensors"])


def test_logits(tiny):
    ids = write_json(tiny["root"] / "ids.json", [[1, 450, 7483, 310], [1, 15043]])
    out = tiny["root"] / "logits.safetensors"
    r = one_json(lota("logits", "--model", tiny["merged"], "--ids", ids, "--out", out, "--json", *CPU))
    assert r["out"] == str(out) and r["shape"] == [2, 4, tiny["vocab"]]
    assert list(load_file(str(out))["logits"].shape) == r["shape"]


def test_generate_ids_text_and_data(tiny):
    model, prompt = tiny["merged"], json.dumps([1, 450, 7483])
    plain = json.loads(lota("generate", "--model", model, "--prompt-ids", prompt, "--max-new-tokens", 5, *CPU).stdout)
    r = one_json(lota("generate", "--model", model, "--prompt-ids", prompt, "--max-new-tokens", 5, "--json", *CPU))
    assert r["ids"] == plain and r["new_tokens"] == len(plain) and r["tokens_per_s"] > 0

    text = lota("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", 5, *CPU).stdout
    r = one_json(lota("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", 5, "--json", *CPU))
    assert r["text"] + "\n" == text and r["new_tokens"] == len(r["ids"]) > 0 and r["prompt_tokens"] > 0

    out = tiny["root"] / "answers.jsonl"
    r = one_json(lota("generate", "--model", model, "--data", tiny["data"], "--format", "alpaca", "--limit", 3,
                      "--out", out, "--max-new-tokens", 4, "--json", *CPU))
    assert r["answers"] == 3 and r["out"] == str(out) and len(out.read_text().splitlines()) == 3


def test_eval(tiny):
    r = one_json(lota("eval", "--task", "loss", "--model", tiny["quant"], "--adapter", tiny["adapter"],
                      "--data", tiny["data"], "--format", "alpaca", "--limit", 4, "--json", *CPU))
    assert r["examples"] == 4 and math.isfinite(r["loss"]) and r["tokens"] > 0


def test_tokenize_and_chat_template(tiny, tmp_path):
    tok = tiny["base"]
    plain = json.loads(lota("tokenize", "--tokenizer", tok, input="Hello world").stdout)
    r = one_json(lota("tokenize", "--tokenizer", tok, "--json", input="Hello world"))
    assert r["ids"] == plain and len(plain) > 1
    text = lota("tokenize", "--tokenizer", tok, "--decode", "--no-special", input=json.dumps(plain)).stdout
    r = one_json(lota("tokenize", "--tokenizer", tok, "--decode", "--no-special", "--json", input=json.dumps(plain)))
    assert r["text"] == text == "Hello world"
    proc = lota("tokenize", "--tokenizer", tok, "--jsonl", "--json", input='"x"\n', check=False)
    assert proc.returncode != 0 and "--jsonl" in proc.stderr and proc.stdout == ""

    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")
    msgs = json.dumps([{"role": "user", "content": "hi"}])
    r = one_json(lota("chat-template", "--template", template, "--json", input=msgs))
    assert r["text"] == lota("chat-template", "--template", template, input=msgs).stdout == "[user] hi\n"


def test_version_and_device_auto(tiny):
    v = one_json(lota("version", "--json"))
    assert isinstance(v["cuda"], bool) and v["auto_device"] == ("cuda" if v["cuda"] else "cpu")
    ids = write_json(tiny["root"] / "auto_ids.json", [[1, 450]])
    r = one_json(lota("logits", "--model", tiny["quant"], "--ids", ids, "--out", tiny["root"] / "auto.safetensors",
                      "--json"))
    assert (r["device"], r["dtype"]) == (v["auto_device"], "bf16" if v["auto_device"] == "cuda" else "f32")
    r = one_json(lota("logits", "--model", tiny["quant"], "--ids", ids, "--out", tiny["root"] / "f16.safetensors",
                      "--dtype", "f16", "--json", *CPU))
    assert (r["device"], r["dtype"]) == ("cpu", "f16")
    if not v["cuda"]:
        proc = lota("logits", "--model", tiny["quant"], "--ids", ids, "--out", tiny["root"] / "x.safetensors",
                    "--device", "cuda", check=False)
        assert proc.returncode != 0 and "no CUDA device is usable" in proc.stderr, proc.stderr
        assert not (tiny["root"] / "x.safetensors").exists()


def test_import_raw(tmp_path):
    gguf = pytest.importorskip("gguf", reason="the gguf package (writes the GGUF input) is not installed")
    import numpy as np

    path = tmp_path / "one.gguf"
    writer = gguf.GGUFWriter(str(path), arch="lota-test")
    writer.add_tensor("w", np.arange(6, dtype=np.float32).reshape(2, 3))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = tmp_path / "raw.safetensors"
    r = one_json(lota("import", "--gguf", path, "--out", out, "--raw", "--json"))
    assert r["out"] == str(out) and r["raw"] is True
    assert load_file(str(out))["w"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_train_help_lists_groups():
    text = lota("train", "--help").stdout
    groups = ["Data", "Model and adapter", "Optimizer: t-SignSGD", "Optimizer: AdamW", "Schedule", "Checkpointing",
              "Runtime"]
    pos = [text.find(g + ":") if text.find(g + ":") >= 0 else text.find(g) for g in groups]
    assert all(p >= 0 for p in pos), (groups, pos, text)
    assert "--dtype" in text[pos[-1]:] and "--tsign-q-end" in text[pos[2]:pos[3]] and "--lr " in text[pos[3]:pos[4]]
