"""Drawing audit samples that reproduce exactly.

Randomness is a *hash ranking*: each encounter gets the key
``SHA-256("opencac-sample-v1|<seed>|<encounter_id>")`` and a simple random sample of size
``n`` is the ``n`` encounters with the smallest keys. The ranking depends only on the seed
and the ids, not on library versions or the platform, so an auditor (or a payer) given the
seed and the frame can redraw the very same sample with any SHA-256 tool. The frame is
recorded as its ordered ids plus their SHA-256 fingerprint.

Methods: ``random`` (simple random), ``stratified`` (proportional, optionally with a
minimum per stratum), ``targeted`` (risk-based) and ``probe`` (a small random sample whose
error rate sizes the full sample; the full sample extends the same ranking, so the probe
encounters are part of it).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from opencac.audit.records import EncounterRecord, check_unique
from opencac.audit.sample_size import SampleSizeResult, Sided, size_from_probe
from opencac.errors import SamplingError

METHODS = ("random", "stratified", "targeted", "probe")
_KEY_PREFIX = "opencac-sample-v1"

#: Confidence bands used by the ``confidence_band`` stratum key.
CONFIDENCE_BANDS = ((0.0, 0.5, "<0.50"), (0.5, 0.8, "0.50-0.79"), (0.8, 0.9, "0.80-0.89"), (0.9, 1.01, ">=0.90"))
#: Age bands used by the ``age_band`` stratum key and fairness reports.
AGE_BANDS = ((0, 18, "0-17"), (18, 45, "18-44"), (45, 65, "45-64"), (65, 75, "65-74"), (75, 200, "75+"))


def random_key(seed: int, encounter_id: str) -> str:
    """The hash-ranking key of one encounter for one seed (hex SHA-256)."""
    return hashlib.sha256(f"{_KEY_PREFIX}|{seed}|{encounter_id}".encode()).hexdigest()


def frame_fingerprint(ids: Sequence[str]) -> str:
    """SHA-256 of the ordered frame ids joined by newlines."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def band(value: float | None, bands: Sequence[tuple[float, float, str]]) -> str:
    """Label of the band ``lo <= value < hi`` ("unknown" for None)."""
    if value is None:
        return "unknown"
    for lo, hi, label in bands:
        if lo <= value < hi:
            return label
    return "unknown"


def stratum_value(rec: EncounterRecord, by: str) -> str:
    """Stratum label of a record: an attribute name, ``confidence_band`` or ``age_band``."""
    if by == "confidence_band":
        return band(rec.confidence, CONFIDENCE_BANDS)
    if by == "age_band":
        return band(rec.age, AGE_BANDS)
    value = rec.get(by)
    return "unknown" if value in (None, "") else str(value)


@dataclass(frozen=True)
class SampledItem:
    """One drawn encounter.

    Attributes:
        encounter_id: The encounter.
        order: Position in the draw (0-based).
        stratum: Stratum label (stratified samples).
        reason: Why it was drawn ("random", or the risk criteria met).
        risk: Risk score (targeted samples).
        key: Its hash-ranking key.
    """

    encounter_id: str
    order: int
    stratum: str | None = None
    reason: str = "random"
    risk: float | None = None
    key: str = ""


@dataclass
class Sample:
    """A drawn sample plus everything needed to reproduce it.

    Attributes:
        method: One of :data:`METHODS`.
        seed: The random seed.
        items: Drawn encounters in draw order.
        frame_ids: Ordered ids of the frame the sample was drawn from.
        frame_hash: :func:`frame_fingerprint` of ``frame_ids``.
        params: The plan parameters (size, stratum key, criteria ...).
        strata: Stratum -> {"population": N_h, "sample": n_h} (stratified samples).
        notes: Plain-language notes (e.g. fewer eligible encounters than asked for).
        size_calc: The sample-size calculation, when one sized the sample.
    """

    method: str
    seed: int
    items: list[SampledItem]
    frame_ids: tuple[str, ...]
    frame_hash: str
    params: dict[str, Any] = field(default_factory=dict)
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    size_calc: SampleSizeResult | None = None

    @property
    def ids(self) -> list[str]:
        """Drawn encounter ids in draw order."""
        return [i.encounter_id for i in self.items]

    @property
    def size(self) -> int:
        """Number of encounters drawn."""
        return len(self.items)

    @property
    def frame_size(self) -> int:
        """Number of encounters in the frame."""
        return len(self.frame_ids)

    def to_dict(self, include_frame: bool = True) -> dict[str, Any]:
        """JSON-ready dict (the frame ids included unless ``include_frame`` is False)."""
        d: dict[str, Any] = {
            "method": self.method, "seed": self.seed, "frame_hash": self.frame_hash,
            "frame_size": self.frame_size, "params": self.params, "strata": self.strata,
            "notes": self.notes, "items": [asdict(i) for i in self.items],
            "size_calc": self.size_calc.to_dict() if self.size_calc else None,
        }
        if include_frame:
            d["frame_ids"] = list(self.frame_ids)
        return d

    def reproduces(self, records: Sequence[EncounterRecord]) -> bool:
        """True when redrawing with the recorded method, seed and params on ``records``
        gives exactly this sample (and the frame hash matches)."""
        if frame_fingerprint([r.encounter_id for r in records]) != self.frame_hash:
            return False
        again = draw_sample(records, self.method, seed=self.seed, **self.params)
        return again.ids == self.ids


def _frame(records: Sequence[EncounterRecord]) -> tuple[tuple[str, ...], str]:
    if not records:
        raise SamplingError("the frame is empty: nothing to sample (check the scope)")
    check_unique(records)
    ids = tuple(r.encounter_id for r in records)
    return ids, frame_fingerprint(ids)


def _check_n(n: int, available: int, what: str = "the frame") -> None:
    if n < 1:
        raise SamplingError(f"sample size {n} must be at least 1")
    if n > available:
        raise SamplingError(f"sample size {n} is larger than {what} ({available} encounters)")


def _ranked(records: Sequence[EncounterRecord], seed: int) -> list[tuple[str, EncounterRecord]]:
    return sorted(((random_key(seed, r.encounter_id), r) for r in records), key=lambda t: t[0])


def simple_random_sample(records: Sequence[EncounterRecord], n: int, seed: int) -> Sample:
    """Simple random sample without replacement: the ``n`` smallest hash keys.

    Raises:
        SamplingError: Empty frame or ``n`` outside 1..len(frame).
    """
    ids, fh = _frame(records)
    _check_n(n, len(ids))
    ranked = _ranked(records, seed)[:n]
    items = [SampledItem(r.encounter_id, i, key=k) for i, (k, r) in enumerate(ranked)]
    return Sample("random", seed, items, ids, fh, params={"n": n})


def allocate(
    sizes: Mapping[str, int], n: int, min_per_stratum: int = 0, allocation: str = "proportional",
) -> dict[str, int]:
    """Allocate ``n`` over strata of the given sizes.

    ``proportional``: ``n_h`` proportional to ``N_h``; strata whose share falls below
    ``min(min_per_stratum, N_h)`` are fixed at that minimum and the rest re-shared in
    proportion (water-filling), never above ``N_h``; rounding by largest remainder.
    ``equal``: the same ``n_h`` for every stratum (capped at ``N_h``).

    Raises:
        SamplingError: ``n`` smaller than the sum of minimums or larger than the frame.
    """
    total = sum(sizes.values())
    _check_n(n, total)
    if allocation not in ("proportional", "equal"):
        raise SamplingError(f"allocation {allocation!r} is not known", options=("proportional", "equal"))
    lo = {h: min(min_per_stratum, nh) for h, nh in sizes.items()}
    if sum(lo.values()) > n:
        raise SamplingError(
            f"sample size {n} is below the minimum of {min_per_stratum} per stratum "
            f"over {len(sizes)} strata ({sum(lo.values())} needed)")
    weight = {h: (float(nh) if allocation == "proportional" else 1.0) for h, nh in sizes.items()}
    fixed: dict[str, float] = {}
    while True:
        free = [h for h in sizes if h not in fixed]
        rest = n - sum(fixed.values())
        wsum = sum(weight[h] for h in free)
        shares = {h: rest * weight[h] / wsum if wsum else 0.0 for h in free}
        newly = {h: float(lo[h]) for h in free if shares[h] < lo[h]}
        newly.update({h: float(sizes[h]) for h in free if shares[h] > sizes[h]})
        if not newly:
            break
        fixed.update(newly)
    alloc = {h: int(v) for h, v in fixed.items()}
    floors = {h: math.floor(s) for h, s in shares.items()}
    alloc.update(floors)
    left = n - sum(alloc.values())
    order = sorted(shares, key=lambda h: (-(shares[h] - floors[h]), h))
    for h in order:
        if left <= 0:
            break
        if alloc[h] < sizes[h]:
            alloc[h] += 1
            left -= 1
    return dict(sorted(alloc.items()))


def stratified_sample(
    records: Sequence[EncounterRecord], n: int, seed: int, by: str = "setting",
    allocation: str = "proportional", min_per_stratum: int = 0,
) -> Sample:
    """Stratified random sample: strata from :func:`stratum_value`, allocation by
    :func:`allocate`, simple random within each stratum (same hash ranking).

    Raises:
        SamplingError: ``n`` out of range or below the per-stratum minimums.
    """
    ids, fh = _frame(records)
    groups: dict[str, list[EncounterRecord]] = defaultdict(list)
    for r in records:
        groups[stratum_value(r, by)].append(r)
    alloc = allocate({h: len(g) for h, g in groups.items()}, n, min_per_stratum, allocation)
    items: list[SampledItem] = []
    for h in sorted(groups):
        for k, r in _ranked(groups[h], seed)[: alloc[h]]:
            items.append(SampledItem(r.encounter_id, len(items), stratum=h, key=k))
    strata = {h: {"population": len(groups[h]), "sample": alloc[h]} for h in sorted(groups)}
    params = {"n": n, "by": by, "allocation": allocation, "min_per_stratum": min_per_stratum}
    return Sample("stratified", seed, items, ids, fh, params=params, strata=strata)


@dataclass(frozen=True)
class TargetCriteria:
    """Risk criteria for a targeted sample; each criterion met adds its weight to the risk.

    Attributes:
        drg_weight_min: High-DRG-weight criterion: relative weight at or above this.
        confidence_below: Low-confidence criterion: AI confidence below this.
        edits: Edit ids; an encounter where any of them fired meets the criterion.
        straight_through_only: Restrict to encounters finalised by AI straight through.
        weights: Criterion name -> weight (defaults 1.0 each).
    """

    drg_weight_min: float | None = None
    confidence_below: float | None = None
    edits: tuple[str, ...] = ()
    straight_through_only: bool = False
    weights: Mapping[str, float] = field(default_factory=dict)

    def evaluate(self, rec: EncounterRecord) -> tuple[float, list[str]]:
        """Return (risk score, criteria met) for one record."""
        met: list[str] = []
        if self.drg_weight_min is not None and rec.drg_weight is not None and rec.drg_weight >= self.drg_weight_min:
            met.append("high_drg_weight")
        if self.confidence_below is not None and rec.confidence is not None and rec.confidence < self.confidence_below:
            met.append("low_confidence")
        if self.edits and any(e in self.edits for e in rec.edits):
            met.append("edit_fired")
        if self.straight_through_only and not (self.drg_weight_min or self.confidence_below or self.edits):
            met.append("straight_through")
        return sum(self.weights.get(m, 1.0) for m in met), met

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"drg_weight_min": self.drg_weight_min, "confidence_below": self.confidence_below,
                "edits": list(self.edits), "straight_through_only": self.straight_through_only,
                "weights": dict(self.weights)}


def target_criteria_from_dict(data: Mapping[str, Any]) -> TargetCriteria:
    """Build :class:`TargetCriteria` from a JSON object, naming any bad field.

    Raises:
        SamplingError: Unknown field or a value of the wrong type.
    """
    allowed = ("drg_weight_min", "confidence_below", "edits", "straight_through_only", "weights")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise SamplingError(f"unknown targeting criterion {unknown[0]!r}", options=allowed)
    try:
        edits = data.get("edits") or ()
        weights = data.get("weights") or {}
        return TargetCriteria(
            drg_weight_min=None if data.get("drg_weight_min") is None else float(data["drg_weight_min"]),
            confidence_below=None if data.get("confidence_below") is None else float(data["confidence_below"]),
            edits=(edits,) if isinstance(edits, str) else tuple(str(e) for e in edits),
            straight_through_only=bool(data.get("straight_through_only", False)),
            weights={str(k): float(v) for k, v in dict(weights).items()})
    except (TypeError, ValueError) as exc:
        raise SamplingError(f"targeting criteria are malformed: {exc}") from exc


def targeted_sample(
    records: Sequence[EncounterRecord], n: int, seed: int, criteria: TargetCriteria | Mapping[str, Any],
) -> Sample:
    """Risk-based sample: encounters meeting at least one criterion, highest risk first,
    ties broken by the hash ranking. Takes all eligible ones (with a note) when fewer than
    ``n`` qualify.

    Raises:
        SamplingError: No criterion given, or no encounter meets any.
    """
    if isinstance(criteria, Mapping):
        criteria = target_criteria_from_dict(criteria)
    if not (criteria.drg_weight_min or criteria.confidence_below or criteria.edits or criteria.straight_through_only):
        raise SamplingError("a targeted sample needs at least one criterion: "
                            "drg_weight_min, confidence_below, edits or straight_through_only")
    ids, fh = _frame(records)
    if n < 1:
        raise SamplingError(f"sample size {n} must be at least 1")
    scored = []
    for k, r in _ranked(records, seed):
        if criteria.straight_through_only and r.coded_by != "ai_straight_through":
            continue
        risk, met = criteria.evaluate(r)
        if met:
            scored.append((-risk, k, r, met))
    if not scored:
        raise SamplingError("no encounter in the frame meets the targeting criteria")
    scored.sort(key=lambda t: (t[0], t[1]))
    notes = []
    if len(scored) < n:
        notes.append(f"Only {len(scored)} encounters met the criteria; all were taken (asked for {n}).")
    items = [SampledItem(r.encounter_id, i, reason=", ".join(met), risk=-neg, key=k)
             for i, (neg, k, r, met) in enumerate(scored[:n])]
    return Sample("targeted", seed, items, ids, fh, params={"n": n, "criteria": criteria.to_dict()}, notes=notes)


def probe_sample(records: Sequence[EncounterRecord], n: int, seed: int) -> Sample:
    """A small simple random sample (commonly 30-50) to estimate the error rate."""
    s = simple_random_sample(records, n, seed)
    s.method = "probe"
    return s


def full_sample_from_probe(
    records: Sequence[EncounterRecord], probe: Sample, probe_errors: int, confidence: float = 0.95,
    precision: float = 0.05, sided: Sided = "two",
) -> Sample:
    """Size the full sample from the probe's errors and draw it by extending the probe's
    hash ranking (the probe encounters are the first items of the full sample).

    Raises:
        SamplingError: ``records`` is not the frame the probe was drawn from.
    """
    ids, fh = _frame(records)
    if fh != probe.frame_hash:
        raise SamplingError("the frame differs from the one the probe sample was drawn from (hash mismatch)")
    calc = size_from_probe(probe_errors, probe.size, confidence, precision, len(records), sided)
    n = max(calc.recommended, probe.size)
    notes = [f"Probe of {probe.size} found {probe_errors} errors; full sample sized at {calc.recommended}."]
    if n > len(records):
        n = len(records)
        notes.append("The calculated size exceeds the frame: the whole frame is audited.")
    s = simple_random_sample(records, n, probe.seed)
    return Sample("random", probe.seed, s.items, ids, fh, params={"n": n}, notes=notes, size_calc=calc)


def draw_sample(records: Sequence[EncounterRecord], method: str, seed: int, **params: Any) -> Sample:
    """Dispatch to a sampling method by name (the form stored in :attr:`Sample.params`).

    Args:
        records: The frame (already scoped).
        method: One of :data:`METHODS`.
        seed: Random seed.
        **params: ``n`` plus method parameters (``by``, ``allocation``, ``min_per_stratum``
            for stratified; ``criteria`` for targeted).

    Raises:
        SamplingError: Unknown method or bad parameters.
    """
    if method not in METHODS:
        raise SamplingError(f"sampling method {method!r} is not known", options=METHODS)
    n = params.pop("n", None)
    if n is None:
        raise SamplingError("a sample size 'n' is required")
    if method == "random":
        return simple_random_sample(records, int(n), seed)
    if method == "probe":
        return probe_sample(records, int(n), seed)
    if method == "stratified":
        return stratified_sample(records, int(n), seed, **params)
    return targeted_sample(records, int(n), seed, params.get("criteria") or {})
