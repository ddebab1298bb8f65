"""GPTQ checkpoints across tools, with the real GPTQModel (PyPI `gptqmodel`, CPU, its Torch kernel) and
transformers (which loads GPTQ through GPTQModel and optimum):

- lota -> GPTQModel / transformers: what `lota quantize` writes (2/3/4/8 bits, symmetric and asymmetric,
  act-order off and on) loads as written. Every quantized linear GPTQModel builds dequantizes to exactly
  fp16(S·(Q − Z)) of the independent numpy decoder (test_gptq_format.decode_linear), and the logits of
  GPTQModel (fp16, its Torch kernel supports no other dtype on the CPU) and of transformers agree with
  `lota logits` (float32) within fp16 compute noise.
- GPTQModel -> lota: checkpoints quantized and saved by GPTQModel (its config.json in transformers 5's
  layout, rope_parameters) give in lota the logits of the dense model numpy decodes from the same file,
  to float32 accuracy, and agree with GPTQModel's own logits within fp16 noise.
- a dense model saved by transformers 5 (`rope_parameters`) gives lota the logits transformers computes,
  for every supported architecture; a rope setting lota does not implement is a one-line error.
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lota_testlib import lota, need_shared, tiny_model, write_json
from test_gptq_format import decode_linear, dense_from_decoded, linear_prefixes

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")  # GPTQModel's CPU loader pool wants 2 workers
# GPTQModel wraps each layer's dequantization in torch.compile; compiling dozens of tiny layers on the CPU
# costs far more than running them eagerly, and the results are the same ops.
torch._dynamo.config.disable = True
gptqmodel = pytest.importorskip(
    "gptqmodel", reason="GPTQModel is not installed in this venv (scripts/bootstrap.sh installs it)")
pytest.importorskip("optimum", reason="optimum is not installed (transformers needs it for GPTQ; bootstrap.sh)")

IDS = [[1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889, 13, 1576, 338]]
# fp16 compute (GPTQModel) against float32 (lota): measured up to 0.3% of the largest |logit| on these models;
# a misread zero point (the 3-bit packing mix-up) moves logits by more than the logits' own scale.
FP16_REL = 1e-2


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tok = need_shared("tokenizers/llama2")
    d = tmp_path_factory.mktemp("interop") / "tiny"
    return tiny_model(d, 5, "--arch", "llama", "--tokenizer", tok, hidden=64, layers=2, heads=4, kv_heads=2,
                      intermediate=128)


def lota_logits(model, tmp, name):
    ids = write_json(tmp / "ids.json", IDS)
    out = tmp / f"{name}.safetensors"
    lota("logits", "--model", model, "--ids", ids, "--out", out, "--device", "cpu")
    return load_file(str(out))["logits"].float()


def gptqmodel_load(d):
    from gptqmodel import BACKEND, GPTQModel

    return GPTQModel.load(str(d), device="cpu", backend=BACKEND.TORCH, dtype=torch.float16)


def assert_close_fp16(ours, ref, what):
    scale = float(ref.abs().max())
    err = float((ours - ref).abs().max())
    agree = int((ours.argmax(-1) == ref.argmax(-1)).sum())
    print(f"{what}: max |Δlogit| {err:.4g} (scale {scale:.3g}), argmax {agree}/{ref.shape[1]}")
    assert err <= FP16_REL * scale, f"{what}: max |Δlogit| {err:.4g} > {FP16_REL} × {scale:.3g}"


def check_dequantized_weights(model, d):
    """Every GPTQModel linear dequantizes to fp16(S·(Q − Z)) of the numpy decoder, bit for bit."""
    t = load_file(str(d / "model.safetensors"))
    qc = json.loads((d / "quantize_config.json").read_text())
    mods = dict(model.model.named_modules())
    prefixes = linear_prefixes(t)
    assert prefixes
    for p in prefixes:
        w = mods[p].dequantize_weight().float()  # [in, out]
        W = torch.from_numpy(decode_linear(t, p, qc)[4]).half().float()
        assert torch.equal(w, W), f"{p}: GPTQModel dequantizes differently (max diff {float((w - W).abs().max())})"


def quantize(base, out, bits, sym, act_order):
    args = ["quantize", "--model", base, "--out", out, "--bits", bits, "--group-size", 32, "--device", "cpu"]
    if act_order:
        calib = need_shared("data/c4/c4_demo.jsonl")
        args += ["--act-order", "--calib", calib, "--calib-samples", 8, "--calib-seqlen", 64]
    else:
        args += ["--method", "rtn"]
    if sym:
        args.append("--sym")
    lota(*args)
    return out


CASES = [(b, s, a) for b in (2, 3, 4, 8) for s in (False, True) for a in (False, True)]


@pytest.mark.parametrize("bits,sym,act_order", CASES)
def test_lota_checkpoint_loads_in_gptqmodel(base, tmp_path, bits, sym, act_order):
    q = quantize(base, tmp_path / "q", bits, sym, act_order)
    qc = json.loads((q / "quantize_config.json").read_text())
    assert "gptqmodel:7.0.0" in qc["meta"]["quantizer"]
    model = gptqmodel_load(q)
    check_dequantized_weights(model, q)
    with torch.no_grad():
        theirs = model.model(torch.tensor(IDS)).logits.float()
    assert_close_fp16(theirs, lota_logits(q, tmp_path, "lota"), f"GPTQModel {bits}-bit sym={sym} act={act_order}")


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_lota_checkpoint_loads_in_transformers(base, tmp_path, bits):
    from transformers import AutoModelForCausalLM

    q = quantize(base, tmp_path / "q", bits, False, False)
    model = AutoModelForCausalLM.from_pretrained(str(q), device_map="cpu", dtype=torch.float16)
    with torch.no_grad():
        theirs = model(torch.tensor(IDS)).logits.float()
    assert_close_fp16(theirs, lota_logits(q, tmp_path, "lota"), f"transformers {bits}-bit")


def gptqmodel_quantize(src, out, bits, sym, act_order):
    from gptqmodel import GPTQModel, QuantizeConfig

    g = torch.Generator().manual_seed(bits)
    calib = [{"input_ids": torch.randint(3, 32000, (64,), generator=g).tolist(), "attention_mask": [1] * 64}
             for _ in range(8)]
    cwd = os.getcwd()
    os.chdir(out.parent)  # GPTQModel writes a logs/ directory into the working directory
    try:
        qc = QuantizeConfig(bits=bits, group_size=32, sym=sym, desc_act=act_order, offload_to_disk=False)
        model = GPTQModel.load(str(src), qc, device="cpu")
        model.quantize(calib, batch_size=1)
        model.save(str(out))
    finally:
        os.chdir(cwd)
    return out


GPTQMODEL_CASES = [(2, False, False), (3, False, False), (3, True, True), (3, False, True), (4, False, True),
                   (4, True, False), (8, False, False)]


@pytest.mark.parametrize("bits,sym,act_order", GPTQMODEL_CASES)
def test_gptqmodel_checkpoint_reads_in_lota(base, tmp_path, bits, sym, act_order):
    q = gptqmodel_quantize(base, tmp_path / "q", bits, sym, act_order)
    cfg = json.loads((q / "config.json").read_text())
    assert "rope_parameters" in cfg and "rope_theta" not in cfg, "expected transformers 5's config layout"
    qc = json.loads((q / "quantize_config.json").read_text())
    assert "qzeros_3bit" not in qc  # lota must classify it from meta.quantizer
    ours = lota_logits(q, tmp_path, "lota")
    dense = lota_logits(dense_from_decoded(q, tmp_path / "dense"), tmp_path, "dense")
    torch.testing.assert_close(ours, dense, rtol=1e-5, atol=1e-5)
    model = gptqmodel_load(q)
    check_dequantized_weights(model, q)
    with torch.no_grad():
        theirs = model.model(torch.tensor(IDS)).logits.float()
    assert_close_fp16(ours, theirs, f"GPTQModel-written {bits}-bit sym={sym} act={act_order} in lota")


def test_3bit_packing_recorded_and_detected(base, tmp_path):
    """lota records the 3-bit packing; a file that does not say is read per field (asymmetric), or the way that
    gives the symmetric zero 4 (symmetric), so a whole-word symmetric file and a per-field one both read right."""
    q = quantize(base, tmp_path / "q", 3, True, False)
    assert json.loads((q / "quantize_config.json").read_text())["qzeros_3bit"] == "per_field"
    want = lota_logits(q, tmp_path, "want")
    t = {k: v.numpy() for k, v in load_file(str(q / "model.safetensors")).items()}
    from test_gptq_format import stream_put, word_constants
    from safetensors.numpy import save_file

    for p in linear_prefixes(t):
        G, N = t[p + ".scales"].shape
        v2 = stream_put(np.full((N, G), 4), 3).T.copy()
        t[p + ".qzeros"] = (v2 - word_constants(v2.shape[1], 3)[None, :]).view(np.int32)
    save_file(t, str(q / "model.safetensors"), metadata={"format": "pt"})
    for name in ("quantize_config.json", "config.json"):
        j = json.loads((q / name).read_text())
        qc = j["quantization_config"] if name == "config.json" else j
        del qc["qzeros_3bit"]
        qc["meta"]["quantizer"] = ["somequantizer:1.0"]
        write_json(q / name, j)
    torch.testing.assert_close(lota_logits(q, tmp_path, "detected"), want, rtol=0, atol=0)



@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "qwen3"])
def test_transformers5_saved_dense_model(tmp_path, arch):
    """A model re-saved by transformers 5 (rope settings in rope_parameters, dtype) reads as transformers reads it."""
    from transformers import AutoModelForCausalLM

    src = tiny_model(tmp_path / "src", 7, "--arch", arch, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128,
                     vocab=512)
    cfg = json.loads((src / "config.json").read_text())
    cfg["rope_theta"] = 12345.0  # not any architecture's default, so a reader that ignores it is caught
    write_json(src / "config.json", cfg)
    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    saved = tmp_path / "saved"
    model.save_pretrained(str(saved))
    scfg = json.loads((saved / "config.json").read_text())
    assert scfg["rope_parameters"]["rope_theta"] == 12345.0 and "rope_theta" not in scfg
    ids = [[3, 17, 200, 5, 88, 401, 9, 12, 300, 77, 1, 2]]
    with torch.no_grad():
        theirs = model(torch.tensor(ids)).logits.float()
    write_json(tmp_path / "ids.json", ids)
    lota("logits", "--model", saved, "--ids", tmp_path / "ids.json", "--out", tmp_path / "l.safetensors",
         "--device", "cpu")
    ours = load_file(str(tmp_path / "l.safetensors"))["logits"].float()
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("edit,message", [
    ({"rope_parameters": {"rope_theta": 10000.0, "rope_type": "yarn", "factor": 4.0}}, "unsupported rope_parameters rope_type 'yarn'"),
    ({"rope_parameters": {"rope_theta": 10000.0, "rope_type": "default", "mrope_section": [1, 2]}},
     "rope_parameters key 'mrope_section'"),
    ({"rope_parameters": {"rope_theta": 10000.0, "rope_type": "default", "partial_rotary_factor": 0.5}},
     "partial_rotary_factor = 0.5"),
    ({"rope_theta": 500000.0, "rope_parameters": {"rope_theta": 10000.0}}, "disagrees"),
    ({"hidden_act": "gelu"}, "hidden_act \"gelu\""),
    ({"mlp_bias": True}, "mlp_bias"),
])
def test_config_keys_lota_does_not_implement_are_errors(tmp_path, edit, message):
    d = tiny_model(tmp_path / "m", 1, "--arch", "llama", hidden=64, layers=1, heads=4, kv_heads=2, intermediate=128,
                   vocab=256)
    cfg = json.loads((d / "config.json").read_text())
    cfg.pop("rope_scaling", None)
    cfg.pop("rope_theta", None)
    cfg.update(edit)
    write_json(d / "config.json", cfg)
    write_json(tmp_path / "ids.json", [[1, 2, 3]])
    r = lota("logits", "--model", d, "--ids", tmp_path / "ids.json", "--out", tmp_path / "l.safetensors",
             "--device", "cpu", check=False)
    assert r.returncode != 0
    lines = [line for line in r.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and message in lines[0] and "config.json" in lines[0], r.stderr
    assert not (tmp_path / "l.safetensors").exists()
