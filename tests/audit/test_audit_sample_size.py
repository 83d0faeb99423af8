"""Sample sizes against published attribute-sampling tables."""

from __future__ import annotations

import pytest

from opencac.audit.sample_size import (
    attribute_sample_size,
    exact_sample_size,
    normal_sample_size,
    probe_error_rate,
    size_from_probe,
)
from opencac.errors import SampleSizeError

# AICPA Audit Guide "Audit Sampling" (2012/2019), Table A-1: "Statistical Sample Sizes for
# Tests of Controls - 5 Percent Risk of Overreliance" (large population). Entries are
# (expected population deviation rate, tolerable deviation rate) -> sample size (expected
# number of deviations in parentheses in the table).
AICPA_A1 = [
    (0.0, 0.02, 149, 0), (0.0, 0.03, 99, 0), (0.0, 0.04, 74, 0), (0.0, 0.05, 59, 0), (0.0, 0.06, 49, 0),
    (0.0, 0.07, 42, 0), (0.0, 0.08, 36, 0), (0.0, 0.09, 32, 0), (0.0, 0.10, 29, 0), (0.0, 0.15, 19, 0),
    (0.0, 0.20, 14, 0),
    (0.0025, 0.02, 236, 1), (0.0025, 0.05, 93, 1),
    (0.01, 0.04, 156, 2), (0.01, 0.05, 93, 1), (0.01, 0.10, 46, 1),
    (0.0125, 0.05, 124, 2), (0.015, 0.05, 124, 2), (0.0175, 0.05, 153, 3), (0.02, 0.05, 181, 4),
    (0.02, 0.06, 127, 3),
]
# Same guide, Table A-2: 10 percent risk of overreliance.
AICPA_A2 = [
    (0.0, 0.02, 114, 0), (0.0, 0.03, 76, 0), (0.0, 0.04, 57, 0), (0.0, 0.05, 45, 0), (0.0, 0.10, 22, 0),
    (0.0, 0.20, 11, 0), (0.01, 0.05, 77, 1), (0.02, 0.05, 132, 3),
]


@pytest.mark.parametrize(("expected", "tolerable", "n", "k"), AICPA_A1)
def test_exact_binomial_matches_aicpa_table_a1(expected: float, tolerable: float, n: int, k: int) -> None:
    assert exact_sample_size(0.95, tolerable, expected, None, "one") == (n, k, "binomial")


@pytest.mark.parametrize(("expected", "tolerable", "n", "k"), AICPA_A2)
def test_exact_binomial_matches_aicpa_table_a2(expected: float, tolerable: float, n: int, k: int) -> None:
    assert exact_sample_size(0.90, tolerable, expected, None, "one")[:2] == (n, k)


# Krejcie & Morgan (1970), "Determining sample size for research activities", Educational and
# Psychological Measurement 30:607, Table 1 (p = 0.5, d = 0.05, 95%): N -> s.
@pytest.mark.parametrize(("population", "size"), [(100, 80), (1000, 278), (10000, 370)])
def test_normal_fpc_matches_krejcie_morgan(population: int, size: int) -> None:
    assert normal_sample_size(0.95, 0.05, 0.5, population)[1] == size


def test_cochran_worked_example_and_formula_text() -> None:
    # n0 = 1.96^2 * 0.05 * 0.95 / 0.05^2 = 72.99; with N = 1000: 72.99 / (1 + 71.99/1000) = 68.09 -> 69
    r = attribute_sample_size(0.95, 0.05, 0.05, 1000)
    assert r.n0 == pytest.approx(72.99, abs=0.01)
    assert r.n_normal == 69
    assert "72.99" in r.formula and "68.09 -> 69" in r.formula
    assert "n0 = z^2 * p * (1 - p) / E^2" in r.formula
    assert r.exact_method == "hypergeometric" and r.recommended == r.n_exact
    assert r.n_exact is not None and r.n_exact >= r.n_normal


def test_no_population_skips_correction() -> None:
    r = attribute_sample_size(0.95, 0.05, 0.05)
    assert r.n_normal == 73 and r.exact_method == "binomial"
    assert "no finite population correction" in r.formula


def test_hypergeometric_needs_no_more_than_binomial_and_converges() -> None:
    n_bin = exact_sample_size(0.95, 0.05, 0.0, None, "one")[0]
    small = exact_sample_size(0.95, 0.05, 0.0, 200, "one")[0]
    big = exact_sample_size(0.95, 0.05, 0.0, 1_000_000, "one")[0]
    assert small is not None and n_bin is not None and big is not None
    assert small < n_bin
    assert abs(big - n_bin) <= 1


def test_higher_confidence_needs_larger_sample() -> None:
    sizes = [attribute_sample_size(c, 0.05, 0.05).n_normal for c in (0.80, 0.90, 0.95, 0.99)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


@pytest.mark.parametrize("kwargs", [
    {"confidence": 1.2}, {"confidence": 0.3}, {"precision": 0.0}, {"expected_error": -0.1},
    {"expected_error": 0.97, "precision": 0.05}, {"population": 0}, {"sided": "three"},
])
def test_bad_parameters_raise_clear_errors(kwargs: dict) -> None:
    with pytest.raises(SampleSizeError) as exc:
        attribute_sample_size(**kwargs)
    assert str(exc.value).startswith("OC-E602")


def test_probe_sizing() -> None:
    assert probe_error_rate(3, 30) == pytest.approx(0.1)
    assert probe_error_rate(0, 50) == pytest.approx(0.01)
    r = size_from_probe(3, 30, population=5000)
    assert r.expected_error == pytest.approx(0.1)
    assert r.n_normal == normal_sample_size(0.95, 0.05, 0.1, 5000)[1]
    with pytest.raises(SampleSizeError):
        probe_error_rate(5, 3)
