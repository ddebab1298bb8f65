"""HF transformers baseline for bench_forward: same shapes, same timing rules (warm-up, median of
repeats, device sync). Prefill tokens/s at batch 1 and decode tokens/s (KV cache, greedy).
Usage: hf_forward.py MODEL_DIR [--device cuda] [--prefill 2048] [--batches 1,16] [--context 128] [--steps 64]
[--repeat 5] [--attn sdpa]. Prints one JSON line per measurement."""
import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, DynamicCache

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--prefill", type=int, default=2048)
p.add_argument("--batches", default="1,16")
p.add_argument("--context", type=int, default=128)
p.add_argument("--steps", type=int, default=64)
p.add_argument("--repeat", type=int, default=5)
p.add_argument("--attn", default="sdpa")
p.add_argument("--device", default="cuda")
a = p.parse_args()

model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation=a.attn)
model = model.to(a.device).eval()
V = model.config.vocab_size


def sync():
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()


def med(f):
    f()
    sync()
    ts = []
    for _ in range(a.repeat):
        ts.append(f())
    return statistics.median(ts)


@torch.no_grad()
def prefill():
    ids = torch.randint(0, V, (1, a.prefill), device=a.device)
    sync()
    t0 = time.perf_counter()
    model(ids, use_cache=False)
    sync()
    return time.perf_counter() - t0


t = med(prefill)
print(json.dumps({"impl": "hf", "what": "prefill", "batch": 1, "tokens": a.prefill, "seconds": t,
                  "tokens_per_s": a.prefill / t}))
for B in map(int, a.batches.split(",")):
    @torch.no_grad()
    def decode():
        ids = torch.randint(0, V, (B, a.context), device=a.device)
        cache = DynamicCache()
        out = model(ids, past_key_values=cache, use_cache=True)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            out = model(nxt, past_key_values=cache, use_cache=True)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        sync()
        return time.perf_counter() - t0
    t = med(decode)
    print(json.dumps({"impl": "hf", "what": "decode", "batch": B, "context": a.context, "steps": a.steps,
                      "seconds": t, "tokens_per_s": B * a.steps / t}))
