"""Benchmark the knowledge layer: cold compile, warm load, lazy parts, peak RSS.

Each measurement runs in a fresh Python process so that imports and the process-wide
singleton do not hide costs.

    .venv/bin/python bench/codesets_load.py [--index-dir ../shared/data/icd10cm-2025-index] [--out bench/RESULTS-codesets.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from opencac.codesets import load_knowledge
index_dir = sys.argv[1] or None
kb = load_knowledge(index_dir=index_dir)
t_load = time.perf_counter() - t0
t = time.perf_counter(); kb.get("E11.9"); kb.is_billable("S72.001A"); kb.inherited_notes("E11.9"); t_cm = time.perf_counter() - t
t = time.perf_counter(); kb.pcs_axes("0DTJ4ZZ"); t_pcs = time.perf_counter() - t
t = time.perf_counter(); n_terms = sum(1 for _ in kb.terms()); t_terms = time.perf_counter() - t
t = time.perf_counter(); kb.search("type 2 diabetes with chronic kidney disease"); t_search1 = time.perf_counter() - t
t = time.perf_counter()
for q in ("fracture of neck of femur", "ct of the chest", "acute appendicitis", "poisoning by acetaminophen"):
    kb.search(q)
t_search = (time.perf_counter() - t) / 4
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": t_load, "first_cm_lookups_s": t_cm, "first_pcs_s": t_pcs, "terms_s": t_terms,
                  "terms": n_terms, "first_search_s": t_search1, "search_s": t_search, "peak_rss_mb": rss}))
"""


def run(cache: Path, index_dir: str) -> dict[str, float]:
    env = dict(os.environ, OPENCAC_CACHE_DIR=str(cache), OPENCAC_CONFIG_DIR=str(cache / "config"),
               OPENCAC_DATA_DIR=str(cache / "data"))
    env.pop("OPENCAC_CM_INDEX_DIR", None)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, index_dir], env=env, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["process_s"] = time.perf_counter() - t
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index-dir", default="", help="CMS ICD-10-CM index dir (CSV/XML); default: none")
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write a Markdown report here")
    args = ap.parse_args()
    rows = []
    for label, idx in (("CM + PCS", ""), ("CM + PCS + CM index", args.index_dir)):
        if label.endswith("index") and not idx:
            continue
        with tempfile.TemporaryDirectory(prefix="opencac-bench-") as tmp:
            cold = run(Path(tmp), idx)
            warm = [run(Path(tmp), idx) for _ in range(args.warm_runs)]
            size = sum(p.stat().st_size for p in (Path(tmp) / "codesets").glob("*.pkl")) / 2**20
        best = min(warm, key=lambda d: d["load_s"])
        rows.append((label, cold, best, size))
        print(label, json.dumps({"cold": cold, "warm": best, "artifact_mb": size}, indent=1), file=sys.stderr)
    cmd = "python bench/codesets_load.py" + (f" --index-dir {args.index_dir}" if args.index_dir else "") + \
          (f" --out {args.out}" if args.out else "")
    lines = [
        "# Knowledge layer (codesets) benchmark", "",
        f"Command: `{cmd}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}. Each figure is a fresh process; warm = best of {args.warm_runs}.", "",
        "| sources | cold compile+load (s) | warm `load_knowledge()` (s) | first CM look-ups (s) | first PCS access (s) "
        "| all `terms()` (s) | terms | first `search()` (s) | later `search()` (s) | peak RSS warm (MB) | peak RSS cold (MB) "
        "| artifacts (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, cold, w, size in rows:
        lines.append(f"| {label} | {cold['load_s']:.2f} | {w['load_s']:.3f} | {w['first_cm_lookups_s']:.3f} | "
                     f"{w['first_pcs_s']:.3f} | {w['terms_s']:.2f} | {w['terms']} | {w['first_search_s']:.3f} | "
                     f"{w['search_s']:.3f} | {w['peak_rss_mb']:.0f} | {cold['peak_rss_mb']:.0f} | {size:.0f} |")
    lines += ["", "Warm load reads only the ICD-10-CM artifact; ICD-10-PCS and the term list (with its search "
              "postings) are read on first use, which the 'first PCS access' and 'all terms()' columns include."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
