"""`lota import` (GGUF -> HF directory) and lota's GGUF dequantizers against their references,
run in this same test: gguf-py's `gguf.quants.dequantize` for every block type (exact, float32 bits),
and transformers loading SmolLM2-135M-Instruct's GGUF directly (`gguf_file=`) for weights, logits,
tokenizer and config. The Python side only calls the references and the lota CLI.
"""

import json

import numpy as np
import pytest

import lota_testlib
from lota_testlib import lota

gguf = pytest.importorskip("gguf", reason="the gguf package (reference for GGUF) is not installed")
torch = pytest.importorskip("torch")

# Tolerances. Dequantization and the Q/K row permutation are exact, so weights must be equal; the
# brief allows 1e-6 for any reference that rounds differently. Logits: same weights, same fp32 math
# in transformers on both sides (only the load path differs), so 1e-4 is generous. lota's own
# forward pass sums in a different order than PyTorch's, hence 1e-3 there.
WEIGHT_ATOL = 1e-6
LOGITS_ATOL_HF = 1e-4
LOGITS_ATOL_LOTA = 1e-3

DEQUANT_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                 "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog 1234567 times.",
    "  leading spaces,\ttabs\nand newlines\n\n",
    "Unicode: café, naïve, 東京, emoji 🤖, Ελληνικά",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "code: def f(x):\n    return x**2  # squares\n<file_sep><jupyter_code>",
    "don't I'll we've THEY'RE",
]


def max_abs_diff(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


# ---------------------------------------------------------------------------------------------
# Dequantization: every type against gguf-py, exact.


def test_dequant_every_type_matches_gguf_py(tmp_path):
    from safetensors.numpy import load_file

    rng = np.random.default_rng(1234)
    path = tmp_path / "all_types.gguf"
    writer = gguf.GGUFWriter(str(path), arch="lota-test")
    blocks = {}
    for name in DEQUANT_TYPES:
        qtype = gguf.GGMLQuantizationType[name]
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        rows, blocks_per_row = 3, 4
        # Random bytes: every bit pattern of every field, incl. inf/NaN/subnormal scales.
        raw = rng.integers(0, 256, size=(rows, blocks_per_row * type_size), dtype=np.uint8)
        blocks[name] = (qtype, raw)
        writer.add_tensor(name, raw, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    out = tmp_path / "dequant.safetensors"
    lota("import", "--gguf", str(path), "--out", str(out), "--raw")
    ours = load_file(str(out))
    for name, (qtype, raw) in blocks.items():
        with np.errstate(all="ignore"):  # random scales include inf/NaN on purpose
            ref = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        got = ours[name]
        assert got.shape == ref.shape, f"{name}: shape {got.shape} vs {ref.shape}"
        nan_ref, nan_got = np.isnan(ref), np.isnan(got)
        assert np.array_equal(nan_ref, nan_got), f"{name}: NaN positions differ"
        ok = ~nan_ref
        bits_equal = got[ok].view(np.uint32) == ref[ok].view(np.uint32)
        if not bits_equal.all():
            i = np.flatnonzero(~bits_equal)[0]
            pytest.fail(f"{name}: {int((~bits_equal).sum())} of {ok.sum()} values differ; first: "
                        f"lota {got[ok][i]!r} vs gguf-py {ref[ok][i]!r}")


# ---------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct: lota import vs transformers' own GGUF loader.


@pytest.fixture(scope="module")
def smollm2_gguf():
    return lota_testlib.smollm2_gguf()


@pytest.fixture(scope="module")
def imported(smollm2_gguf, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "hf"
    proc = lota("import", "--gguf", str(smollm2_gguf), "--out", str(out), "--out-dtype", "f32")
    assert "import:" in proc.stderr, "expected progress log lines on stderr"
    return out


@pytest.fixture(scope="module")
def hf_gguf_model(smollm2_gguf):
    pytest.importorskip("accelerate", reason="transformers needs `accelerate` to load a GGUF file")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name,
                                                 dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def hf_gguf_tokenizer(smollm2_gguf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)


def test_files_written(imported):
    names = sorted(p.name for p in imported.iterdir())
    assert names == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                     "tokenizer_config.json"]
    assert not list(imported.parent.glob("hf.tmp-*")), "staging directory left behind"


def test_raw_dump_of_the_real_file_matches_gguf_py(smollm2_gguf, tmp_path):
    from safetensors.numpy import load_file

    out = tmp_path / "raw.safetensors"
    lota("import", "--gguf", str(smollm2_gguf), "--out", str(out), "--raw")
    ours = load_file(str(out))
    reader = gguf.GGUFReader(str(smollm2_gguf))
    seen = set()
    for t in reader.tensors:
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        ref = ref.reshape(tuple(int(d) for d in reversed(t.shape)))
        assert np.array_equal(ours[t.name].view(np.uint32), ref.view(np.uint32)), t.name
        seen.add(t.tensor_type.name)
    assert seen == {"F32", "Q4_1", "Q8_0"}, seen


def test_weights_equal_transformers_gguf_state_dict(imported, hf_gguf_model):
    from safetensors.torch import load_file

    ours = load_file(str(imported / "model.safetensors"))
    ref = hf_gguf_model.state_dict()
    tied = hf_gguf_model.config.tie_word_embeddings
    expected = {k for k in ref if not (tied and k == "lm_head.weight")}
    assert set(ours) == expected
    worst = max((max_abs_diff(ours[k], ref[k].float()), k) for k in ours)
    for k, w in ours.items():
        assert w.dtype == torch.float32 and w.shape == ref[k].shape, k
    assert worst[0] <= WEIGHT_ATOL, f"max |lota − transformers| = {worst[0]:.3g} in {worst[1]}"


def token_batches(tok):
    ids = [tok(t)["input_ids"] for t in TEXTS]
    n = min(len(x) for x in ids)
    return torch.tensor([x[:n] for x in ids[:4]]), [torch.tensor([x]) for x in ids]


def test_logits_match_transformers_gguf(imported, hf_gguf_model, hf_gguf_tokenizer):
    from transformers import AutoModelForCausalLM

    ours = AutoModelForCausalLM.from_pretrained(str(imported), dtype=torch.float32).eval()
    batch, singles = token_batches(hf_gguf_tokenizer)
    with torch.no_grad():
        for ids in [batch, *singles]:
            a = ours(ids).logits
            b = hf_gguf_model(ids).logits
            err = max_abs_diff(a, b)
            assert err <= LOGITS_ATOL_HF, f"ids shape {tuple(ids.shape)}: max |Δlogits| = {err:.3g}"


def test_tokenizer_matches_transformers_gguf(imported, hf_gguf_tokenizer, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    ours = Tokenizer.from_file(str(imported / "tokenizer.json"))
    for text in TEXTS:
        want = hf_gguf_tokenizer(text)["input_ids"]
        got = ours.encode(text).ids
        assert got == want, f"{text!r}: {got} vs {want}"
        assert ours.decode(got, skip_special_tokens=False) == hf_gguf_tokenizer.decode(want)

    # The JSON itself, part by part, against what transformers builds from the same GGUF.
    hf_gguf_tokenizer.save_pretrained(str(tmp_path / "ref"))
    ref = json.loads((tmp_path / "ref" / "tokenizer.json").read_text())
    mine = json.loads((imported / "tokenizer.json").read_text())
    for part in ["added_tokens", "normalizer", "pre_tokenizer", "decoder"]:
        assert mine[part] == ref[part], part
    assert mine["model"]["vocab"] == ref["model"]["vocab"]
    assert [list(m) for m in mine["model"]["merges"]] == [list(m) for m in ref["model"]["merges"]]

    # transformers loads our directory and renders the chat template to the same ids.
    loaded = AutoTokenizer.from_pretrained(str(imported))
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    kw = dict(add_generation_prompt=True, tokenize=False)
    assert loaded.apply_chat_template(chat, **kw) == hf_gguf_tokenizer.apply_chat_template(chat, **kw)
    for text in TEXTS:
        assert loaded(text)["input_ids"] == hf_gguf_tokenizer(text)["input_ids"], text
    for attr in ["bos_token", "eos_token", "unk_token", "pad_token"]:
        assert getattr(loaded, attr) == getattr(hf_gguf_tokenizer, attr), attr


def test_config_matches_transformers_gguf(imported, smollm2_gguf):
    from transformers import AutoConfig

    ref = AutoConfig.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
    raw = json.loads((imported / "config.json").read_text())
    assert raw["architectures"] == ["LlamaForCausalLM"]
    assert raw["torch_dtype"] == "float32"
    ours = AutoConfig.from_pretrained(str(imported))
    for field in ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                  "intermediate_size", "vocab_size", "rms_norm_eps", "max_position_embeddings",
                  "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "head_dim"]:
        assert getattr(ours, field) == getattr(ref, field), field
    assert raw["rope_theta"] == ref.rope_parameters["rope_theta"]
    assert (ours.num_hidden_layers, ours.hidden_size, ours.num_attention_heads, ours.num_key_value_heads,
            ours.vocab_size, ours.tie_word_embeddings) == (30, 576, 9, 3, 49152, True)
    gen = json.loads((imported / "generation_config.json").read_text())
    assert gen["bos_token_id"] == ref.bos_token_id and gen["eos_token_id"] == ref.eos_token_id
    tcfg = json.loads((imported / "tokenizer_config.json").read_text())
    reader = gguf.GGUFReader(str(smollm2_gguf))
    assert tcfg["chat_template"] == reader.fields["tokenizer.chat_template"].contents()
    assert tcfg["add_bos_token"] is False and tcfg["model_max_length"] == 8192


def test_default_dtype_is_bf16_of_the_f32_import(smollm2_gguf, imported, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "bf16"
    lota("import", "--gguf", str(smollm2_gguf), "--out", str(out))
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    ours, f32 = load_file(str(out / "model.safetensors")), load_file(str(imported / "model.safetensors"))
    assert set(ours) == set(f32)
    for k in ours:
        assert ours[k].dtype == torch.bfloat16 and torch.equal(ours[k], f32[k].to(torch.bfloat16)), k


def test_lota_logits_on_imported_model(imported, hf_gguf_model, hf_gguf_tokenizer, tmp_path):
    from safetensors.torch import load_file

    batch, _ = token_batches(hf_gguf_tokenizer)
    ids_path = tmp_path / "ids.json"
    ids_path.write_text(json.dumps(batch.tolist()))
    out = tmp_path / "l.safetensors"
    lota("logits", "--model", str(imported), "--ids", str(ids_path), "--out", str(out), "--device", "cpu")
    got = load_file(str(out))["logits"]
    with torch.no_grad():
        want = hf_gguf_model(batch).logits
    assert got.shape == want.shape
    err = max_abs_diff(got, want)
    assert err <= LOGITS_ATOL_LOTA, f"max |lota logits − transformers| = {err:.3g}"


# ---------------------------------------------------------------------------------------------
# Errors: non-zero exit, a message naming the problem, no output left behind.


def test_import_refuses_other_architectures(tmp_path):
    path = tmp_path / "gpt2.gguf"
    writer = gguf.GGUFWriter(str(path), arch="gpt2")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = tmp_path / "out"
    proc = lota("import", "--gguf", str(path), "--out", str(out), check=False)
    assert proc.returncode != 0
    assert "unsupported architecture gpt2" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))


def test_import_reports_missing_and_corrupt_files(tmp_path):
    missing = tmp_path / "nope.gguf"
    proc = lota("import", "--gguf", str(missing), "--out", str(tmp_path / "o1"), check=False)
    assert proc.returncode != 0 and str(missing) in proc.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + (99).to_bytes(4, "little") + bytes(16))
    proc = lota("import", "--gguf", str(bad), "--out", str(tmp_path / "o2"), check=False)
    assert proc.returncode != 0 and "unsupported GGUF version 99" in proc.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
