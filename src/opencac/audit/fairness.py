"""Fairness: does accuracy (and automation, and querying) hold for every patient group?

For each attribute (age band, sex, race, ethnicity, preferred language, payer) and each
outcome (accuracy, automation rate, query rate) the report gives every group's rate with a
Wilson interval, the difference and ratio against a reference (the overall rate by
default, or the best group), and a significance test of the group against everyone else:
Pearson chi-square on the 2x2 table, or Fisher's exact test when any expected count is
below 5 (Cochran's rule, Cochran 1954, *Biometrics* 10:417). Because many groups are tested
at once, p-values are also Holm-adjusted within each attribute x outcome (Holm 1979).

An alert is raised when a group's gap from the reference exceeds a configurable threshold
*and* the Holm-adjusted p-value is below ``alpha`` (set ``require_significance=False`` to
alert on the gap alone). Groups with fewer than ``min_group_size`` encounters are listed
as "too few to judge" - shown, never hidden, and never tested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from opencac.audit.metrics import wilson_interval
from opencac.audit.records import EncounterRecord
from opencac.audit.sampling import AGE_BANDS, band
from opencac.errors import AuditInputError

ATTRIBUTES = ("age_band", "sex", "race", "ethnicity", "language", "payer")
ATTRIBUTE_LABELS = {"age_band": "Age band", "sex": "Sex", "race": "Race", "ethnicity": "Ethnicity",
                    "language": "Preferred language", "payer": "Payer"}
#: outcome name -> (label, record getter, higher is better)
OUTCOMES: dict[str, tuple[str, Callable[[EncounterRecord], bool | None], bool]] = {
    "accuracy": ("Coding accuracy", lambda r: r.accurate, True),
    "automation": ("Automation rate", lambda r: r.automated, True),
    "query": ("Query rate", lambda r: r.queried, False),
}
TOO_FEW = "too few to judge"


def group_of(rec: EncounterRecord, attribute: str) -> str:
    """Group label of a record for an attribute ("not recorded" when missing)."""
    if attribute == "age_band":
        label = band(rec.age, AGE_BANDS)
        return "not recorded" if label == "unknown" else label
    value = rec.get(attribute)
    return "not recorded" if value in (None, "") else str(value)


@dataclass
class GroupResult:
    """One group's rate for one outcome.

    Attributes:
        group: Group label.
        n: Encounters with a known outcome in the group.
        k: Encounters with the outcome (accurate / automated / queried).
        rate, low, high: Rate and Wilson interval (None when ``n`` is 0).
        status: ``ok``, ``too few to judge`` or ``alert``.
        difference: rate - reference rate.
        ratio: rate / reference rate.
        p_value: Test of this group vs all others (None when too few).
        p_adjusted: Holm-adjusted p-value (across all comparisons in the report).
        test: ``chi-square`` or ``fisher``.
    """

    group: str
    n: int
    k: int
    rate: float | None
    low: float | None
    high: float | None
    status: str = "ok"
    difference: float | None = None
    ratio: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    test: str | None = None


@dataclass
class OutcomeByAttribute:
    """All groups of one attribute for one outcome."""

    attribute: str
    outcome: str
    overall_rate: float | None
    reference: str
    reference_rate: float | None
    groups: list[GroupResult]

    @property
    def alerts(self) -> list[GroupResult]:
        """Groups flagged with an alert."""
        return [g for g in self.groups if g.status == "alert"]


@dataclass
class FairnessReport:
    """Fairness across attributes and outcomes, with the settings used."""

    tables: list[OutcomeByAttribute]
    threshold: float
    alpha: float
    min_group_size: int
    reference: str
    require_significance: bool
    n_records: int
    notes: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[tuple[OutcomeByAttribute, GroupResult]]:
        """Every (table, group) with an alert."""
        return [(t, g) for t in self.tables for g in t.alerts]

    def table(self, attribute: str, outcome: str) -> OutcomeByAttribute:
        """The table for one attribute and outcome."""
        for t in self.tables:
            if t.attribute == attribute and t.outcome == outcome:
                return t
        raise AuditInputError(f"no fairness table for {attribute}/{outcome}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["alerts"] = [{"attribute": t.attribute, "outcome": t.outcome, "group": g.group,
                        "difference": g.difference, "p_adjusted": g.p_adjusted} for t, g in self.alerts]
        return d

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows for CSV export."""
        out = []
        for t in self.tables:
            for g in t.groups:
                out.append({"attribute": t.attribute, "outcome": t.outcome, "reference": t.reference,
                            "reference_rate": t.reference_rate, **asdict(g)})
        return out


def two_by_two_test(k1: int, n1: int, k2: int, n2: int) -> tuple[float, str]:
    """p-value comparing k1/n1 with k2/n2: chi-square (no continuity correction), or
    Fisher's exact test when an expected cell count is below 5 (Cochran 1954)."""
    from scipy.stats import chi2_contingency, fisher_exact

    table = [[k1, n1 - k1], [k2, n2 - k2]]
    total = n1 + n2
    col = [k1 + k2, total - k1 - k2]
    if 0 in col or n1 == 0 or n2 == 0:
        return 1.0, "none (no variation)"
    expected = [n * c / total for n in (n1, n2) for c in col]
    if min(expected) < 5:
        return float(fisher_exact(table)[1]), "fisher"
    return float(chi2_contingency(table, correction=False)[1]), "chi-square"


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adj = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adj[i] = running
    return adj


def _table(
    records: Sequence[EncounterRecord], attribute: str, outcome: str, min_group_size: int, reference: str,
) -> OutcomeByAttribute:
    _, get, higher_better = OUTCOMES[outcome]
    groups: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        v = get(r)
        if v is not None:
            groups[group_of(r, attribute)].append(bool(v))
    total_k = sum(sum(v) for v in groups.values())
    total_n = sum(len(v) for v in groups.values())
    overall = total_k / total_n if total_n else None
    results: list[GroupResult] = []
    for g in sorted(groups):
        vals = groups[g]
        est = wilson_interval(sum(vals), len(vals))
        results.append(GroupResult(g, len(vals), sum(vals), est.value, est.low, est.high))
    judged = [g for g in results if g.n >= min_group_size]
    for g in results:
        if g.n < min_group_size:
            g.status = TOO_FEW
    ref_label, ref_rate = "overall", overall
    if reference == "best" and judged:
        best = (max if higher_better else min)(judged, key=lambda g: g.rate or 0.0)
        ref_label, ref_rate = f"best group ({best.group})", best.rate
    for g in judged:
        if g.rate is not None and ref_rate is not None:
            g.difference = g.rate - ref_rate
            g.ratio = g.rate / ref_rate if ref_rate else None
        g.p_value, g.test = two_by_two_test(g.k, g.n, total_k - g.k, total_n - g.n)
    return OutcomeByAttribute(attribute, outcome, overall, ref_label, ref_rate, results)


def fairness_report(
    records: Sequence[EncounterRecord],
    attributes: Sequence[str] = ATTRIBUTES,
    outcomes: Sequence[str] = tuple(OUTCOMES),
    threshold: float = 0.05,
    alpha: float = 0.05,
    min_group_size: int = 30,
    reference: str = "overall",
    require_significance: bool = True,
) -> FairnessReport:
    """Rates, disparities, tests and alerts for each attribute x outcome.

    Args:
        records: Encounters with demographics and outcomes (``accurate``, ``automated``,
            ``queried``); records lacking an outcome are left out of that outcome only.
        attributes: From :data:`ATTRIBUTES` (or any record column).
        outcomes: From :data:`OUTCOMES`.
        threshold: Gap (in rate points, e.g. 0.05) beyond which a worse group is flagged.
        alpha: Significance level for the Holm-adjusted p-value.
        min_group_size: Groups smaller than this are "too few to judge".
        reference: ``overall`` or ``best``.
        require_significance: Alert only when the gap is also significant.

    Raises:
        AuditInputError: Unknown outcome/reference or no records.
    """
    if not records:
        raise AuditInputError("fairness needs at least one record")
    for o in outcomes:
        if o not in OUTCOMES:
            raise AuditInputError(f"fairness outcome {o!r} is not known", options=tuple(OUTCOMES))
    if reference not in ("overall", "best"):
        raise AuditInputError(f"reference {reference!r} is not known", options=("overall", "best"))
    if not 0 < threshold < 1:
        raise AuditInputError(f"threshold {threshold} must be a rate gap in (0, 1), e.g. 0.05")
    tables = []
    notes = []
    for o in outcomes:
        if all(OUTCOMES[o][1](r) is None for r in records):
            notes.append(f"No records carry the {OUTCOMES[o][0].lower()} outcome; it was not assessed.")
            continue
        for a in attributes:
            tables.append(_table(records, a, o, min_group_size, reference))
    tested = [g for t in tables for g in t.groups if g.p_value is not None]
    for g, pa in zip(tested, holm([g.p_value for g in tested]), strict=True):  # type: ignore[misc]
        g.p_adjusted = pa
    for t in tables:
        higher_better = OUTCOMES[t.outcome][2]
        for g in t.groups:
            if g.difference is None:
                continue
            worse = -g.difference if higher_better else g.difference
            significant = g.p_adjusted is not None and g.p_adjusted < alpha
            if worse > threshold and (significant or not require_significance):
                g.status = "alert"
    notes.append(
        f"{len(tested)} group-versus-rest comparisons were tested. Unadjusted, about {len(tested) * alpha:.1f} "
        f"of them would reach p < {alpha} by chance alone even if no group differed, so p-values are "
        f"Holm-adjusted across all comparisons in this report (family-wise error rate {alpha}).")
    return FairnessReport(tables, threshold, alpha, min_group_size, reference, require_significance,
                          len(records), notes)


def records_with_outcomes(
    records: Sequence[EncounterRecord], accurate: Mapping[str, bool],
) -> list[EncounterRecord]:
    """Copy records, filling ``accurate`` from audit results (encounter id -> accurate)."""
    from dataclasses import replace

    return [replace(r, accurate=accurate[r.encounter_id]) if r.encounter_id in accurate else r for r in records]
