"""Calibration of code confidences: reliability bins, expected calibration error, fitting.

Confidence is meant to be a calibrated probability that a code belongs on the encounter.
This module measures how far a set of scores is from that (reliability diagram, ECE, per
code system and setting) and fits a monotone map (isotonic regression or Platt scaling)
from validation scores to probabilities.

ECE follows Naeini et al. (2015) / Guo et al. (2017): equal-width bins over [0, 1],
``ECE = sum_b (n_b / N) * |acc_b - conf_b|``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.errors import CalibrationError

#: Calibration methods offered by :class:`Calibrator`.
METHODS = ("isotonic", "platt", "identity")


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One bin of a reliability diagram.

    Attributes:
        lower / upper: the bin's score range (``[lower, upper)``; the last bin includes 1.0).
        count: scores in the bin.
        mean_confidence: mean score in the bin (``nan`` when empty).
        accuracy: share of positive labels in the bin (``nan`` when empty).
    """

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


def _check(scores: Sequence[float], labels: Sequence[int | bool]) -> None:
    if len(scores) != len(labels):
        raise CalibrationError(
            f"scores and labels differ in length ({len(scores)} vs {len(labels)}); expected one label per score."
        )


def reliability_bins(
    scores: Sequence[float], labels: Sequence[int | bool], n_bins: int = 10
) -> list[ReliabilityBin]:
    """Bin scores into ``n_bins`` equal-width bins and report confidence vs accuracy per bin.

    Args:
        scores: predicted probabilities in [0, 1] (values outside are clipped).
        labels: 1/True where the code was correct, 0/False otherwise.
        n_bins: number of equal-width bins (>= 1).

    Returns:
        One :class:`ReliabilityBin` per bin, lowest first (empty bins included).

    Raises:
        CalibrationError: lengths differ or ``n_bins`` < 1.
    """
    _check(scores, labels)
    if n_bins < 1:
        raise CalibrationError(f"n_bins must be >= 1, got {n_bins}.")
    sums = [0.0] * n_bins
    hits = [0] * n_bins
    counts = [0] * n_bins
    for s, y in zip(scores, labels, strict=True):
        p = min(1.0, max(0.0, float(s)))
        b = min(n_bins - 1, int(p * n_bins))
        sums[b] += p
        hits[b] += 1 if y else 0
        counts[b] += 1
    out = []
    for b in range(n_bins):
        n = counts[b]
        out.append(
            ReliabilityBin(
                lower=b / n_bins,
                upper=(b + 1) / n_bins,
                count=n,
                mean_confidence=sums[b] / n if n else math.nan,
                accuracy=hits[b] / n if n else math.nan,
            )
        )
    return out


def expected_calibration_error(
    scores: Sequence[float], labels: Sequence[int | bool], n_bins: int = 10
) -> float:
    """Expected calibration error over equal-width bins (0 = perfectly calibrated).

    Args:
        scores: predicted probabilities in [0, 1].
        labels: 1/True where correct.
        n_bins: number of bins.

    Returns:
        ``sum_b (n_b / N) * |accuracy_b - mean_confidence_b|``; 0.0 for no scores.
    """
    bins = reliability_bins(scores, labels, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in bins if b.count)


@dataclass(slots=True)
class ScoredCode:
    """One scored code suggestion with its ground truth, for calibration and thresholds.

    Attributes:
        doc_id: the document.
        code: the code as suggested.
        system: ``icd10cm`` | ``icd10pcs``.
        setting: encounter setting (``inpatient``, ``outpatient``...).
        score: the confidence.
        label: whether the code is in the gold / final code set.
        selected: whether the engine proposed it for the final code set.
    """

    doc_id: str
    code: str
    system: str
    setting: str
    score: float
    label: bool
    selected: bool = False


def group_key(system: str, setting: str | None = None) -> str:
    """The key of a (system, setting) group, e.g. ``"icd10cm:inpatient"`` or ``"icd10cm:*"``."""
    return f"{system}:{setting or '*'}"


def group_records(records: Iterable[ScoredCode], by_setting: bool = True) -> dict[str, list[ScoredCode]]:
    """Group scored codes per ``system:setting`` (and per ``system:*`` always).

    Args:
        records: the scored codes.
        by_setting: also split each system by setting.

    Returns:
        Mapping from group key to its records.
    """
    out: dict[str, list[ScoredCode]] = {}
    for r in records:
        out.setdefault(group_key(r.system), []).append(r)
        if by_setting:
            out.setdefault(group_key(r.system, r.setting), []).append(r)
    return out


@dataclass(slots=True)
class CalibrationReport:
    """ECE and reliability bins for one group of scored codes."""

    group: str
    n: int
    positives: int
    ece: float
    bins: list[ReliabilityBin] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bins"] = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in b.items()} for b in d["bins"]
        ]
        return d


def calibration_report(
    records: Iterable[ScoredCode], n_bins: int = 10, by_setting: bool = True
) -> dict[str, CalibrationReport]:
    """ECE and reliability bins per code system and setting.

    Args:
        records: scored codes with labels.
        n_bins: bins per diagram.
        by_setting: also report per ``system:setting``.

    Returns:
        Mapping ``"icd10cm:*"`` / ``"icd10cm:inpatient"``... -> :class:`CalibrationReport`.
    """
    out = {}
    for key, recs in sorted(group_records(records, by_setting).items()):
        s = [r.score for r in recs]
        y = [r.label for r in recs]
        out[key] = CalibrationReport(
            group=key,
            n=len(recs),
            positives=sum(1 for v in y if v),
            ece=expected_calibration_error(s, y, n_bins),
            bins=reliability_bins(s, y, n_bins),
        )
    return out


def plot_reliability(reports: dict[str, CalibrationReport], path: str | Path, title: str = "Reliability") -> Path:
    """Draw a reliability diagram (one line per group) to a PNG or SVG file.

    Args:
        reports: from :func:`calibration_report` (or several merged, e.g. before/after).
        path: output file; the suffix (``.png`` / ``.svg``) picks the format.
        title: the figure title.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for key, rep in reports.items():
        xs = [b.mean_confidence for b in rep.bins if b.count]
        ys = [b.accuracy for b in rep.bins if b.count]
        ax.plot(xs, ys, marker="o", label=f"{key} (ECE {rep.ece:.3f}, n={rep.n})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean confidence")
    ax.set_ylabel("observed share correct")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


class Calibrator:
    """A monotone map from raw scores to calibrated probabilities (scikit-learn style).

    Args:
        method: ``"isotonic"`` (non-parametric, needs a few hundred scores), ``"platt"``
            (logistic on the logit of the score; robust on small sets) or ``"identity"``.

    Attributes:
        x_ / y_: isotonic breakpoints (after ``fit`` with ``isotonic``).
        a_ / b_: Platt coefficients (``p = sigmoid(a * logit(s) + b)``).
    """

    def __init__(self, method: str = "isotonic") -> None:
        self.method = method

    def fit(self, scores: Sequence[float], labels: Sequence[int | bool]) -> Calibrator:
        """Fit on validation scores and their labels; returns ``self``.

        Raises:
            CalibrationError: unknown method, mismatched lengths, or no scores.
        """
        if self.method not in METHODS:
            raise CalibrationError(f"unknown calibration method {self.method!r}.", options=METHODS)
        _check(scores, labels)
        if len(scores) == 0:
            raise CalibrationError("cannot fit a calibrator on zero scores; expected validation predictions.")
        import numpy as np

        s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
        y = np.asarray([1.0 if v else 0.0 for v in labels])
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
            self.x_ = [float(v) for v in iso.X_thresholds_]
            self.y_ = [float(v) for v in iso.y_thresholds_]
        elif self.method == "platt":
            if y.min() == y.max():
                # One class only: a constant equal to the observed rate (smoothed).
                rate = (y.sum() + 0.5) / (len(y) + 1.0)
                self.a_, self.b_ = 0.0, float(math.log(rate / (1 - rate)))
            else:
                from sklearn.linear_model import LogisticRegression

                lr = LogisticRegression(C=1e4).fit(_logit(s).reshape(-1, 1), y)
                self.a_, self.b_ = float(lr.coef_[0][0]), float(lr.intercept_[0])
        return self

    def predict(self, scores: Sequence[float] | float) -> list[float] | float:
        """Map raw scores to calibrated probabilities (a list in, a list out; a float in, a float out)."""
        single = isinstance(scores, (int, float))
        vals = [float(scores)] if single else [float(v) for v in scores]  # type: ignore[union-attr]
        out = [self._one(v) for v in vals]
        return out[0] if single else out

    def _one(self, s: float) -> float:
        s = min(1.0, max(0.0, s))
        if self.method == "identity":
            return s
        if self.method == "platt":
            z = self.a_ * float(_logit(s)) + self.b_
            return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        xs, ys = self.x_, self.y_
        if not xs:
            return s
        if s <= xs[0]:
            return ys[0]
        if s >= xs[-1]:
            return ys[-1]
        import bisect

        i = bisect.bisect_right(xs, s)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (s - x0) / (x1 - x0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        d: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic" and hasattr(self, "x_"):
            d.update(x=self.x_, y=self.y_)
        if self.method == "platt" and hasattr(self, "a_"):
            d.update(a=self.a_, b=self.b_)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Rebuild from :meth:`to_dict` output."""
        c = cls(str(data.get("method", "identity")))
        if c.method not in METHODS:
            raise CalibrationError(f"unknown calibration method {c.method!r}.", options=METHODS)
        if c.method == "isotonic":
            c.x_ = [float(v) for v in data.get("x", [])]
            c.y_ = [float(v) for v in data.get("y", [])]
        elif c.method == "platt":
            c.a_, c.b_ = float(data.get("a", 1.0)), float(data.get("b", 0.0))
        return c


def _logit(s: Any) -> Any:
    import numpy as np

    p = np.clip(np.asarray(s, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def save_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write a dict as pretty JSON (helper shared by the routing modules)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
