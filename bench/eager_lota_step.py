"""A faithful PyTorch *eager* formulation of the official LoTA-QAF layer, timed over one training step.

The reference lota's trainer is compared against (bench/train_step.md). Written from ../shared/DESIGN.md §1:
at EVERY forward of every adapted linear it materialises, as the official code does,

    P  = A·B                                         (bf16, K×N)
    M  = +1 where P >  ω and Q < maxq, −1 where P < −ω and Q > 0, else 0        (bf16, K×N)
    F  = (1/(g·ω)) · Σ_{k in group} (P − ω·M)        (per group and column, M detached)
    W' = S · (Q + M − Z + F)                         (bf16, K×N)
    y  = x · W'

with a straight-through estimator for M (M_ste = M.detach() + P − P.detach(), so ∂M/∂P = 1) and M a constant
inside F. Q is kept packed (two 4-bit codes per byte, like a GPTQ checkpoint's memory footprint) and unpacked at
every forward; S is fp16 per (group, column) as GPTQ stores it, Z integer per (group, column). Everything else of
the model (embeddings, RMSNorms, LM head) is bf16 and frozen; only A and B train. One step = forward + mean CE
over all tokens of a random-id micro-batch + backward (gradient checkpointing per decoder layer, HF's
non-reentrant checkpoint) + a t-SignSGD update of every A and B (per-tensor quantile q of |grad|, exact via
kthvalue; entries above it and above τ = 1e-9 move by −sign(grad), clamped to [−1, 1]).

Usage (GPU):   python3 bench/eager_lota_step.py --device cuda --micro-batches 4,16 --seq 1280
       (CPU):  python bench/eager_lota_step.py --device cpu --hidden 64 --layers 2 --heads 4 --kv-heads 2 \
                   --intermediate 128 --vocab 512 --seq 32 --micro-batches 2 --group-size 16 --rank 8
       check:  python bench/eager_lota_step.py --check     (autograd ∂A, ∂B vs DESIGN's closed form, float64)
Prints one JSON line per micro-batch size.
"""
import argparse
import json
import math
import statistics
import sys
import time
import warnings

import torch
import torch.nn as nn


# ---------------------------------------------------------------------------------------------- the layer
def unpack_codes(packed, bits, K):
    """[K/per, N] uint8 with per = 8/bits codes per byte (code i of a byte in bits i*bits..) -> [K, N] uint8."""
    if bits == 8:
        return packed
    per = 8 // bits
    mask = (1 << bits) - 1
    parts = [(packed >> (i * bits)) & mask for i in range(per)]
    return torch.stack(parts, dim=1).reshape(K, packed.shape[1])


def pack_codes(Q, bits):
    if bits == 8:
        return Q.clone()
    per = 8 // bits
    K, N = Q.shape
    q = Q.reshape(K // per, per, N).to(torch.int32)
    out = torch.zeros(K // per, N, dtype=torch.int32, device=Q.device)
    for i in range(per):
        out |= q[:, i, :] << (i * bits)
    return out.to(torch.uint8)


def lota_weight(Q, S, Z, A, B, g, omega, maxq, dtype):
    """W' = S·(Q + M − Z + F) in `dtype`, differentiable in A and B (official formulation, all K×N materialised).

    Q [K, N] integer codes, S [G, N] scales, Z [G, N] integer zeros, A [K, r], B [r, N]."""
    K, N = Q.shape
    G = K // g
    P = A.to(dtype) @ B.to(dtype)                                         # K×N
    Pd = P.detach()
    Qf = Q.to(dtype)
    M = ((Pd > omega) & (Qf < maxq)).to(dtype) - ((Pd < -omega) & (Qf > 0)).to(dtype)  # markers, masked at the grid edges
    M_ste = M + (P - Pd)                                                  # value M, gradient 1 w.r.t. P
    F = (P - omega * M).view(G, g, N).sum(dim=1) / (g * omega)           # [G, N]; M is a constant here
    inner = Qf.view(G, g, N) + M_ste.view(G, g, N) - Z.to(dtype).view(G, 1, N) + F.view(G, 1, N)
    return (S.to(dtype).view(G, 1, N) * inner).view(K, N)


FORWARDS = [0]  # counts layer forwards per step (2 per layer per step when checkpointing recomputes)


class OfficialLotaLinear(nn.Module):
    def __init__(self, K, N, bits, g, r, omega, scale_dtype=torch.float16, device=None):
        super().__init__()
        assert K % g == 0, f"K={K} not divisible by group size {g}"
        self.K, self.N, self.bits, self.g, self.r, self.omega = K, N, bits, g, r, float(omega)
        self.maxq = float((1 << bits) - 1)
        self.packed = bits in (2, 4, 8)
        assert not self.packed or K % (8 // bits) == 0
        rows = K // (8 // bits) if self.packed else K
        self.register_buffer("qweight", torch.empty(rows, N, dtype=torch.uint8, device=device))
        self.register_buffer("scales", torch.empty(K // g, N, dtype=scale_dtype, device=device))
        self.register_buffer("zeros", torch.empty(K // g, N, dtype=torch.uint8, device=device))
        self.A = nn.Parameter(torch.empty(K, r, dtype=torch.bfloat16, device=device))
        self.B = nn.Parameter(torch.empty(r, N, dtype=torch.bfloat16, device=device))

    def codes(self):
        return unpack_codes(self.qweight, self.bits, self.K) if self.packed else self.qweight

    @torch.no_grad()
    def init_random(self, gen, b_density, w_std=0.02):
        dev = self.qweight.device
        maxq = int(self.maxq)
        Q = torch.randint(0, maxq + 1, (self.K, self.N), generator=gen, device=dev, dtype=torch.uint8)
        self.qweight.copy_(pack_codes(Q, self.bits) if self.packed else Q)
        # a plausible grid: 6 std of a N(0, w_std) weight spread over maxq steps, zero near the middle
        base = 6.0 * w_std / maxq
        self.scales.copy_((base * (0.75 + 0.5 * torch.rand(self.scales.shape, generator=gen, device=dev))))
        mid = (maxq + 1) // 2
        self.zeros.copy_(torch.randint(max(mid - 2, 0), min(mid + 2, maxq) + 1, self.zeros.shape, generator=gen,
                                       device=dev, dtype=torch.uint8))
        # A: kaiming-normal on nn.Linear(K, r)'s [r, K] weight, ternarised with δ = 0.75·mean|A| (DESIGN §1)
        a = torch.randn(self.r, self.K, generator=gen, device=dev, dtype=torch.float32) * math.sqrt(2.0 / self.K)
        d = 0.75 * a.abs().mean()
        self.A.copy_(((a > d).float() - (a < -d).float()).t())
        # B: random ternary, density b_density, ±1 equally likely (DESIGN's init is B = 0; see bench/train_step.md)
        u = torch.rand(self.r, self.N, generator=gen, device=dev)
        self.B.copy_(torch.where(u < b_density / 2, -1.0, torch.where(u < b_density, 1.0, 0.0)))

    def weight(self, dtype=torch.bfloat16):
        return lota_weight(self.codes(), self.scales, self.zeros, self.A, self.B, self.g, self.omega, self.maxq,
                           dtype)

    def forward(self, x):
        FORWARDS[0] += 1
        return x @ self.weight(x.dtype)


# -------------------------------------------------------------------------------------- t-SignSGD
@torch.no_grad()
def tsignsgd_update(params, q=0.95, tau=1e-9):
    moved = 0
    for p in params:
        g = p.grad
        if g is None:
            continue
        a = g.detach().abs().flatten().float()
        n = a.numel()
        k = min(n, max(1, int(math.floor(q * (n - 1))) + 1))   # lower order statistic of the q-quantile
        theta = a.kthvalue(k).values
        move = (g.abs() > theta) & (g.abs() > tau)
        moved += int(move.sum()) if p.device.type == "cpu" else 0
        p.copy_(torch.where(move, (p - torch.sign(g)).clamp_(-1, 1), p))
        p.grad = None
    return moved


# -------------------------------------------------------------------------------------- the model
TARGETS_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
TARGETS_MLP = ("gate_proj", "up_proj", "down_proj")


def build_model(a, dev):
    from transformers import LlamaConfig, LlamaForCausalLM
    head_dim = a.hidden // a.heads
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
                      num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                      max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, use_cache=False)
    cfg._attn_implementation = a.attn  # works on transformers 4.4x and 5.x alike
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
        for layer in model.model.layers:
            for parent, names in ((layer.self_attn, TARGETS_ATTN), (layer.mlp, TARGETS_MLP)):
                for name in names:
                    lin = getattr(parent, name)
                    assert lin.bias is None
                    K, N = lin.in_features, lin.out_features
                    setattr(parent, name, OfficialLotaLinear(K, N, a.bits, a.group_size, a.rank, a.omega,
                                                             scale_dtype=getattr(torch, a.scale_dtype)))
    model.to_empty(device=dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, OfficialLotaLinear):
                m.init_random(gen, a.b_density)
            elif isinstance(m, nn.Embedding) or (isinstance(m, nn.Linear)):
                m.weight.normal_(0.0, 0.02, generator=gen)
            elif type(m).__name__.endswith("RMSNorm"):
                m.weight.fill_(1.0)
        # rotary inv_freq buffers were on meta: rebuild them for real (constructor takes only the config)
        rot = type(model.model.rotary_emb)(config=model.config)
        model.model.rotary_emb = rot.to(dev)
    for n_, p in model.named_parameters():
        p.requires_grad_(n_.endswith(".A") or n_.endswith(".B"))
    assert head_dim * a.heads == a.hidden
    model.train()
    with warnings.catch_warnings():  # transformers 5.2x: deprecated alias of activation_checkpointing_enable
        warnings.simplefilter("ignore", FutureWarning)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def train_step(model, params, ids, q, dev):
    """ids [accum, mb, seq]: one optimizer step over `accum` micro-batches (gradient accumulation, mean
    loss). Returns (loss, seconds in the t-SignSGD update); the caller times the whole step."""
    total = 0.0
    for mb_ids in ids:
        out = model(input_ids=mb_ids, labels=mb_ids, use_cache=False)
        (out.loss / ids.shape[0]).backward()
        total = total + out.loss.detach() / ids.shape[0]
    sync(dev)
    t0 = time.perf_counter()
    tsignsgd_update(params, q=q)
    sync(dev)
    return total, time.perf_counter() - t0


def bench(a):
    dev = torch.device(a.device)
    t_build = time.perf_counter()
    model = build_model(a, dev)
    sync(dev)
    t_build = time.perf_counter() - t_build
    params = [p for p in model.parameters() if p.requires_grad]
    n_lota = sum(1 for m in model.modules() if isinstance(m, OfficialLotaLinear))
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed + 1)
    import transformers
    for mb in [int(s) for s in a.micro_batches.split(",")]:
        ids_list = [torch.randint(0, a.vocab, (a.accum, mb, a.seq), generator=gen, device=dev)
                    for _ in range(a.steps + 1)]
        FORWARDS[0] = 0
        loss, _ = train_step(model, params, ids_list[0], a.q, dev)  # warm-up
        sync(dev)
        fwd_per_step = FORWARDS[0]
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        times, opt_times = [], []
        for i in range(a.steps):
            sync(dev)
            t0 = time.perf_counter()
            loss, t_opt = train_step(model, params, ids_list[i + 1], a.q, dev)
            sync(dev)
            times.append(time.perf_counter() - t0)
            opt_times.append(t_opt)
        step = statistics.median(times)
        rec = {"impl": "eager-official", "micro_batch": mb, "batch": mb * a.accum, "seq": a.seq,
               "step_s": round(step, 4), "tokens_per_s": round(mb * a.accum * a.seq / step, 1),
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if dev.type == "cuda" else None,
               "reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3) if dev.type == "cuda" else None,
               "steps_s": [round(t, 4) for t in times], "optimizer_s": round(statistics.median(opt_times), 4),
               "loss": round(float(loss), 4),
               "layer_forwards_per_step": fwd_per_step, "lota_layers": n_lota,
               "attn": model.config._attn_implementation, "device": a.device,
               "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None, "build_s": round(t_build, 2),
               "torch": torch.__version__, "transformers": transformers.__version__,
               "config": {"hidden": a.hidden, "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads,
                          "intermediate": a.intermediate, "vocab": a.vocab, "bits": a.bits,
                          "group_size": a.group_size, "rank": a.rank, "omega": a.omega, "b_density": a.b_density,
                          "q": a.q}}
        if not math.isfinite(float(loss)):
            rec["warning"] = "loss not finite"
        print(json.dumps(rec), flush=True)
        del ids_list
        if dev.type == "cuda":
            torch.cuda.empty_cache()


# -------------------------------------------------------------------------------------- --check
def check(seed=0):
    """float64, tiny layer: autograd ∂L/∂A, ∂L/∂B, ∂L/∂x through lota_weight vs DESIGN §1's closed form."""
    torch.manual_seed(seed)
    dt = torch.float64
    K, N, g, r, bits, T = 32, 12, 8, 4, 4, 5
    omega, maxq, G = 0.75 * r, (1 << bits) - 1, K // g
    Q = torch.randint(0, maxq + 1, (K, N), dtype=torch.uint8)
    Q[::5, ::2] = 0           # grid edges so the masks matter
    Q[1::5, 1::2] = maxq
    S = (0.01 + 0.02 * torch.rand(G, N, dtype=dt)).to(torch.float16)
    Z = torch.randint(6, 10, (G, N), dtype=torch.uint8)
    A0 = torch.randint(-1, 2, (K, r)).to(dt)
    B0 = torch.randint(-1, 2, (r, N)).to(dt)
    A0[:8] = 1.0; B0[:, :3] = 1.0; B0[:, 3:5] = -1.0   # P = ±r on some entries: markers of both signs fire
    assert pack_codes(Q, bits).shape == (K // 2, N) and torch.equal(unpack_codes(pack_codes(Q, bits), bits, K), Q)
    A = A0.clone().requires_grad_(True)
    B = B0.clone().requires_grad_(True)
    x = torch.randn(T, K, dtype=dt, requires_grad=True)
    R = torch.randn(T, N, dtype=dt)
    W = lota_weight(Q, S, Z, A, B, g, omega, float(maxq), dt)
    y = x @ W
    (y * R).sum().backward()

    # forward: the equations written element by element
    P = A0 @ B0
    Qd = Q.to(dt)
    M = torch.zeros(K, N, dtype=dt)
    M[(P > omega) & (Qd < maxq)] = 1
    M[(P < -omega) & (Qd > 0)] = -1
    F = (P - omega * M).view(G, g, N).sum(1) / (g * omega)
    Sd = S.to(dt)
    Wref = Sd.repeat_interleave(g, 0) * (Qd + M - Z.to(dt).repeat_interleave(g, 0) + F.repeat_interleave(g, 0))
    # backward: closed form
    Gw = x.detach().t() @ R
    Gs = Sd.repeat_interleave(g, 0) * Gw
    dP = Gs + (Gs.view(G, g, N).sum(1) / (g * omega)).repeat_interleave(g, 0)
    dA, dB = dP @ B0.t(), A0.t() @ dP
    dx = R @ Wref.t()

    def rel(u, v):
        return float((u - v).abs().max() / v.abs().max().clamp_min(1e-300))

    # B = 0 => W' = S(Q - Z) exactly
    W0 = lota_weight(Q, S, Z, A0, torch.zeros_like(B0), g, omega, float(maxq), dt)
    res = {"check": "eager-official layer vs DESIGN §1 (float64)", "markers_pos": int((M > 0).sum()),
           "markers_neg": int((M < 0).sum()), "masked_by_edges": int(((P > omega) & (Qd >= maxq)).sum()
                                                                   + ((P < -omega) & (Qd <= 0)).sum()),
           "rel_err_W": rel(W.detach(), Wref), "rel_err_dA": rel(A.grad, dA), "rel_err_dB": rel(B.grad, dB),
           "rel_err_dx": rel(x.grad, dx),
           "rel_err_W_B0": rel(W0, Sd.repeat_interleave(g, 0) * (Qd - Z.to(dt).repeat_interleave(g, 0)))}
    worst = max(v for k, v in res.items() if k.startswith("rel_err"))
    ok = worst <= 1e-10 and res["markers_pos"] > 0 and res["markers_neg"] > 0 and res["masked_by_edges"] > 0
    res["max_rel_err"] = worst
    res["ok"] = ok
    print(json.dumps(res), flush=True)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="verify the layer's gradients in float64 on CPU and exit")
    p.add_argument("--device", default="cuda")
    p.add_argument("--micro-batches", default="4,16")
    p.add_argument("--seq", type=int, default=1280)
    p.add_argument("--steps", type=int, default=3, help="timed steps (median reported) after 1 warm-up")
    p.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step (batch = accum x micro-batch)")
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--intermediate", type=int, default=14336)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--omega", type=float, default=None, help="default 0.75*rank")
    p.add_argument("--b-density", type=float, default=0.05, help="fraction of nonzero entries in the random B")
    p.add_argument("--q", type=float, default=0.95, help="t-SignSGD quantile (step-1 value of the schedule)")
    p.add_argument("--scale-dtype", default="float16", choices=["float16", "bfloat16"])
    p.add_argument("--attn", default="sdpa")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.check:
        sys.exit(0 if check() else 1)
    if a.omega is None:
        a.omega = 0.75 * a.rank
    if a.device == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    bench(a)


if __name__ == "__main__":
    main()
