"""Fairness: a planted disparity must be found; none must not be invented."""

from __future__ import annotations

import pytest

from opencac.audit.fairness import TOO_FEW, fairness_report, holm, two_by_two_test
from opencac.audit.synthetic import synthetic_population
from opencac.errors import AuditInputError


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planted_accuracy_disparity_is_found(seed: int) -> None:
    recs = synthetic_population(3000, seed=seed, planted={"language": ("Spanish", "accuracy", -0.15)})
    rep = fairness_report(recs)
    t = rep.table("language", "accuracy")
    spanish = next(g for g in t.groups if g.group == "Spanish")
    assert spanish.status == "alert"
    assert spanish.difference < -0.10 and spanish.ratio < 0.9 and spanish.p_adjusted < 0.001
    assert [(a.attribute, a.outcome, g.group) for a, g in rep.alerts] == [("language", "accuracy", "Spanish")]


def test_planted_automation_gap_by_payer_is_found() -> None:
    recs = synthetic_population(3000, seed=5, planted={"payer": ("Medicaid", "automation", -0.2)})
    alerts = [(a.attribute, a.outcome, g.group) for a, g in fairness_report(recs).alerts]
    assert ("payer", "automation", "Medicaid") in alerts


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_no_disparity_no_alert(seed: int) -> None:
    rep = fairness_report(synthetic_population(3000, seed=seed))
    assert rep.alerts == []


def test_small_groups_shown_as_too_few_never_hidden() -> None:
    recs = synthetic_population(1000, seed=7)
    t = fairness_report(recs, min_group_size=30).table("language", "accuracy")
    somali = next(g for g in t.groups if g.group == "Somali")
    assert 0 < somali.n < 30 and somali.status == TOO_FEW
    assert somali.p_value is None and somali.rate is not None
    assert sum(g.n for g in t.groups) == len(recs)


def test_best_group_reference_and_gap_only_alerts() -> None:
    recs = synthetic_population(3000, seed=1, planted={"sex": ("M", "accuracy", -0.08)})
    rep = fairness_report(recs, attributes=("sex",), outcomes=("accuracy",), reference="best")
    t = rep.table("sex", "accuracy")
    assert t.reference.startswith("best group (F)")
    m = next(g for g in t.groups if g.group == "M")
    f = next(g for g in t.groups if g.group == "F")
    assert f.difference == 0 and m.status == "alert"
    loose = fairness_report(synthetic_population(400, seed=2), threshold=0.02, require_significance=False,
                            min_group_size=20)
    strict = fairness_report(synthetic_population(400, seed=2), threshold=0.02, min_group_size=20)
    assert len(loose.alerts) > len(strict.alerts)


def test_tests_and_holm() -> None:
    p, test = two_by_two_test(2, 10, 30, 40)
    assert test == "fisher"
    from scipy.stats import fisher_exact

    assert p == pytest.approx(fisher_exact([[2, 8], [30, 10]])[1])
    p, test = two_by_two_test(80, 100, 60, 100)
    assert test == "chi-square" and p < 0.01
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    with pytest.raises(AuditInputError):
        fairness_report([])
    with pytest.raises(AuditInputError):
        fairness_report(synthetic_population(10), outcomes=("happiness",))
