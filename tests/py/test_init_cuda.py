"""`lota init --device cuda` (gpu label: fails without a CUDA device).

References: the GPU's 4-bit checkpoint must equal `lota init --device cuda` of the dense model (same seed)
followed by `lota quantize --method rtn` on the CPU, byte for byte, which checks both that every tensor is
drawn from its own stream (the dense and the quantized init draw the same values) and that the RTN and
packing on the GPU give the CPU's codes; two runs must give the same bytes; and the draws must have the
intended distribution, N(0, 1/fan_in) for projections, 1 + N(0, 0.1²) for norms.
"""
import numpy as np
import pytest
import torch

from lota_testlib import lota, require_cuda
from test_init_quantized import SHAPE, assert_same_tensors, load_dir


@pytest.fixture(autouse=True)
def cuda_device():
    require_cuda()


@pytest.mark.parametrize("bits,group,dtype", [(4, 32, "f32"), (4, 64, "bf16"), (3, 32, "f32")])
def test_cuda_init_bits_equals_cuda_init_then_rtn(tmp_path, bits, group, dtype):
    common = ["--seed", 11, *SHAPE, "--out-dtype", dtype, "--device", "cuda"]
    qflags = ["--bits", bits, "--group-size", group]
    lota("init", "--out", tmp_path / "dense", *common)
    lota("quantize", "--model", tmp_path / "dense", "--out", tmp_path / "two_step", "--method", "rtn", *qflags,
         "--device", "cpu")
    lota("init", "--out", tmp_path / "direct", *common, *qflags)
    assert_same_tensors(load_dir(tmp_path / "direct"), load_dir(tmp_path / "two_step"))


def test_cuda_init_is_deterministic_and_differs_from_cpu(tmp_path):
    flags = ["--seed", 3, *SHAPE, "--bits", 4, "--group-size", 32]
    lota("init", "--out", tmp_path / "a", *flags, "--device", "cuda")
    lota("init", "--out", tmp_path / "b", *flags, "--device", "cuda")
    lota("init", "--out", tmp_path / "cpu", *flags, "--device", "cpu")
    a, b, cpu = load_dir(tmp_path / "a"), load_dir(tmp_path / "b"), load_dir(tmp_path / "cpu")
    assert_same_tensors(a, b)
    name = "model.layers.0.self_attn.q_proj.qweight"
    assert not torch.equal(a[name], cpu[name]), "the GPU draws are Philox streams, not the CPU's"


def test_cuda_init_distributions(tmp_path):
    lota("init", "--out", tmp_path / "m", "--seed", 5, "--arch", "llama", "--hidden", 256, "--layers", 1, "--heads",
         4, "--kv-heads", 2, "--intermediate", 1024, "--vocab", 512, "--device", "cuda")
    t = {k: v.double().numpy() for k, v in load_dir(tmp_path / "m").items()}
    down = t["model.layers.0.mlp.down_proj.weight"]  # [256, 1024]: fan_in 1024
    assert abs(down.mean()) < 3 * (1 / 32) / np.sqrt(down.size)
    assert abs(down.std() - 1 / 32) < 0.01 * (1 / 32)
    norm = t["model.layers.0.input_layernorm.weight"]
    assert abs(norm.mean() - 1) < 0.05 and abs(norm.std() - 0.1) < 0.03
