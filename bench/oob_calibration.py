#!/usr/bin/env python
"""Fit the out-of-the-box engine's confidence curve and threshold on coded notes.

The dictionary-only engine (``opencac code`` with no ``--model``) scores candidates by match
quality (``opencac.coding.heuristic``). This script codes a labelled CodiEsp split with it,
fits an isotonic curve (blocks of 50 rows or more, a step per block) from those scores to "the coders coded this code" per code
system, picks the highest threshold whose micro F1 is within ``--f1-tolerance`` (0.005) of the
best (the more precise of near-equal operating points), and prints the table (``--write`` puts it
into ``src/opencac/coding/heuristic.py``). It then reports, on every ``--eval`` split, MAP,
the calibration error and micro P / R / F1 at the threshold.

    OPENCAC_CM_INDEX_DIR=../shared/data/icd10cm-2025-index \\
        .venv/bin/python bench/oob_calibration.py --data ../shared/data/codiesp --fit train --eval dev [--write]

Fit on ``train`` only: ``dev`` is the benchmark's measuring split.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

HEURISTIC = Path(__file__).resolve().parents[1] / "src" / "opencac" / "coding" / "heuristic.py"


def load_split(data: Path, split: str) -> tuple[list[str], list[str], dict[str, dict[str, list[str]]]]:
    from opencac.coding.evaluate import read_gold

    folder = data / split
    files = sorted((folder / "text_files_en").glob("*.txt"))
    if not files:
        sys.exit(f"no notes in {folder / 'text_files_en'}")
    gold = {"icd10cm": read_gold(folder / f"{split}D.tsv"), "icd10pcs": read_gold(folder / f"{split}P.tsv")}
    return [f.stem for f in files], [f.read_text(encoding="utf-8") for f in files], gold


Pred = dict[str, list[tuple[str, float, bool]]]


def code_split(engine: Any, ids: list[str], texts: list[str], system: str) -> Pred:
    """{doc: [(canonical code, confidence, may be selected)]}, best first. A suggestion may be
    selected unless its assertion rules it out or it is an ICD-10-CM header (as the engine
    decides ``selected``)."""
    from opencac.coding.corpus import canon
    from opencac.coding.engine import NOT_SELECTED

    out: Pred = {}
    for r in engine.code_many(texts, ids, systems=[system], explain_top=0):
        sugg = r.diagnoses if system == "icd10cm" else r.procedures
        out[r.doc_id] = [(canon(s.code), s.confidence, s.assertion not in NOT_SELECTED and not _header(engine, s.code, system))
                         for s in sugg]
    return out


def _header(engine: Any, code: str, system: str) -> bool:
    if system != "icd10cm" or engine.kb is None:
        return False
    obj = engine.kb.find(code, system)
    return obj is not None and not getattr(obj, "billable", True)


def rows(pred: Pred, gold: dict[str, list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels and 'may be selected' flags of every row of documents with gold codes."""
    s, y, ok = [], [], []
    for doc, g in gold.items():
        gs = set(g)
        for code, conf, selectable in pred.get(doc, []):
            s.append(conf)
            y.append(code in gs)
            ok.append(selectable)
    return np.array(s, dtype=np.float64), np.array(y, dtype=np.float64), np.array(ok, dtype=bool)


def best_threshold(s: np.ndarray, y: np.ndarray, ok: np.ndarray, n_gold: int,
                   tolerance: float = 0.0) -> tuple[float, float]:
    """The confidence threshold with the best micro F1; with ``tolerance``, the highest threshold
    whose F1 is within ``tolerance`` of the best (the more precise of near-equal operating points:
    the F1 optimum sits where the next block's precision is about F1 / 2, so a block of codes
    coded one time in three or four is selected or not on a difference of 0.001 in F1)."""
    cand = np.unique(np.round(s[ok], 4))
    f1s: list[tuple[float, float]] = []
    for t in cand:
        sel = ok & (s >= t - 1e-12)
        tp = float(y[sel].sum())
        f1s.append((2 * tp / (sel.sum() + n_gold) if n_gold else 0.0, float(t)))
    if not f1s:
        return 1.0, 0.0
    top = max(f for f, _ in f1s)
    f1, t = max(((f, t) for f, t in f1s if f >= top - tolerance - 1e-12), key=lambda ft: ft[1])
    return t, f1


def report(pred: Pred, gold: dict[str, list[str]], thr: float) -> dict[str, float]:
    from opencac.coding.evaluate import mean_average_precision
    from opencac.coding.ranker import expected_calibration_error

    s, y, ok = rows(pred, gold)
    n_gold = sum(len(set(g)) for g in gold.values())
    sel = ok & (s >= thr)
    tp = float(y[sel].sum())
    p = tp / max(sel.sum(), 1)
    r = tp / max(n_gold, 1)
    return {"map": round(mean_average_precision(gold, {d: [c for c, _, _ in v] for d, v in pred.items()}), 4),
            "ece_all_rows": round(expected_calibration_error(s, y), 4),
            "ece_conf_ge_0.1": round(expected_calibration_error(s[s >= 0.1], y[s >= 0.1]), 4),
            "p": round(p, 3), "r": round(r, 3), "f1": round(2 * p * r / max(p + r, 1e-9), 3),
            "mean_confidence": round(float(s.mean()), 4), "coded_share": round(float(y.mean()), 4)}


def pooled_curve(s: np.ndarray, y: np.ndarray, min_rows: int) -> list[tuple[float, float]]:
    """Isotonic curve whose blocks hold at least ``min_rows`` rows each, as points at each
    block's lowest and highest score: a smaller block is pooled with the neighbour whose rate is
    closer (pooling neighbours keeps the curve monotone), so that no confidence rests on a
    handful of notes (the top block of a plain fit is often a few rows coded 100 %)."""
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y).predict(s)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    blocks = [[int(a), int(b)] for a, b in zip(starts, np.r_[starts[1:], len(s)])]

    def rate(b: list[int]) -> float:
        return float(y[b[0]:b[1]].mean())

    while len(blocks) > 1:
        small = [i for i, b in enumerate(blocks) if b[1] - b[0] < min_rows]
        if not small:
            break
        i = min(small, key=lambda i: blocks[i][1] - blocks[i][0])
        if i == 0:
            j = 1
        elif i == len(blocks) - 1:
            j = i - 1
        else:
            r = rate(blocks[i])
            j = i - 1 if abs(rate(blocks[i - 1]) - r) <= abs(rate(blocks[i + 1]) - r) else i + 1
        a, b = sorted((i, j))
        blocks[a] = [blocks[a][0], blocks[b][1]]
        del blocks[b]
    # each block from its lowest to its highest score at the block's rate (the isotonic step),
    # linear only across the gap between two blocks: a block's rows then average its rate
    pts: list[tuple[float, float]] = []
    for a, b in blocks:
        r = round(rate([a, b]), 4)
        pts.append((round(float(s[a]), 4), r))
        pts.append((round(float(s[b - 1]), 4), r))
    out: list[tuple[float, float]] = []
    for x, r in pts:  # equal rounded scores: keep the first
        if not out or x > out[-1][0]:
            out.append((x, r))
    return out


def write_table(curves: dict[str, list[tuple[float, float]]], thresholds: dict[str, float], fitted_on: str) -> None:
    src = HEURISTIC.read_text(encoding="utf-8")
    body = ["CALIBRATION: dict[str, tuple[tuple[float, float], ...]] = {"]
    for system, pts in curves.items():
        body.append(f'    "{system}": (')
        for i in range(0, len(pts), 4):
            body.append("        " + " ".join(f"({x!r}, {y!r})," for x, y in pts[i:i + 4]))
        body.append("    ),")
    body.append("}")
    body.append("THRESHOLD: dict[str, float] = {" + ", ".join(f'"{k}": {v!r}' for k, v in thresholds.items()) + "}")
    body.append(f"FITTED_ON = {fitted_on!r}")
    new, n = re.subn(r"(# BEGIN CALIBRATION\n).*?(# END CALIBRATION)", lambda m: m.group(1) + "\n".join(body) + "\n"
                     + m.group(2), src, flags=re.S)
    if n != 1:
        sys.exit(f"no calibration block in {HEURISTIC}")
    HEURISTIC.write_text(new, encoding="utf-8")
    print(f"wrote {HEURISTIC}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/codiesp"))
    ap.add_argument("--fit", default="train", help="labelled split the curve is fitted on")
    ap.add_argument("--eval", action="append", default=[], help="labelled split to report on (repeatable)")
    ap.add_argument("--min-rows", type=int, default=50, help="fewest candidate rows behind one curve point")
    ap.add_argument("--write", action="store_true", help="rewrite the table in src/opencac/coding/heuristic.py")
    ap.add_argument("--f1-tolerance", type=float, default=0.005,
                    help="take the highest threshold whose micro F1 on the fitting split is within this of the best")
    args = ap.parse_args()

    import opencac.coding.heuristic as H
    from opencac.coding.engine import CodingEngine

    engine = CodingEngine.load(None)
    shipped = {k: tuple(v) for k, v in H.CALIBRATION.items()}, dict(H.THRESHOLD)
    ids, texts, gold = load_split(args.data, args.fit)
    n_fit = len(ids)
    curves: dict[str, list[tuple[float, float]]] = {}
    thresholds: dict[str, float] = {}
    for system in ("icd10cm", "icd10pcs"):
        # identity curve: the suggestions' confidences are then the raw heuristic scores
        H.CALIBRATION[system] = ((0.0, 0.0), (1e6, 1e6))
        s, y, _ = rows(code_split(engine, ids, texts, system), gold[system])
        curves[system] = pooled_curve(s, y, args.min_rows)
        H.CALIBRATION[system] = tuple(curves[system])
        s, y, ok = rows(code_split(engine, ids, texts, system), gold[system])
        thresholds[system], f1 = best_threshold(s, y, ok, sum(len(set(g)) for g in gold[system].values()),
                                                args.f1_tolerance)
        print(f"{system}: {len(curves[system])} curve points, threshold {thresholds[system]} "
              f"(micro F1 {f1:.3f} on {args.fit})", file=sys.stderr)
    H.THRESHOLD.update(thresholds)
    summary: dict[str, object] = {"fit": args.fit, "curve_points": {k: len(v) for k, v in curves.items()},
                                  "threshold": thresholds}
    for split in dict.fromkeys([args.fit, *args.eval]):
        ids, texts, gold = load_split(args.data, split)
        for system in ("icd10cm", "icd10pcs"):
            new = report(code_split(engine, ids, texts, system), gold[system], thresholds[system])
            summary[f"{split}/{system}"] = new
    if args.write:
        write_table(curves, thresholds, f"CodiEsp {args.fit} ({n_fit} notes)")
    else:
        H.CALIBRATION.update(shipped[0])
        H.THRESHOLD.update(shipped[1])
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
