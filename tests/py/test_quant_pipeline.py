"""End to end on a real model: SmolLM2-135M-Instruct (imported from its GGUF with `lota import`)
quantized by `lota quantize` and scored by `lota eval --task ppl` on WikiText-2 test (a few
windows, CPU). Expected ordering: 16-bit < 4-bit GPTQ < 3-bit GPTQ, and 3-bit GPTQ < 3-bit RTN.
Knobs (env): LOTA_PPL_WINDOWS (default 4), LOTA_PPL_SEQLEN (512), LOTA_CALIB_SAMPLES (32)."""
import json
import os

from lota_testlib import lota, need_shared, smollm2_gguf

WINDOWS = int(os.environ.get("LOTA_PPL_WINDOWS", "4"))
SEQLEN = int(os.environ.get("LOTA_PPL_SEQLEN", "512"))
SAMPLES = int(os.environ.get("LOTA_CALIB_SAMPLES", "32"))


def ppl(model, data):
    proc = lota("eval", "--task", "ppl", "--model", model, "--data", data, "--seqlen", SEQLEN, "--max-windows",
                WINDOWS, "--json", timeout=3000)
    return json.loads(proc.stdout.strip().splitlines()[-1])["ppl"]


def test_smollm2_wikitext2_ppl_ordering(tmp_path):
    wiki = need_shared("data/wikitext2/wiki.test.joined.txt")
    calib = need_shared("data/c4/c4_demo.jsonl")
    base = tmp_path / "smollm2"
    lota("import", "--gguf", smollm2_gguf(), "--out", base)
    rows = [("16-bit (imported)", base)]
    for name, args in [("4-bit GPTQ g64", ["--bits", 4]), ("3-bit GPTQ g64", ["--bits", 3]),
                       ("3-bit RTN g64", ["--bits", 3, "--method", "rtn"])]:
        out = tmp_path / name.replace(" ", "_")
        lota("quantize", "--model", base, "--out", out, "--calib", calib, "--calib-samples", SAMPLES,
             "--calib-seqlen", SEQLEN, "--seed", 0, "--group-size", 64, *args, timeout=3000)
        rows.append((name, out))
    result = {name: ppl(d, wiki) for name, d in rows}
    print(f"\nWikiText-2 test perplexity, SmolLM2-135M-Instruct, {WINDOWS} windows of {SEQLEN} tokens "
          f"(calibration: {SAMPLES} x {SEQLEN} tokens of C4 demo)")
    print(f"{'model':<22} {'ppl':>10}")
    for name, value in result.items():
        print(f"{name:<22} {value:>10.3f}")
    p16, g4, g3, r3 = result.values()
    assert p16 < g4 < g3, result
    assert g3 < r3, result
