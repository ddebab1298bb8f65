#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (fuzz/targets.h) into OUT/<target>/.

Seeds are small: fuzzers run thousands of inputs a second only on small files, so the real
tokenizers and datasets of ../shared are cut down (a few hundred vocabulary entries and merges,
the first records of each dataset) and the binary formats are written here from their specs.
Usage: make_corpus.py OUT [SHARED_DIR]
"""
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(out, target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


def small_tokenizer(tok, n_vocab=120, n_merges=80, n_added=12):
    """The tokenizer with its first vocabulary entries, the merges among them and a few added tokens."""
    model = tok["model"]
    vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1])[:n_vocab])
    merges = []
    for m in model["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
        if len(merges) == n_merges:
            break
    model = dict(model, vocab=vocab, merges=merges)
    return dict(tok, model=model, added_tokens=tok["added_tokens"][:n_added])


def tokenizer_seeds(out, shared):
    base = os.path.join(shared, "tokenizers")
    if not os.path.isdir(base):
        print(f"make_corpus: {base} not found; tokenizer and template seeds from tests only")
        return
    keep = ("bos_token", "eos_token", "add_bos_token", "add_eos_token", "chat_template")
    for name in sorted(os.listdir(base)):
        with open(os.path.join(base, name, "tokenizer.json"), encoding="utf-8") as f:
            tok = small_tokenizer(json.load(f))
        with open(os.path.join(base, name, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        small_cfg = {k: cfg[k] for k in keep if k in cfg}
        write(out, "tokenizer", name, json.dumps(tok, ensure_ascii=False))
        write(out, "tokenizer", name + "_config", json.dumps(tok) + "\0" + json.dumps(small_cfg))
        if isinstance(cfg.get("chat_template"), str):
            write(out, "jinja", name, cfg["chat_template"])


def jinja_seeds(out):
    # The templates of the interpreter's unit tests: every construct it supports.
    src = os.path.join(ROOT, "tests", "cpp", "jinja", "test_jinja.cpp")
    with open(src, encoding="utf-8") as f:
        text = f.read()
    for i, m in enumerate(re.finditer(r'\{"(\w+)", R"J\((.*?)\)J"', text, re.S)):
        write(out, "jinja", f"case_{i:02d}_{m.group(1)}", m.group(2))
    write(out, "jinja", "messages", '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}\0'
          '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]')


def config_seeds(out):
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
             "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 512,
             "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
             "bos_token_id": 1, "eos_token_id": [2, 3], "torch_dtype": "bfloat16"}
    qwen3 = dict(llama, architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=16,
                 rope_scaling=None, tie_word_embeddings=False)
    qwen2 = dict(llama, architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_scaling=None,
                 quantization_config={"bits": 4, "group_size": 32, "quant_method": "gptq"})
    for name, cfg in (("llama", llama), ("qwen3", qwen3), ("qwen2", qwen2)):
        write(out, "config", name, json.dumps(cfg, indent=2))
    write(out, "config", "ids", "[1, 2, 3, 128000]")
    write(out, "config", "ids_batch", "[[1, 2], [3, 4, 5]]")


def dataset_seeds(out, shared):
    # First byte: 0 alpaca (JSON list), 1 gsm8k (JSONL), 2 chat (JSONL), 3 viggo (CSV).
    def head_lines(path, n):
        with open(path, encoding="utf-8") as f:
            return "".join(f.readline() for _ in range(n))

    data = os.path.join(shared, "data")
    if not os.path.isdir(data):
        print(f"make_corpus: {data} not found; dataset seeds are synthetic only")
    else:
        with open(os.path.join(data, "alpaca", "alpaca_data_1k.json"), encoding="utf-8") as f:
            write(out, "dataset", "alpaca", b"\0" + json.dumps(json.load(f)[:3], indent=1).encode())
        write(out, "dataset", "gsm8k", b"\1" + head_lines(os.path.join(data, "gsm8k", "test.jsonl"), 3).encode())
        write(out, "dataset", "chat", b"\2" + head_lines(os.path.join(data, "sql", "valid.jsonl"), 2).encode())
        write(out, "dataset", "viggo", b"\3" + head_lines(os.path.join(data, "viggo", "valid.csv"), 5).encode())
    write(out, "dataset", "csv_quotes", b'\3mr,ref\r\n"a ""b""","c,d"\r\ne,f\n')


def safetensors_bytes(tensors, metadata=None):
    """[u64 header length][JSON header][data], tensors as (name, dtype, shape, raw bytes)."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds(out):
    write(out, "safetensors", "mixed", safetensors_bytes([
        ("w.f32", "F32", [2, 3], struct.pack("<6f", *range(6))),
        ("w.bf16", "BF16", [4], b"\x80\x3f" * 4),
        ("qweight", "I32", [1, 2], struct.pack("<2i", 0x12345678, -1)),
        ("lora_A", "I8", [2, 2], b"\x01\xff\x00\x01"),
        ("empty", "F16", [0, 4], b""),
    ], {"format": "pt"}))
    write(out, "safetensors", "empty", safetensors_bytes([]))


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_bytes():
    """A GGUF v3 file (ggml docs/gguf.md) with tokenizer metadata and two tensors."""
    tokens = ["a", "b", "c", "ab", "abc", "Ġ", "Ġa", "<s>", "</s>"]
    types = [1] * 7 + [3, 3]  # normal, then control
    kv = [
        ("general.architecture", 8, gguf_string("llama")),
        ("general.alignment", 4, struct.pack("<I", 32)),
        ("llama.context_length", 4, struct.pack("<I", 128)),
        ("tokenizer.ggml.model", 8, gguf_string("gpt2")),
        ("tokenizer.ggml.pre", 8, gguf_string("llama-bpe")),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(tokens)) + b"".join(map(gguf_string, tokens))),
        ("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, len(types)) + struct.pack(f"<{len(types)}i", *types)),
        ("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, 3) + b"".join(map(gguf_string, ["a b", "ab c", "Ġ a"]))),
        ("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 7)),
        ("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 8)),
        ("tokenizer.chat_template", 8, gguf_string("{% for m in messages %}{{ m.content }}{% endfor %}")),
        ("nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 12, 2) + struct.pack("<2d", 1.5, -2.0)),
    ]
    # (name, dims (fastest first), ggml type, bytes): F32 [4, 2] and Q8_0 [32] (f16 scale + 32 int8).
    tensors = [("token_embd.weight", [4, 2], 0, struct.pack("<8f", *range(8))),
               ("output.weight", [32], 8, b"\x00\x3c" + bytes(range(32)))]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, vtype, value in kv:
        out += gguf_string(key) + struct.pack("<I", vtype) + value
    offset, data = 0, b""
    for name, dims, ggml_type, raw in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", ggml_type, offset)
        data += raw + b"\0" * (-len(raw) % 32)
        offset = len(data)
    out += b"\0" * (-len(out) % 32)
    return out + data


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared")
    tokenizer_seeds(out, shared)
    jinja_seeds(out)
    config_seeds(out)
    dataset_seeds(out, shared)
    safetensors_seeds(out)
    write(out, "gguf", "tokenizer", gguf_bytes())
    for target in sorted(os.listdir(out)):
        files = os.listdir(os.path.join(out, target))
        size = sum(os.path.getsize(os.path.join(out, target, f)) for f in files)
        print(f"make_corpus: {target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
