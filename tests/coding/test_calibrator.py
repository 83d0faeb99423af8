"""The engine's confidence calibrator: centered isotonic regression (ranker score -> probability)."""

from __future__ import annotations

import numpy as np

from opencac.coding.ranker import IsotonicCurve, expected_calibration_error, fit_calibrator


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rs = np.random.RandomState(seed)
    s = rs.normal(size=n)
    p = 1 / (1 + np.exp(-2 * s))
    return s, (rs.rand(n) < p).astype(float), p


def test_centered_curve_is_strictly_increasing_between_its_end_blocks() -> None:
    s, y, _ = _data(5000, 0)
    cal = fit_calibrator(s, y)
    assert isinstance(cal, IsotonicCurve)
    assert np.all(np.diff(cal.y) > 0) and np.all(np.diff(cal.x) > 0)
    t = np.sort(np.random.RandomState(1).uniform(cal.lo, cal.hi, 2000))
    conf = cal.predict(t)
    assert np.all(np.diff(conf) > 0)  # different scores, different confidences: no tied plateaus
    plain = fit_calibrator(s, y, centered=False)
    assert len(np.unique(plain.predict(t))) < len(np.unique(conf)) / 5  # the plain fit's plateaus


def test_centered_curve_stays_calibrated_and_close_to_the_truth() -> None:
    s, y, _ = _data(20000, 2)
    t, yt, pt = _data(20000, 3)
    cen, plain = fit_calibrator(s, y), fit_calibrator(s, y, centered=False)
    assert expected_calibration_error(cen.predict(t), yt) < 0.02
    assert np.abs(cen.predict(t) - pt).mean() <= np.abs(plain.predict(t) - pt).mean()
    assert cen.predict([-100.0])[0] == cen.y[0] and cen.predict([100.0])[0] == cen.y[-1]  # flat beyond the ends


def test_centered_block_points_are_block_means() -> None:
    s = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 1.0])  # PAVA: [0], [1, 2] -> 0.5, [3, 4, 5] -> 1
    cal = fit_calibrator(s, y)
    assert np.allclose(cal.x, [0.0, 1.5, 4.0]) and np.allclose(cal.y, [0.0, 0.5, 1.0])
    assert np.isclose(cal.predict([2.75])[0], 0.75)
