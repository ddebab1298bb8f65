#!/usr/bin/env bash
# Installs what lota needs to build and test, idempotently:
#   - Debian packages (compiler tools, nlohmann-json, CLI11, PCRE2, GoogleTest, ccache, ninja);
#   - a project-local Python venv (.venv) with torch==2.13.0 (CPU, LibTorch comes from it) and the
#     test references (transformers, tokenizers, jinja2, gguf, peft, numpy, pytest), and GPTQModel
#     with optimum (the GPTQ interop tests);
#   - llama-cpp-python (llama.cpp itself: tests/py/test_llama_cpp_export.py and the main job's last step),
#     built once from its PyPI source for any x86-64 CPU and kept as a wheel.
# On a machine whose system python3 already has a CUDA build of torch (and no .venv), that python is
# used instead and nothing is downloaded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

need_apt=()
for pkg in nlohmann-json3-dev libcli11-dev libpcre2-dev libgtest-dev ccache ninja-build cmake g++ pkg-config; do
    command -v "$pkg" >/dev/null 2>&1 && continue  # tools installed outside dpkg
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ -d "$ROOT/.deps/deb" ] && ls "$ROOT"/.deps/deb/*.deb >/dev/null 2>&1; then
        # Offline machine: unpack the .deb files that scripts/offline_deps.sh downloaded.
        echo "bootstrap: unpacking Debian packages from .deps/deb"
        for f in "$ROOT"/.deps/deb/*.deb; do dpkg -x "$f" "$ROOT/.deps/root"; done
    else
        echo "bootstrap: installing Debian packages: ${need_apt[*]}"
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
fi

if python3 -c 'import torch,sys; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null && [ ! -d .venv ]; then
    echo "bootstrap: using system python3 with CUDA torch $(python3 -c 'import torch;print(torch.__version__)')"
    exit 0
fi

STAMP=.venv/.lota-requirements
REQ="torch==2.13.0 numpy transformers tokenizers jinja2 gguf safetensors peft accelerate pytest sentencepiece protobuf"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQ" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    echo "bootstrap: installing Python packages into .venv"
    .venv/bin/pip install -q --disable-pip-version-check $REQ
    echo "$REQ" > "$STAMP"
fi

# GPTQModel, and optimum (through which transformers loads GPTQ), for tests/py/test_gptq_interop.py.
# Both are pure Python. Installed without their dependency pins: GPTQModel asks for a newer torch than
# the one LibTorch comes from, and its CPU Torch kernel runs on this one; the modules it imports are
# listed here instead.
GPTQ_STAMP=.venv/.lota-gptq-requirements
GPTQ_REQ="gptqmodel==7.7.0 optimum==2.3.0 pypcre==0.6.4 logbar==0.4.15 tokenicer==0.0.14 device-smi==0.5.7 defuser==0.0.28 threadpoolctl==3.8.0 pillow==13.0.0"
if [ ! -f "$GPTQ_STAMP" ] || [ "$(cat "$GPTQ_STAMP")" != "$GPTQ_REQ" ]; then
    echo "bootstrap: installing GPTQModel and optimum into .venv (no dependency resolution)"
    .venv/bin/pip install -q --disable-pip-version-check --no-deps $GPTQ_REQ
    echo "$GPTQ_REQ" > "$GPTQ_STAMP"
fi

# llama-cpp-python, built from the PyPI source (it vendors llama.cpp): about 7 minutes on 2 cores, so the
# wheel is built once into .cache/wheels and installed from there (or from $LOTA_WHEEL_DIR or .whl/ when
# one is there). The build is portable (GGML_NATIVE=OFF): a native build on a machine with AMX dies with
# SIGILL where the wheel runs on a CPU without it, and AVX-512/AMX are off for the same reason.
LLAMA_STAMP=.venv/.lota-llama-cpp
LLAMA_REQ="llama-cpp-python==0.3.36"
LLAMA_WHEEL_GLOB="llama_cpp_python-0.3.36-*.whl"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
WHEELS="$ROOT/.cache/wheels"
# The source is kept too: tests/py/test_gguf_converter.py runs llama.cpp's own convert_hf_to_gguf.py from it.
LLAMA_SDIST="$WHEELS/llama_cpp_python-0.3.36.tar.gz"
if [ ! -f "$LLAMA_SDIST" ]; then
    echo "bootstrap: downloading the $LLAMA_REQ source into $WHEELS"
    mkdir -p "$WHEELS"
    .venv/bin/pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$WHEELS" "$LLAMA_REQ"
fi
if [ ! -f "$LLAMA_STAMP" ] || [ "$(cat "$LLAMA_STAMP")" != "$LLAMA_REQ $LLAMA_CMAKE_ARGS" ]; then
    whl=""
    for dir in ${LOTA_WHEEL_DIR:-} "$ROOT/.whl" "$WHEELS"; do
        for f in "$dir"/$LLAMA_WHEEL_GLOB; do [ -f "$f" ] && { whl="$f"; break 2; }; done
    done
    if [ -z "$whl" ]; then
        echo "bootstrap: building $LLAMA_REQ from source into $WHEELS (llama.cpp, portable CPU build; ~7 min on 2 cores, once)"
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip wheel -q \
            --disable-pip-version-check --no-deps -w "$WHEELS" "$LLAMA_SDIST"
        whl="$(ls "$WHEELS"/$LLAMA_WHEEL_GLOB | head -1)"
    fi
    echo "bootstrap: installing $(basename "$whl") into .venv"
    .venv/bin/pip install -q --disable-pip-version-check "$whl"
    echo "$LLAMA_REQ $LLAMA_CMAKE_ARGS" > "$LLAMA_STAMP"
fi
