"""io::GgufWriter against gguf-py (PyPI `gguf`, the llama.cpp project's own reader): a file written by lota
(through the helper program tests/cpp/export/gguf_write.cpp) reads back in gguf-py with every metadata value
and type as written, and every tensor dequantized by gguf-py's own dequantizer equals what lota meant: for
Q4_1, y = d·q + m per block of 32 with the float16 d and m and the integer codes given (ggml rounds d·q to
float32 and adds m in float32; gguf-py does the same in numpy); F32/F16/BF16 bit for bit."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lota_testlib import run_program

gguf = pytest.importorskip("gguf", reason="gguf-py is not installed (scripts/bootstrap.sh installs it)")


def test_written_gguf_reads_back_in_gguf_py(tmp_path):
    g = torch.Generator().manual_seed(0)
    R, C = 6, 96
    codes = torch.randint(0, 16, (R, C), generator=g, dtype=torch.int32)
    d = (torch.rand(R, C // 32, generator=g) * 0.01 + 1e-4).half()
    m = (torch.randn(R, C // 32, generator=g) * 0.05).half()
    f32 = torch.randn(3, 64, generator=g)
    f16 = torch.randn(5, 32, generator=g).half()
    bf16 = torch.randn(2, 32, generator=g).bfloat16()
    save_file({"codes": codes, "d": d, "m": m, "f32": f32, "f16": f16, "bf16": bf16}, str(tmp_path / "in.st"))
    out = tmp_path / "out.gguf"
    run_program("lota_export_gguf_write", tmp_path / "in.st", out)

    r = gguf.GGUFReader(str(out))
    f = r.fields
    assert f["t.str"].contents() == "hello"
    assert f["t.u32"].contents() == 7 and f["t.u32"].types == [gguf.GGUFValueType.UINT32]
    assert f["t.i32"].contents() == -3 and f["t.i32"].types == [gguf.GGUFValueType.INT32]
    assert f["t.f32"].contents() == 0.5 and f["t.f32"].types == [gguf.GGUFValueType.FLOAT32]
    assert f["t.bool"].contents() is True
    assert f["t.strs"].contents() == ["a", "", "ü"]
    assert f["t.i32s"].contents() == [1, -2, 3] and f["t.i32s"].types[-1] == gguf.GGUFValueType.INT32

    tensors = {t.name: t for t in r.tensors}
    assert set(tensors) == {"q4_1.weight", "f32", "f16", "bf16"}
    q = tensors["q4_1.weight"]
    assert q.tensor_type == gguf.GGMLQuantizationType.Q4_1 and list(q.shape) == [C, R]  # ne: fastest first
    got = gguf.quants.dequantize(q.data, q.tensor_type).reshape(R, C)
    dd = np.repeat(d.float().numpy(), 32, axis=1)
    mm = np.repeat(m.float().numpy(), 32, axis=1)
    want = (dd * codes.numpy().astype(np.float32)).astype(np.float32) + mm
    assert np.array_equal(got, want)
    for name, t in (("f32", f32), ("f16", f16), ("bf16", bf16)):
        back = gguf.quants.dequantize(tensors[name].data, tensors[name].tensor_type).reshape(t.shape)
        assert np.array_equal(back, t.float().numpy()), name
