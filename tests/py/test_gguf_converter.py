"""`lota export --format gguf` against llama.cpp's own converter: convert_hf_to_gguf.py from the llama.cpp
that the llama-cpp-python 0.3.36 source vendors (scripts/bootstrap.sh keeps that source in .cache/wheels),
run with its own gguf-py on the same tiny HF model (llama with the Llama 3.1 tokenizer, with and without
Llama 3.1 rope scaling; llama and mistral with the Llama 2 style tokenizer (BPE with byte fallback, llama.cpp's
"llama" model); qwen2 and qwen3 with the Qwen3 tokenizer; float32). Both files are read back with gguf-py:

- the same metadata keys with the same values (hyper-parameters, tokenizer.ggml.* including the pre-tokenizer
  name, every token, token type and merge, add_bos/eos/sep, special ids, the chat template, file type, size
  label), except general.name, which the converter derives from the directory name in its own way ("Tl" for
  "tl"), and the "llama" tokenizer's scores (see test_llama_tokenizer_in_llama_cpp);
- the same tensors: names, shapes, types and bytes (so llama's q/k permutation is the converter's), except
  rope_freqs.weight, which the converter computes in float32 steps: within 1e-6 relative of it, and equal to
  the Llama 3.1 formula evaluated in float64 and rounded to float32.

test_llama_tokenizer_in_llama_cpp loads the "llama" tokenizer export in llama-cpp-python and checks its ids
against lota's and the Hugging Face `tokenizers` library's for a few strings, and checks that the converter's
file (every score -1000) does not give them all.
"""
import json
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


def llama3_rope_factors(config):
    """Llama 3.1's per-frequency rope factors, in float64, from config.json (transformers'
    _compute_llama3_parameters, written out): 1 for wavelengths under L/high_freq_factor, `factor` over
    L/low_freq_factor, else 1/((1 - s)/factor + s) with s = (L/wavelength - low)/(high - low)."""
    r = config["rope_scaling"]
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    L, lo, hi, factor = r["original_max_position_embeddings"], r["low_freq_factor"], r["high_freq_factor"], r["factor"]
    out = []
    for i in range(0, dim, 2):
        wavelen = 2 * np.pi * config["rope_theta"] ** (i / dim)
        if wavelen < L / hi:
            out.append(1.0)
        elif wavelen > L / lo:
            out.append(factor)
        else:
            s = (L / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float64)


def tiny(tmp_path, arch, tokenizer, flags=()):
    tok = need_shared(f"tokenizers/{tokenizer}")
    return tiny_model(tmp_path / "tiny", 3, "--arch", arch, "--tokenizer", tok, *flags, hidden=64, layers=2,
                      heads=4, kv_heads=2, intermediate=128)


@pytest.mark.parametrize("arch,tokenizer,flags", [
    ("llama", "llama3_1", ()), ("llama", "llama3_1", ("--rope-scaling", "llama3")), ("llama", "llama2", ()),
    ("mistral", "llama2", ()), ("qwen2", "qwen3", ()), ("qwen3", "qwen3", ())])
def test_export_matches_convert_hf_to_gguf(tmp_path, converter, arch, tokenizer, flags):
    model = tiny(tmp_path, arch, tokenizer, flags)
    theirs, ours = tmp_path / "converter.gguf", tmp_path / "lota.gguf"
    env = {**os.environ, "PYTHONPATH": str(converter / "gguf-py")}
    proc = subprocess.run([sys.executable, str(converter / "convert_hf_to_gguf.py"), str(model), "--outfile",
                           str(theirs), "--outtype", "f32"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lota("export", "--model", model, "--format", "gguf", "--out", ours)

    f_theirs, t_theirs = fields(theirs)
    f_ours, t_ours = fields(ours)
    not_compared = NOT_COMPARED | ({"tokenizer.ggml.scores"} if f_theirs.get("tokenizer.ggml.model") == "llama" else set())
    assert sorted(set(f_theirs) - NOT_COMPARED) == sorted(set(f_ours) - NOT_COMPARED)
    for k in sorted(set(f_theirs) - not_compared):
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
        if name == "rope_freqs.weight":
            a, b = np.asarray(t.data, dtype=np.float64), np.asarray(u.data, dtype=np.float64)
            assert np.allclose(b, a, rtol=1e-6, atol=0), f"rope_freqs: converter {a}, lota {b}"
            exact = llama3_rope_factors(json.loads((model / "config.json").read_text()))
            assert np.array_equal(np.asarray(u.data), exact.astype(np.float32)), f"rope_freqs: lota {b}, formula {exact}"
            assert len(set(np.round(b, 6))) > 2, f"rope_freqs {b}: the tiny model does not reach the smoothed band"
            continue
        assert np.array_equal(np.asarray(t.data), np.asarray(u.data)), f"{name}: data differ"
    print(f"\n{arch}: {len(f_ours)} metadata keys and {len(t_ours)} tensors as convert_hf_to_gguf writes them "
          f"(general.name: converter {f_theirs.get('general.name')!r}, lota {f_ours.get('general.name')!r})")


TOKENIZE = ["Hello world", "The quick brown fox jumps over the lazy dog.", "  leading spaces and\ttabs\nnew line",
            "Ünïcödé — 東京 🙂", "1234567 x=y+z; print('hi')", "supercalifragilisticexpialidocious antidisestablishment"]


def test_llama_tokenizer_in_llama_cpp(tmp_path, converter):
    """The "llama" tokenizer export (Llama 2 style tokenizer.json) tokenizes in llama.cpp as in lota and in the
    Hugging Face `tokenizers` library. This depends on the scores: llama.cpp joins the highest-scoring pair
    first, so with the converter's -1000 everywhere " fox jumps" would come out as "▁fo" "x" "▁jump" "s" instead
    of the BPE's "▁f" "ox" "▁j" "umps"."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/bootstrap.sh builds it)")
    tokenizers = pytest.importorskip("tokenizers")
    model = tiny(tmp_path, "llama", "llama2")
    out = tmp_path / "lota.gguf"
    lota("export", "--model", model, "--format", "gguf", "--out", out)
    f, _ = fields(out)
    assert f["tokenizer.ggml.model"] == "llama"
    llm = llama_cpp.Llama(model_path=str(out), vocab_only=True, verbose=False)
    hf = tokenizers.Tokenizer.from_file(str(model / "tokenizer.json"))
    for text in TOKENIZE:
        ours = json.loads(lota("tokenize", "--tokenizer", model, input=text).stdout)
        assert ours == hf.encode(text).ids, f"{text!r}: lota {ours}, tokenizers {hf.encode(text).ids}"
        theirs = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        assert theirs == ours, f"{text!r}: llama.cpp {theirs}, lota {ours}"
    # Why the scores are not the converter's: with its file, llama.cpp tokenizes some of these differently.
    conv = tmp_path / "converter.gguf"
    env = {**os.environ, "PYTHONPATH": str(converter / "gguf-py")}
    proc = subprocess.run([sys.executable, str(converter / "convert_hf_to_gguf.py"), str(model), "--outfile",
                           str(conv), "--outtype", "f32"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    llm_conv = llama_cpp.Llama(model_path=str(conv), vocab_only=True, verbose=False)
    differ = [t for t in TOKENIZE if llm_conv.tokenize(t.encode("utf-8"), add_bos=True, special=False) != hf.encode(t).ids]
    assert differ, "llama.cpp tokenizes the converter's file as the BPE does: its scores could be used as they are"
    print(f"\nconverter's scores: llama.cpp differs from the BPE on {len(differ)}/{len(TOKENIZE)} strings; lota's: 0")


def test_llama_tokenizer_bad_merge(tmp_path):
    """A merge whose joined text is not a token: one line naming tokenizer.json, no output file."""
    model = tiny(tmp_path, "llama", "llama2")
    tj = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    tj["model"]["merges"].append("▁zq xv")
    (model / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "x.gguf"
    r = lota("export", "--model", model, "--format", "gguf", "--out", out, check=False)
    lines = [line for line in r.stderr.strip().splitlines() if line]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "tokenizer.json" in lines[0] and "'▁zqxv', which is not in model.vocab" in lines[0], lines[0]
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
