"""Reference test for `lota tokenize`: token ids and decoded text must equal HF `tokenizers`
(Tokenizer.from_file(...).encode/.decode), computed in the same run, for the real tokenizers in
$LOTA_SHARED_DIR/tokenizers (Llama 2, Llama 3.1, Qwen3), SmolLM2 (rebuilt from its GGUF by HF
transformers) and synthetic variants exercising added-token flags (lstrip/rstrip/single_word/
normalized), NFD/Strip normalizers, unk fusing, Metaspace, ByteLevel add_prefix_space and
RobertaProcessing."""
import json
import random
import time
import unicodedata

import pytest
from tokenizers import Tokenizer

from lota_testlib import lota, need_shared, smollm2_gguf

REAL = ["llama2", "llama3_1", "qwen3"]


def lota_jsonl(tok_dir, values, *flags):
    """One `lota tokenize --jsonl` run: one JSON value per line in, one per line out."""
    inp = "".join(json.dumps(v) + "\n" for v in values)
    r = lota("tokenize", "--tokenizer", tok_dir, "--jsonl", *flags, input=inp.encode(), timeout=600)
    out = r.stdout.decode().split("\n")
    assert out[-1] == "" and len(out) - 1 == len(values)
    return [json.loads(x) for x in out[:-1]]


def corpus(specials):
    c = [
        "", " ", "  ", "\t", "\n", "\r\n", "\r", "Hello world", " Hello world", "  leading spaces",
        "trailing spaces   ", "Hello, world! How are you doing today?",
        "I'm can't won't they've we'll he'd she's it's 'S 'LL 'Re", "THEY'RE WE'VE I'D 'ſ 'K",
        "multiple   spaces\tand\ttabs\n\nand newlines\r\n\r\nCRLF", "\n\n\n", " \n \n ", "line\r\nline\rline\n",
        "1234567890 12 123 1234 12345 3.14159 1,000,000 0x1F 00000000000000000",
        "٣٤٥ ①②③ Ⅻ ¹²³ ½ ９８７", "café naïve résumé Å Ω K",
        unicodedata.normalize("NFD", "café naïve résumé Å ḱ ǘ Ångström"),
        "e\u0301 a\u0308 o\u0302\u0323 q\u0307\u0323 \u1e0b\u0323 A\u030a \u0300 leading combining",
        "한국어 텍스트 \u1100\u1161\u11a8 \u1112\u1175", "日本語のテキストです。中文文本测试，标点符号！",
        "Ελληνικά Русский текст עברית العربية हिन्दी ไทย", "x\u0345\u0301\u0313 greek iota",
        "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇸🇫🇷 ❤️ ✈︎ 🤗🤗🤗",
        "zero\u200bwidth\u200cjoiner\u200d nbsp\u00a0x \u3000ideo \u2028ls \u2029ps \u180emvs\u180e",
        "\u0085nel \u000bvt \u000cff \u2009thin a\u2003b\u2002c", "tab\tsep\tvalues\t\t\tend",
        "def f(x):\n    return x ** 2  # comment\n\n\tif x: pass\n", "<html><body class=\"x\">&amp;</body></html>",
        "mixed CASE Words And ALLCAPS", "a" * 300, "ab" * 200 + " " + "xyz" * 150, "    \t   \n\n   x",
        "ﬁ ﬂ ﬀ Ǆ ǅ ǆ ẞ ß ﬃ", "\u00ad soft hyphen", "control \x01\x02\x7f chars",
        "C++ std::vector<int> v{1, 2, 3}; // ok", "https://example.com/path?q=1&r=two#frag",
        "¿Qué? ¡Sí! «quotes» „more“ ‚single‘", "...!!!???---___***", "end with space ",
        "▁already▁has▁metaspace", "<0x41> <unk> < s > </ s>",
    ]
    for s in specials:
        c += [s, "before" + s + "after", "a " + s + " b", s + s, " " + s + "\n", "x" + s[:-1], "<" + s,
              "  " + s + "  x", "\n" + s + "\t"]
    if len(specials) >= 2:
        c.append(specials[0] + "Hello" + specials[1] + " world " + specials[0])
        c.append(f"{specials[1]}user\nHi there{specials[0]}\n{specials[1]}assistant\n")
    rnd = random.Random(1234)
    alphabet = "abcdefghij KLMNOP 0123456789 ,.;'\"!?\t\n\r éü日本😀\u0301 \u200d"
    c += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 60))) for _ in range(60)]
    comb = [chr(x) for x in list(range(0x300, 0x370)) + [0x1dc0, 0x20d0, 0x3099, 0x0f71, 0x05b0, 0x0651,
                                                          0x093c, 0x09be, 0x0b3e, 0x1161, 0x11a8]]
    bases = list("aeiouAEIOUcnsyzw") + [chr(x) for x in [0x1100, 0xac00, 0x0915, 0x09c7, 0x0b47, 0x3046,
                                                         0x0391, 0x0410, 0x212b, 0x2126, 0x0344, 0x1d15e]]
    c += ["".join(rnd.choice(bases + comb + comb + [" "]) for _ in range(rnd.randint(1, 25))) for _ in range(60)]

    def rchar():
        cp = rnd.choice([rnd.randint(0x20, 0x7f), rnd.randint(0x80, 0x3000), rnd.randint(0x3000, 0xffff),
                         rnd.randint(0x10000, 0x10ffff)])
        return "A" if 0xD800 <= cp < 0xE000 else chr(cp)
    c += ["".join(rchar() for _ in range(rnd.randint(1, 30))) for _ in range(60)]
    words = ["the", "quick", "brown", "fox", "über", "naïve", "東京", "1234", "'s", "  ", "\n", "😀", "\t"]
    c.append(" ".join(rnd.choice(words) for _ in range(20000))[:100_000])  # ~100 kB line
    c.append("x" * 100_000)                                                   # one 100 kB word
    c.append(("日本語" * 12000)[:33_000])
    return c


def build_smollm2(tmp):
    """SmolLM2's tokenizer as transformers rebuilds it from the GGUF; None when the GGUF is unavailable."""
    try:
        gguf = smollm2_gguf()
    except pytest.skip.Exception:
        return None
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    out = tmp / "smollm2"
    tok.save_pretrained(str(out))
    return out


def write_variant(tmp, name, base_dir, edit):
    j = json.loads((base_dir / "tokenizer.json").read_text())
    edit(j)
    out = tmp / name
    out.mkdir()
    (out / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False))
    (out / "tokenizer_config.json").write_text((base_dir / "tokenizer_config.json").read_text())
    return out


def edit_qwen_flags(j):
    by = {t["content"]: t for t in j["added_tokens"]}
    by["<|im_start|>"].update(lstrip=True, rstrip=True)
    by["<|im_end|>"].update(rstrip=True)
    by["<|box_start|>"].update(single_word=True, lstrip=True)
    nxt = max(t["id"] for t in j["added_tokens"]) + 1
    for i, (content, special) in enumerate([("hello world", False), ("\u2126hm", False), ("lota", True)]):
        j["added_tokens"].append({"id": nxt + i, "content": content, "single_word": content == "lota",
                                  "lstrip": False, "rstrip": False, "normalized": True, "special": special})


def edit_qwen_nfd(j):
    j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Strip", "strip_left": False,
                                                                          "strip_right": True}]}


def edit_llama2_unk(j):
    j["model"]["byte_fallback"] = False
    j["added_tokens"].append({"id": 32000, "content": "foo bar", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": True, "special": False})


def edit_llama2_metaspace(j):
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}
    j["decoder"] = {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Metaspace",
                    "replacement": "\u2581", "prepend_scheme": "first", "split": True}]}


def edit_smol_prefix(j):
    j["pre_tokenizer"]["add_prefix_space"] = True
    j["post_processor"] = {"type": "RobertaProcessing", "sep": ["<|im_end|>", 2], "cls": ["<|im_start|>", 1],
                           "trim_offsets": True, "add_prefix_space": True}


@pytest.fixture(scope="session")
def tokenizers_under_test(tmp_path_factory):
    shared = need_shared("tokenizers")
    tmp = tmp_path_factory.mktemp("tok")
    dirs = {n: shared / n for n in REAL}
    dirs["qwen3_flags"] = write_variant(tmp, "qwen3_flags", dirs["qwen3"], edit_qwen_flags)
    dirs["qwen3_nfd"] = write_variant(tmp, "qwen3_nfd", dirs["qwen3"], edit_qwen_nfd)
    dirs["llama2_unk"] = write_variant(tmp, "llama2_unk", dirs["llama2"], edit_llama2_unk)
    dirs["llama2_metaspace"] = write_variant(tmp, "llama2_metaspace", dirs["llama2"], edit_llama2_metaspace)
    smol = build_smollm2(tmp)
    if smol is not None:
        dirs["smollm2"] = smol
        dirs["smollm2_prefix"] = write_variant(tmp, "smollm2_prefix", smol, edit_smol_prefix)
    return dirs


ALL = REAL + ["qwen3_flags", "qwen3_nfd", "llama2_unk", "llama2_metaspace", "smollm2", "smollm2_prefix"]


def get_dir(dirs, name):
    if name not in dirs:
        pytest.skip(f"{name}: SmolLM2 GGUF unavailable (scripts/fetch_smollm2.sh failed: offline?)")
    return dirs[name]


def texts_for(hf):
    specials = sorted({t.content for t in hf.get_added_tokens_decoder().values()})
    pick = [s for s in specials if s in ("<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|eot_id|>",
                                         "<|im_start|>", "<|im_end|>", "<|box_start|>", "<|endoftext|>",
                                         "hello world", "\u2126hm", "lota", "foo bar")]
    extra = ["say hello world", "Ωhm \u2126hm", "lota xlota lota_ lota.", "foo bar foo  bar",
             "a<|box_start|>b c <|box_start|> d", "  <|im_start|>  x  <|im_end|>  y"]
    return corpus(pick) + extra


@pytest.mark.parametrize("name", ALL)
def test_encode_decode_match_hf(tokenizers_under_test, name):
    d = get_dir(tokenizers_under_test, name)
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    texts = texts_for(hf)
    for special in (True, False):
        flags = [] if special else ["--no-special"]
        t0 = time.time()
        got = lota_jsonl(d, texts, *flags)
        elapsed = time.time() - t0
        ref = [e.ids for e in hf.encode_batch(texts, add_special_tokens=special)]
        bad = [(t[:60], g[:12], r[:12]) for t, g, r in zip(texts, got, ref) if g != r]
        assert not bad, f"{name} special={special}: {len(bad)} of {len(texts)} differ, e.g. {bad[:3]}"
        assert elapsed < 120, f"{name}: encoding the corpus took {elapsed:.1f}s"
    decoded = {}
    for skip in (False, True):
        flags = ["--decode"] + (["--no-special"] if skip else [])
        decoded[skip] = lota_jsonl(d, ref, *flags)
        want = hf.decode_batch(ref, skip_special_tokens=skip)
        bad = [(t[:40], g[:40], w[:40]) for t, g, w in zip(texts, decoded[skip], want) if g != w]
        assert not bad, f"{name} decode skip={skip}: {len(bad)} differ, e.g. {bad[:3]}"
    # decode(encode(x)) == x wherever HF round-trips too
    roundtrip = hf.decode_batch(ref, skip_special_tokens=False)
    same = [i for i, t in enumerate(texts) if roundtrip[i] == t]
    assert all(decoded[False][i] == texts[i] for i in same)
    if name in REAL + ["smollm2"]:
        assert len(same) >= len(texts) // 2, f"{name}: HF round-trips only {len(same)} of {len(texts)}"


@pytest.mark.parametrize("name", ALL)
def test_decode_random_ids_match_hf(tokenizers_under_test, name):
    d = get_dir(tokenizers_under_test, name)
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    n = hf.get_vocab_size(with_added_tokens=True)
    rnd = random.Random(99)
    byte_ids = [hf.token_to_id(f"<0x{b:02X}>") for b in range(256)]
    byte_ids = [i for i in byte_ids if i is not None]
    known = [i for i in range(n) if hf.id_to_token(i) is not None]
    seqs = [[], [0], [known[-1]]]
    for _ in range(300):
        pool = byte_ids if byte_ids and rnd.random() < 0.3 else known
        seqs.append([rnd.choice(pool) for _ in range(rnd.randint(1, 12))])
    # An id the tokenizer does not know is refused (HF skips it, so the text would silently lack it).
    r = lota("tokenize", "--tokenizer", d, "--decode", input=f"[1, {n + 5}]".encode(), check=False)
    assert r.returncode == 1 and f"id {n + 5} is not in the tokenizer's vocabulary" in r.stderr.decode(), r.stderr
    for skip in (False, True):
        got = lota_jsonl(d, seqs, "--decode", *(["--no-special"] if skip else []))
        want = hf.decode_batch(seqs, skip_special_tokens=skip)
        bad = [(s, g, w) for s, g, w in zip(seqs, got, want) if g != w]
        assert not bad, f"{name} skip={skip}: {len(bad)} differ, e.g. {bad[:3]}"


def test_cli_plain_modes(tokenizers_under_test):
    d = tokenizers_under_test["llama2"]
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    text = "Hello world\nsecond line </s> end"
    r = lota("tokenize", "--tokenizer", d, input=text.encode())
    ids = json.loads(r.stdout)
    assert ids == hf.encode(text).ids and ids[0] == 1
    r = lota("tokenize", "--tokenizer", d, "--no-special", input=text.encode())
    assert json.loads(r.stdout) == hf.encode(text, add_special_tokens=False).ids
    for skip in (False, True):
        r = lota("tokenize", "--tokenizer", d, "--decode", *(["--no-special"] if skip else []),
                 input=json.dumps(ids).encode())
        assert r.stdout.decode() == hf.decode(ids, skip_special_tokens=skip)


def test_cli_errors(tmp_path):
    r = lota("tokenize", "--tokenizer", tmp_path / "missing", input=b"x", check=False)
    assert r.returncode != 0 and b"tokenizer.json" in r.stderr
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "Unigram", "vocab": []}}')
    r = lota("tokenize", "--tokenizer", tmp_path, input=b"x", check=False)
    assert r.returncode != 0 and b"Unigram" in r.stderr and b"tokenizer.json" in r.stderr


CHAT = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi there! 日本語で答えて。 <|im_end|> inside"},
        {"role": "assistant", "content": "Sure.\n\nHere:  😀"},
        {"role": "user", "content": "What is 2+2?"}]


@pytest.mark.parametrize("name", ["llama3_1", "qwen3", "smollm2"])
@pytest.mark.parametrize("gen", [False, True])
def test_chat_matches_apply_chat_template(tokenizers_under_test, name, gen):
    d = get_dir(tokenizers_under_test, name)
    from transformers import AutoTokenizer
    ref = AutoTokenizer.from_pretrained(str(d)).apply_chat_template(CHAT, tokenize=True, add_generation_prompt=gen)
    if hasattr(ref, "keys"):
        ref = ref["input_ids"]
    flags = ["--chat"] + (["--add-generation-prompt"] if gen else [])
    r = lota("tokenize", "--tokenizer", d, *flags, input=json.dumps(CHAT).encode(), timeout=300)
    assert json.loads(r.stdout) == list(ref)
