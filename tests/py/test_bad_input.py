"""Bad input a user can give, through the lota CLI on a tiny random Llama (`lota init`, llama2
tokenizer from ../shared, RTN 4-bit): each case checks the one-line message, exit status 1, and
that nothing was written and nothing the user had was lost. The cases follow docs/errors.md:
  - outputs: an existing non-empty --out of every writer is refused unless --overwrite (which
    replaces it whole); --out equal to, inside or around an input, or the working directory, is
    refused; temporaries of killed runs are removed by the next run;
  - numbers: non-finite or mistyped weights, scales, norms and adapter tensors, a bad config.json,
    and a training loss that turns non-finite each stop with the tensor named;
  - flags: every number outside its range is refused, never replaced;
  - messages: token ids beyond the vocabulary, an empty adapter tensor and oversized `init` get
    lota's own message, not a library's."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lota_testlib import lota, need_shared, tiny_model, write_json

EXAMPLES = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Say hello.", "input": "", "output": "Hello there, friend!"},
]
CPU = ["--device", "cpu"]


def fails(proc, needle):
    """The command failed as bad input: exit 1 and one line `lota: error: ...` containing needle."""
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, f"exit {proc.returncode}, stderr:\n{proc.stderr}"
    assert err and err[-1].startswith("lota: error: "), proc.stderr
    assert needle in err[-1], f"{needle!r} not in {err[-1]!r}"
    return err[-1]


def bad(*args, needle):
    return fails(lota(*args, check=False), needle)


def tree_digest(path):
    """Names and contents of every file under path (to show that nothing changed)."""
    path = Path(path)
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return Path(dst)


def dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    tok = need_shared("tokenizers/llama2")
    root = tmp_path_factory.mktemp("bad_input")
    r = {"root": root, "tok": tok, "base": root / "base", "quant": root / "quant", "lota": root / "lota",
         "lora": root / "lora", "data": write_json(root / "data.json", EXAMPLES * 2),
         "ids": write_json(root / "ids.json", [1, 5, 9])}
    tiny_model(r["base"], 0, "--arch", "llama", "--tokenizer", tok, hidden=64, intermediate=128, layers=2)
    lota("quantize", "--model", r["base"], "--out", r["quant"], "--method", "rtn", "--bits", 4, "--group-size", 32,
         *CPU)
    for method, extra in (("lota", ["--omega", 2]), ("lora", [])):
        lota("train", "--model", r["quant"], "--data", r["data"], "--out", r[method], "--method", method,
             "--rank", 4, *extra, "--steps", 1, "--batch-size", 2, *CPU)
    return r


@pytest.fixture
def device():
    """The device of the numeric cases below; test_bad_input_cuda.py runs them again with "cuda"."""
    return "cpu"


# --- Outputs: no data loss --------------------------------------------------------------------------


def writer_commands(m, out):
    """Every command that writes --out, with cheap valid inputs."""
    return {
        "quantize": ["quantize", "--model", m["base"], "--out", out, "--method", "rtn", "--group-size", 32, *CPU],
        "merge": ["merge", "--model", m["quant"], "--adapter", m["lota"], "--out", out, *CPU],
        "init": ["init", "--arch", "llama", "--out", out, "--vocab", 64],
        "train": ["train", "--model", m["quant"], "--data", m["data"], "--out", out, "--rank", 4, "--omega", 2,
                  "--steps", 1, "--batch-size", 2, *CPU],
        "import": ["import", "--gguf", m["root"] / "missing.gguf", "--out", out],
    }


@pytest.mark.parametrize("cmd", ["quantize", "merge", "init", "train", "import"])
def test_writer_refuses_non_empty_out_and_keeps_it(m, tmp_path, cmd):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = lota(*writer_commands(m, out)[cmd], check=False)
    fails(proc, "--overwrite")
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "a temporary was left behind"


@pytest.mark.parametrize("cmd", ["quantize", "merge", "init", "train"])
def test_overwrite_replaces_out_whole(m, tmp_path, cmd):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    lota(*writer_commands(m, out)[cmd], "--overwrite")
    names = {p.name for p in out.iterdir()}
    assert "keep.txt" not in names and names, names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "the replaced output was left behind"


def test_file_writers_refuse_an_existing_file(m, tmp_path):
    out = tmp_path / "out.safetensors"
    out.write_text("mine")
    bad("logits", "--model", m["base"], "--ids", m["ids"], "--out", out, *CPU, needle=f"--out {out} exists (use --overwrite")
    bad("generate", "--model", m["base"], "--data", m["data"], "--out", out, "--max-new-tokens", 2, *CPU,
        needle="exists (use --overwrite")
    bad("eval", "--task", "gsm8k", "--model", m["base"], "--data", m["data"], "--out", out, *CPU,
        needle="exists (use --overwrite")
    bad("import", "--gguf", tmp_path / "x.gguf", "--raw", "--out", out, needle="exists (use --overwrite")
    assert out.read_text() == "mine"
    lota("logits", "--model", m["base"], "--ids", m["ids"], "--out", out, "--overwrite", *CPU)
    assert load_file(str(out))["logits"].shape == (1, 3, 32000)


def test_quantize_out_equal_to_model_keeps_the_model(m, tmp_path):
    model = copy_model(m["base"], tmp_path / "model")
    before = tree_digest(model)
    for out in (model, str(model) + "/", model / ".." / "model"):
        for extra in ([], ["--overwrite"]):
            bad("quantize", "--model", model, "--out", out, "--method", "rtn", "--group-size", 32, *extra, *CPU,
                needle="is the input --model")
    bad("quantize", "--model", model, "--out", model / "q", "--method", "rtn", *CPU,
        needle="lies inside the input --model")
    bad("quantize", "--model", model, "--out", tmp_path, "--method", "rtn", "--overwrite", *CPU,
        needle="holds the input --model")
    bad("merge", "--model", m["quant"], "--adapter", m["lota"], "--out", m["lota"], "--overwrite", *CPU,
        needle="is the input --adapter")
    bad("generate", "--model", m["base"], "--data", m["data"], "--out", m["data"], "--overwrite", *CPU,
        needle="is the input --data")
    assert tree_digest(model) == before


def test_out_dot_keeps_the_working_directory(m, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        proc = subprocess.run([os.environ.get("LOTA_BIN", "lota"), "quantize", "--model", str(m["base"]), "--out",
                               ".", "--method", "rtn", *extra, *CPU], cwd=tmp_path, capture_output=True, text=True)
        fails(proc, "--out . is the working directory or holds it")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_stale_temporaries_of_killed_runs_are_removed(m, tmp_path):
    out = tmp_path / "q"
    dead, live = dead_pid(), os.getpid()
    stale = [tmp_path / f"q.tmp-{dead}-4242", tmp_path / f"q.tmp.{dead}"]
    stale[0].mkdir()
    (stale[0] / "model.safetensors").write_bytes(b"\0" * 1024)
    stale[1].write_text("partial")
    running = tmp_path / f"q.tmp-{live}-1"
    running.mkdir()
    lota("quantize", "--model", m["base"], "--out", out, "--method", "rtn", "--group-size", 32, *CPU)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["q", running.name])


# --- Silent wrong numbers -------------------------------------------------------------------------


def poke(model_dir, name, value, file="model.safetensors", dtype=None):
    """Sets element 0 of tensor `name` to `value` (and optionally changes its dtype)."""
    path = Path(model_dir) / file
    tensors = load_file(str(path))
    t = tensors[name].copy()
    t.reshape(-1)[0] = value
    tensors[name] = t.astype(dtype) if dtype else t
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_rms_norm_eps_must_be_positive(m, tmp_path, device):
    model = copy_model(m["base"], tmp_path / "model")
    cfg = json.loads((model / "config.json").read_text())
    for eps in (-1, 0):
        cfg["rms_norm_eps"] = eps
        write_json(model / "config.json", cfg)
        bad("logits", "--model", model, "--ids", m["ids"], "--out", tmp_path / "l.safetensors", "--device", device,
            needle=f"config.json: rms_norm_eps must be a finite number > 0, got {eps}")
    assert not (tmp_path / "l.safetensors").exists()


@pytest.mark.parametrize("name,value", [("model.layers.1.mlp.down_proj.weight", np.nan),
                                        ("model.layers.0.input_layernorm.weight", np.inf),
                                        ("model.embed_tokens.weight", -np.inf)])
def test_non_finite_weight_is_refused_at_load(m, tmp_path, device, name, value):
    model = copy_model(m["base"], tmp_path / "model")
    poke(model, name, value)
    # --dtype f32: the check reads the weights as loaded, in the compute dtype (bf16 by default on CUDA).
    bad("logits", "--model", model, "--ids", m["ids"], "--out", tmp_path / "l.safetensors", "--device", device,
        "--dtype", "f32",
        needle=f"model.safetensors: tensor '{name}' has 1 non-finite values (NaN or Inf) in F32, first at flat index 0")
    assert not (tmp_path / "l.safetensors").exists()


def test_non_finite_gptq_scale_is_refused(m, tmp_path, device):
    model = copy_model(m["quant"], tmp_path / "model")
    poke(model, "model.layers.0.self_attn.q_proj.scales", np.nan)
    bad("logits", "--model", model, "--ids", m["ids"], "--out", tmp_path / "l.safetensors", "--device", device,
        needle="tensor 'model.layers.0.self_attn.q_proj.scales' has 1 non-finite values")
    bad("merge", "--model", model, "--adapter", m["lota"], "--out", tmp_path / "merged", "--device", device,
        needle="tensor 'model.layers.0.self_attn.q_proj.scales' has 1 non-finite values")
    assert not (tmp_path / "merged").exists() and not (tmp_path / "l.safetensors").exists()


def test_non_finite_adapter_tensor_is_refused(m, tmp_path, device):
    adapter = copy_model(m["lora"], tmp_path / "adapter")
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    poke(adapter, name, np.nan, file="adapter_model.safetensors")
    bad("logits", "--model", m["quant"], "--adapter", adapter, "--ids", m["ids"], "--out",
        tmp_path / "l.safetensors", "--device", device, needle=f"tensor '{name}' has 1 non-finite values")


def test_dtype_of_a_dense_tensor_is_checked(m, tmp_path, device):
    model = copy_model(m["base"], tmp_path / "model")
    name = "model.layers.0.mlp.up_proj.weight"
    poke(model, name, 3, dtype=np.int32)
    bad("logits", "--model", model, "--ids", m["ids"], "--out", tmp_path / "l.safetensors", "--device", device,
        needle=f"tensor '{name}' has dtype I32, expected a float dtype (F32, F16, BF16 or F64)")


def test_non_finite_loss_names_the_tensor(m, tmp_path, device):
    # Finite weights whose activations overflow float32 in block 0 (norm weight 1e30); --dtype f32 on every
    # device, so the overflow happens where it does on the CPU (bf16, CUDA's default, overflows sooner).
    model = copy_model(m["base"], tmp_path / "model")
    tensors = load_file(str(model / "model.safetensors"))
    tensors["model.layers.0.input_layernorm.weight"] = np.full(64, 1e30, np.float32)
    save_file(tensors, str(model / "model.safetensors"), metadata={"format": "pt"})
    bad("eval", "--task", "loss", "--model", model, "--data", m["data"], "--device", device, "--dtype", "f32",
        needle="the loss is nan (not finite); first non-finite tensor: output of block 0 (model.layers.0)")
    prompt = json.dumps(list(range(1, 41)))
    bad("generate", "--model", model, "--prompt-ids", prompt, "--device", device, "--dtype", "f32",
        needle="generate: the prompt's logits are not finite (sequence 0); first non-finite tensor: output of block 0")
    if device == "cpu":
        # The decode step's own check: on the CPU this 3-token prompt stays finite and new token 2 overflows.
        # On CUDA (TF32 products, the fused norm) the prompt overflows already (the case above), so the
        # decode-step message is checked on the CPU only.
        bad("generate", "--model", model, "--prompt-ids", "[1, 2, 3]", "--max-new-tokens", 3, "--device", device,
            "--dtype", "f32", needle="generate: the logits of new token 2 of sequence 0 are not finite (NaN or Inf)")
    quant = tmp_path / "quant"
    lota("quantize", "--model", model, "--out", quant, "--method", "rtn", "--group-size", 32, "--device", device)
    out = tmp_path / "adapter"
    bad("train", "--model", quant, "--data", m["data"], "--out", out, "--rank", 4, "--omega", 2, "--steps", 2,
        "--batch-size", 2, "--device", device, "--dtype", "f32", needle="step 1: loss is nan (not finite); first non-finite tensor: output of block 0 "
                                        "(model.layers.0)")
    assert not (out / "adapter_model.safetensors").exists()


# --- Flags: ranges, no silent replacement -----------------------------------------------------------


TRAIN = ["train", "--model", "M", "--data", "D", "--out", "O"]
GEN = ["generate", "--model", "M", "--prompt-ids", "[1]"]
FLAG_CASES = [
    (TRAIN + ["--steps", "0"], "--steps: must be an integer >= 1, got 0"),
    (TRAIN + ["--omega", "-1"], "--omega: must be a finite number in (0, 65536), got -1"),
    (TRAIN + ["--omega", "0"], "--omega: must be a finite number in (0, 65536), got 0"),
    (TRAIN + ["--lr", "-1"], "--lr: must be a finite number in (0, 1], got -1"),
    (TRAIN + ["--lr", "nan"], "--lr: must be a finite number in (0, 1], got nan"),
    (TRAIN + ["--lr", "1e300"], "--lr: must be a finite number in (0, 1], got 1e300"),
    (TRAIN + ["--rank", "0"], "--rank: must be an integer in [1, 65536], got 0"),
    (TRAIN + ["--batch-size", "0"], "--batch-size: must be an integer >= 1, got 0"),
    (TRAIN + ["--lora-dropout", "1"], "--lora-dropout: must be a finite number in [0, 1), got 1"),
    (TRAIN + ["--epochs", "0"], "--epochs: must be a finite number in (0, 1e+06], got 0"),
    (GEN + ["--top-p", "2"], "--top-p: must be a finite number in (0, 1], got 2"),
    (GEN + ["--top-p", "0"], "--top-p: must be a finite number in (0, 1], got 0"),
    (GEN + ["--max-new-tokens", "-1"], "--max-new-tokens: must be an integer >= 1, got -1"),
    (GEN + ["--temperature", "-0.5"], "--temperature: must be a finite number in [0, 100], got -0.5"),
    (["eval", "--model", "M", "--data", "D", "--max-windows", "0"],
     "--max-windows: must be -1 or an integer >= 1, got 0"),
    (["eval", "--model", "M", "--data", "D", "--limit", "0"], "--limit: must be -1 or an integer >= 1, got 0"),
    (["eval", "--model", "M", "--data", "D", "--seqlen", "1"], "--seqlen: must be an integer >= 2, got 1"),
    (["init", "--arch", "llama", "--out", "O", "--hidden", "0"], "--hidden: must be an integer >= 1, got 0"),
    (["init", "--arch", "llama", "--out", "O", "--vocab", "12x"], "--vocab: must be an integer >= 1, got 12x"),
    (["quantize", "--model", "M", "--out", "O", "--damp", "-0.1"], "--damp: must be a finite number in (0, 1], got -0.1"),
    (["quantize", "--model", "M", "--out", "O", "--calib-samples", "0"],
     "--calib-samples: must be an integer >= 1, got 0"),
    (["merge", "--model", "M", "--adapter", "A", "--out", "O", "--verify-len", "0"],
     "--verify-len: must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize("args,needle", FLAG_CASES, ids=[" ".join(a[-2:]) for a, _ in FLAG_CASES])
def test_flag_out_of_range_is_refused(tmp_path, args, needle):
    proc = subprocess.run([os.environ.get("LOTA_BIN", "lota"), *args], cwd=tmp_path, capture_output=True, text=True)
    fails(proc, needle)
    assert list(tmp_path.iterdir()) == [], "a refused command wrote something"


def test_omega_at_or_above_rank_is_refused(m, tmp_path):
    for omega in ("4", "5.5"):
        bad("train", "--model", m["quant"], "--data", m["data"], "--out", tmp_path / "a", "--rank", 4, "--omega",
            omega, "--steps", 1, *CPU, needle=f"--omega must be in (0, rank 4), got {omega}")
    assert not (tmp_path / "a").exists()


def test_init_heads_must_divide_hidden(tmp_path):
    bad("init", "--arch", "llama", "--out", tmp_path / "m", "--heads", 5, "--kv-heads", 1, "--hidden", 64,
        needle="init: --hidden 64 is not divisible by --heads 5")
    assert not (tmp_path / "m").exists()


def test_tokenize_decode_refuses_ids_outside_the_vocabulary(m):
    for ids in ("[4294967296]", "[18446744073709551615]", "[-1]", "[32000]"):
        fails(lota("tokenize", "--tokenizer", m["tok"], "--decode", input=ids, check=False),
              f"tokenize --decode: stdin: id {ids[1:-1]} is not in the tokenizer's vocabulary (ids 0 to 31999)")
    ids = lota("tokenize", "--tokenizer", m["tok"], "--no-special", input="Hello world").stdout
    assert lota("tokenize", "--tokenizer", m["tok"], "--decode", "--no-special", input=ids).stdout == "Hello world"


# --- lota's own messages instead of a library's -------------------------------------------------------


def test_token_id_beyond_the_model_vocabulary(m, tmp_path):
    model = tiny_model(tmp_path / "model", 0, "--arch", "llama", hidden=64, intermediate=128, layers=1, vocab=256)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (m["tok"] / f).exists():
            shutil.copy(m["tok"] / f, model / f)
    text = write_json(tmp_path / "t.json", [{"instruction": "Say hello to the world", "input": "", "output": "Hi"}])
    bad("eval", "--task", "loss", "--model", model, "--data", text, *CPU,
        needle="is outside the model's vocabulary [0, 256) (vocab_size in config.json)")
    bad("generate", "--model", model, "--prompt-ids", "[300]", *CPU, needle="token id 300 out of range [0, 256)")


def test_non_string_model_type(m, tmp_path):
    model = copy_model(m["base"], tmp_path / "model")
    cfg = json.loads((model / "config.json").read_text())
    del cfg["architectures"]
    cfg["model_type"] = 5
    write_json(model / "config.json", cfg)
    bad("inspect", "--model", model, needle="config.json: key 'model_type' must be a string, got 5")


@pytest.mark.parametrize("key,value,needle", [
    ("rope_scaling", {"type": 1}, "config.json rope_scaling: key 'type' must be a string, got 1"),
    ("rope_parameters", {"rope_type": [1]}, "config.json rope_parameters: key 'rope_type' must be a string, got [1]"),
    ("head_dim", 1 << 62, f"config.json: head_dim = {1 << 62} is larger than lota supports ({1 << 24})"),
    ("vocab_size", 1 << 40, f"config.json: vocab_size = {1 << 40} is larger than lota supports ({1 << 31})"),
])
def test_config_value_of_the_wrong_type_or_size(m, tmp_path, key, value, needle):
    model = copy_model(m["base"], tmp_path / "model")
    cfg = json.loads((model / "config.json").read_text())
    cfg[key] = value
    write_json(model / "config.json", cfg)
    bad("inspect", "--model", model, needle=needle)


def test_empty_adapter_tensor(m, tmp_path):
    adapter = copy_model(m["lota"], tmp_path / "adapter")
    path = adapter / "adapter_model.safetensors"
    tensors = load_file(str(path))
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    tensors[name] = np.zeros((0, 64), np.int8)
    save_file(tensors, str(path))
    bad("merge", "--model", m["quant"], "--adapter", adapter, "--out", tmp_path / "merged", *CPU,
        needle=f"tensor '{name}' has shape [0, 64], expected a non-empty 2-D tensor")
    assert not (tmp_path / "merged").exists()


def test_init_beyond_memory(tmp_path):
    bad("init", "--arch", "llama", "--out", tmp_path / "m", "--hidden", 1048576, "--heads", 1, "--kv-heads", 1,
        "--vocab", 1048576, needle="more than this machine's")
    assert list(tmp_path.iterdir()) == []
