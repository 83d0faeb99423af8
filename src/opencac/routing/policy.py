"""The routing policy: thresholds per code system and setting, complexity limit, audit
sampling; stored as JSON, fitted from validation predictions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.coding.types import CodingResult
from opencac.errors import PolicyError
from opencac.routing.calibration import (
    Calibrator,
    ScoredCode,
    calibration_report,
    group_key,
    save_json,
)
from opencac.routing.thresholds import (
    DEFAULT_CONFIDENCE,
    DEFAULT_METHOD,
    DEFAULT_PRIOR_WEIGHT,
    DEFAULT_TARGET_PRECISION,
    fit_thresholds,
)

POLICY_FORMAT = "opencac.routing-policy.v1"

#: Default weights of the complexity factors (they sum to 1.0; the score is in [0, 1]).
DEFAULT_WEIGHTS: dict[str, float] = {
    "conditions": 0.12,
    "interactions": 0.08,
    "uncertain_assertions": 0.15,
    "rare_procedures": 0.10,
    "low_confidence": 0.20,
    "edits_and_gaps": 0.20,
    "note_length": 0.07,
    "section_coverage": 0.08,
}


def norm_code(code: str) -> str:
    """Codes compared as CodiEsp does: lowercase, no dots, stripped."""
    return code.strip().lower().replace(".", "")


def system_of_code(code: str) -> str:
    """Infer the code system of a code from its form (used when a source does not say).

    A dotted code or a 3-character code is ICD-10-CM; a code starting with a digit is
    ICD-10-PCS; an undotted code of 4-7 characters is ICD-10-PCS when it starts with a PCS
    section letter (B C D F G H X) and has a ``Z`` qualifier/device placeholder or a letter
    in its second place, else ICD-10-CM. Prefer the source's own system when known.
    """
    c = code.strip().upper()
    if "." in c or len(c) <= 3:
        return "icd10cm"
    if c[0].isdigit():
        return "icd10pcs"
    if c[0] in "BCDFGHX" and (not c[1].isdigit() or "Z" in c[3:]):
        return "icd10pcs"
    return "icd10cm"


@dataclass(slots=True)
class RoutingPolicy:
    """Where an encounter goes: the thresholds, limits and sampling rate.

    Attributes:
        target_precision: the code-level precision the thresholds were fitted to.
        thresholds: ``system:setting`` (or ``system:*``) -> threshold; ``None`` means no
            threshold met the target, so codes of that group never go straight through.
        default_threshold: used for groups with no entry (conservative by default).
        complexity_limit: highest complexity score that may go straight through.
        audit_sample_rate: share of straight-through encounters sampled for audit.
        seed: seed of the reproducible audit sampling.
        blocking_edit_severities: edit severities that keep an encounter from going straight through.
        cdi_on_queries: send encounters with open CDI queries to the ``cdi_query`` route.
        low_confidence_floor: unselected suggestions with confidence in
            ``[floor, threshold)`` count as low-confidence codes (borderline, worth a look).
        long_note_chars: note length that counts as fully "long" for complexity.
        code_counts: how often each code (normalised) was seen in coded history, to spot rare ones.
        rare_count: a code seen fewer times than this is rare.
        weights: complexity factor weights.
        calibrators: optional per-group calibration maps (``Calibrator.to_dict()``), for display.
        fits: what each threshold achieved on validation data (``ThresholdFit.to_dict()``).
        projection: projected automation figures on the validation data.
        meta: model name, created time, validation size...
    """

    target_precision: float = DEFAULT_TARGET_PRECISION
    thresholds: dict[str, float | None] = field(default_factory=dict)
    default_threshold: float | None = 0.95
    complexity_limit: float = 0.35
    audit_sample_rate: float = 0.05
    seed: int = 0
    blocking_edit_severities: list[str] = field(default_factory=lambda: ["error", "warning"])
    cdi_on_queries: bool = True
    low_confidence_floor: float = 0.3
    long_note_chars: int = 8000
    code_counts: dict[str, int] = field(default_factory=dict)
    rare_count: int = 2
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    calibrators: dict[str, dict[str, Any]] = field(default_factory=dict)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    projection: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> RoutingPolicy:
        """Check ranges; returns ``self``.

        Raises:
            PolicyError: a value out of range.
        """
        if not 0.0 < self.target_precision <= 1.0:
            raise PolicyError(f"target_precision must be in (0, 1], got {self.target_precision}.")
        if not 0.0 <= self.audit_sample_rate <= 1.0:
            raise PolicyError(f"audit_sample_rate must be in [0, 1], got {self.audit_sample_rate}.")
        if self.complexity_limit < 0:
            raise PolicyError(f"complexity_limit must be >= 0, got {self.complexity_limit}.")
        for k, v in self.thresholds.items():
            if ":" not in k:
                raise PolicyError(f"threshold key {k!r} is not 'system:setting' (e.g. 'icd10cm:inpatient').")
            if v is not None and not 0.0 <= float(v) <= 1.0:
                raise PolicyError(f"threshold for {k} must be in [0, 1] or null, got {v}.")
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise PolicyError(f"unknown complexity weight(s) {sorted(unknown)}.", options=sorted(DEFAULT_WEIGHTS))
        return self

    def threshold_for(self, system: str, setting: str | None = None) -> float | None:
        """The threshold of ``system`` in ``setting``: the setting's own, else the system's, else default."""
        for key in (group_key(system, setting), group_key(system)):
            if key in self.thresholds:
                return self.thresholds[key]
        return self.default_threshold

    def passes(self, system: str, setting: str | None, confidence: float) -> bool:
        """Whether a code of ``system`` with ``confidence`` passes its threshold."""
        t = self.threshold_for(system, setting)
        return t is not None and confidence >= t

    def calibrated(self, score: float, system: str, setting: str | None = None) -> float:
        """The score through the group's calibrator when the policy carries one (else unchanged)."""
        for key in (group_key(system, setting), group_key(system)):
            if key in self.calibrators:
                return float(Calibrator.from_dict(self.calibrators[key]).predict(score))  # type: ignore[arg-type]
        return score

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with a ``format`` marker)."""
        d = asdict(self)
        d["format"] = POLICY_FORMAT
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingPolicy:
        """Build from a dict; unknown keys are an error (typos must not pass silently).

        Raises:
            PolicyError: wrong format marker, unknown keys or values out of range.
        """
        data = dict(data)
        fmt = data.pop("format", POLICY_FORMAT)
        if fmt != POLICY_FORMAT:
            raise PolicyError(f"policy format {fmt!r} is not supported; expected {POLICY_FORMAT!r}.")
        known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"unknown policy key(s) {sorted(unknown)}.", options=sorted(known))
        try:
            return cls(**data).validate()
        except TypeError as exc:  # pragma: no cover - defensive
            raise PolicyError(f"bad policy: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write the policy as JSON."""
        return save_json(self.validate().to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> RoutingPolicy:
        """Read a policy JSON file.

        Raises:
            PolicyError: missing file, not JSON, or invalid content.
        """
        p = Path(path)
        if not p.is_file():
            raise PolicyError(f"policy file {str(p)!r} not found; create one with `opencac thresholds fit`.")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PolicyError(f"policy file {str(p)!r} is not valid JSON ({exc.__class__.__name__}).") from exc
        if not isinstance(data, dict):
            raise PolicyError(f"policy file {str(p)!r} must hold a JSON object.")
        return cls.from_dict(data)


def records_from_results(
    results: Iterable[CodingResult],
    gold: Mapping[str, Mapping[str, Iterable[str]]],
    settings: Mapping[str, str] | None = None,
) -> tuple[list[ScoredCode], dict[str, int]]:
    """Turn coding results and gold code sets into labelled scored codes.

    Args:
        results: one result per validation document.
        gold: system (``icd10cm`` / ``icd10pcs``) -> doc id -> gold codes (any case, dotted
            or not).
        settings: doc id -> setting (default: each result's ``context.setting``).

    Returns:
        ``(records, gold_counts)``: every suggestion (deduplicated per doc) with its label,
        and the number of gold codes per ``system:*`` and ``system:setting`` group (the recall
        denominators, which count gold codes the engine never suggested).
    """
    records: list[ScoredCode] = []
    gold_counts: dict[str, int] = {}
    for res in results:
        setting = (settings or {}).get(res.doc_id) or res.context.setting
        for system, sugg in (("icd10cm", res.diagnoses), ("icd10pcs", res.procedures)):
            g = {norm_code(c) for c in gold.get(system, {}).get(res.doc_id, ())}
            for key in (group_key(system), group_key(system, setting)):
                gold_counts[key] = gold_counts.get(key, 0) + len(g)
            seen: set[str] = set()
            for s in sugg:
                n = norm_code(s.code)
                if n in seen:
                    continue
                seen.add(n)
                records.append(
                    ScoredCode(res.doc_id, s.code, system, setting, float(s.confidence), n in g, s.selected)
                )
    return records, gold_counts


def fit_policy(
    records: list[ScoredCode],
    gold_counts: dict[str, int] | None = None,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    base: RoutingPolicy | None = None,
    calibration: str | None = "isotonic",
    min_selected: int = 5,
    by_setting: bool = True,
    method: str = DEFAULT_METHOD,
    confidence: float = DEFAULT_CONFIDENCE,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
) -> RoutingPolicy:
    """Fit thresholds (and optional display calibrators) from validation records into a policy.

    Args:
        records: labelled scored codes (see :func:`records_from_results`).
        gold_counts: recall denominators per group.
        target_precision: the precision target.
        base: a policy whose other settings to keep (complexity limit, sampling...).
        calibration: ``isotonic`` | ``platt`` | ``None``; calibrators are stored for display
            of probabilities; thresholds are on the engine's own confidence.
        min_selected: fewest codes above a threshold for it to count.
        by_setting: fit per setting too.
        method / confidence / prior_weight: how thresholds are chosen (see
            :func:`~opencac.routing.thresholds.threshold_for_precision`; the default asks a
            lower confidence bound of precision, pooled with the engine's calibration, to meet
            the target, so that the promise holds on unseen notes).

    Returns:
        A new :class:`RoutingPolicy` with ``thresholds``, ``fits``, ``calibrators`` and
        ``meta`` (ECE per group before calibration) filled.
    """
    pol = RoutingPolicy.from_dict(base.to_dict()) if base else RoutingPolicy()
    pol.target_precision = target_precision
    fits = fit_thresholds(records, target_precision, gold_counts, by_setting, min_selected, method=method,
                          confidence=confidence, prior_weight=prior_weight)
    pol.thresholds = {k: f.threshold for k, f in fits.items()}
    pol.fits = {k: f.to_dict() for k, f in fits.items()}
    reps = calibration_report(records, by_setting=by_setting)
    pol.meta = dict(pol.meta)
    pol.meta.update(
        fitted=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        validation_codes=len(records),
        validation_docs=len({r.doc_id for r in records}),
        ece={k: round(r.ece, 4) for k, r in reps.items()},
        threshold_method={"method": method, "confidence": confidence, "prior_weight": prior_weight,
                          "min_selected": min_selected},
    )
    if calibration:
        from opencac.routing.calibration import group_records

        pol.calibrators = {}
        for key, recs in group_records(records, by_setting).items():
            if len(recs) >= 20:
                pol.calibrators[key] = Calibrator(calibration).fit(
                    [r.score for r in recs], [r.label for r in recs]
                ).to_dict()
    return pol.validate()
