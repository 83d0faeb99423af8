"""Thresholds that meet a target precision, chosen on validation data.

A coding department holds human coders to about 95 % code-level accuracy; a code may go
straight through only when its calibrated confidence is at or above the lowest threshold
whose precision still meets that target. The achieved recall is the share of the coder's
work (all gold codes, including ones the engine never suggested) that the AI could take
over at that accuracy.

Choosing the lowest cut whose *observed* precision meets the target (``method="empirical"``)
overfits a small validation set: among many candidate cuts, the one picked is the one where
chance ran high, and on unseen notes precision falls below the target (on 125 CodiEsp notes:
0.95 on validation, 0.87-0.94 on the next 125). The default (``method="bayes"``) asks for a
*lower confidence bound* of precision to meet the target, with more evidence than the
validation labels alone: the engine's confidences are isotonic calibrations fitted on the
model's out-of-fold training predictions, so the codes above a cut carry ``sum(confidence)``
expected correct codes from the training notes. The validation labels and that expected
count (weighted by ``prior_weight``) are pooled into a Beta posterior of the precision above
the cut, and the cut qualifies when the posterior's ``1 - confidence`` quantile meets the
target.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opencac.errors import PolicyError
from opencac.routing.calibration import ScoredCode, group_records

#: Default code-level precision target.
DEFAULT_TARGET_PRECISION = 0.95
#: How a threshold is chosen (see the module docstring).
METHODS = ("empirical", "wilson", "bayes")
#: The method :func:`fit_thresholds` and the policy fitting use unless told otherwise.
DEFAULT_METHOD = "bayes"
#: One-sided confidence that the precision above the threshold meets the target (``wilson``, ``bayes``).
#: 0.7 with ``prior_weight`` 1.0 was chosen by resampling the CodiEsp dev tuning half (200 random
#: 50/50 splits of its notes: fit on one part, measure on the other): it broke the 0.95 promise in
#: 16 % (D) and 1 % (P) of splits, against 20 % and 46 % for the empirical cut (bench/RESULTS-learning.md).
DEFAULT_CONFIDENCE = 0.7
#: Pseudo-observations per validation code from the engine's calibrated confidence (``bayes``).
DEFAULT_PRIOR_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    """The threshold chosen for one group and what it achieves on the validation data.

    Attributes:
        group: ``system:setting`` key.
        threshold: lowest score at which precision >= target; ``None`` when no threshold
            reaches the target (nothing goes straight through for this group).
        target_precision: the target.
        precision: observed precision of validation codes with score >= threshold.
        recall: true positives above threshold / all gold codes of the group.
        selected: codes at or above the threshold.
        true_positives: correct codes among them.
        gold: all gold codes of the group (``n_gold`` passed in, else positives among records).
        n: scored codes in the group.
        method: how the threshold was chosen (:data:`METHODS`).
        precision_bound: the lower confidence bound of precision at the threshold (``wilson``,
            ``bayes``; equals ``precision`` for ``empirical``).
        confidence: the one-sided confidence of that bound (``None`` for ``empirical``).
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
    method: str = "empirical"
    precision_bound: float | None = None
    confidence: float | None = None

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


def _beta_lower(alpha: float, beta: float, confidence: float) -> float:
    from scipy.special import betaincinv

    return float(betaincinv(alpha, beta, 1.0 - confidence))


def threshold_for_precision(
    scores: Sequence[float],
    labels: Sequence[int | bool],
    target_precision: float = DEFAULT_TARGET_PRECISION,
    n_gold: int | None = None,
    min_selected: int = 1,
    conservative: bool = False,
    group: str = "*",
    method: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
) -> ThresholdFit:
    """Choose the lowest threshold at which precision (codes with score >= t) meets the target.

    Ties are kept together: a threshold never splits codes of equal score.

    Args:
        scores: confidences of the suggested codes.
        labels: whether each is correct.
        target_precision: the precision to meet, in (0, 1].
        n_gold: the number of gold codes in the group (recall denominator); defaults to the
            number of positive labels (i.e. only codes the engine suggested).
        min_selected: the fewest codes that must be above the threshold for it to count
            (guards against a threshold resting on one lucky code).
        conservative: shorthand for ``method="wilson", confidence=0.95`` (the earlier API).
        group: the group key to report.
        method: ``empirical`` (observed precision must meet the target), ``wilson`` (the
            Wilson lower bound at ``confidence`` must) or ``bayes`` (the Beta-posterior lower
            bound at ``confidence``, validation labels pooled with the engine's calibrated
            confidences, must). Default ``empirical`` here (``wilson`` when ``conservative``);
            :func:`fit_thresholds` defaults to :data:`DEFAULT_METHOD`.
        confidence: one-sided confidence of the lower bound, in (0.5, 1).
        prior_weight: ``bayes`` only: how many pseudo-observations each validation code's
            confidence adds (0 = validation labels alone, with a Jeffreys prior). Needs
            calibrated scores; use 0 for an engine without a trained model.

    Returns:
        A :class:`ThresholdFit`; ``threshold`` is ``None`` when no cut meets the target.

    Raises:
        PolicyError: target, method, confidence or prior weight out of range, or mismatched lengths.
    """
    if method is None:
        method = "wilson" if conservative else "empirical"
        if conservative:
            confidence = 0.95
    if method not in METHODS:
        raise PolicyError(f"unknown threshold method {method!r}.", options=METHODS)
    if not 0.0 < target_precision <= 1.0:
        raise PolicyError(f"target precision must be in (0, 1], got {target_precision}.")
    if method != "empirical" and not 0.5 <= confidence < 1.0:
        raise PolicyError(f"confidence must be in [0.5, 1), got {confidence}.")
    if prior_weight < 0:
        raise PolicyError(f"prior weight must be >= 0, got {prior_weight}.")
    if len(scores) != len(labels):
        raise PolicyError(f"scores and labels differ in length ({len(scores)} vs {len(labels)}).")
    pairs = sorted(((float(s), bool(y)) for s, y in zip(scores, labels, strict=True)), key=lambda t: -t[0])
    positives = sum(1 for _, y in pairs if y)
    gold = n_gold if n_gold is not None else positives
    z = _z(confidence) if method == "wilson" else 0.0
    best: tuple[float, int, int, float] | None = None
    tp = 0
    expected = 0.0  # sum of (clipped) confidences above the cut: the calibration's expected correct codes
    i = 0
    n = len(pairs)
    while i < n:
        s = pairs[i][0]
        while i < n and pairs[i][0] == s:
            tp += 1 if pairs[i][1] else 0
            expected += min(1.0, max(0.0, pairs[i][0]))
            i += 1
        if i < min_selected:
            continue
        if method == "empirical":
            prec = tp / i
        elif method == "wilson":
            prec = _wilson_lower(tp, i, z)
        else:
            a = 0.5 + tp + prior_weight * expected
            b = 0.5 + (i - tp) + prior_weight * (i - expected)
            # cheap screen before the quantile: the posterior mean must already meet the target
            prec = _beta_lower(a, b, confidence) if a / (a + b) >= target_precision else 0.0
        if prec >= target_precision:
            best = (s, i, tp, prec)  # keep the lowest qualifying cut (highest recall)
    conf_out = None if method == "empirical" else confidence
    if best is None:
        return ThresholdFit(group, None, target_precision, 0.0, 0.0, 0, 0, gold, n, method, None, conf_out)
    t, sel, tpos, bound = best
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
        method=method,
        precision_bound=bound,
        confidence=conf_out,
    )


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(confidence)


def fit_thresholds(
    records: Iterable[ScoredCode],
    target_precision: float = DEFAULT_TARGET_PRECISION,
    gold_counts: dict[str, int] | None = None,
    by_setting: bool = True,
    min_selected: int = 5,
    conservative: bool = False,
    method: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
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
        method: see :func:`threshold_for_precision`; default :data:`DEFAULT_METHOD`
            (``wilson`` when ``conservative``).
        confidence: see :func:`threshold_for_precision`.
        prior_weight: see :func:`threshold_for_precision`.

    Returns:
        Mapping group key -> :class:`ThresholdFit`.
    """
    if method is None and not conservative:
        method = DEFAULT_METHOD
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
            method=method,
            confidence=confidence,
            prior_weight=prior_weight,
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


def bootstrap_precision(
    records: Iterable[ScoredCode], threshold: float | None, n_boot: int = 2000, level: float = 0.9, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the precision above ``threshold``, resampling documents.

    Codes of one note are not independent (one note's codes are right or wrong together more
    often than not), so whole documents are resampled.

    Args:
        records: labelled scored codes (one group).
        threshold: the cut (``None``: nothing passes, the interval is ``(nan, nan)``).
        n_boot: bootstrap replicates.
        level: two-sided coverage of the interval.
        seed: random seed.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when no code is above the threshold.
    """
    if threshold is None:
        return math.nan, math.nan
    per_doc: dict[str, list[int]] = {}
    for r in records:
        tp_n = per_doc.setdefault(r.doc_id, [0, 0])
        if r.score >= threshold:
            tp_n[0] += 1 if r.label else 0
            tp_n[1] += 1
    docs = list(per_doc.values())
    if not docs or sum(n for _, n in docs) == 0:
        return math.nan, math.nan
    rng = random.Random(seed)
    stats = []
    for _ in range(n_boot):
        tp = n = 0
        for _ in range(len(docs)):
            a, b = docs[rng.randrange(len(docs))]
            tp += a
            n += b
        if n:
            stats.append(tp / n)
    stats.sort()
    lo = stats[int((1 - level) / 2 * (len(stats) - 1))]
    hi = stats[int((1 + level) / 2 * (len(stats) - 1))]
    return lo, hi
