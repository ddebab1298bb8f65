#!/usr/bin/env bash
# Installs what lota needs to build and test, idempotently:
#   - Debian packages (compiler tools, nlohmann-json, CLI11, PCRE2, GoogleTest, ccache, ninja);
#   - a project-local Python venv (.venv) with torch==2.13.0 (CPU, LibTorch comes from it) and the
#     test references (transformers, tokenizers, jinja2, gguf, peft, numpy, pytest).
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
