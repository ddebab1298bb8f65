"""`lota export --format gptq`: a plain GPTQ v1 checkpoint that GPTQModel 7.7 (CPU, its Torch kernel) loads
as written, from a LoTA-merged model (offsets F as `lota merge` writes them) or a quantized one:

- GPTQ zero points are integers, so a merged model's offsets cannot be carried: without --allow-lossy the
  export is a one-line error and writes nothing; with it, every zero point becomes round(Z − F) clamped to
  [0, maxq] (checked here with the independent numpy decoder of test_gptq_format.py against the input's Z
  and F), codes and scales are unchanged, the reported error is max |round(Z − F) − (Z − F)| in grid steps,
  the file holds no offsets; GPTQModel dequantizes every linear to exactly fp16(S·(Q − round(Z − F))) and its
  logits agree with `lota logits` on the exported checkpoint within fp16 noise;
- a quantized model without offsets is exported bit for bit (lossless, no flag needed).
"""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lota_testlib import lota
from test_gguf_export import merged_model
from test_gptq_format import decode_linear, linear_prefixes
from test_gptq_interop import assert_close_fp16, check_dequantized_weights, gptqmodel_load, lota_logits, IDS


@pytest.mark.parametrize("bits", [3, 4])
def test_merged_model_exports_with_rounded_zeros(tmp_path, bits):
    q = merged_model(tmp_path, "llama", bits)
    out = tmp_path / "gptq"
    proc = lota("export", "--model", q, "--format", "gptq", "--out", out, check=False)
    assert proc.returncode != 0 and "--allow-lossy" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and not any(p.name.startswith("gptq.tmp") for p in tmp_path.iterdir())

    rep = json.loads(lota("export", "--model", q, "--format", "gptq", "--out", out, "--allow-lossy",
                          "--json").stdout)
    qc_in = json.loads((q / "config.json").read_text())["quantization_config"]
    qc_out = json.loads((out / "quantize_config.json").read_text())
    assert not qc_out.get("lota_offset") and not qc_out["sym"] and qc_out["checkpoint_format"] == "gptq"
    assert "quantization_config" in json.loads((out / "config.json").read_text())
    st_in, st_out = load_file(str(q / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert not any(k.endswith(".lota_offset") for k in st_out)
    worst = 0.0
    maxq = 2**bits - 1
    for p in linear_prefixes(st_in):
        Q, Z, S, g, _ = decode_linear(st_in, p, qc_in)
        Q2, Z2, S2, g2, _ = decode_linear(st_out, p, qc_out)
        zf = Z - st_in[p + ".lota_offset"].numpy().astype(np.float64)
        assert np.array_equal(Q, Q2) and np.array_equal(S, S2) and np.array_equal(g, g2), p
        assert np.array_equal(Z2, np.clip(np.rint(zf), 0, maxq)), p
        worst = max(worst, float(np.abs(Z2 - zf).max()))
    assert rep["max_error_grid_steps"] == pytest.approx(worst, abs=1e-6) and 0 < worst
    print(f"\n{bits}-bit merged -> GPTQ: zero points rounded, largest error {worst:.4f} grid steps")

    model = gptqmodel_load(out)
    check_dequantized_weights(model, out)
    with torch.no_grad():
        theirs = model.model(torch.tensor(IDS)).logits.float()
    assert_close_fp16(theirs, lota_logits(out, tmp_path, "lota"), f"GPTQModel, exported {bits}-bit merged model")


def test_quantized_model_exports_bit_for_bit(tmp_path):
    q = merged_model(tmp_path, "llama", 4)
    # the same model without its offsets: what `lota quantize` writes
    t = load_file(str(q / "model.safetensors"))
    plain = tmp_path / "plain"
    plain.mkdir()
    from safetensors.torch import save_file
    save_file({k: v for k, v in t.items() if not k.endswith(".lota_offset")}, str(plain / "model.safetensors"),
              metadata={"format": "pt"})
    for name in ("config.json", "quantize_config.json", "tokenizer.json", "tokenizer_config.json"):
        if (q / name).exists():
            text = (q / name).read_text()
            if name.endswith("config.json") and name != "tokenizer_config.json":
                j = json.loads(text)
                (j.get("quantization_config", j)).pop("lota_offset", None)
                text = json.dumps(j)
            (plain / name).write_text(text)
    out = tmp_path / "out"
    rep = json.loads(lota("export", "--model", plain, "--format", "gptq", "--out", out, "--json").stdout)
    assert rep["offsets_rounded"] == 0 and rep["max_error_grid_steps"] == 0
    a, b = load_file(str(plain / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
