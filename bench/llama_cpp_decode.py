"""Decode tokens/s of a GGUF model in llama.cpp (llama-cpp-python), measured the way bench_forward
measures lota: a prompt of CONTEXT tokens, then STEPS single-token steps (each returns the logits of
its token), warm-up then the median of REPEAT runs. Prints one JSON line like bench_forward's.

    python bench/llama_cpp_decode.py MODEL.gguf --threads 2 --context 128 --steps 64 --repeat 3 --label L
"""
import argparse
import json
import statistics
import time

from llama_cpp import Llama


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gguf")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--label", default="llama.cpp")
    a = p.parse_args()
    llm = Llama(model_path=a.gguf, n_ctx=a.context + a.steps + 8, n_threads=a.threads, n_threads_batch=a.threads,
                n_batch=a.context, verbose=False)
    vocab = llm.n_vocab()
    prompt = [(17 + 7919 * i) % vocab for i in range(a.context)]
    steps = [(23 + 104729 * i) % vocab for i in range(a.steps)]

    def run():
        llm.reset()
        llm.eval(prompt)
        t0 = time.perf_counter()
        for t in steps:
            llm.eval([t])
        return time.perf_counter() - t0

    run()  # warm-up
    t = statistics.median(run() for _ in range(a.repeat))
    print(json.dumps({"impl": a.label, "device": "cpu", "threads": a.threads, "batch": 1, "context": a.context,
                      "steps": a.steps, "seconds": round(t, 4), "tokens_per_s": round(a.steps / t, 1)}))


if __name__ == "__main__":
    main()
