"""Plain-data results of the coding engine (and, filled in later, of the rules layer)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

#: Assertion values of a mention / suggestion.
ASSERTIONS = ("affirmed", "negated", "uncertain", "historical", "family", "hypothetical")

#: Encounter settings.
SETTINGS = ("inpatient", "outpatient", "professional", "emergency")


@dataclass(slots=True)
class EncounterContext:
    """What the rules need to know about the encounter. Every field has a documented default.

    Attributes:
        setting: ``inpatient`` | ``outpatient`` | ``professional`` | ``emergency`` (default
            ``outpatient``: uncertain diagnoses are then not coded as established, IV.H).
        age: patient age in years at the date of service (default unknown: age edits skipped).
        sex: ``F`` | ``M`` | ``U`` (default ``U``: sex edits skipped).
        date_of_service: selects the valid code set (default: today).
        admission_date / discharge_date: inpatient dates; discharge date selects the DRG version.
        discharge_status: UB-04 patient status code, e.g. ``"01"`` home (default ``"01"``).
        poa: present-on-admission indicator per diagnosis code (``Y``/``N``/``U``/``W``/``1``).
    """

    setting: str = "outpatient"
    age: int | None = None
    sex: str = "U"
    date_of_service: dt.date | None = None
    admission_date: dt.date | None = None
    discharge_date: dt.date | None = None
    discharge_status: str = "01"
    poa: dict[str, str] = field(default_factory=dict)

    def effective_date(self) -> dt.date:
        """The date that selects the code set: discharge date, else date of service, else today."""
        return self.discharge_date or self.date_of_service or dt.date.today()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings)."""
        d = asdict(self)
        for k in ("date_of_service", "admission_date", "discharge_date"):
            if d[k] is not None:
                d[k] = d[k].isoformat()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncounterContext:
        """Build from a JSON dict (ISO date strings accepted); unknown keys are ignored."""
        kw: dict[str, Any] = {}
        for k in ("setting", "age", "sex", "discharge_status", "poa"):
            if data.get(k) is not None:
                kw[k] = data[k]
        for k in ("date_of_service", "admission_date", "discharge_date"):
            v = data.get(k)
            if v:
                kw[k] = v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))
        return cls(**kw)


@dataclass(slots=True)
class Evidence:
    """A piece of the note that supports a suggestion."""

    start: int
    end: int
    text: str
    section: str = ""
    sentence: int | None = None


@dataclass(slots=True)
class CodeSuggestion:
    """One suggested code with everything a coder needs to judge it.

    Attributes:
        code: dotted ICD-10-CM (``E11.9``) or 7-character ICD-10-PCS code.
        system: ``icd10cm`` | ``icd10pcs``.
        description: the code's official description.
        confidence: calibrated probability that the code belongs on the encounter.
        evidence: supporting spans with offsets into the original text.
        assertion: one of ``ASSERTIONS``; negated/family never become final diagnosis codes.
        rationale: human-readable reasons (index path, matched term, model signal...).
        signals: the raw feature values that produced the score (for audit and learning).
        rank: 1-based rank within its code system.
        selected: whether the engine proposes it for the final code set (passes the
            threshold and the assertion rules); unselected ones stay visible to the coder.
    """

    code: str
    system: str
    description: str
    confidence: float
    evidence: list[Evidence] = field(default_factory=list)
    assertion: str = "affirmed"
    rationale: list[str] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    rank: int = 0
    selected: bool = False

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than dataclasses.asdict: asdict's recursive deep copy was a third
        # of a batch worker's CPU per note (same output).
        return {
            "code": self.code, "system": self.system, "description": self.description,
            "confidence": self.confidence,
            "evidence": [{"start": e.start, "end": e.end, "text": e.text, "section": e.section,
                          "sentence": e.sentence} for e in self.evidence],
            "assertion": self.assertion, "rationale": list(self.rationale), "signals": dict(self.signals),
            "rank": self.rank, "selected": self.selected,
        }


@dataclass(slots=True)
class CodingResult:
    """The engine's output for one document (the rules layer adds ``rules``).

    Attributes:
        doc_id: the document id.
        diagnoses / procedures: ranked suggestions, best first.
        model: the model name and version that produced them (``"dictionary-only"`` with no model).
        codeset: code-set versions used (e.g. ``{"icd10cm": "FY2026", "icd10pcs": "FY2025"}``).
        context: the encounter context used.
        warnings: non-fatal notes for the user (never patient text in logs; these go to output).
        rules: the rules layer's output (final code set, edits, DRG, queries), when applied.
    """

    doc_id: str
    diagnoses: list[CodeSuggestion] = field(default_factory=list)
    procedures: list[CodeSuggestion] = field(default_factory=list)
    model: str = "dictionary-only"
    codeset: dict[str, str] = field(default_factory=dict)
    context: EncounterContext = field(default_factory=EncounterContext)
    warnings: list[str] = field(default_factory=list)
    rules: dict[str, Any] | None = None

    def ranked(self, system: str) -> list[CodeSuggestion]:
        """Suggestions of one system (``icd10cm`` or ``icd10pcs``), best first."""
        return self.diagnoses if system == "icd10cm" else self.procedures

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "model": self.model,
            "codeset": dict(self.codeset),
            "context": self.context.to_dict(),
            "diagnoses": [s.to_dict() for s in self.diagnoses],
            "procedures": [s.to_dict() for s in self.procedures],
            "warnings": list(self.warnings),
            "rules": self.rules,
        }
