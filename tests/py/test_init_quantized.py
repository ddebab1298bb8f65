"""`lota init --bits B --group-size G [--sym]`: a random GPTQ checkpoint written layer by layer.

References: `lota init` (same seed) followed by `lota quantize --method rtn` must give the same tensors
byte for byte and the same configs; the codes, zeros and scales decoded by test_gptq_format's numpy
decoder must equal its numpy RTN of the 16-bit weights; a sharded output loads and trains; the
values do not depend on the thread count; and the peak resident memory of a larger init, measured
by the kernel (getrusage of the child), stays far below the 16-bit model's size.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lota_testlib import LOTA_BIN, lota, need_shared, write_json
from test_gptq_format import decode_linear, rtn_reference

SHAPE = ["--arch", "llama", "--hidden", 64, "--layers", 2, "--heads", 4, "--kv-heads", 2, "--intermediate", 128,
         "--vocab", 96]
CPU = ["--device", "cpu"]


def load_dir(d):
    """Every tensor of a model directory, single file or shards (through the index)."""
    if (d / "model.safetensors.index.json").exists():
        index = json.loads((d / "model.safetensors.index.json").read_text())
        out = {}
        for shard in sorted(set(index["weight_map"].values())):
            out.update(load_file(str(d / shard)))
        assert sorted(out) == sorted(index["weight_map"]), "the index must list exactly the shards' tensors"
        return out
    return load_file(str(d / "model.safetensors"))


def assert_same_tensors(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(a[k].view(torch.uint8) if a[k].numel() else a[k],
                           b[k].view(torch.uint8) if b[k].numel() else b[k]), f"{k} differs"


@pytest.mark.parametrize("bits,group,sym,dtype", [(4, 32, False, "f32"), (4, 64, True, "bf16"),
                                                  (2, 32, False, "f16"), (3, 32, False, "f32"),
                                                  (8, -1, False, "bf16")])
def test_init_bits_equals_init_then_rtn_quantize(tmp_path, bits, group, sym, dtype):
    common = ["--seed", 7, *SHAPE, "--out-dtype", dtype]
    qflags = ["--bits", bits, "--group-size", group, *(["--sym"] if sym else [])]
    lota("init", "--out", tmp_path / "dense", *common)
    lota("quantize", "--model", tmp_path / "dense", "--out", tmp_path / "two_step", "--method", "rtn", *qflags, *CPU)
    direct = json.loads(lota("init", "--out", tmp_path / "direct", *common, *qflags, "--json").stdout)
    assert direct["bits"] == bits and direct["group_size"] == group and direct["sym"] == sym

    a, b = load_dir(tmp_path / "direct"), load_dir(tmp_path / "two_step")
    assert_same_tensors(a, b)
    for name in ("config.json", "quantize_config.json"):
        assert json.loads((tmp_path / "direct" / name).read_text()) == \
            json.loads((tmp_path / "two_step" / name).read_text()), name

    # Independently: the numpy decoder's codes are numpy RTN of the 16-bit weights.
    dense = load_file(str(tmp_path / "dense" / "model.safetensors"))
    qc = json.loads((tmp_path / "direct" / "quantize_config.json").read_text())
    prefixes = sorted(k[:-len(".qweight")] for k in a if k.endswith(".qweight"))
    assert len(prefixes) == 2 * 7
    for p in prefixes:
        Q, Z, S, g_idx, _ = decode_linear(a, p, qc)
        W = dense[p + ".weight"].float().numpy()
        if sym:  # rtn_reference is asymmetric; the symmetric grid: xmax = max|x|, Z = 2^(b-1)
            g = W.shape[1] if group == -1 else group
            amax = np.abs(W.reshape(W.shape[0], -1, g)).max(2).T
            amax = np.where(amax == 0, np.float32(1), amax)
            S_ref = np.clip(2 * amax / np.float32(2**bits - 1), 5.960464477539063e-08, 65504)
            S_ref = S_ref.astype(np.float16).astype(np.float32)
            Z_ref = np.full(S_ref.shape, 2 ** (bits - 1), dtype=np.int64)
            Q_ref = np.clip(np.rint(W.T / S_ref[g_idx]) + Z_ref[g_idx], 0, 2**bits - 1).astype(np.int64)
        else:
            Q_ref, Z_ref, S_ref = rtn_reference(W, bits, group)
        np.testing.assert_array_equal(S, S_ref, err_msg=p)
        np.testing.assert_array_equal(Z, Z_ref, err_msg=p)
        np.testing.assert_array_equal(Q, Q_ref, err_msg=p)


def test_values_do_not_depend_on_thread_count(tmp_path, monkeypatch):
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        # 512 x 4096 MLP weights: two chunks of Note [init streams] each, drawn on two threads or one.
        lota("init", "--out", tmp_path / threads, "--seed", 3, "--arch", "llama", "--hidden", 512, "--layers", 1,
             "--heads", 4, "--kv-heads", 2, "--intermediate", 4096, "--vocab", 96, "--bits", 4, "--group-size", 64)
    assert_same_tensors(load_dir(tmp_path / "1"), load_dir(tmp_path / "2"))


def test_sharded_quantized_init_loads_and_trains(tmp_path):
    tok = need_shared("tokenizers/llama2")  # vocab 32000: embeddings and head of 8 MiB each
    flags = ["--seed", 5, "--tokenizer", tok, *SHAPE[:-2], "--bits", 4, "--group-size", 32]
    lota("init", "--out", tmp_path / "one", *flags)
    lota("init", "--out", tmp_path / "sharded", *flags, "--shard-mib", 1)
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("*.safetensors"))
    assert len(shards) >= 3 and not (tmp_path / "sharded" / "model.safetensors").exists(), shards
    assert not list((tmp_path / "sharded").glob("*.partial")) and not list((tmp_path / "sharded").glob("*.tmp*"))
    assert_same_tensors(load_dir(tmp_path / "one"), load_dir(tmp_path / "sharded"))
    for f in shards:  # each shard holds at most 1 MiB, or one larger tensor alone
        t = load_file(str(tmp_path / "sharded" / f))
        assert len(t) == 1 or sum(v.numel() * v.element_size() for v in t.values()) <= 1 << 20, f

    data = write_json(tmp_path / "data.json", [{"instruction": "Name a color.", "input": "", "output": "Blue."},
                                               {"instruction": "Say hello.", "input": "", "output": "Hello!"}])
    r = json.loads(lota("train", "--model", tmp_path / "sharded", "--data", data, "--format", "alpaca", "--out",
                        tmp_path / "adapter", "--steps", 1, "--batch-size", 2, "--rank", 4, "--json", *CPU).stdout)
    assert np.isfinite(r["first_loss"]) and r["first_loss"] > 0


# Peak resident set of `lota init` for a 2048-hidden, 16-layer model, measured by the kernel for the
# child alone (a fresh Python whose only child is lota). The 16-bit model is 1.46 GB, the 4-bit files
# 0.39 GB. What init holds does not grow with the layers: libtorch itself (~120 MB), one float32
# draw buffer (2048 x 5632: 46 MB), RTN's smaller temporaries (codes, packing) and the shard being
# filled (--shard-mib 32); measured here ~280 MB.
PEAK_FRACTION_OF_16BIT = 0.4


def test_quantized_init_peak_memory_is_far_below_16bit_model(tmp_path):
    shape = ["--arch", "llama", "--hidden", 2048, "--layers", 16, "--heads", 16, "--kv-heads", 4,
             "--intermediate", 5632, "--vocab", 2048]
    cmd = [LOTA_BIN, "init", "--out", str(tmp_path / "q"), "--seed", "1", *map(str, shape), "--bits", "4",
           "--group-size", "64", "--out-dtype", "bf16", "--shard-mib", "32", "--json"]
    probe = ("import resource, subprocess, sys, json\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(json.dumps({'rc': p.returncode, 'err': p.stderr[-2000:], 'out': p.stdout,\n"
             "                  'maxrss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n")
    r = json.loads(subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True,
                                  check=True).stdout)
    assert r["rc"] == 0, r["err"]
    rep = json.loads(r["out"])
    H, I, L, V, kv = 2048, 5632, 16, 2048, 4 * 128
    params = L * (H * (H + 2 * kv) + H * H + 3 * H * I + 2 * H) + 2 * V * H + H
    assert rep["params"] == params
    bytes_16bit = 2 * params
    peak = r["maxrss_kib"] * 1024
    print(f"peak RSS {peak / 2**20:.0f} MiB, 16-bit model {bytes_16bit / 2**20:.0f} MiB, "
          f"4-bit files {rep['bytes'] / 2**20:.0f} MiB, {rep['seconds']:.1f} s")
    assert peak < PEAK_FRACTION_OF_16BIT * bytes_16bit, (peak, bytes_16bit)
    assert abs(rep["peak_memory_mib"] * 2**20 - peak) < 0.1 * peak  # the report's own measure agrees


def test_bad_quantization_flags_are_refused(tmp_path):
    out = tmp_path / "m"
    p = lota("init", "--out", out, *SHAPE, "--bits", 4, "--group-size", 48, check=False)
    assert p.returncode != 0 and "init: model.layers.0.self_attn.q_proj: group size 48 does not divide in_features 64" \
        in p.stderr, p.stderr
    p = lota("init", "--out", out, *SHAPE, "--group-size", 32, check=False)
    assert p.returncode != 0 and "--group-size requires --bits" in p.stderr, p.stderr
    assert not out.exists() and not list(tmp_path.iterdir())
