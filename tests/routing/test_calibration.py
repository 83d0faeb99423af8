"""ECE on hand-computed cases; calibration reduces ECE on a miscalibrated synthetic set."""

from __future__ import annotations

import math
import random

import pytest

from opencac.errors import CalibrationError
from opencac.routing import (
    Calibrator,
    ScoredCode,
    calibration_report,
    expected_calibration_error,
    plot_reliability,
    reliability_bins,
)


def test_ece_hand_computed_two_bins() -> None:
    # bin [0.0,0.5): scores 0.2, 0.4 -> mean 0.3, accuracy 0/2 = 0 -> |0-0.3| = 0.3, weight 2/4
    # bin [0.5,1.0]: scores 0.6, 1.0 -> mean 0.8, accuracy 2/2 = 1 -> |1-0.8| = 0.2, weight 2/4
    ece = expected_calibration_error([0.2, 0.4, 0.6, 1.0], [0, 0, 1, 1], n_bins=2)
    assert ece == pytest.approx(0.5 * 0.3 + 0.5 * 0.2)


def test_ece_perfect_and_worst() -> None:
    assert expected_calibration_error([1.0, 1.0, 0.0], [1, 1, 0], n_bins=10) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 0.0], [0, 1], n_bins=10) == pytest.approx(1.0)
    assert expected_calibration_error([], [], n_bins=10) == 0.0


def test_ece_ten_bins_hand_computed() -> None:
    # three scores in bin 7 ([0.7,0.8)): mean 0.75, 2 of 3 correct -> |0.6667-0.75| = 0.0833
    # one score in bin 9: 0.95 correct -> 0.05
    ece = expected_calibration_error([0.7, 0.75, 0.8 - 1e-9, 0.95], [1, 1, 0, 1])
    assert ece == pytest.approx(3 / 4 * abs(2 / 3 - 0.75) + 1 / 4 * 0.05, abs=1e-6)


def test_reliability_bins_counts_and_edges() -> None:
    bins = reliability_bins([0.0, 0.05, 0.1, 0.99, 1.0], [0, 0, 1, 1, 1], n_bins=10)
    assert len(bins) == 10
    assert [b.count for b in bins] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert math.isnan(bins[2].accuracy)
    assert bins[9].accuracy == 1.0


def test_mismatched_lengths_is_clear_error() -> None:
    with pytest.raises(CalibrationError, match="differ in length"):
        expected_calibration_error([0.1, 0.2], [1])


def _overconfident(n: int, seed: int = 7) -> tuple[list[float], list[int]]:
    # true probability p, but the model reports sqrt(p): over-confident everywhere
    rng = random.Random(seed)
    scores, labels = [], []
    for _ in range(n):
        p = rng.random()
        scores.append(math.sqrt(p) * 0.5 + 0.5 if rng.random() < 0.5 else math.sqrt(p))
        labels.append(1 if rng.random() < p else 0)
    return scores, labels


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_reduces_ece_on_held_out(method: str) -> None:
    s_fit, y_fit = _overconfident(4000, seed=1)
    s_test, y_test = _overconfident(4000, seed=2)
    before = expected_calibration_error(s_test, y_test)
    cal = Calibrator(method).fit(s_fit, y_fit)
    after = expected_calibration_error(cal.predict(s_test), y_test)
    assert before > 0.1
    assert after < before / 2
    # round trip through JSON state gives the same map
    again = Calibrator.from_dict(cal.to_dict())
    assert again.predict(0.7) == pytest.approx(cal.predict(0.7))


def test_calibrator_is_monotone_and_bounded() -> None:
    s, y = _overconfident(1000)
    cal = Calibrator("isotonic").fit(s, y)
    out = cal.predict([i / 20 for i in range(21)])
    assert all(0.0 <= v <= 1.0 for v in out)
    assert all(a <= b + 1e-12 for a, b in zip(out, out[1:]))


def test_unknown_method() -> None:
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        Calibrator("magic").fit([0.1], [1])


def test_report_per_system_and_setting_and_plot(tmp_path) -> None:
    recs = [
        ScoredCode("d1", "E11.9", "icd10cm", "inpatient", 0.9, True),
        ScoredCode("d1", "I10", "icd10cm", "inpatient", 0.8, False),
        ScoredCode("d2", "0DTJ4ZZ", "icd10pcs", "outpatient", 0.4, True),
    ]
    rep = calibration_report(recs, n_bins=10)
    assert set(rep) == {"icd10cm:*", "icd10cm:inpatient", "icd10pcs:*", "icd10pcs:outpatient"}
    assert rep["icd10cm:*"].n == 2 and rep["icd10cm:*"].positives == 1
    assert rep["icd10pcs:*"].ece == pytest.approx(0.6)
    png = plot_reliability(rep, tmp_path / "rel.png")
    svg = plot_reliability(rep, tmp_path / "rel.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:2000]
    d = rep["icd10cm:*"].to_dict()
    assert d["bins"][0]["accuracy"] is None  # NaN written as null for JSON
