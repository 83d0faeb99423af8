"""Candidate recall of the mention matcher on CodiEsp: how many gold codes are reachable from
the payloads of the mentions found in each note (the ceiling for dictionary candidates).

    .venv/bin/python bench/nlp_recall.py [--split dev] [--notes 250]

Gold codes are compared in their dotted upper-case form; a gold ICD-10-CM code counts as
reached "by category" when some payload shares its first 3 characters, and an ICD-10-PCS
code (CodiEsp keeps many at 4 characters) when some payload starts with it or it starts with
the payload. Payloads ending in ``-`` (incomplete index codes) count by prefix.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _dotted(code: str) -> str:
    c = code.strip().upper()
    return c if "." in c or len(c) <= 3 else f"{c[:3]}.{c[3:]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--notes", type=int, default=250)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/opencac-nlp-recall-matcher.pkl"))
    args = ap.parse_args()

    from opencac.nlp import MentionMatcher, analyze

    if args.cache.is_file():
        m = MentionMatcher.load(args.cache)
    else:
        from opencac.codesets import load_knowledge

        kb = load_knowledge(index_dir=SHARED / "icd10cm-2025-index")
        t0 = time.perf_counter()
        m = MentionMatcher.build((e.phrase, (e.code, e.system.value)) for e in kb.terms())
        print(f"built in {time.perf_counter() - t0:.0f} s")
        m.save(args.cache)

    split = SHARED / "codiesp" / args.split
    gold: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"icd10cm": set(), "icd10pcs": set()})
    for sys_, fname in (("icd10cm", f"{args.split}D.tsv"), ("icd10pcs", f"{args.split}P.tsv")):
        for line in (split / fname).read_text(encoding="utf-8").splitlines():
            doc, code = line.split("\t")[:2]
            gold[doc][sys_].add(_dotted(code) if sys_ == "icd10cm" else code.strip().upper())
    docs = sorted(gold)[: args.notes]
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    n_mentions = n_cands = 0
    for d in docs:
        text = (split / "text_files_en" / f"{d}.txt").read_text(encoding="utf-8")
        ms = m.find(analyze(text, d))
        n_mentions += len(ms)
        for view, keep in (("all", lambda x: True), ("exact", lambda x: x.kind == "exact"),
                           ("not negated/family/hypothetical", lambda x: x.assertion in ("affirmed", "uncertain", "historical"))):
            cands: dict[str, set[str]] = {"icd10cm": set(), "icd10pcs": set()}
            for x in ms:
                if keep(x):
                    for code, sys_ in x.payloads:
                        cands[sys_].add(code.upper())
            if view == "all":
                n_cands += len(cands["icd10cm"]) + len(cands["icd10pcs"])
            for sys_ in ("icd10cm", "icd10pcs"):
                cs = cands[sys_]
                prefixes = {c.rstrip("-").rstrip(".") for c in cs}
                for g in gold[d][sys_]:
                    key = f"{sys_}/{view}"
                    stats[key + "/exact"][1] += 1
                    stats[key + "/exact"][0] += g in cs
                    stats[key + "/category"][1] += 1
                    if sys_ == "icd10cm":
                        hit = any(p[:3] == g[:3] for p in prefixes)
                    else:
                        hit = any(p.startswith(g) or g.startswith(p) for p in prefixes if len(p) >= 3)
                    stats[key + "/category"][0] += hit
    print(f"{len(docs)} CodiEsp {args.split} notes; {n_mentions / len(docs):.0f} mentions and "
          f"{n_cands / len(docs):.0f} candidate codes per note")
    print("| system | mentions used | gold reached exactly | by category/prefix |")
    print("|---|---|---:|---:|")
    for sys_ in ("icd10cm", "icd10pcs"):
        for view in ("all", "exact", "not negated/family/hypothetical"):
            e = stats[f"{sys_}/{view}/exact"]
            c = stats[f"{sys_}/{view}/category"]
            print(f"| {sys_} | {view} | {e[0] / max(1, e[1]):.3f} ({e[0]}/{e[1]}) | {c[0] / max(1, c[1]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
