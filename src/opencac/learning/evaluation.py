"""Corpora for learning, fixed validation splits, and metrics on a fixed validation set."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opencac.coding.evaluate import average_precision as _average_precision
from opencac.coding.types import CodingResult, EncounterContext
from opencac.learning.feedback import SYSTEMS, TrainingDocument, canon, from_coded


def load_documents(paths: str | Path | Sequence[str | Path], org: str = "default") -> list[TrainingDocument]:
    """Load coded documents (CodiEsp split directories and/or JSONL files) as training documents.

    Uses the engine's corpus reader (``opencac.coding.corpus.load_corpus``), so ``opencac
    learn`` reads exactly what ``opencac train`` reads.

    Raises:
        CorpusError: a path is missing or in neither format.
    """
    from opencac.coding.corpus import load_corpus

    return [from_coded(d, org) for d in load_corpus(paths)]


def split_even_odd(docs: Sequence[TrainingDocument]) -> tuple[list[TrainingDocument], list[TrainingDocument]]:
    """A fixed split by sorted document id: even positions (tuning half), odd positions (held-out half)."""
    ordered = sorted(docs, key=lambda d: d.id)
    return ordered[0::2], ordered[1::2]


def average_precision(ranked: Sequence[str], gold: Iterable[str]) -> float:
    """CodiEsp average precision of one ranked list (duplicates keep their first rank; no cut-off)."""
    return _average_precision([canon(c) for c in ranked], {canon(c) for c in gold})


def mean_average_precision(gold: Mapping[str, Iterable[str]], pred: Mapping[str, Sequence[str]]) -> float:
    """CodiEsp MAP over the gold documents that have at least one gold code (others skipped)."""
    aps = [average_precision(pred.get(d, []), g) for d, g in gold.items() if list(g)]
    return sum(aps) / len(aps) if aps else 0.0


def code_documents(
    engine: Any, docs: Sequence[TrainingDocument], context: EncounterContext | None = None, **kw: Any
) -> list[CodingResult]:
    """Code each document with ``engine.code(text, doc_id=..., context=...)`` (extra keywords passed on)."""
    return [engine.code(d.text, doc_id=d.id, context=context, **kw) for d in docs]


def expected_calibration_error(scores: Sequence[float], labels: Sequence[bool], n_bins: int = 10) -> float:
    """ECE over equal-width bins (same definition as ``opencac.routing.calibration``)."""
    n = len(scores)
    if n == 0:
        return 0.0
    sums, hits, counts = [0.0] * n_bins, [0] * n_bins, [0] * n_bins
    for s, y in zip(scores, labels, strict=True):
        p = min(1.0, max(0.0, float(s)))
        b = min(n_bins - 1, int(p * n_bins))
        sums[b] += p
        hits[b] += int(bool(y))
        counts[b] += 1
    return sum(abs(hits[b] / counts[b] - sums[b] / counts[b]) * counts[b] / n for b in range(n_bins) if counts[b])


def metrics_on(results: Sequence[CodingResult], docs: Sequence[TrainingDocument]) -> dict[str, float]:
    """Validation metrics: MAP per system (``map_d``, ``map_p``), their mean ``map``, and ECE per system."""
    by_id = {d.id: d for d in docs}
    out: dict[str, float] = {}
    for system, key in (("icd10cm", "d"), ("icd10pcs", "p")):
        gold = {d.id: d.codes.get(system, []) for d in docs}
        pred = {r.doc_id: [s.code for s in r.ranked(system)] for r in results}
        out[f"map_{key}"] = mean_average_precision(gold, pred)
        scores, labels = [], []
        for r in results:
            g = {canon(c) for c in by_id[r.doc_id].codes.get(system, [])} if r.doc_id in by_id else set()
            for s in r.ranked(system):
                scores.append(float(s.confidence))
                labels.append(canon(s.code) in g)
        out[f"ece_{key}"] = expected_calibration_error(scores, labels)
    out["map"] = (out["map_d"] + out["map_p"]) / 2
    return out


def evaluate_model(
    model: str | Path, validation: str | Path | Sequence[TrainingDocument], context: EncounterContext | None = None
) -> tuple[dict[str, float], str]:
    """Metrics of a model directory (engine + feedback overlay) on a fixed validation set.

    Returns:
        ``(metrics, validation_hash)``; metrics include ``seconds`` (coding wall time).
    """
    from opencac.learning.online import LearnedEngine, documents_hash

    docs = list(validation) if not isinstance(validation, (str, Path)) else load_documents(validation)
    eng = LearnedEngine.load(model)
    t0 = time.perf_counter()
    results = code_documents(eng, docs, context)
    m = metrics_on(results, docs)
    m["seconds"] = time.perf_counter() - t0
    return m, documents_hash(docs)


__all__ = [
    "SYSTEMS",
    "average_precision",
    "code_documents",
    "evaluate_model",
    "load_documents",
    "mean_average_precision",
    "metrics_on",
    "split_even_odd",
]
