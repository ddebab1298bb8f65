"""SmolLM2 on CUDA: lota logits (f32, bf16) and greedy tokens vs HF transformers on the same GPU.
Usage: smollm2_cuda_parity.py LOTA_BIN MODEL_DIR. Prints one line per check."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

L, d = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="smollm2_parity_")
ids_path, logits_path = os.path.join(tmp, "ids.json"), os.path.join(tmp, "logits.safetensors")
tok = AutoTokenizer.from_pretrained(d)
qs = ["What is the capital of France?", "Write a haiku about the sea.", "Explain gravity to a child."]
ids = []
for q in qs:
    r = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
    ids.append(list(r["input_ids"]) if hasattr(r, "keys") else list(r))
json.dump(ids, open(ids_path, "w"))
# f32: same math, different kernels -> ~1e-4 abs; bf16: relative to the logits' scale (see test_forward_cuda.py).
for dt, tdt, tol in [("f32", torch.float32, 1e-3), ("bf16", torch.bfloat16, 2e-2)]:
    subprocess.run([L, "logits", "--model", d, "--ids", ids_path, "--out", logits_path,
                    "--device", "cuda", "--dtype", dt], check=True)
    ours = load_file(logits_path)["logits"]
    hf = AutoModelForCausalLM.from_pretrained(d, dtype=tdt).cuda().eval()
    worst = 0.0
    for b, s in enumerate(ids):
        with torch.no_grad():
            ref = hf(torch.tensor([s]).cuda()).logits.float().cpu().numpy()[0]
        scale = np.abs(ref).max() if dt == "bf16" else 1.0
        worst = max(worst, float(np.abs(ours[b, : len(s)] - ref).max() / scale))
    print(f"SmolLM2 CUDA {dt}: max {'rel' if dt == 'bf16' else 'abs'} logits err vs HF = {worst:.3g} "
          f"(tol {tol}) -> {'OK' if worst <= tol else 'FAIL'}")
    with torch.no_grad():
        out = hf.generate(torch.tensor([ids[0]]).cuda(), max_new_tokens=24, do_sample=False)[0, len(ids[0]):].tolist()
    got = json.loads(subprocess.run([L, "generate", "--model", d, "--prompt-ids", json.dumps(ids[0]),
                                     "--max-new-tokens", "24", "--device", "cuda", "--dtype", dt],
                                    check=True, capture_output=True, text=True).stdout)
    n = min(len(out), len(got))
    print(f"  greedy tokens == HF generate ({dt}, {n} tokens): {got[:n] == out[:n]}")
