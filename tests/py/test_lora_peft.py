"""LoRA adapters written by `lota train --method lora` load in peft, checked end to end on
SmolLM2-135M-Instruct (imported from its GGUF, RTN 4-bit g64) trained a couple of steps on the
shared alpaca data:
  - peft.PeftModel.from_pretrained loads the adapter with no missing and no unexpected adapter keys
    (peft only warns about missing keys; here any such warning fails the test), and every tensor
    of adapter_model.safetensors lands, unchanged, in the module it names;
  - adapter_config.json's r, lora_alpha and target_modules are honoured (LoRA layers exactly on the
    target modules, scaling = lora_alpha / r), for the default and for a non-default config;
  - peft's logits (HF LlamaForCausalLM on the quantized base dequantized with the independent numpy
    decoder of test_gptq_format.py, f32 on the CPU) equal `lota logits --adapter` within a tight
    tolerance, and the adapter moves the logits far more than that tolerance."""
import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lota_testlib import lota, need_shared, smollm2_gguf, write_json
from test_gptq_format import dense_from_decoded

peft = pytest.importorskip("peft", reason="peft is not installed (scripts/bootstrap.sh installs it)")
transformers = pytest.importorskip("transformers")
from peft.tuners.lora import LoraLayer  # noqa: E402

# Same f32 weights, same math, different GEMM blocking and attention kernels: agreement to ~1e-6 of
# the logits' scale; 1e-4 leaves room for accumulation order over 30 layers.
LOGITS_RTOL = 1e-4
TRAIN = ["--format", "alpaca", "--steps", 2, "--batch-size", 4, "--source-max-len", 64, "--target-max-len", 64,
         "--seed", 1, "--method", "lora", "--lr", "5e-3", "--warmup-ratio", 0, "--device", "cpu"]
ADAPTERS = {
    # name: extra train flags, expected (r, lora_alpha, target_modules)
    "all": ([("--rank", 8)], (8, 16, {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})),
    "qv": ([("--rank", 4), ("--lora-alpha", 12), ("--target-modules", "q_proj,v_proj")], (4, 12, {"q_proj", "v_proj"})),
}
PROMPT = "Give three tips for staying healthy."


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = need_shared("data/alpaca/alpaca_data_1k.json")
    gguf = smollm2_gguf()
    root = tmp_path_factory.mktemp("lora_peft")
    base, quant = root / "smol", root / "smol-rtn4g64"
    lota("import", "--gguf", gguf, "--out", base, "--out-dtype", "f32")
    lota("quantize", "--model", base, "--out", quant, "--method", "rtn", "--bits", 4, "--group-size", 64,
         "--device", "cpu")
    dense = dense_from_decoded(quant, root / "dense")
    tok = transformers.AutoTokenizer.from_pretrained(base)
    r = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True)
    ids = (list(r["input_ids"]) if hasattr(r, "keys") else list(r)) + tok.encode(" Eat well, sleep well")
    return root, quant, dense, data, ids


def train(setup, name):
    root, quant, _, data, _ = setup
    out = root / f"adapter-{name}"
    if not (out / "adapter_model.safetensors").exists():
        extra = [x for pair in ADAPTERS[name][0] for x in pair]
        lota("train", "--model", quant, "--data", data, "--out", out, *TRAIN, *extra)
    return out


def hf_model(dense):
    return transformers.LlamaForCausalLM.from_pretrained(dense, dtype=torch.float32,
                                                         attn_implementation="eager").eval()


def lota_logits(setup, adapter, tag):
    root, quant, _, _, ids = setup
    ids_file = write_json(root / "ids.json", [ids])
    out = root / f"logits-{tag}.safetensors"
    args = ["--adapter", adapter] if adapter else []
    lota("logits", "--model", quant, "--ids", ids_file, "--out", out, "--overwrite", "--device", "cpu", *args)
    return load_file(str(out))["logits"][0].double()


def peft_load(dense, adapter):
    """PeftModel.from_pretrained, failing on its missing-key warning; plus load_adapter's own result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = peft.PeftModel.from_pretrained(hf_model(dense), adapter)
    bad = [str(w.message) for w in caught if "adapter keys" in str(w.message) or "Unexpected keyword" in str(w.message)]
    assert not bad, bad
    # The same files loaded a second time as another adapter: load_adapter returns the key lists.
    res = model.load_adapter(str(adapter), adapter_name="second")
    assert not res.missing_keys, f"peft found no tensors for: {res.missing_keys[:8]}"
    assert not res.unexpected_keys, f"peft did not use: {res.unexpected_keys[:8]}"
    model.delete_adapter("second")
    model.set_adapter("default")
    return model.eval()


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_peft_loads_lota_lora_adapter(setup, name):
    root, quant, dense, _, ids = setup
    adapter = train(setup, name)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    r, alpha, targets = ADAPTERS[name][1]
    assert cfg["peft_type"] == "LORA" and cfg["r"] == r and cfg["lora_alpha"] == alpha, cfg
    assert set(cfg["target_modules"]) == targets, cfg
    tensors = load_file(str(adapter / "adapter_model.safetensors"))

    model = peft_load(dense, adapter)
    pc = model.peft_config["default"]
    assert pc.r == r and pc.lora_alpha == alpha and set(pc.target_modules) == targets, pc
    # LoRA layers sit exactly on the modules the file names, with the file's tensors and α/r.
    lora_layers = {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}
    file_modules = {k[: -len(".lora_A.weight")] for k in tensors if k.endswith(".lora_A.weight")}
    assert set(lora_layers) == file_modules, sorted(set(lora_layers) ^ file_modules)[:8]
    assert {n.rsplit(".", 1)[-1] for n in file_modules} == targets
    for n, m in lora_layers.items():
        assert m.r["default"] == r and m.scaling["default"] == pytest.approx(alpha / r), n
        assert torch.equal(m.lora_A["default"].weight, tensors[n + ".lora_A.weight"].float()), n
        assert torch.equal(m.lora_B["default"].weight, tensors[n + ".lora_B.weight"].float()), n
    assert any(t.abs().max() > 0 for k, t in tensors.items() if ".lora_B." in k), "training left B = 0"

    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].double()
        base_ref = hf_model(dense)(torch.tensor([ids])).logits[0].double()
    ours = lota_logits(setup, adapter, name)
    base_ours = lota_logits(setup, None, "base")
    scale = ref.abs().max().item()
    err = (ours - ref).abs().max().item()
    effect = (ref - base_ref).abs().max().item()
    base_err = (base_ours - base_ref).abs().max().item()
    print(f"\n{name}: max |logit| {scale:.2f}; lota vs peft max abs err {err:.3e} (base model {base_err:.3e}); "
          f"adapter effect {effect:.3e}")
    assert err <= LOGITS_RTOL * scale, f"lota --adapter vs peft: max abs err {err:.3e} > {LOGITS_RTOL} x {scale:.2f}"
    assert effect > 100 * LOGITS_RTOL * scale, f"the adapter barely changes the logits ({effect:.3e})"
    assert np.isfinite(ours.numpy()).all()
