"""The learned ranker (LightGBM over candidate features) and its calibration.

The ranker is trained on *out-of-fold* candidate features: the training corpus is split in
``k`` folds, the supervised layer is fit on ``k-1`` folds and the held-out fold's candidates
are featurised, so the ranker never sees signals computed on a note's own labels. Confidence
is the ranker score mapped through centered isotonic regression fit on cross-fitted out-of-fold
ranker scores (again never scored by a ranker trained on the same note).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "verbose": -1,
    # one random threshold per feature at each split: less fitting to the out-of-fold rows'
    # noise (CodiEsp dev D +0.004, P +0.011, out of fold both up; bench/RESULTS-engine.md)
    "extra_trees": True,
    "num_threads": 1,  # OpenMP spin-waiting makes 2 threads ~9x slower on a busy shared box
}
DEFAULT_ROUNDS = 250  # with extra_trees, 200-300 rounds did best (400 before them)


def fit_booster(X: np.ndarray, y: np.ndarray, seed: int = 0, rounds: int = DEFAULT_ROUNDS,
                params: dict[str, Any] | None = None) -> Any:
    """Fit a LightGBM binary ranker."""
    import lightgbm as lgb

    p = dict(DEFAULT_PARAMS, **(params or {}))
    p["seed"] = seed
    return lgb.train(p, lgb.Dataset(X, y), num_boost_round=rounds)


def cross_fit_scores(X: np.ndarray, y: np.ndarray, groups: Sequence[int], n_splits: int = 3, seed: int = 0,
                     rounds: int = DEFAULT_ROUNDS) -> np.ndarray:
    """Ranker scores for every row from a booster not trained on that row's document."""
    bounds = np.cumsum([0, *groups])
    n_docs = len(groups)
    doc_fold = np.random.RandomState(seed + 1).permutation(n_docs) % n_splits
    row_fold = np.repeat(doc_fold, groups)
    out = np.zeros(len(y), dtype=np.float64)
    for k in range(n_splits):
        te = row_fold == k
        bst = fit_booster(X[~te], y[~te], seed=seed, rounds=rounds)
        out[te] = bst.predict(X[te])
    assert bounds[-1] == len(y)
    return out


def fit_calibrator(scores: np.ndarray, y: np.ndarray, centered: bool = True) -> Any:
    """Monotone map from ranker scores to probabilities.

    ``centered`` (default): centered isotonic regression (Oron & Flournoy 2017): the isotonic
    (PAVA) fit's blocks are each replaced by one point, the block's mean score with the block's
    rate, and the curve interpolates linearly between those points (flat beyond the first and
    last). It keeps isotonic regression's calibration but is strictly increasing between the
    extreme blocks, so two codes with different ranker scores get different confidences: a
    precision threshold can fall between any two of them instead of only at the edges of the
    plain isotonic fit's tied plateaus (hundreds of codes share one confidence there).
    ``centered=False``: scikit-learn's ``IsotonicRegression`` itself (step plateaus)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(scores, y)
    if not centered:
        return iso
    return IsotonicCurve.centered(iso, scores)


class IsotonicCurve:
    """A fitted ``IsotonicRegression`` (``out_of_bounds="clip"``) as its curve: ``predict``
    repeats scikit-learn's clip and SciPy's ``interp1d`` linear interpolation step by step
    (same values), without importing either."""

    def __init__(self, x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> None:
        self.x, self.y, self.lo, self.hi = x, y, lo, hi

    @classmethod
    def from_fitted(cls, iso: Any) -> IsotonicCurve | None:
        """The curve of a fitted isotonic regression (None when it is not one this covers)."""
        try:
            if type(iso).__name__ != "IsotonicRegression" or iso.out_of_bounds != "clip":
                return None
            x = np.asarray(iso.X_thresholds_)
            y = np.asarray(iso.y_thresholds_)
            f = iso.f_
            if len(y) > 1:
                x = np.asarray(f.x)
                y = np.asarray(f._y).reshape(len(x), -1)[:, 0]
            return cls(x, y, iso.X_min_, iso.X_max_)
        except AttributeError:
            return None

    @classmethod
    def centered(cls, iso: Any, scores: np.ndarray) -> IsotonicCurve:
        """Centered isotonic curve of a fitted isotonic regression and the scores it was fit on:
        one point per block of equal fitted value, at the block's mean score (see
        :func:`fit_calibrator`)."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        fitted = np.asarray(iso.predict(s), dtype=np.float64)
        order = np.argsort(s, kind="mergesort")
        s, fitted = s[order], fitted[order]
        # blocks: runs of equal fitted value along increasing score
        starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
        ends = np.r_[starts[1:], len(s)]
        x = np.array([s[a:b].mean() for a, b in zip(starts, ends)], dtype=np.float64)
        yv = fitted[starts].astype(np.float64)
        keep = np.r_[True, np.diff(x) > 0]  # guard against equal means (numerically tied blocks)
        x, yv = x[keep], yv[keep]
        return cls(x, yv, float(x[0]), float(x[-1]))

    def predict(self, T: Any) -> np.ndarray:
        T = np.asarray(T, dtype=self.x.dtype).reshape(-1)
        T = np.clip(T, self.lo, self.hi)
        if len(self.y) == 1:
            return self.y.repeat(T.shape).astype(T.dtype)
        hi = np.searchsorted(self.x, T).clip(1, len(self.x) - 1).astype(int)
        lo = hi - 1
        x_lo, y_lo = self.x[lo], self.y[lo]
        slope = (self.y[hi] - y_lo) / (self.x[hi] - x_lo)
        return (slope * (T - x_lo) + y_lo).astype(T.dtype)


def expected_calibration_error(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins: sum_b |B|/N * |mean(y_b) - mean(p_b)|."""
    prob = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(prob) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - prob[m].mean())
    return float(ece)


def best_f1_threshold(prob: np.ndarray, y: np.ndarray, n_missed: int = 0) -> tuple[float, float]:
    """Threshold on calibrated probabilities maximising micro F1 (``n_missed`` gold codes that
    were never candidates count as false negatives). Returns (threshold, F1)."""
    order = np.argsort(-prob)
    ys = y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    total = ys.sum() + n_missed
    f1 = 2 * tp / (k + total)
    i = int(np.argmax(f1))
    return float(prob[order][i]), float(f1[i])
