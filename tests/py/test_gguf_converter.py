"""`lota export --format gguf` against llama.cpp's own converter: convert_hf_to_gguf.py from the llama.cpp
that the llama-cpp-python 0.3.36 source vendors (scripts/bootstrap.sh keeps that source in .cache/wheels),
run with its own gguf-py on the same tiny HF model (llama with the Llama 3.1 tokenizer, qwen2 and qwen3 with
the Qwen3 tokenizer; float32). Both files are read back with gguf-py:

- the same metadata keys with the same values (hyper-parameters, tokenizer.ggml.* including the pre-tokenizer
  name, every token, token type and merge, add_bos/eos/sep, the chat template, file type, size label), except
  general.name, which the converter derives from the directory name in its own way ("Tl" for "tl");
- the same tensors: names, shapes, types and bytes (so llama's q/k permutation is the converter's).
"""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lota_testlib import ROOT, lota, need_shared, tiny_model

gguf = pytest.importorskip("gguf", reason="gguf-py is not installed (scripts/bootstrap.sh installs it)")

SDIST_NAME = "llama_cpp_python-0.3.36.tar.gz"
VENDOR = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
NOT_COMPARED = {"general.name"}


@pytest.fixture(scope="module")
def converter(tmp_path_factory):
    """convert_hf_to_gguf.py, its conversion/ package and gguf-py, extracted from the llama-cpp-python source."""
    dirs = [os.environ.get("LOTA_WHEEL_DIR", ""), ROOT / ".cache" / "wheels", ROOT / ".whl"]
    sdist = next((Path(d) / SDIST_NAME for d in dirs if d and (Path(d) / SDIST_NAME).is_file()), None)
    if sdist is None:
        pytest.skip(f"{SDIST_NAME} is not in .cache/wheels (scripts/bootstrap.sh downloads it)")
    root = tmp_path_factory.mktemp("converter")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(VENDOR) and (
            m.name == VENDOR + "convert_hf_to_gguf.py" or m.name.startswith(VENDOR + "conversion/")
            or m.name.startswith(VENDOR + "gguf-py/"))]
        tar.extractall(root, members=members, filter="data")
    return root / VENDOR


def fields(path):
    r = gguf.GGUFReader(str(path))
    out = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        out[k] = [float(x) for x in v] if isinstance(v, list) and v and isinstance(v[0], float) else v
    return out, {t.name: t for t in r.tensors}


@pytest.mark.parametrize("arch,tokenizer", [("llama", "llama3_1"), ("qwen2", "qwen3"), ("qwen3", "qwen3")])
def test_export_matches_convert_hf_to_gguf(tmp_path, converter, arch, tokenizer):
    tok = need_shared(f"tokenizers/{tokenizer}")
    model = tiny_model(tmp_path / "tiny", 3, "--arch", arch, "--tokenizer", tok, hidden=64, layers=2, heads=4,
                       kv_heads=2, intermediate=128)
    theirs, ours = tmp_path / "converter.gguf", tmp_path / "lota.gguf"
    env = {**os.environ, "PYTHONPATH": str(converter / "gguf-py")}
    proc = subprocess.run([sys.executable, str(converter / "convert_hf_to_gguf.py"), str(model), "--outfile",
                           str(theirs), "--outtype", "f32"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lota("export", "--model", model, "--format", "gguf", "--out", ours)

    f_theirs, t_theirs = fields(theirs)
    f_ours, t_ours = fields(ours)
    assert sorted(set(f_theirs) - NOT_COMPARED) == sorted(set(f_ours) - NOT_COMPARED)
    for k in sorted(set(f_theirs) - NOT_COMPARED):
        a, b = f_theirs[k], f_ours[k]
        if isinstance(a, list) and len(a) > 8:
            diff = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y][:5]
            assert len(a) == len(b) and not diff, f"{k}: first differences (index, converter, lota) {diff}"
        else:
            assert a == b, f"{k}: converter {a!r}, lota {b!r}"
    assert sorted(t_theirs) == sorted(t_ours)
    for name, t in t_theirs.items():
        u = t_ours[name]
        assert (list(t.shape), t.tensor_type) == (list(u.shape), u.tensor_type), name
        assert np.array_equal(np.asarray(t.data), np.asarray(u.data)), f"{name}: data differ"
    print(f"\n{arch}: {len(f_ours)} metadata keys and {len(t_ours)} tensors as convert_hf_to_gguf writes them "
          f"(general.name: converter {f_theirs.get('general.name')!r}, lota {f_ours.get('general.name')!r})")
