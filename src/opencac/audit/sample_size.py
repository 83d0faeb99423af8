"""Attribute-sampling sample sizes, with the formula shown.

Two methods, reported side by side:

* **Normal approximation with finite population correction** (Cochran, *Sampling
  Techniques*, 3rd ed., 1977, eqs. 4.2 and 4.3)::

      n0 = z^2 * p * (1 - p) / E^2
      n  = n0 / (1 + (n0 - 1) / N)

  where ``z`` is the standard normal quantile for the confidence level (two-sided by
  default), ``p`` the expected error rate, ``E`` the precision (half-width) and ``N`` the
  population size. This is the formula behind Krejcie & Morgan (1970) Table 1.

* **Exact attribute sampling** as RAT-STATS and the AICPA *Audit Sampling* guide tables
  do it: the smallest ``n`` such that, if ``k = ceil(n * p)`` errors are found, the upper
  confidence limit of the error rate does not exceed the tolerable rate ``T = p + E``::

      P(X <= k | n, T) <= alpha            (binomial, population unknown or large)
      P(X <= k | N, M = ceil(T*N), n) <= alpha   (hypergeometric, population N known)

  with ``alpha = 1 - confidence`` (one-sided) or ``(1 - confidence) / 2`` (two-sided).
  With ``sided="one"`` and no population this reproduces the AICPA Audit Sampling guide
  Table A-1 ("Statistical sample sizes for tests of controls, 5 percent risk of
  overreliance") exactly, e.g. 59 for 0% expected / 5% tolerable, 93 for 1% / 5%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from opencac.errors import SampleSizeError

Sided = Literal["one", "two"]
_MAX_N = 1_000_000


@dataclass(frozen=True)
class SampleSizeResult:
    """A sample size with everything needed to defend it.

    Attributes:
        confidence: Confidence level (e.g. 0.95).
        precision: Desired precision ``E`` (half-width of the interval, as a rate).
        expected_error: Expected error rate ``p``.
        population: Population size ``N`` (None = very large).
        sided: ``"two"`` (rate +/- E) or ``"one"`` (upper limit only).
        z: Normal quantile used.
        n0: Normal-approximation size before the finite population correction (unrounded).
        n_normal: Normal approximation with finite population correction, rounded up.
        n_exact: Exact binomial / hypergeometric size (None if above the search limit).
        exact_method: ``"binomial"`` or ``"hypergeometric"``.
        exact_allowed_errors: ``k``: errors that may be found and still meet the precision.
        recommended: The size to draw (the exact one when available).
        formula: Plain-text derivation with the numbers substituted.
    """

    confidence: float
    precision: float
    expected_error: float
    population: int | None
    sided: Sided
    z: float
    n0: float
    n_normal: int
    n_exact: int | None
    exact_method: str
    exact_allowed_errors: int | None
    recommended: int
    formula: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _validate(confidence: float, precision: float, expected_error: float, population: int | None) -> None:
    if not 0.5 <= confidence < 1.0:
        raise SampleSizeError(f"confidence {confidence} must be in [0.5, 1), e.g. 0.90, 0.95, 0.99")
    if not 0.0 < precision < 1.0:
        raise SampleSizeError(f"precision {precision} must be a rate in (0, 1), e.g. 0.05 for +/-5 points")
    if not 0.0 <= expected_error < 1.0:
        raise SampleSizeError(f"expected error rate {expected_error} must be in [0, 1)")
    if expected_error + precision > 1.0:
        raise SampleSizeError(
            f"expected error {expected_error} + precision {precision} exceeds 1; lower one of them")
    if population is not None and population < 1:
        raise SampleSizeError(f"population {population} must be a positive count")


def z_value(confidence: float, sided: Sided = "two") -> float:
    """Standard normal quantile for a confidence level (two-sided or one-sided)."""
    from scipy.stats import norm

    alpha = 1.0 - confidence
    return float(norm.ppf(1.0 - alpha / 2.0 if sided == "two" else 1.0 - alpha))


def normal_sample_size(
    confidence: float, precision: float, expected_error: float, population: int | None = None,
    sided: Sided = "two",
) -> tuple[float, int, float]:
    """Normal approximation with finite population correction (Cochran 1977, eqs. 4.2-4.3).

    Returns:
        ``(n0, n, z)``: the unrounded infinite-population size, the corrected size rounded
        up (never above ``population``), and the z used. ``p = 0`` is replaced by the
        worst case of a single error-free estimate (``p(1-p)`` floored at ``1/n0``-free
        value 0.0001) so that the size is not zero.
    """
    _validate(confidence, precision, expected_error, population)
    z = z_value(confidence, sided)
    pq = max(expected_error * (1.0 - expected_error), 1e-4)
    n0 = z * z * pq / (precision * precision)
    n = n0 if population is None else n0 / (1.0 + (n0 - 1.0) / population)
    n_int = math.ceil(n - 1e-9)
    if population is not None:
        n_int = min(n_int, population)
    return n0, max(n_int, 1), z


def exact_sample_size(
    confidence: float, tolerable_rate: float, expected_error: float, population: int | None = None,
    sided: Sided = "one",
) -> tuple[int | None, int | None, str]:
    """Exact attribute sample size (AICPA Table A-1 / RAT-STATS style).

    The smallest ``n`` such that with ``k = ceil(n * expected_error)`` errors observed, the
    probability of observing ``k`` or fewer when the true rate is ``tolerable_rate`` is at
    most ``alpha``. Binomial when ``population`` is None, else hypergeometric with
    ``M = ceil(tolerable_rate * N)`` errors in the population.

    Returns:
        ``(n, k, method)``; ``n`` and ``k`` are None when no ``n`` up to the population
        (or 1,000,000) meets the criterion.
    """
    import numpy as np
    from scipy.stats import binom, hypergeom

    if not 0.0 < tolerable_rate <= 1.0 or expected_error >= tolerable_rate:
        raise SampleSizeError(
            f"tolerable rate {tolerable_rate} must exceed the expected error rate {expected_error}")
    alpha = 1.0 - confidence
    if sided == "two":
        alpha /= 2.0
    method = "binomial" if population is None else "hypergeometric"
    n_max = _MAX_N if population is None else population
    start = 1
    chunk = 20_000
    if population is not None:
        # Sampling without replacement never needs more than with replacement (plus a margin for
        # the rounding of k), so scan the hypergeometric only up to the binomial size first.
        n_bin = exact_sample_size(confidence, tolerable_rate, expected_error, None, sided)[0]
        if n_bin is not None:
            chunk = min(n_max, n_bin + 50)
    while start <= n_max:
        ns = np.arange(start, min(start + chunk, n_max + 1))
        ks = np.ceil(ns * expected_error - 1e-9).astype(int)
        if population is None:
            probs = binom.cdf(ks, ns, tolerable_rate)
        else:
            m = min(population, math.ceil(tolerable_rate * population - 1e-9))
            probs = hypergeom.cdf(ks, population, m, ns)
        ok = np.nonzero(probs <= alpha + 1e-12)[0]
        if ok.size:
            i = int(ok[0])
            return int(ns[i]), int(ks[i]), method
        start += chunk
        chunk = 20_000
    return None, None, method


def attribute_sample_size(
    confidence: float = 0.95,
    precision: float = 0.05,
    expected_error: float = 0.05,
    population: int | None = None,
    sided: Sided = "two",
) -> SampleSizeResult:
    """Sample size for estimating an error rate, both ways, with the formula written out.

    Args:
        confidence: Confidence level, e.g. 0.95.
        precision: Desired precision (half-width), e.g. 0.05 for +/- 5 percentage points.
        expected_error: Expected error rate (from history or a probe sample).
        population: Number of encounters in the frame; None for a very large population.
        sided: ``"two"`` for a rate +/- precision, ``"one"`` for an upper limit only.

    Returns:
        A :class:`SampleSizeResult`; ``recommended`` is the exact size when found,
        otherwise the normal approximation.

    Raises:
        SampleSizeError: A parameter is out of range.
    """
    if sided not in ("one", "two"):
        raise SampleSizeError(f"sided {sided!r} is not known", options=("one", "two"))
    n0, n_normal, z = normal_sample_size(confidence, precision, expected_error, population, sided)
    n_exact, k, method = exact_sample_size(
        confidence, expected_error + precision, expected_error, population, sided)
    p, e = expected_error, precision
    side_txt = "two-sided" if sided == "two" else "one-sided"
    alpha = (1 - confidence) / (2 if sided == "two" else 1)
    lines = [
        f"Normal approximation ({side_txt}, {confidence:.0%} confidence; Cochran 1977 eqs. 4.2-4.3):",
        f"  n0 = z^2 * p * (1 - p) / E^2 = {z:.4f}^2 * {p:.4f} * {1 - p:.4f} / {e:.4f}^2 = {n0:.2f}",
    ]
    if population is not None:
        corrected = n0 / (1 + (n0 - 1) / population)
        lines.append(
            f"  n  = n0 / (1 + (n0 - 1) / N) = {n0:.2f} / (1 + {n0 - 1:.2f} / {population}) "
            f"= {corrected:.2f} -> {n_normal}")
    else:
        lines.append(f"  n  = n0 (population not given: no finite population correction) -> {n_normal}")
    if method == "binomial":
        crit = f"P(X <= k | n, T = {p + e:.4f}) <= alpha = {alpha:.4f}"
    else:
        m = math.ceil((p + e) * population - 1e-9)  # type: ignore[operator]
        crit = f"P(X <= k | N = {population}, M = {m}, n) <= alpha = {alpha:.4f}"
    lines += [
        f"Exact {method} (RAT-STATS / AICPA attribute-sampling tables):",
        f"  smallest n with k = ceil(n * p) errors allowed such that {crit}",
        f"  -> n = {n_exact}, k = {k}" if n_exact is not None else "  -> no n found within the search limit",
    ]
    recommended = n_exact if n_exact is not None else n_normal
    lines.append(f"Recommended sample size: {recommended}")
    return SampleSizeResult(
        confidence=confidence, precision=precision, expected_error=expected_error,
        population=population, sided=sided, z=z, n0=n0, n_normal=n_normal, n_exact=n_exact,
        exact_method=method, exact_allowed_errors=k, recommended=recommended,
        formula="\n".join(lines),
    )


def probe_error_rate(errors: int, probe_size: int) -> float:
    """Error rate estimate from a probe sample, used to size the full sample.

    The point estimate ``errors / probe_size``; with no errors found, half an error
    (``0.5 / probe_size``) so that the full sample is not sized on an assumed-perfect rate.
    """
    if probe_size <= 0 or not 0 <= errors <= probe_size:
        raise SampleSizeError(f"probe errors {errors} of {probe_size} is not a valid count")
    return (errors if errors > 0 else 0.5) / probe_size


def size_from_probe(
    errors: int, probe_size: int, confidence: float = 0.95, precision: float = 0.05,
    population: int | None = None, sided: Sided = "two",
) -> SampleSizeResult:
    """Size the full sample from a probe sample's error count (see :func:`probe_error_rate`)."""
    rate = probe_error_rate(errors, probe_size)
    if rate + precision > 1.0:
        rate = 1.0 - precision
    return attribute_sample_size(confidence, precision, rate, population, sided)
