"""llama.cpp itself (llama-cpp-python, scripts/bootstrap.sh builds it) runs a LoTA-merged SmolLM2-135M-Instruct
exported by `lota export --format gguf`:

- the model: SmolLM2 imported from its GGUF (float32), RTN 4-bit g32, and a random ternary LoTA adapter
  (r 8, ω 3.5: codes move where |A·B| ≥ 4, offsets F of ~0.1 grid step) merged by `lota merge`, so the
  export carries markers and non-zero F; the test checks both are there;
- llama.cpp's tokenizer, built from the GGUF's tokenizer.ggml.* keys, gives lota's ids for the WikiText-2
  text and for the chat prompts rendered by llama-cpp-python from the GGUF's chat template;
- WikiText-2 perplexity on the first windows, computed from llama.cpp's logits the way `lota eval --task
  ppl` computes it (non-overlapping windows, every position but the first scored), is within 1% of lota's
  (measured: lota 39.356, llama.cpp 39.495, +0.35%);
- greedy chat generation: for three prompts the first 16 tokens equal those of `lota generate`; along
  llama.cpp's greedy path for twelve prompts, each token is lota's argmax or within TIE logits of it
  (measured: 249/261 are lota's argmax, the others within 0.29), and ≥ 90% are lota's argmax.

A tiny float32 llama with Llama 3.1 rope scaling also runs in llama.cpp with lota's logits (to 0.02, against
1.08 without the scaling): the exported rope_freqs factors are applied as lota applies the scaling.

What differs, and why the bounds are not bit-exact: the weights are the same up to the fp16 rounding of
m = S·(F − Z) (≤ 0.0078 grid steps, the export reports it; a model re-imported from the GGUF file gives
lota's logits to 0.11 and llama.cpp runs its F32 export to 2e-4 of lota), but llama.cpp quantizes the
activations to Q8_1 (blocks of 32, int8 with an fp16 scale) before every Q4_1 product (ggml's q4_1 · q8_1
dot product), keeps the KV cache in fp16 by default and sums in another order; lota multiplies float32
activations by the dequantized weights. On this model that moves logits by 0.15 on average (largest 1.7
over 256 WikiText-2 positions), which shifts perplexity by a few tenths of a percent and swaps the greedy
choice wherever two candidates are that close; 9 of the 12 prompts meet such a near-tie within 16 tokens,
so their generations are compared along one path instead of token for token.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lota_testlib import lota, need_shared, smollm2_gguf, write_json

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/bootstrap.sh builds it)")

SEQLEN, WINDOWS = 512, 4
NEW_TOKENS, EQUAL_TOKENS = 24, 16
# Greedy answers of the merged model that meet no near-tie in their first 16 tokens: equal token for token.
EQUAL_PROMPTS = ["What color is the sky on a clear day?", "What is the boiling point of water?",
                 "Name a fruit that is yellow."]
# Answers that do meet one (two candidates within ~0.3 logits, which llama.cpp's Q8_1 activations can swap):
# checked along llama.cpp's greedy path instead.
TIE_PROMPTS = ["What is the capital of France?", "Name two primary colors.", "Write one sentence about the ocean.",
               "How many days are in a week?", "What is 2 + 3?", "Give me a synonym for happy.",
               "Who wrote Romeo and Juliet?", "What is the largest planet in the solar system?",
               "Translate hello into Spanish."]
TIE = 0.5  # logits; llama.cpp vs lota on this model: mean |Δlogit| 0.15 over WikiText-2 positions
RANK, OMEGA, DENSITY = 8, 2.5, 0.25


def ternary_adapter(quant, out, seed=0):
    """A random LoTA adapter (int8 A [r, K], B [N, r] in {-1, 0, 1}) for every quantized linear of QUANT."""
    st = load_file(str(Path(quant) / "model.safetensors"))
    rng = np.random.default_rng(seed)
    tensors, modules = {}, set()
    for name in sorted(st):
        if not name.endswith(".qweight"):
            continue
        prefix = name[: -len(".qweight")]
        K, N = st[prefix + ".g_idx"].shape[0], st[prefix + ".scales"].shape[1]
        for name, shape in (("lora_A", (RANK, K)), ("lora_B", (N, RANK))):
            t = rng.choice(np.array([-1, 0, 1], np.int8), shape, p=[DENSITY / 2, 1 - DENSITY, DENSITY / 2])
            tensors[f"base_model.model.{prefix}.{name}.weight"] = t
        modules.add(prefix.rsplit(".", 1)[1])
    out.mkdir()
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    write_json(out / "adapter_config.json", {"peft_type": "LORA", "r": RANK, "lora_alpha": 2 * RANK,
                                             "target_modules": sorted(modules),
                                             "lota": {"omega": OMEGA, "bits": 4, "group_size": 32}})
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    gguf = smollm2_gguf()
    root = tmp_path_factory.mktemp("llama_cpp")
    base, quant, merged = root / "base", root / "quant", root / "merged"
    lota("import", "--gguf", gguf, "--out", base, "--out-dtype", "f32")
    lota("quantize", "--model", base, "--out", quant, "--method", "rtn", "--bits", 4, "--group-size", 32,
         "--device", "cpu")
    adapter = ternary_adapter(quant, root / "adapter")
    lota("merge", "--model", quant, "--adapter", adapter, "--out", merged, "--device", "cpu")
    q, m = load_file(str(quant / "model.safetensors")), load_file(str(merged / "model.safetensors"))
    offsets = [k for k in m if k.endswith(".lota_offset")]
    assert offsets and all(np.abs(m[k]).max() > 0 for k in offsets), "the merge wrote no non-zero offsets F"
    moved = sum(int((q[k] != m[k]).sum()) for k in q if k.endswith(".qweight"))
    assert moved > 0, "the merge moved no code"
    out = root / "merged.gguf"
    rep = json.loads(lota("export", "--model", merged, "--format", "gguf", "--out", out, "--json").stdout)
    assert rep["q4_1_tensors"] == 7 * 30 and rep["lossy_f16_tensors"] == 0, rep
    print(f"\nexport: {rep}; merged offsets: mean |F| "
          f"{np.mean([np.abs(m[k]).mean() for k in offsets]):.4f} grid steps, {moved} packed words changed")
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=SEQLEN, n_batch=SEQLEN, n_ubatch=SEQLEN, n_threads=2,
                          n_threads_batch=2, logits_all=True, verbose=False)
    return merged, llm


def text_prefix(chars=60000):
    """The first CHARS characters of WikiText-2 (test split), cut at a line end."""
    text = (need_shared("data/wikitext2") / "wiki.test.joined.txt").read_text(encoding="utf-8")[:chars]
    return text[: text.rindex("\n") + 1]


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_perplexity_within_one_percent_of_lota(exported, tmp_path):
    merged, llm = exported
    text = text_prefix()
    data = tmp_path / "wiki.txt"
    data.write_text(text, encoding="utf-8")
    ours = json.loads(lota("tokenize", "--tokenizer", merged, "--no-special", input=text).stdout)
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    assert len(ours) >= SEQLEN * WINDOWS
    assert ids == ours, "llama.cpp's tokenizer (from the GGUF) and lota's give different ids"
    nll, n = 0.0, 0
    for w in range(WINDOWS):
        window = ids[w * SEQLEN:(w + 1) * SEQLEN]
        llm.reset()
        llm.eval(window)
        logp = log_softmax(np.asarray(llm.scores[: SEQLEN - 1]))
        nll -= float(logp[np.arange(SEQLEN - 1), window[1:]].sum())
        n += SEQLEN - 1
    ppl_cpp = float(np.exp(nll / n))
    r = json.loads(lota("eval", "--task", "ppl", "--model", merged, "--data", data, "--seqlen", SEQLEN,
                        "--max-windows", WINDOWS, "--device", "cpu", "--json").stdout)
    assert r["windows"] == WINDOWS and r["tokens"] == n, r
    print(f"\nWikiText-2 ppl, {WINDOWS} windows of {SEQLEN}: lota {r['ppl']:.4f}, llama.cpp {ppl_cpp:.4f} "
          f"(ratio {ppl_cpp / r['ppl']:.5f})")
    assert abs(ppl_cpp / r["ppl"] - 1) < 0.01


def llama_cpp_greedy(llm, ids, n):
    """llama.cpp's greedy continuation of IDS: up to N tokens, ending with EOS when it comes."""
    llm.reset()
    llm.eval(ids)
    gen = []
    for _ in range(n):
        gen.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        if gen[-1] == llm.token_eos():
            break
        llm.eval([gen[-1]])
    return gen


def chat_ids(llm, merged, question):
    """The chat prompt's ids: rendered by llama-cpp-python from the GGUF's chat template and tokenized by
    llama.cpp, checked equal to lota's (`lota tokenize --chat --add-generation-prompt`)."""
    template = llm.metadata["tokenizer.chat_template"]
    eos = llm.detokenize([llm.token_eos()]).decode()
    bos = llm.detokenize([llm.token_bos()]).decode()
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
    messages = [{"role": "user", "content": question}]
    ours = json.loads(lota("tokenize", "--tokenizer", merged, "--chat", "--add-generation-prompt",
                           input=json.dumps(messages)).stdout)
    ids = llm.tokenize(formatter(messages=messages).prompt.encode("utf-8"), add_bos=False, special=True)
    assert ids == ours, f"{question!r}: llama.cpp renders or tokenizes the chat prompt differently"
    return ids


def test_greedy_chat_generation_equals_lota(exported):
    merged, llm = exported
    for q in EQUAL_PROMPTS:
        ids = chat_ids(llm, merged, q)
        gen = llama_cpp_greedy(llm, ids, NEW_TOKENS)
        ours = json.loads(lota("generate", "--model", merged, "--prompt-ids", json.dumps(ids),
                               "--max-new-tokens", NEW_TOKENS, "--device", "cpu").stdout)
        print(f"\n{q!r}: llama.cpp {llm.detokenize(gen).decode(errors='replace')!r}")
        assert len(gen) >= EQUAL_TOKENS and gen[:EQUAL_TOKENS] == ours[:EQUAL_TOKENS], \
            f"{q!r}: llama.cpp {gen} vs lota {ours}"


def test_llama_cpp_greedy_path_is_lota_argmax_up_to_near_ties(exported, tmp_path):
    merged, llm = exported
    prompts = [chat_ids(llm, merged, q) for q in EQUAL_PROMPTS + TIE_PROMPTS]
    gens = [llama_cpp_greedy(llm, ids, NEW_TOKENS) for ids in prompts]
    rows = [ids + gen for ids, gen in zip(prompts, gens)]
    width = max(map(len, rows))
    batch = write_json(tmp_path / "ids.json", [r + [0] * (width - len(r)) for r in rows])  # right-padded
    lota("logits", "--model", merged, "--ids", batch, "--out", tmp_path / "logits.safetensors", "--device", "cpu")
    logits = load_file(str(tmp_path / "logits.safetensors"))["logits"]
    exact = total = 0
    worst = 0.0
    for b, (ids, gen) in enumerate(zip(prompts, gens)):
        lg = logits[b, len(ids) - 1:len(ids) - 1 + len(gen)].astype(np.float64)  # lota's logits along llama.cpp's path
        gap = lg.max(axis=1) - lg[np.arange(len(gen)), gen]
        exact += int((gap == 0).sum())
        total += len(gen)
        worst = max(worst, float(gap.max()))
    print(f"\nllama.cpp's greedy tokens that are lota's argmax: {exact}/{total}; largest lota logit gap of the "
          f"others {worst:.3f}")
    assert worst < TIE, f"llama.cpp chose a token {worst:.3f} logits below lota's best (near-tie bound {TIE})"
    assert exact >= 0.9 * total


def test_llama3_rope_scaling_runs_as_in_lota(tmp_path):
    """A tiny float32 llama with Llama 3.1 rope scaling, exported (rope_freqs.weight, "llama" tokenizer from the
    Llama 2 style tokenizer.json): llama.cpp's logits over 512 random ids are lota's to 0.02 (fp16 KV cache;
    measured 0.009), while lota's logits without the scaling are more than 0.5 away (measured 1.08), so the
    factors are what llama.cpp applies."""
    tok = need_shared("tokenizers/llama2")
    model, plain = tmp_path / "scaled", tmp_path / "plain"
    lota("init", "--out", model, "--seed", 5, "--arch", "llama", "--tokenizer", tok, "--rope-scaling", "llama3",
         "--hidden", 64, "--layers", 2, "--heads", 4, "--kv-heads", 2, "--intermediate", 128)
    lota("init", "--out", plain, "--seed", 5, "--arch", "llama", "--tokenizer", tok,
         "--hidden", 64, "--layers", 2, "--heads", 4, "--kv-heads", 2, "--intermediate", 128)
    out = tmp_path / "scaled.gguf"
    lota("export", "--model", model, "--format", "gguf", "--out", out)
    n = 512
    ids = [int(x) for x in np.random.default_rng(0).integers(3, 32000, n)]
    batch = write_json(tmp_path / "ids.json", [ids])
    logits = {}
    for name, m in (("scaled", model), ("plain", plain)):
        lota("logits", "--model", m, "--ids", batch, "--out", tmp_path / f"{name}.safetensors", "--device", "cpu",
             "--dtype", "f32")
        logits[name] = load_file(str(tmp_path / f"{name}.safetensors"))["logits"][0].astype(np.float64)
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=n, n_batch=n, n_ubatch=n, n_threads=2, n_threads_batch=2,
                          logits_all=True, verbose=False)
    llm.eval(ids)
    cpp = np.asarray(llm.scores[:n], dtype=np.float64)
    d_cpp, d_plain = np.abs(cpp - logits["scaled"]).max(), np.abs(logits["plain"] - logits["scaled"]).max()
    print(f"\nllama3 rope scaling: llama.cpp vs lota max |Δlogit| {d_cpp:.4f}; lota without the scaling {d_plain:.3f}")
    assert d_cpp < 0.02 and d_plain > 0.5


@pytest.mark.parametrize("arch,tokenizer", [("llama", "tokenizers/llama2"), ("qwen2", "tokenizers/qwen3")])
def test_bf16_model_runs_in_llama_cpp(tmp_path, arch, tokenizer):
    """A model stored in bf16 (as HF checkpoints and `lota import --out-dtype bf16` store it): its norms and
    biases (qwen2's q/k/v) are written as F32, as llama.cpp's converter writes them — llama.cpp's CPU kernels
    abort on an F32 × BF16 norm multiply — and llama.cpp's logits are lota's up to its fp16 KV cache and
    bf16 products: 2% of the logits' scale, a few 2^-8 roundings (measured 0.043 and 0.039 at scale ~5)."""
    from gguf import GGUFReader

    model, out = tmp_path / "model", tmp_path / "model.gguf"
    lota("init", "--out", model, "--seed", 3, "--arch", arch, "--tokenizer", need_shared(tokenizer), "--out-dtype",
         "bf16", "--hidden", 64, "--layers", 2, "--heads", 4, "--kv-heads", 2, "--intermediate", 128)
    lota("export", "--model", model, "--format", "gguf", "--out", out)
    vectors = [t for t in GGUFReader(str(out)).tensors if len(t.shape) == 1]
    assert vectors and all(t.tensor_type.name == "F32" for t in vectors), \
        [(t.name, t.tensor_type.name) for t in vectors if t.tensor_type.name != "F32"]
    n = 64
    ids = [int(x) for x in np.random.default_rng(1).integers(3, 30000, n)]
    lota("logits", "--model", model, "--ids", write_json(tmp_path / "ids.json", [ids]), "--out",
         tmp_path / "l.safetensors", "--device", "cpu", "--dtype", "f32")
    ref = load_file(str(tmp_path / "l.safetensors"))["logits"][0].astype(np.float64)
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=n, n_batch=n, n_ubatch=n, n_threads=2, n_threads_batch=2,
                          logits_all=True, verbose=False)
    llm.eval(ids)
    d = np.abs(np.asarray(llm.scores[:n], dtype=np.float64) - ref).max()
    print(f"\n{arch} bf16: llama.cpp vs lota max |Δlogit| {d:.4f} (logits up to {np.abs(ref).max():.2f})")
    assert d < 0.02 * np.abs(ref).max()
