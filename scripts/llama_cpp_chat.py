"""Answers one chat prompt with a GGUF model in llama.cpp (through llama-cpp-python, which
scripts/bootstrap.sh installs): the chat template and tokenizer come from the GGUF file, decoding is greedy.
Prints the answer. The main job's last step (scripts/pipeline.sh) runs the exported merged model with it.

    python scripts/llama_cpp_chat.py MODEL.gguf --prompt TEXT [--max-tokens N] [--threads T]
"""
import argparse
import os
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gguf")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    try:
        from llama_cpp import Llama
    except ImportError:
        sys.exit("llama_cpp_chat: llama-cpp-python is not installed (scripts/bootstrap.sh installs it)")
    if not os.path.isfile(a.gguf):
        sys.exit(f"llama_cpp_chat: {a.gguf}: no such file")
    llm = Llama(model_path=a.gguf, n_ctx=512, n_threads=a.threads, n_threads_batch=a.threads, verbose=False)
    r = llm.create_chat_completion([{"role": "user", "content": a.prompt}], temperature=0.0,
                                   max_tokens=a.max_tokens)
    print(r["choices"][0]["message"]["content"].strip())


if __name__ == "__main__":
    main()
