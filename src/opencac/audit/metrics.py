"""Audit metrics with confidence intervals.

* Proportions (encounter accuracy, DRG accuracy, rates) use the Wilson score interval
  (Wilson 1927; recommended by Brown, Cai & DasGupta 2001, *Statistical Science* 16:101).
* Code-level precision and recall are ratios of sums over encounters, so their intervals
  come from a percentile bootstrap that resamples *encounters* (codes within an encounter
  are not independent).
* Cohen's kappa (Cohen 1960) with the large-sample standard error of Fleiss, Cohen &
  Everitt (1969) for encounters audited twice.
* Financial impact = sum of (audited - final) DRG relative weight x a configurable base rate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opencac.audit.scoring import EncounterScore
from opencac.errors import AuditInputError

#: Default hospital base rate (USD) for a relative weight of 1.0; configurable per report.
DEFAULT_BASE_RATE = 6_500.0


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval and the counts behind it."""

    value: float | None
    low: float | None
    high: float | None
    k: float = 0
    n: float = 0
    method: str = "wilson"

    def fmt(self, pct: bool = True) -> str:
        """'92.0% (88.1-94.7%)' or 'n/a'."""
        if self.value is None:
            return "n/a"
        if pct:
            return f"{self.value:.1%} ({(self.low or 0):.1%} to {(self.high or 0):.1%})"
        return f"{self.value:.3f} ({(self.low or 0):.3f} to {(self.high or 0):.3f})"


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for ``k`` successes in ``n`` trials (None values when n = 0)."""
    from scipy.stats import norm

    if n < 0 or k < 0 or k > n:
        raise AuditInputError(f"invalid proportion {k}/{n}")
    if n == 0:
        return Estimate(None, None, None, k, n)
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # clamp so that low <= p <= high despite rounding at p = 0 or 1
    return Estimate(p, max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)), k, n)


def _prf(tp: float, fp: float, fn: float) -> tuple[float | None, float | None, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * p * r / (p + r) if p is not None and r is not None and p + r else (0.0 if p is not None and r is not None else None)
    return p, r, f


def bootstrap_prf(
    counts: Sequence[tuple[int, int, int]], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
) -> tuple[Estimate, Estimate, Estimate]:
    """Micro precision, recall and F1 with percentile-bootstrap intervals over encounters.

    Args:
        counts: Per encounter ``(tp, fp, fn)``.
        n_boot: Bootstrap replicates.
        seed: Seed (numpy PCG64) so reports reproduce.
        confidence: Interval level.
    """
    import numpy as np

    arr = np.asarray(counts, dtype=float).reshape(-1, 3)
    tp, fp, fn = arr.sum(axis=0) if len(arr) else (0.0, 0.0, 0.0)
    point = _prf(tp, fp, fn)
    if len(arr) == 0:
        return tuple(Estimate(None, None, None, method="bootstrap") for _ in range(3))  # type: ignore[return-value]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arr), size=(n_boot, len(arr)))
    sums = arr[idx].sum(axis=1)  # (n_boot, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = sums[:, 0] / (sums[:, 0] + sums[:, 1])
        r = sums[:, 0] / (sums[:, 0] + sums[:, 2])
        f = 2 * p * r / (p + r)
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    out = []
    for val, dist, k, n in ((point[0], p, tp, tp + fp), (point[1], r, tp, tp + fn), (point[2], f, tp, tp + fp + fn)):
        d = dist[~np.isnan(dist)]
        if val is None or d.size == 0:
            out.append(Estimate(val, None, None, k, n, "bootstrap"))
        else:
            out.append(Estimate(float(val), float(np.percentile(d, lo_q)), float(np.percentile(d, hi_q)), k, n, "bootstrap"))
    return out[0], out[1], out[2]


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with its standard error and interval."""

    kappa: float
    observed: float
    expected: float
    se: float
    low: float
    high: float
    n: int
    categories: tuple[str, ...]
    interpretation: str


def _landis_koch(k: float) -> str:
    # Landis & Koch (1977), Biometrics 33:159, benchmark labels.
    for cut, label in ((0.0, "poor"), (0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if k <= cut:
            return label
    return "almost perfect"


def cohens_kappa(rater_a: Sequence[Hashable], rater_b: Sequence[Hashable], confidence: float = 0.95) -> KappaResult:
    """Cohen's kappa for two raters labelling the same items.

    ``kappa = (p_o - p_e) / (1 - p_e)``; standard error from Fleiss, Cohen & Everitt (1969).

    Raises:
        AuditInputError: Lengths differ or nothing to compare.
    """
    from scipy.stats import norm

    if len(rater_a) != len(rater_b):
        raise AuditInputError(f"kappa needs paired labels: {len(rater_a)} vs {len(rater_b)}")
    n = len(rater_a)
    if n == 0:
        raise AuditInputError("kappa needs at least one item rated twice")
    cats = sorted({str(x) for x in rater_a} | {str(x) for x in rater_b})
    ix = {c: i for i, c in enumerate(cats)}
    m = [[0.0] * len(cats) for _ in cats]
    for a, b in zip(rater_a, rater_b, strict=True):
        m[ix[str(a)]][ix[str(b)]] += 1
    p = [[v / n for v in row] for row in m]
    row = [sum(r) for r in p]
    col = [sum(p[i][j] for i in range(len(cats))) for j in range(len(cats))]
    po = sum(p[i][i] for i in range(len(cats)))
    pe = sum(row[i] * col[i] for i in range(len(cats)))
    if pe >= 1.0:
        kappa, se = 1.0, 0.0
    else:
        kappa = (po - pe) / (1 - pe)
        # Fleiss, Cohen & Everitt (1969) large-sample variance of kappa.
        a = sum(p[i][i] * (1 - (row[i] + col[i]) * (1 - kappa)) ** 2 for i in range(len(cats)))
        b = (1 - kappa) ** 2 * sum(
            p[i][j] * (col[i] + row[j]) ** 2 for i in range(len(cats)) for j in range(len(cats)) if i != j)
        c = (kappa - pe * (1 - kappa)) ** 2
        var = max(a + b - c, 0.0) / (n * (1 - pe) ** 2)
        se = math.sqrt(var)
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return KappaResult(kappa, po, pe, se, kappa - z * se, min(1.0, kappa + z * se), n, tuple(cats),
                       _landis_koch(kappa))


def paired_labels(first: Sequence[EncounterScore], second: Sequence[EncounterScore]) -> tuple[list[str], list[str]]:
    """Encounter-level labels (accurate / not) for encounters present in both audits."""
    b = {s.encounter_id: s for s in second}
    la, lb = [], []
    for s in first:
        if s.encounter_id in b:
            la.append("accurate" if s.accurate else "error")
            lb.append("accurate" if b[s.encounter_id].accurate else "error")
    return la, lb


@dataclass
class AuditMetrics:
    """Headline metrics of an audit (all intervals at ``confidence``)."""

    n_encounters: int
    precision: Estimate
    recall: Estimate
    f1: Estimate
    encounter_accuracy: Estimate
    drg_accuracy: Estimate
    principal_accuracy: Estimate
    code_counts: dict[str, int]
    weight_change_net: float
    weight_change_abs: float
    financial_impact_net: float
    financial_impact_abs: float
    overpaid_encounters: int
    underpaid_encounters: int
    base_rate: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def compute_metrics(
    scores: Sequence[EncounterScore], base_rate: float = DEFAULT_BASE_RATE, confidence: float = 0.95,
    n_boot: int = 2000, seed: int = 0,
) -> AuditMetrics:
    """Precision/recall (bootstrap CI), encounter/DRG/principal accuracy (Wilson CI) and
    financial impact (relative-weight change x ``base_rate``)."""
    p, r, f = bootstrap_prf([(s.tp, s.fp, s.fn) for s in scores], n_boot, seed, confidence)
    acc = wilson_interval(sum(s.accurate for s in scores), len(scores), confidence)
    drg_scored = [s for s in scores if s.drg_correct is not None]
    drg = wilson_interval(sum(bool(s.drg_correct) for s in drg_scored), len(drg_scored), confidence)
    pdx = [s for s in scores if s.principal_correct is not None]
    pacc = wilson_interval(sum(bool(s.principal_correct) for s in pdx), len(pdx), confidence)
    counts = {v: sum(s.count(v) for s in scores) for v in ("correct", "incorrect", "missing", "extra")}
    net = sum(s.weight_change for s in scores)
    ab = sum(abs(s.weight_change) for s in scores)
    return AuditMetrics(
        n_encounters=len(scores), precision=p, recall=r, f1=f, encounter_accuracy=acc, drg_accuracy=drg,
        principal_accuracy=pacc, code_counts=counts, weight_change_net=round(net, 4),
        weight_change_abs=round(ab, 4), financial_impact_net=round(net * base_rate, 2),
        financial_impact_abs=round(ab * base_rate, 2),
        overpaid_encounters=sum(1 for s in scores if s.weight_change < 0),
        underpaid_encounters=sum(1 for s in scores if s.weight_change > 0),
        base_rate=base_rate, confidence=confidence,
    )


def group_label_coded_by(s: EncounterScore) -> str:
    """'AI (straight through)', 'AI + coder' or 'Coder alone'."""
    return {"ai_straight_through": "AI (straight through)", "ai_coder": "AI + coder",
            "coder": "Coder alone"}.get(s.coded_by or "", "Unknown")


def metrics_by(
    scores: Sequence[EncounterScore], key: Callable[[EncounterScore], str], **kwargs: Any,
) -> dict[str, AuditMetrics]:
    """Metrics per group (e.g. AI vs human with :func:`group_label_coded_by`)."""
    groups: dict[str, list[EncounterScore]] = defaultdict(list)
    for s in scores:
        groups[key(s)].append(s)
    return {g: compute_metrics(v, **kwargs) for g, v in sorted(groups.items())}


@dataclass(frozen=True)
class TrendPoint:
    """Accuracy of one model version (ordered by its earliest service date)."""

    model_version: str
    first_date: str | None
    n: int
    encounter_accuracy: Estimate
    precision: float | None
    recall: float | None


def trend_by_model_version(scores: Sequence[EncounterScore], confidence: float = 0.95) -> list[TrendPoint]:
    """Encounter accuracy and code P/R per model version, oldest version first."""
    groups: dict[str, list[EncounterScore]] = defaultdict(list)
    for s in scores:
        if s.model_version:
            groups[s.model_version].append(s)
    pts = []
    for mv, ss in groups.items():
        dates = sorted(d for d in (s.service_date for s in ss) if d)
        tp, fp, fn = (sum(getattr(s, a) for s in ss) for a in ("tp", "fp", "fn"))
        p, r, _ = _prf(tp, fp, fn)
        pts.append(TrendPoint(mv, dates[0] if dates else None, len(ss),
                              wilson_interval(sum(s.accurate for s in ss), len(ss), confidence), p, r))
    return sorted(pts, key=lambda t: (t.first_date or "", t.model_version))


@dataclass(frozen=True)
class ReliabilityBin:
    """Stated AI confidence vs observed encounter accuracy in one bin."""

    low: float
    high: float
    n: int
    mean_confidence: float | None
    accuracy: float | None


def reliability(scores: Sequence[EncounterScore], bins: int = 5) -> tuple[list[ReliabilityBin], float | None]:
    """Reliability bins of confidence vs accuracy, and the expected calibration error (ECE)."""
    edges = [i / bins for i in range(bins + 1)]
    out = []
    ece, total = 0.0, 0
    with_conf = [s for s in scores if s.confidence is not None]
    for i in range(bins):
        lo, hi = edges[i], edges[i + 1]
        b = [s for s in with_conf if lo <= s.confidence < hi or (i == bins - 1 and s.confidence == 1.0)]  # type: ignore[operator]
        if b:
            mc = sum(s.confidence for s in b) / len(b)  # type: ignore[misc]
            acc = sum(s.accurate for s in b) / len(b)
            ece += len(b) * abs(mc - acc)
            total += len(b)
            out.append(ReliabilityBin(lo, hi, len(b), mc, acc))
        else:
            out.append(ReliabilityBin(lo, hi, 0, None, None))
    return out, (ece / total if total else None)


def root_cause_counts(findings: Iterable[Any]) -> dict[str, int]:
    """Standing findings per root cause."""
    out: dict[str, int] = defaultdict(int)
    for f in findings:
        if getattr(f, "stands", True):
            out[f.root_cause] += 1
    return dict(sorted(out.items()))


def kind_counts(findings: Iterable[Any]) -> dict[str, int]:
    """Standing findings per kind (incorrect, missing, extra, principal, ...)."""
    out: dict[str, int] = defaultdict(int)
    for f in findings:
        if getattr(f, "stands", True):
            out[f.kind] += 1
    return dict(sorted(out.items()))


def as_plain(obj: Any) -> Any:
    """Dataclasses / mappings / sequences -> JSON-ready plain values."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: as_plain(v) for k, v in asdict(obj).items()}
    if isinstance(obj, Mapping):
        return {str(k): as_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    return obj


__all__ = [
    "AuditMetrics", "DEFAULT_BASE_RATE", "Estimate", "KappaResult", "ReliabilityBin", "TrendPoint",
    "as_plain", "bootstrap_prf", "cohens_kappa", "compute_metrics", "group_label_coded_by", "kind_counts",
    "metrics_by", "paired_labels", "reliability", "root_cause_counts", "trend_by_model_version",
    "wilson_interval",
]
