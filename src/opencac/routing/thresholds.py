"""Thresholds that meet a target precision, chosen on validation data.

A coding department holds human coders to about 95 % code-level accuracy; a code may go
straight through only when its calibrated confidence is at or above the lowest threshold
whose validation precision still meets that target. The achieved recall is the share of
the coder's work (all gold codes, including ones the engine never suggested) that the AI
could take over at that accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opencac.errors import PolicyError
from opencac.routing.calibration import ScoredCode, group_records

#: Default code-level precision target.
DEFAULT_TARGET_PRECISION = 0.95


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    """The threshold chosen for one group and what it achieves on the validation data.

    Attributes:
        group: ``system:setting`` key.
        threshold: lowest score at which precision >= target; ``None`` when no threshold
            reaches the target (nothing goes straight through for this group).
        target_precision: the target.
        precision: precision of codes with score >= threshold.
        recall: true positives above threshold / all gold codes of the group.
        selected: codes at or above the threshold.
        true_positives: correct codes among them.
        gold: all gold codes of the group (``n_gold`` passed in, else positives among records).
        n: scored codes in the group.
    """

    group: str
    threshold: float | None
    target_precision: float
    precision: float
    recall: float
    selected: int
    true_positives: int
    gold: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wilson_lower(tp: int, n: int, z: float = 1.645) -> float:
    if n == 0:
        return 0.0
    p = tp / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / denom


def threshold_for_precision(
    scores: Sequence[float],
    labels: Sequence[int | bool],
    target_precision: float = DEFAULT_TARGET_PRECISION,
    n_gold: int | None = None,
    min_selected: int = 1,
    conservative: bool = False,
    group: str = "*",
) -> ThresholdFit:
    """Choose the lowest threshold whose precision (codes with score >= t) meets the target.

    Ties are kept together: a threshold never splits codes of equal score.

    Args:
        scores: confidences of the suggested codes.
        labels: whether each is correct.
        target_precision: the precision to meet, in (0, 1].
        n_gold: the number of gold codes in the group (recall denominator); defaults to the
            number of positive labels (i.e. only codes the engine suggested).
        min_selected: the fewest codes that must be above the threshold for it to count
            (guards against a threshold resting on one lucky code).
        conservative: require the Wilson 90 % lower bound of precision, not the point
            estimate, to meet the target.
        group: the group key to report.

    Returns:
        A :class:`ThresholdFit`; ``threshold`` is ``None`` when no cut meets the target.

    Raises:
        PolicyError: target outside (0, 1] or mismatched lengths.
    """
    if not 0.0 < target_precision <= 1.0:
        raise PolicyError(f"target precision must be in (0, 1], got {target_precision}.")
    if len(scores) != len(labels):
        raise PolicyError(f"scores and labels differ in length ({len(scores)} vs {len(labels)}).")
    pairs = sorted(((float(s), bool(y)) for s, y in zip(scores, labels, strict=True)), key=lambda t: -t[0])
    positives = sum(1 for _, y in pairs if y)
    gold = n_gold if n_gold is not None else positives
    best: tuple[float, int, int] | None = None
    tp = 0
    i = 0
    n = len(pairs)
    while i < n:
        s = pairs[i][0]
        while i < n and pairs[i][0] == s:
            tp += 1 if pairs[i][1] else 0
            i += 1
        prec = _wilson_lower(tp, i) if conservative else tp / i
        if i >= min_selected and prec >= target_precision:
            best = (s, i, tp)  # keep the lowest qualifying cut (highest recall)
    if best is None:
        return ThresholdFit(group, None, target_precision, 0.0, 0.0, 0, 0, gold, n)
    t, sel, tpos = best
    return ThresholdFit(
        group=group,
        threshold=t,
        target_precision=target_precision,
        precision=tpos / sel,
        recall=tpos / gold if gold else 0.0,
        selected=sel,
        true_positives=tpos,
        gold=gold,
        n=n,
    )


def fit_thresholds(
    records: Iterable[ScoredCode],
    target_precision: float = DEFAULT_TARGET_PRECISION,
    gold_counts: dict[str, int] | None = None,
    by_setting: bool = True,
    min_selected: int = 5,
    conservative: bool = False,
) -> dict[str, ThresholdFit]:
    """Fit a threshold per code system (``system:*``) and per system and setting.

    Args:
        records: scored validation codes with labels.
        target_precision: the precision target.
        gold_counts: gold codes per group key (recall denominators, counting gold codes the
            engine never suggested); missing keys fall back to positives among records.
        by_setting: also fit per ``system:setting``.
        min_selected: see :func:`threshold_for_precision`.
        conservative: see :func:`threshold_for_precision`.

    Returns:
        Mapping group key -> :class:`ThresholdFit`.
    """
    gold_counts = gold_counts or {}
    out = {}
    for key, recs in sorted(group_records(records, by_setting).items()):
        out[key] = threshold_for_precision(
            [r.score for r in recs],
            [r.label for r in recs],
            target_precision,
            n_gold=gold_counts.get(key),
            min_selected=min_selected,
            conservative=conservative,
            group=key,
        )
    return out


def precision_recall_at(
    records: Iterable[ScoredCode], threshold: float | None, n_gold: int | None = None
) -> tuple[float, float, int]:
    """Precision, recall and count of codes with score >= ``threshold`` (``None`` = nothing passes)."""
    recs = list(records)
    gold = n_gold if n_gold is not None else sum(1 for r in recs if r.label)
    if threshold is None:
        return 0.0, 0.0, 0
    sel = [r for r in recs if r.score >= threshold]
    tp = sum(1 for r in sel if r.label)
    return (tp / len(sel) if sel else 0.0), (tp / gold if gold else 0.0), len(sel)
