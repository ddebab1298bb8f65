"""GPTQ checkpoint format: an independent numpy decoder, written from the format description
below, reads what `lota quantize` writes and what numpy writes, and must agree with lota.

Format ("gptq" v1, GPTQModel/AutoGPTQ), one linear with K inputs, N outputs, b bits, group g:
  qweight int32 [K*b/32, N]: along K, the words of one column form a little-endian bit stream,
          code k at bits [b*k, b*k+b) (3-bit codes straddle words; 2/4/8-bit never do).
  qzeros  int32 [G, N*b/32]: the same bit stream along N; v1 stores Z - 1, formed either per whole
          word, v1 = (v2 words) - C (mod 2^32), C = 1 at the lowest bit of every field starting in
          that word (2: 0x55555555, 4: 0x11111111, 8: 0x01010101, 3: 0x49249249, 0x92492492,
          0x24924924), or per field, (Z - 1) mod 2^b. 2/4/8 bits: whole word; 3 bits: per field
          (quantize_config "qzeros_3bit": "per_field"), or whole word where it says "whole_word".
  scales  fp16 [G, N]; g_idx int32 [K];  W[k, n] = S[g_idx[k], n] * (Q[k, n] - Z[g_idx[k], n]).
"""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file

from lota_testlib import lota, need_shared, tiny_model, write_json

V1_CONSTANTS = {2: [0x55555555], 3: [0x49249249, 0x92492492, 0x24924924], 4: [0x11111111], 8: [0x01010101]}


def stream_get(words, bits, count):
    """words uint32 [W, M] (stream along axis 0) -> codes int64 [count, M]."""
    w = words.astype(np.uint64)
    pos = np.arange(count) * bits
    idx, sh = pos // 32, (pos % 32).astype(np.uint64)
    val = w[idx] >> sh[:, None]
    straddle = (pos % 32) + bits > 32
    nxt = np.minimum(idx + 1, len(w) - 1)
    val = np.where(straddle[:, None], val | (w[nxt] << (np.uint64(32) - sh[:, None])), val)
    return (val & np.uint64((1 << bits) - 1)).astype(np.int64)


def stream_put(codes, bits):
    """codes int [count, M] -> uint32 words [count*bits/32, M] (inverse of stream_get)."""
    count, m = codes.shape
    out = np.zeros((count * bits // 32, m), dtype=np.uint64)
    for k in range(count):
        p = k * bits
        w, sh = p // 32, p % 32
        out[w] |= (codes[k].astype(np.uint64) << np.uint64(sh)) & np.uint64(0xFFFFFFFF)
        if sh + bits > 32:
            out[w + 1] |= codes[k].astype(np.uint64) >> np.uint64(32 - sh)
    return out.astype(np.uint32)


def word_constants(n_words, bits):
    c = V1_CONSTANTS[bits]
    return np.array([c[i % len(c)] for i in range(n_words)], dtype=np.uint32)


def decode_linear(t, prefix, cfg):
    """Returns (Q [K,N], Z [G,N], S [G,N] f32, g_idx [K], W [K,N] f32) decoded with numpy only."""
    bits = cfg["bits"]
    qweight = t[prefix + ".qweight"].numpy().view(np.uint32)
    K, N = qweight.shape[0] * 32 // bits, qweight.shape[1]
    Q = stream_get(qweight, bits, K)
    qzeros = t[prefix + ".qzeros"].numpy().view(np.uint32)
    per_field = bits == 3 and cfg.get("qzeros_3bit", "per_field") == "per_field"
    if cfg.get("checkpoint_format", "gptq") == "gptq" and not per_field:
        qzeros = qzeros + word_constants(qzeros.shape[1], bits)[None, :]  # uint32: wraps mod 2^32
    Z = stream_get(qzeros.T.copy(), bits, N).T
    if cfg.get("checkpoint_format", "gptq") == "gptq" and per_field:
        Z = (Z + 1) % 8
    S = t[prefix + ".scales"].numpy().astype(np.float32)
    g = t[prefix + ".g_idx"].numpy().astype(np.int64)
    W = S[g] * (Q - Z[g]).astype(np.float32)
    if prefix + ".lota_offset" in t:
        W = S[g] * ((Q - Z[g]).astype(np.float32) + t[prefix + ".lota_offset"].numpy()[g])
    return Q, Z, S, g, W


def rtn_reference(W, bits, group):
    """Independent RTN (min/max grid including 0, fp16 scales, round half to even) of W [N, K]."""
    maxq = np.float32(2**bits - 1)
    N, K = W.shape
    g = K if group == -1 else group
    Qs, Zs, Ss = [], [], []
    for j in range(K // g):
        x = W[:, j * g:(j + 1) * g].astype(np.float32)
        xmin, xmax = np.minimum(x.min(1), 0), np.maximum(x.max(1), 0)
        flat = (xmin == 0) & (xmax == 0)
        xmin, xmax = np.where(flat, np.float32(-1), xmin), np.where(flat, np.float32(1), xmax)
        s = np.clip((xmax - xmin) / maxq, 5.960464477539063e-08, 65504).astype(np.float16).astype(np.float32)
        z = np.clip(np.rint(-xmin / s), 0, maxq)
        Qs.append(np.clip(np.rint(x / s[:, None]) + z[:, None], 0, maxq))
        Zs.append(z)
        Ss.append(s)
    return np.concatenate(Qs, 1).T.astype(np.int64), np.stack(Zs).astype(np.int64), np.stack(Ss)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tok = need_shared("tokenizers/llama2")
    d = tmp_path_factory.mktemp("base") / "tiny"
    tiny_model(d, 3, "--arch", "llama", "--tokenizer", tok, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128)
    return d


def linear_prefixes(t):
    return sorted(k[: -len(".qweight")] for k in t if k.endswith(".qweight"))


def dense_from_decoded(qdir, out):
    """A dense HF directory whose weights are the numpy-decoded ones."""
    t = load_file(str(qdir / "model.safetensors"))
    cfg = json.loads((qdir / "config.json").read_text())
    qc = cfg.pop("quantization_config")
    tensors = {}
    for k, v in t.items():
        if not any(k.endswith(s) for s in (".qweight", ".qzeros", ".scales", ".g_idx", ".lota_offset")):
            tensors[k] = v.float().numpy()
    for p in linear_prefixes(t):
        tensors[p + ".weight"] = np.ascontiguousarray(decode_linear(t, p, qc)[4].T)
    out.mkdir()
    save_file(tensors, str(out / "model.safetensors"))
    write_json(out / "config.json", cfg)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (qdir / f).exists():
            shutil.copy(qdir / f, out / f)
    return out


# The quantized model's products of these 12 rows run the packed-code kernel, which sums in another
# order than the dense model's GEMM: float32 reordering differences of ~1e-5 over the blocks, where a
# misread code or zero point moves logits by whole quantization steps.
LOGITS_TOL = dict(rtol=1e-4, atol=1e-4)


def logits(model, tmp, name):
    ids = write_json(tmp / "ids.json", [[1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203]])
    out = tmp / f"{name}.safetensors"
    lota("logits", "--model", model, "--ids", ids, "--out", out, "--overwrite", "--device", "cpu")
    return load_file(str(out))["logits"].numpy()


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("group", [32, -1])
def test_rtn_checkpoint_decodes_exactly(base, tmp_path, bits, group):
    q = tmp_path / "q"
    lota("quantize", "--model", base, "--out", q, "--method", "rtn", "--bits", bits, "--group-size", group,
         "--device", "cpu")
    qc = json.loads((q / "quantize_config.json").read_text())
    assert qc["bits"] == bits and qc["group_size"] == group and qc["checkpoint_format"] == "gptq"
    assert qc["quant_method"] == "gptq" and qc["desc_act"] is False and qc["sym"] is False
    assert qc["meta"]["quantizer"][:2] == ["gptqmodel:7.0.0", "lota:0.1.0"]
    assert qc.get("qzeros_3bit") == ("per_field" if bits == 3 else None)
    assert json.loads((q / "config.json").read_text())["quantization_config"] == qc
    src = {k: v.float().numpy() for k, v in load_file(str(base / "model.safetensors")).items()}
    t = load_file(str(q / "model.safetensors"))
    prefixes = linear_prefixes(t)
    assert len(prefixes) == 14
    for p in prefixes:
        Q, Z, S, g, W = decode_linear(t, p, qc)
        Qr, Zr, Sr = rtn_reference(src[p + ".weight"], bits, group)
        assert np.array_equal(S, Sr), p
        assert np.array_equal(Z, Zr), p
        assert np.array_equal(Q, Qr), p
        assert t[p + ".qweight"].dtype == torch.int32 and t[p + ".scales"].dtype == torch.float16


@pytest.mark.parametrize("bits,group", [(4, 32), (3, -1), (2, 64)])
def test_lota_dequant_equals_numpy_decoder(base, tmp_path, bits, group):
    """lota's own dequantization gives the model numpy decodes: equal logits."""
    q = tmp_path / "q"
    lota("quantize", "--model", base, "--out", q, "--method", "rtn", "--bits", bits, "--group-size", group,
         "--device", "cpu")
    a = logits(q, tmp_path, "quant")
    b = logits(dense_from_decoded(q, tmp_path / "dense"), tmp_path, "dense")
    np.testing.assert_allclose(a, b, **LOGITS_TOL)


def test_gptq_act_order_checkpoint(base, tmp_path):
    calib = need_shared("data/c4/c4_demo.jsonl")
    q = tmp_path / "q"
    lota("quantize", "--model", base, "--out", q, "--bits", 4, "--group-size", 32, "--act-order", "--calib", calib,
         "--calib-samples", 8, "--calib-seqlen", 64, "--seed", 1, "--device", "cpu")
    qc = json.loads((q / "quantize_config.json").read_text())
    assert qc["desc_act"] is True
    t = load_file(str(q / "model.safetensors"))
    permuted = 0
    for p in linear_prefixes(t):
        g = t[p + ".g_idx"].numpy()
        permuted += int(np.any(np.diff(g) < 0))
        assert np.array_equal(np.bincount(g), np.full(len(g) // 32, 32)), p
    assert permuted > 0
    a = logits(q, tmp_path, "quant")
    b = logits(dense_from_decoded(q, tmp_path / "dense"), tmp_path, "dense")
    np.testing.assert_allclose(a, b, **LOGITS_TOL)


@pytest.mark.parametrize("bits,packing", [(2, "whole_word"), (3, "whole_word"), (3, "per_field"), (3, None),
                                          (4, "whole_word"), (8, "whole_word")])
def test_numpy_v1_file_with_zero_points_0(base, tmp_path, bits, packing):
    """numpy writes qzeros v1 with many Z = 0 (borrows across fields) and Z = maxq, whole word (2/4/8 bits;
    3 bits where quantize_config says "whole_word") or per field (3 bits, "per_field", or not said at all:
    then lota must read them as AutoGPTQ and GPTQModel >= 7 write them, per field). lota must give the logits
    of the numpy-decoded dense model."""
    q = tmp_path / "q"
    lota("quantize", "--model", base, "--out", q, "--method", "rtn", "--bits", bits, "--group-size", 32,
         "--device", "cpu")
    t = {k: v.numpy() for k, v in load_file(str(q / "model.safetensors")).items()}
    qc = json.loads((q / "quantize_config.json").read_text())
    if bits == 3:
        qc.pop("qzeros_3bit")
        qc["meta"]["quantizer"] = []
        if packing:
            qc["qzeros_3bit"] = packing
        for name in ("quantize_config.json", "config.json"):
            j = json.loads((q / name).read_text())
            if name == "config.json":
                j["quantization_config"] = qc
            else:
                j = qc
            write_json(q / name, j)
    rng = np.random.default_rng(bits)
    maxq = 2**bits - 1
    naive_wrong = 0
    for p in linear_prefixes(t):
        G, N = t[p + ".scales"].shape
        Z = rng.integers(0, maxq + 1, size=(G, N))
        Z[:, rng.random(N) < 0.4] = 0
        Z[:, rng.random(N) < 0.2] = maxq
        v2 = stream_put(Z.T.copy(), bits).T.copy()
        if packing == "whole_word":
            v1 = v2 - word_constants(v2.shape[1], bits)[None, :]  # uint32: wraps mod 2^32
            # A field-by-field "+1" reader would get these zero points wrong.
            naive = (stream_get(v1.T.copy(), bits, N).T + 1) & maxq
        else:
            v1 = stream_put(((Z - 1) % (maxq + 1)).T.copy(), bits).T.copy()
            # A whole-word reader would get these zero points wrong.
            naive = stream_get((v1 + word_constants(v1.shape[1], bits)[None, :]).T.copy(), bits, N).T
        t[p + ".qzeros"] = v1.view(np.int32)
        naive_wrong += int((naive != Z).sum())
        tt = {k: torch.from_numpy(v) for k, v in t.items() if k.startswith(p)}
        assert np.array_equal(decode_linear(tt, p, qc)[1], Z)
    assert naive_wrong > 0
    save_file(t, str(q / "model.safetensors"))
    a = logits(q, tmp_path, "quant")
    b = logits(dense_from_decoded(q, tmp_path / "dense"), tmp_path, "dense")
    np.testing.assert_allclose(a, b, **LOGITS_TOL)
