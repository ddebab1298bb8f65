"""`lota export --format hf --dtype bf16|f16`: a LoTA-merged tiny model (llama, qwen2 with q/k/v biases, qwen3
with q/k norms; offsets F as `lota merge` writes them) written as a dense HF directory, checked against
independent references:

- every linear weight is the model's weight S·(Q − Z + F), decoded by the numpy decoder of
  test_gptq_format.py in float64, rounded to the dtype: within half an ulp of the dtype (relative 2^-8 for
  bf16, 2^-11 for f16) plus float32's rounding of S·(Q − Z + F) of the exact value; the command's reported
  largest rounding (in grid steps) is the largest one found here; every other tensor is the stored one
  rounded to the dtype, bit for bit;
- transformers (CPU, float32) loads the directory with no GPTQ support and gives `lota logits`' logits on it
  to float32 noise; against the merged model's own logits the difference is what the weight rounding causes
  (printed; bounded by a multiple of the dtype's ulp: 2^-8 relative for bf16, 2^-11 for f16, times the logit
  scale);
- config.json has no quantization_config and names the dtype; an existing output is refused.
"""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lota_testlib import lota, write_json
from test_gguf_export import merged_model
from test_gptq_format import decode_linear, linear_prefixes

transformers = pytest.importorskip("transformers")

EPS = {"bf16": 2.0**-8, "f16": 2.0**-11}  # unit roundoff (half an ulp, relative)
TINY = {"bf16": 0.0, "f16": 2.0**-25}  # half the spacing of f16's subnormals (|w| < 2^-14)
TORCH = {"bf16": torch.bfloat16, "f16": torch.float16}
IDS = [[1, 5, 9, 200, 3000, 17, 42, 7, 99, 1000, 5, 6]]


@pytest.mark.parametrize("arch,bits,dtype", [("llama", 4, "bf16"), ("qwen2", 3, "f16"), ("qwen3", 2, "bf16")])
def test_hf_export_is_the_rounded_merged_model(tmp_path, arch, bits, dtype):
    q = merged_model(tmp_path, arch, bits)
    out = tmp_path / "hf"
    rep = json.loads(lota("export", "--model", q, "--format", "hf", "--dtype", dtype, "--out", out, "--json").stdout)
    qc = json.loads((q / "config.json").read_text())["quantization_config"]
    st = load_file(str(q / "model.safetensors"))
    got = load_file(str(out / "model.safetensors"))
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg.get("torch_dtype", cfg.get("dtype")) == \
        {"bf16": "bfloat16", "f16": "float16"}[dtype]
    assert not (out / "quantize_config.json").exists()

    prefixes = linear_prefixes({k: v.numpy() for k, v in st.items()})
    assert rep["dequantized_tensors"] == len(prefixes)
    worst_steps = 0.0
    for p in prefixes:
        Q, Z, S, g, _ = decode_linear(st, p, qc)
        F = st[p + ".lota_offset"].numpy().astype(np.float64)
        exact = (S[g].astype(np.float64) * (Q - Z[g] + F[g])).T  # [N, K]
        w = got[p + ".weight"]
        assert w.dtype == TORCH[dtype] and tuple(w.shape) == exact.shape, p
        w = w.double().numpy()
        err = np.abs(w - exact)
        # the dtype's rounding, plus float32's in S·(Q − Z + F) (relative to its terms: they may cancel)
        f32 = (S[g].astype(np.float64) * (np.abs(Q - Z[g]) + np.abs(F[g]))).T * 2.0**-22
        bound = np.abs(exact) * EPS[dtype] + f32 * (1 + EPS[dtype]) + TINY[dtype]
        assert np.all(err <= bound), f"{p}: max excess {float((err - bound).max()):.3g}"
        worst_steps = max(worst_steps, float((err / S[g].T).max()))
    # lota measures against its float32 W, this test against the float64 value: equal up to float32's rounding
    assert worst_steps == pytest.approx(rep["max_rounding_grid_steps"], rel=1e-3, abs=1e-6)
    for k, v in st.items():
        if not any(k.startswith(p + ".") for p in prefixes) or k.endswith(".bias"):
            assert torch.equal(got[k], v.to(TORCH[dtype])), k
    assert set(got) == {k for k in st if not any(k.startswith(p + ".") for p in prefixes) or k.endswith(".bias")} | \
        {p + ".weight" for p in prefixes}

    ids = write_json(tmp_path / "ids.json", IDS)
    lota("logits", "--model", out, "--ids", ids, "--out", tmp_path / "hf.safetensors", "--device", "cpu")
    lota("logits", "--model", q, "--ids", ids, "--out", tmp_path / "q.safetensors", "--device", "cpu")
    ours_hf = load_file(str(tmp_path / "hf.safetensors"))["logits"]
    ours_q = load_file(str(tmp_path / "q.safetensors"))["logits"]
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = model(torch.tensor(IDS)).logits
    scale = float(ref.abs().max())
    assert float((ref - ours_hf).abs().max()) <= 1e-5 * max(1.0, scale)
    d = float((ref - ours_q).abs().max())
    print(f"\n{arch} {bits}-bit -> {dtype}: max |Δlogit| vs the merged model {d:.3g} (logit scale {scale:.3g}); "
          f"largest weight rounding {rep['max_rounding_grid_steps']:.3g} grid steps")
    assert d <= 8 * EPS[dtype] * scale

    proc = lota("export", "--model", q, "--format", "hf", "--dtype", dtype, "--out", out, check=False)
    assert proc.returncode != 0 and "exists" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
