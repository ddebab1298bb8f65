"""`lota export --format gguf` read back by gguf-py (PyPI `gguf`, llama.cpp's own Python reader and
dequantizer), for LoTA-merged 2/3/4-bit tiny models of llama, qwen2 and qwen3 shapes:

- every quantized linear is Q4_1 and gguf-py's dequantization of it equals the model's weight
  S·(Q − Z + F), decoded from the checkpoint by the independent numpy decoder of test_gptq_format.py,
  within the fp16 rounding of m = S·(F − Z) of its block (plus float32 rounding of d·q + m); the largest
  rounding, in grid steps, is what the command reports;
- llama's q/k rows are permuted as llama.cpp's converter permutes them (written here from its
  description: per head, rows viewed as [2, d/2] are swapped to [d/2, 2]); qwen's are not;
- embeddings, norms, biases and the head are the stored tensors bit for bit; hyper-parameters and the
  tokenizer (tokens in id order, merges, special ids, chat template) are those of the HF directory;
- bad input: a case Q4_1 cannot hold without --allow-lossy, an existing output, a truncated model: one
  line naming the problem and no file left; with --allow-lossy the 8-bit model is written as F16.
"""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file

from lota_testlib import lota, need_shared, tiny_model, write_json
from test_gptq_format import decode_linear, linear_prefixes

gguf = pytest.importorskip("gguf", reason="gguf-py is not installed (scripts/bootstrap.sh installs it)")

TOKENIZER = {"llama": "tokenizers/llama3_1", "qwen2": "tokenizers/qwen3", "qwen3": "tokenizers/qwen3"}


def merged_model(tmp_path, arch, bits, seed=0):
    """A quantized tiny model with LoTA offsets F added as `lota merge` writes them (float32 [G, N])."""
    tok = need_shared(TOKENIZER[arch])
    base = tiny_model(tmp_path / "base", seed + 1, "--arch", arch, "--tokenizer", tok, hidden=64, layers=2, heads=4,
                      kv_heads=2, intermediate=128)
    q = tmp_path / "merged"
    lota("quantize", "--model", base, "--out", q, "--method", "rtn", "--bits", bits, "--group-size", 32,
         "--device", "cpu")
    t = {k: v.numpy() for k, v in load_file(str(q / "model.safetensors")).items()}
    rng = np.random.default_rng(seed)
    for p in linear_prefixes(t):
        t[p + ".lota_offset"] = rng.normal(0, 0.03, t[p + ".scales"].shape).astype(np.float32)
    save_file(t, str(q / "model.safetensors"), metadata={"format": "pt"})
    for name in ("quantize_config.json", "config.json"):
        j = json.loads((q / name).read_text())
        (j["quantization_config"] if name == "config.json" else j)["lota_offset"] = True
        write_json(q / name, j)
    return q


def permute_llama(w, n_head):
    """llama.cpp convert_hf_to_gguf's q/k permutation of HF rows [n_head·d, ...]."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}


# Each architecture once and each bit width once: gguf-py needs ~10 s of CPU to parse the 128k-151k token
# vocabularies of the byte-level BPE tokenizers available here, so the full 3 × 3 product is not run.
@pytest.mark.parametrize("arch,bits", [("llama", 2), ("qwen2", 3), ("qwen3", 4)])
def test_export_merged_model_reads_back_in_gguf_py(tmp_path, arch, bits):
    q = merged_model(tmp_path, arch, bits)
    out = tmp_path / "m.gguf"
    rep = json.loads(lota("export", "--model", q, "--format", "gguf", "--out", out, "--json").stdout)
    assert rep["q4_1_tensors"] == 14 and rep["lossy_f16_tensors"] == 0
    cfg = json.loads((q / "config.json").read_text())
    qc = cfg["quantization_config"]
    st = load_file(str(q / "model.safetensors"))
    r = gguf.GGUFReader(str(out))
    tensors = {t.name: t for t in r.tensors}
    garch = "llama" if arch == "llama" else arch
    assert r.fields["general.architecture"].contents() == garch

    worst_steps = 0.0
    for p in linear_prefixes(st):
        layer = p.split(".")[2]
        proj = p.split(".", 3)[3]
        name = f"blk.{layer}.{GGUF_NAMES[proj]}.weight"
        t = tensors[name]
        assert t.tensor_type == gguf.GGMLQuantizationType.Q4_1, name
        N, K = st[p + ".scales"].shape[1], st[p + ".g_idx"].shape[0]
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(N, K).astype(np.float64)
        Q, Z, S, g, W = decode_linear(st, p, qc)
        F = st[p + ".lota_offset"].numpy()
        exact = (S[g] * (Q - Z[g] + F[g]).astype(np.float64)).T  # [N, K], float64
        m_exact = (S.astype(np.float64) * (F.astype(np.float64) - Z))[g].T
        m_err = np.abs(m_exact.astype(np.float16).astype(np.float64) - m_exact)
        bound = m_err + 2.0**-23 * (np.abs(exact) + np.abs(m_exact))
        if arch == "llama" and proj in ("self_attn.q_proj", "self_attn.k_proj"):
            heads = cfg["num_attention_heads"] if proj == "self_attn.q_proj" else cfg["num_key_value_heads"]
            exact, bound, Sg = permute_llama(exact, heads), permute_llama(bound, heads), permute_llama(S[g].T, heads)
        else:
            Sg = S[g].T
        err = np.abs(got - exact)
        assert np.all(err <= bound), f"{name}: max excess {float((err - bound).max()):.3g}"
        worst_steps = max(worst_steps, float((err / Sg).max()))
    assert worst_steps <= rep["max_m_rounding_grid_steps"] + 1e-4
    assert rep["max_m_rounding_grid_steps"] < 0.01  # fp16 m: 2^-11 relative of |F − Z| ≤ 16 steps

    dense = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for k in st:
        if k.endswith("layernorm.weight") or k.endswith("_norm.weight") or k.endswith(".bias"):
            layer, rest = k.split(".")[2], k.split(".", 3)[3]
            rest = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                    "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
                    "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
                    "self_attn.v_proj.bias": "attn_v.bias"}[rest]
            dense[k] = f"blk.{layer}.{rest}"
    for hf, gname in dense.items():
        if hf not in st:
            continue
        t = tensors.pop(gname)
        back = gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(st[hf].shape))
        assert np.array_equal(back, st[hf].float().numpy()), gname
    assert len(tensors) == 14  # what is left: the quantized linears

    # Every tensor name and metadata key is one gguf-py (llama.cpp's constants) defines for this architecture.
    from gguf.constants import MODEL_ARCH_NAMES, MODEL_TENSORS, TENSOR_NAMES
    march = next(a for a, n in MODEL_ARCH_NAMES.items() if n == garch)
    allowed = {TENSOR_NAMES[t].format(bid=b) + s for t in MODEL_TENSORS[march] for b in range(2)
               for s in (".weight", ".bias")}
    assert not [t.name for t in r.tensors if t.name not in allowed]
    known = set()
    for grp in (gguf.Keys.General, gguf.Keys.LLM, gguf.Keys.Attention, gguf.Keys.Rope, gguf.Keys.Tokenizer):
        for v in vars(grp).values():
            if isinstance(v, str):
                try:
                    known.add(v.format(arch=garch))
                except (KeyError, IndexError):
                    pass
    assert not [k for k in r.fields if not k.startswith("GGUF.") and k not in known]

    f = r.fields
    assert f[f"{garch}.block_count"].contents() == 2 and f[f"{garch}.embedding_length"].contents() == 64
    assert f[f"{garch}.attention.head_count_kv"].contents() == 2
    assert f[f"{garch}.rope.freq_base"].contents() == pytest.approx(cfg["rope_theta"])
    tj = json.loads((q / "tokenizer.json").read_text())
    toks = f["tokenizer.ggml.tokens"].contents()
    for tok, i in list(tj["model"]["vocab"].items())[:2000]:
        assert toks[i] == tok
    types = f["tokenizer.ggml.token_type"].contents()
    for a in tj.get("added_tokens", []):
        assert toks[a["id"]] == a["content"]
        c = a["content"]  # convert_hf_to_gguf: special, or looks special (its does_token_look_special) -> control
        looks_special = c in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (c.startswith("<|") and c.endswith("|>")) \
            or (c.startswith("<\uff5c") and c.endswith("\uff5c>")) or (c.startswith("<unused") and c.endswith(">"))
        assert types[a["id"]] == (3 if a["special"] or looks_special else 4), c
    assert len(f["tokenizer.ggml.merges"].contents()) == len(tj["model"]["merges"])
    tc = json.loads((q / "tokenizer_config.json").read_text())
    if tc.get("chat_template"):
        assert f["tokenizer.chat_template"].contents() == tc["chat_template"]


def one_line_error(r, text):
    assert r.returncode != 0
    lines = [line for line in r.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and text in lines[0], r.stderr


def test_bad_input(tmp_path):
    tok = need_shared("tokenizers/qwen3")
    base = tiny_model(tmp_path / "base", 3, "--arch", "qwen3", "--tokenizer", tok, hidden=64, layers=1, heads=4,
                      kv_heads=2, intermediate=128)
    q8 = tmp_path / "q8"
    lota("quantize", "--model", base, "--out", q8, "--method", "rtn", "--bits", 8, "--group-size", 32, "--device", "cpu")
    out = tmp_path / "x.gguf"
    one_line_error(lota("export", "--model", q8, "--out", out, check=False), "8-bit codes do not fit Q4_1")
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
    rep = json.loads(lota("export", "--model", q8, "--out", out, "--allow-lossy", "--json").stdout)
    assert rep["lossy_f16_tensors"] == 7 and 0 < rep["max_lossy_abs_error"] < 1e-3
    one_line_error(lota("export", "--model", q8, "--out", out, check=False), f"--out {out} exists (use --overwrite")
    lota("export", "--model", base, "--out", out, "--overwrite")
    r = gguf.GGUFReader(str(out))
    assert all(t.tensor_type != gguf.GGMLQuantizationType.Q4_1 for t in r.tensors)
    # A truncated model: the safetensors file cut in the middle of its data.
    data = (base / "model.safetensors").read_bytes()
    (base / "model.safetensors").write_bytes(data[: len(data) // 2])
    out2 = tmp_path / "y.gguf"
    one_line_error(lota("export", "--model", base, "--out", out2, check=False), "model.safetensors")
    assert not out2.exists() and not list(tmp_path.glob("*.tmp"))
