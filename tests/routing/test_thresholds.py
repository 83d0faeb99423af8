"""Thresholds meet the target precision on synthetic scored data with known structure."""

from __future__ import annotations

import random

import pytest

from opencac.errors import PolicyError
from opencac.routing import ScoredCode, fit_thresholds, threshold_for_precision
from opencac.routing.thresholds import bootstrap_precision, precision_recall_at


def test_known_structure_exact() -> None:
    # scores 1.0..0.1; the top 6 are correct except the 4th -> precision at cut 6 = 5/6
    scores = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    labels = [1, 1, 1, 0, 1, 1, 0, 0, 1, 0]
    fit = threshold_for_precision(scores, labels, target_precision=0.8, n_gold=8)
    # cuts: 1.0->1/1, .9->2/2, .8->3/3, .7->3/4=.75, .6->4/5=.8, .5->5/6=.83, .4->5/7=.71 ...
    assert fit.threshold == 0.5
    assert fit.selected == 6 and fit.true_positives == 5
    assert fit.precision == pytest.approx(5 / 6)
    assert fit.recall == pytest.approx(5 / 8)
    strict = threshold_for_precision(scores, labels, target_precision=1.0)
    assert strict.threshold == 0.8 and strict.recall == pytest.approx(3 / 6)


def test_unreachable_target_gives_none() -> None:
    fit = threshold_for_precision([0.9, 0.8], [0, 1], target_precision=0.95)
    assert fit.threshold is None and fit.recall == 0.0 and fit.selected == 0


def test_ties_are_not_split() -> None:
    fit = threshold_for_precision([0.9, 0.9, 0.9, 0.5], [1, 1, 0, 1], target_precision=0.9)
    # the three tied 0.9s have precision 2/3: no cut at 0.9 meets 0.9
    assert fit.threshold is None


def test_min_selected_guard() -> None:
    fit = threshold_for_precision([0.99, 0.5, 0.4], [1, 0, 0], target_precision=0.95, min_selected=2)
    assert fit.threshold is None


def test_bad_target() -> None:
    with pytest.raises(PolicyError, match="target precision"):
        threshold_for_precision([0.5], [1], target_precision=1.5)


def _synthetic(n: int, seed: int, base_rate: float) -> list[ScoredCode]:
    # calibrated by construction: label ~ Bernoulli(score)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = rng.betavariate(2, 2) if rng.random() > base_rate else rng.uniform(0.9, 1.0)
        out.append(ScoredCode(f"d{i // 5}", f"C{i}", "icd10cm", "inpatient", s, rng.random() < s))
    return out


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_fitted_threshold_generalises_to_fresh_data(target: float) -> None:
    val = _synthetic(20000, seed=3, base_rate=0.3)
    fits = fit_thresholds(val, target_precision=target, min_selected=50)
    fit = fits["icd10cm:*"]
    assert fit.threshold is not None
    assert fit.precision >= target
    # fresh data from the same process: precision stays near the target
    test = _synthetic(20000, seed=4, base_rate=0.3)
    prec, rec, sel = precision_recall_at(test, fit.threshold)
    assert prec >= target - 0.02
    assert sel > 0 and 0 < rec < 1
    # a lower target never needs a higher threshold
    lower = fit_thresholds(val, target_precision=target - 0.1, min_selected=50)["icd10cm:*"]
    assert lower.threshold is not None and lower.threshold <= fit.threshold
    assert lower.recall >= fit.recall


def test_groups_per_system_and_setting_and_gold_denominator() -> None:
    recs = [
        ScoredCode("a", "E11.9", "icd10cm", "inpatient", 0.9, True),
        ScoredCode("a", "I10", "icd10cm", "outpatient", 0.8, True),
        ScoredCode("a", "BW03ZZZ", "icd10pcs", "inpatient", 0.7, False),
    ]
    fits = fit_thresholds(recs, target_precision=0.95, gold_counts={"icd10cm:*": 4}, min_selected=1,
                          method="empirical")
    assert fits["icd10cm:*"].threshold == 0.8
    assert fits["icd10cm:*"].recall == pytest.approx(2 / 4)
    assert fits["icd10cm:inpatient"].threshold == 0.9
    assert fits["icd10pcs:*"].threshold is None


def _calibrated(n: int, seed: int) -> list[ScoredCode]:
    """Calibrated scores on a few levels (as isotonic confidences are), 5 codes per document."""
    rng = random.Random(seed)
    levels = [0.99, 0.97, 0.95, 0.93, 0.9, 0.8, 0.6, 0.3]
    out = []
    for i in range(n):
        s = rng.choice(levels)
        out.append(ScoredCode(f"d{i // 5}", f"C{i}", "icd10cm", "inpatient", s, rng.random() < s))
    return out


def test_bayes_bound_keeps_the_promise_more_often_than_the_empirical_cut_on_small_sets() -> None:
    broken = {"empirical": 0, "bayes": 0}
    for seed in range(60):
        val, fresh = _calibrated(400, seed), _calibrated(4000, 1000 + seed)
        for method in broken:
            fit = fit_thresholds(val, 0.95, by_setting=False, method=method)["icd10cm:*"]
            if fit.threshold is not None:
                broken[method] += precision_recall_at(fresh, fit.threshold)[0] < 0.95
    assert broken["bayes"] < broken["empirical"] / 2
    assert broken["empirical"] >= 15  # the empirical cut on 400 codes breaks it often


def test_bayes_bound_grows_with_evidence_and_stays_below_the_observed_precision() -> None:
    small = threshold_for_precision([0.97] * 20, [1] * 19 + [0], 0.9, method="bayes", confidence=0.9)
    large = threshold_for_precision([0.97] * 200, [1] * 190 + [0] * 10, 0.9, method="bayes", confidence=0.9)
    assert small.precision_bound is not None and large.precision_bound is not None
    assert small.precision_bound < large.precision_bound < large.precision == 0.95
    assert large.method == "bayes" and large.confidence == 0.9
    # 95 % observed is not 95 % with confidence (labels alone); the engine's 0.97 pooled in lifts it
    labels = [1] * 190 + [0] * 10
    assert threshold_for_precision([0.97] * 200, labels, 0.95, method="bayes", prior_weight=0.0).threshold is None
    assert threshold_for_precision([0.97] * 200, labels, 0.95, method="bayes").threshold == 0.97


def test_prior_weight_pools_the_engine_confidence() -> None:
    # every validation code is right, but the engine says only 0.9: the pooled bound is pulled down
    scores, labels = [0.9] * 60, [1] * 60
    alone = threshold_for_precision(scores, labels, 0.95, method="bayes", prior_weight=0.0)
    pooled = threshold_for_precision(scores, labels, 0.95, method="bayes", prior_weight=1.0)
    assert alone.threshold == 0.9 and pooled.threshold is None
    with pytest.raises(PolicyError, match="unknown threshold method"):
        threshold_for_precision(scores, labels, 0.95, method="magic")
    with pytest.raises(PolicyError, match="confidence"):
        threshold_for_precision(scores, labels, 0.95, method="bayes", confidence=1.2)


def test_conservative_is_the_wilson_bound_at_95_percent() -> None:
    scores, labels = [0.99] * 100, [1] * 97 + [0] * 3
    a = threshold_for_precision(scores, labels, 0.95, conservative=True)
    b = threshold_for_precision(scores, labels, 0.95, method="wilson", confidence=0.95)
    assert a == b and a.method == "wilson" and a.threshold is None  # 97/100: Wilson 95 % lower bound < 0.95


def test_bootstrap_interval_resamples_documents() -> None:
    recs = [ScoredCode(f"d{i}", "C", "icd10cm", "inpatient", 0.9, i % 10 != 0) for i in range(200)]
    lo, hi = bootstrap_precision(recs, 0.5, n_boot=500)
    assert lo < 0.9 < hi and hi - lo < 0.1
    # the same errors concentrated in few documents: a wider interval
    clustered = [ScoredCode(f"d{i // 20}", "C", "icd10cm", "inpatient", 0.9, i >= 20) for i in range(200)]
    clo, chi = bootstrap_precision(clustered, 0.5, n_boot=500)
    assert chi - clo > hi - lo
    assert all(v != v for v in bootstrap_precision(recs, None))  # nothing passes: (nan, nan)
