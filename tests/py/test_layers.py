"""The library's layers point one way (docs/architecture.md): every #include "dir/..." in src/<dir> must name
a layer that <dir> may use. Inference (model, adapter, data, merge, eval) must not reach training code."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Layer -> the layers its files may include (itself included). Mirrors the lota_add_layer calls in CMakeLists.txt.
ALLOWED = {
    "util": {"util"},
    "text": {"util", "text"},
    "io": {"util", "text", "io"},
    "dist": {"util", "dist"},
    "kernels": {"util", "io", "kernels"},
    "quant": {"util", "io", "kernels", "quant"},
    "exporter": {"util", "text", "io", "kernels", "quant", "exporter"},
    "model": {"util", "text", "io", "kernels", "quant", "model"},
    "data": {"util", "text", "io", "kernels", "quant", "model", "data"},
    "adapter": {"util", "text", "io", "kernels", "quant", "model", "adapter"},
    "calibrate": {"util", "text", "io", "kernels", "quant", "model", "dist", "calibrate"},
    "merge": {"util", "text", "io", "kernels", "quant", "model", "adapter", "merge"},
    "eval": {"util", "text", "io", "kernels", "quant", "model", "adapter", "data", "dist", "eval"},
    "train": {"util", "text", "io", "kernels", "quant", "model", "adapter", "data", "dist", "train"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def test_every_src_folder_is_a_known_layer():
    folders = {p.name for p in (ROOT / "src").iterdir() if p.is_dir()}
    assert folders == set(ALLOWED), f"src/ folders {sorted(folders)} differ from the layer table {sorted(ALLOWED)}"


def test_includes_point_down_the_layers():
    bad = []
    for layer, allowed in ALLOWED.items():
        for f in sorted((ROOT / "src" / layer).glob("*")):
            if f.suffix not in (".h", ".cpp", ".cu", ".cuh"):
                continue
            for used in INCLUDE.findall(f.read_text()):
                if used in ALLOWED and used not in allowed:
                    bad.append(f"{f.relative_to(ROOT)} includes {used}/")
    assert not bad, "layering violations:\n" + "\n".join(bad)
