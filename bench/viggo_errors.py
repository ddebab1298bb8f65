"""What a ViGGO prediction gets wrong, beyond the official rule's right/wrong (lota eval --task viggo --out FILE).

For each FILE: how many predictions have the shape `function(attr[value], ...)` with one of ViGGO's nine
functions, how many name the reference's function, how many have the reference's attribute names (values
aside), and how many are right by the official rule (the verdict lota wrote: function and every attribute
with its value). Usage: python bench/viggo_errors.py EVAL.jsonl [...]
"""
import json
import re
import sys

FUNCTIONS = {"inform", "request", "give_opinion", "confirm", "verify_attribute", "suggest", "request_explanation",
             "recommend", "request_attribute"}


def shape(text):
    """(function, attribute names) of `fn(a[v], b[w])`, or None when the text has another shape."""
    m = re.fullmatch(r"\s*([a-z_]+)\((.*)\)\s*", text, re.S)
    return (m.group(1), re.findall(r"([a-z_]+)\[", m.group(2))) if m else None


for path in sys.argv[1:]:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    counts = {"function call": 0, "right function": 0, "right attribute names": 0, "right (official)": 0}
    for r in rows:
        p, ref = shape(r["prediction"]), shape(r["reference"])
        counts["right (official)"] += r["verdict"] == "correct"
        if p and p[0] in FUNCTIONS:
            counts["function call"] += 1
        if p and ref and p[0] == ref[0]:
            counts["right function"] += 1
        if p and ref and sorted(set(p[1])) == sorted(set(ref[1])):
            counts["right attribute names"] += 1
    print(f"{path}: {len(rows)} examples; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
