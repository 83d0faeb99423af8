"""NLP speed benchmark: automaton build over all knowledge-base terms, save/load, and
analyze + match (+ assertion + attributes) time per CodiEsp note.

    .venv/bin/python bench/nlp_speed.py [--source kb|csv] [--notes N] [--split train]

``--source kb`` (default) uses ``opencac.codesets.load_knowledge().terms()``;
``--source csv`` expands the ICD-10-CM 2025 index CSV hierarchy under ../shared/data into
phrases itself (the fallback used before the knowledge layer landed).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def csv_phrases(index_dir: Path) -> Iterator[tuple[str, str]]:
    """(phrase, code) from the flattened CMS index CSV: main term + subterms joined."""
    for name in ("ICD10CM_2025_Index.csv", "ICD10CM_2025_ExternalIndex.csv"):
        stack: list[str] = []
        with (index_dir / name).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                level = int(row["Level"])
                stack = stack[:level] + [row["Term"]]
                if row.get("Code"):
                    yield ", ".join(stack), row["Code"]


def clock() -> float:
    """CPU time of this thread: per-note figures then do not depend on other load on the machine."""
    return time.thread_time()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", choices=("kb", "csv"), default="kb")
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--split", default="train")
    args = ap.parse_args()

    from opencac.nlp import MentionMatcher, analyze

    t0 = clock()
    if args.source == "kb":
        from opencac.codesets import load_knowledge

        kb = load_knowledge(index_dir=SHARED / "icd10cm-2025-index")
        entries = [(e.phrase, e) for e in kb.terms()]
    else:
        entries = list(csv_phrases(SHARED / "icd10cm-2025-index"))
    t_terms = clock() - t0
    print(f"terms: {len(entries):,} from {args.source} in {t_terms:.1f} s")

    t0, c0 = time.perf_counter(), time.process_time()
    m = MentionMatcher.build(entries)
    t_build, c_build = time.perf_counter() - t0, time.process_time() - c0
    print(f"build: {t_build:.1f} s wall, {c_build:.1f} s CPU -> {len(m):,} distinct normalised phrases, "
          f"{len(m.bag_keys_):,} bags")

    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "matcher.pkl"
        t0 = clock()
        m.save(p)
        t_save = clock() - t0
        size = p.stat().st_size
        t0, c0 = time.perf_counter(), time.process_time()
        m = MentionMatcher.load(p)
        t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
    print(f"save: {t_save:.2f} s ({size / 1e6:.0f} MB)   load: {t_load:.2f} s wall, {c_load:.2f} s CPU")

    files = sorted((SHARED / "codiesp" / args.split / "text_files_en").glob("*.txt"))[: args.notes]
    texts = [f.read_text(encoding="utf-8") for f in files]
    words = [len(t.split()) for t in texts]
    for t in texts[:5]:  # warm-up (trigger regex compile, caches)
        m.find(analyze(t))
    from opencac.nlp import assertion

    assertion.find_triggers.cache_clear()
    per_analyze: list[float] = []
    per_match: list[float] = []
    per_bare: list[float] = []
    n_mentions = 0
    for t in texts:
        t0 = clock()
        doc = analyze(t)
        t1 = clock()
        ms = m.find(doc)
        t2 = clock()
        m.find(doc, assertion=False, attributes=False, bag=False)
        t3 = clock()
        per_analyze.append(t1 - t0)
        per_match.append(t2 - t1)
        per_bare.append(t3 - t2)
        n_mentions += len(ms)
    ms_ = lambda xs: 1000 * statistics.mean(xs)  # noqa: E731
    p95 = lambda xs: 1000 * sorted(xs)[int(0.95 * (len(xs) - 1))]  # noqa: E731
    print(f"notes: {len(texts)} CodiEsp {args.split} notes, mean {statistics.mean(words):.0f} words "
          "(per-note times are thread CPU time)")
    print(f"analyze (sections+sentences): mean {ms_(per_analyze):.2f} ms, p95 {p95(per_analyze):.2f} ms")
    print(f"find, full (exact+bag+assertion+attributes): mean {ms_(per_match):.2f} ms, p95 {p95(per_match):.2f} ms,"
          f" {n_mentions / len(texts):.0f} mentions/note")
    print(f"find, exact only (no bag/assertion/attributes): mean {ms_(per_bare):.2f} ms, p95 {p95(per_bare):.2f} ms")
    tot = [a + b for a, b in zip(per_analyze, per_match)]
    print(f"analyze+find per note: mean {ms_(tot):.2f} ms -> {1000 / ms_(tot):.0f} notes/s on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
