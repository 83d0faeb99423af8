"""Assertion accuracy: precision/recall per class on

1. the hand-written sentence set (tests/nlp/fixtures/assertion_cases.jsonl; the trigger
   lexicon was tuned on it, so it is a development set), and
2. CodiEsp dev sentences annotated by offsets (tests/nlp/fixtures/assertion_codiesp_dev.jsonl), and
3. CodiEsp train sentences annotated by offsets (tests/nlp/fixtures/assertion_codiesp_train.jsonl);
   text read from ../shared/data, never copied. Each was annotated before the classifier was
   run on it; its first score is the held-out figure, recorded in bench/RESULTS-nlp.md (the
   lexicon was refined afterwards on its errors, so later scores on it are not held out).

    .venv/bin/python bench/nlp_assertion.py [--errors]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=Path, default=REPO / "tests" / "nlp" / "fixtures" / "assertion_cases.jsonl")
    ap.add_argument("--offsets", type=Path, nargs="*",
                    default=[REPO / "tests" / "nlp" / "fixtures" / "assertion_codiesp_dev.jsonl",
                             REPO / "tests" / "nlp" / "fixtures" / "assertion_codiesp_train.jsonl"])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data" / "codiesp")
    ap.add_argument("--errors", action="store_true", help="list the misclassified cases")
    args = ap.parse_args()

    from opencac.nlp.evaluation import evaluate_assertions, read_cases, read_offset_cases

    sets = [("hand-written sentences (development set)", read_cases(args.cases))]
    if args.corpus.is_dir():
        for path in args.offsets:
            sets.append((f"CodiEsp, offset annotations {path.name}", read_offset_cases(path, args.corpus)))
    else:
        print(f"(skipping the CodiEsp set: {args.corpus} not found)")
    for title, cases in sets:
        report = evaluate_assertions(cases)
        print(f"\n### {title}: {len(report.predictions)} cases\n")
        print(report.table())
        if args.errors:
            for case, got, trig in report.errors():
                s, e = case.span()
                ctx = case.sentence[max(0, s - 80) : e + 40].replace("\n", " / ")
                print(f"- expected {case.expected}, got {got} (trigger {trig!r}): {case.target!r} in ...{ctx}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
