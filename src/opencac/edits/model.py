"""Plain-data output of the rules layer: final codes, edits, CDI queries, DRG and the outcome.

Everything here is a small mutable dataclass with a ``to_dict`` that returns JSON-ready data
(the service and ``opencac check --json`` return exactly this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Edit severities, most severe first. ``error`` edits make ``opencac check`` exit 1.
SEVERITIES = ("error", "warning", "info")



def _plain(v: Any) -> Any:
    """``dataclasses.asdict`` without its deep copy of every leaf value (same output; asdict was
    a large share of the rules layer's CPU per note in batch runs)."""
    if hasattr(v, "__dataclass_fields__"):
        return {f: _plain(getattr(v, f)) for f in v.__dataclass_fields__}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return v

@dataclass(slots=True)
class EvidenceSpan:
    """A quoted piece of the note: ``text == note[start:end]``."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(slots=True)
class FinalCode:
    """One code of the final claim, in sequence.

    Attributes:
        code: dotted ICD-10-CM or 7-character ICD-10-PCS code.
        system: ``icd10cm`` | ``icd10pcs``.
        description: the official description ("" when the code is unknown).
        role: ``principal`` / ``first-listed`` / ``secondary`` for diagnoses, ``procedure``.
        poa: present-on-admission indicator (inpatient diagnoses), or None.
        source: ``engine`` (a selected suggestion), ``rule`` (added by a rule), ``claim``.
        confidence: the engine's confidence when it came from a suggestion.
        evidence: supporting spans of the note.
        added_by: versioned name of the rule that added or rewrote it, if any.
    """

    code: str
    system: str
    description: str = ""
    role: str = "secondary"
    poa: str | None = None
    source: str = "engine"
    confidence: float | None = None
    evidence: list[EvidenceSpan] = field(default_factory=list)
    added_by: str | None = None
    assertion: str = "affirmed"

    def to_dict(self) -> dict[str, Any]:
        d = _plain(self)
        d.pop("assertion", None)
        return d


@dataclass(slots=True)
class Edit:
    """One finding of a rule.

    Attributes:
        id: stable edit id, e.g. ``"EXCLUDES1"``, ``"MCE-AGE-MATERNITY"``.
        severity: ``error`` | ``warning`` | ``info``.
        message: one-sentence human explanation (never patient text beyond the quoted evidence).
        citation: the Official Guidelines section / tabular convention / MCE edit it implements.
        codes: the codes involved.
        evidence: spans of the note that triggered it (offsets into the note).
        rule: versioned name of the rule that raised it (``"opencac.excludes1.v1"``).
        fix: a proposed change ``{"add": [...], "remove": [...], "replace": {old: new}, "sequence": [...]}``.
        applied: whether the fix was applied to ``final_codes`` (engine mode) or only proposed.
        auto: whether the rule lets the runner apply the fix by itself in engine mode (the
            decision is certain, ``opencac.edits.policy``); False leaves the codes as they are
            and the fix is proposed to the coder. Not serialised: ``to_dict`` gives
            ``fix_status`` instead.
    """

    id: str
    severity: str
    message: str
    citation: str
    codes: list[str] = field(default_factory=list)
    evidence: list[EvidenceSpan] = field(default_factory=list)
    rule: str = ""
    fix: dict[str, Any] | None = None
    applied: bool = False
    auto: bool = True

    @property
    def fix_status(self) -> str | None:
        """``applied`` (the fix changed the final codes), ``proposed`` (left to the coder: the
        rule was not certain, or claim mode), ``unchanged`` (an automatic fix that found
        nothing left to change), or None without a fix."""
        if not self.fix:
            return None
        if self.applied:
            return "applied"
        return "proposed" if not self.auto else "unchanged"

    def to_dict(self) -> dict[str, Any]:
        d = _plain(self)
        d.pop("auto", None)
        d["fix_status"] = self.fix_status
        return d


@dataclass(slots=True)
class QueryOption:
    """A multiple-choice answer of a physician query; ``code`` is for the coder, never shown."""

    label: str
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(slots=True)
class Query:
    """A compliant, non-leading physician query (AHIMA/ACDIS *Guidelines for Achieving a
    Compliant Query Practice*, 2022 update): clinical indicators quoted from the note with
    offsets, open or multiple-choice options that include "Other" and "Clinically
    undetermined", no mention of reimbursement or of the impact of an answer.
    """

    id: str
    topic: str
    question: str
    options: list[QueryOption]
    clinical_indicators: list[EvidenceSpan]
    codes: list[str] = field(default_factory=list)
    citation: str = "AHIMA/ACDIS Guidelines for Achieving a Compliant Query Practice (2022 update)"
    rule: str = ""

    def physician_text(self) -> str:
        """The query as sent to the provider (question, indicators, options)."""
        lines = [self.question, "", "Clinical indicators in the record:"]
        lines += [f'- "{s.text}"' for s in self.clinical_indicators]
        lines += ["", "Please document your clinical judgment:"]
        lines += [f"[ ] {o.label}" for o in self.options]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = _plain(self)
        d["physician_text"] = self.physician_text()
        return d


@dataclass(slots=True)
class DrgImpact:
    """How the DRG would change under one change of the code set."""

    change: str  # "add I50.21", "remove N17.9", "query Q1: Acute systolic ... -> I50.21"
    drg: str
    description: str
    weight: float | None
    weight_delta: float | None
    source: str = ""  # suggestion / query id

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(slots=True)
class DrgResult:
    """MS-DRG grouping of the final code set (inpatient only)."""

    version: str
    drg: str
    description: str
    weight: float | None
    mdc: str = ""
    drivers: list[dict[str, str]] = field(default_factory=list)  # {"code", "level": CC|MCC}
    grouper: str = "drgpy"
    crosscheck: dict[str, Any] | None = None  # the other grouper's answer and agreement
    impacts: list[DrgImpact] = field(default_factory=list)
    weight_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(slots=True)
class RulesOutcome:
    """What the rules layer returns for one encounter.

    Attributes:
        final_codes: the sequenced final code set (diagnoses first, principal first, then procedures).
        edits: every finding, most severe first.
        queries: drafted physician queries.
        drg: MS-DRG grouping (inpatient with at least one diagnosis), else None.
        context: the encounter context used (JSON form).
        defaults: names of context fields that were not given and took their documented default.
        rules_run: versioned names of the rules that ran.
        mode: ``engine`` (fixes applied to the engine's suggestions) or ``claim`` (fixes proposed only).
        changes: the applied changes in order (``{"rule", "op", "code", "new"|"anchor"}``), the
            audit trail from the engine's selection to ``final_codes``.
        policy: the auto-apply thresholds used (``opencac.edits.policy.AutoApplyPolicy``).
    """

    final_codes: list[FinalCode] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    drg: DrgResult | None = None
    context: dict[str, Any] = field(default_factory=dict)
    defaults: list[str] = field(default_factory=list)
    rules_run: list[str] = field(default_factory=list)
    mode: str = "engine"
    changes: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def proposed(self) -> list[Edit]:
        """Edits whose fix is proposed to the coder, not applied (claim mode: every fix)."""
        return [e for e in self.edits if e.fix_status == "proposed"]

    @property
    def diagnoses(self) -> list[FinalCode]:
        """Final diagnosis codes in sequence."""
        return [c for c in self.final_codes if c.system == "icd10cm"]

    @property
    def procedures(self) -> list[FinalCode]:
        """Final procedure codes."""
        return [c for c in self.final_codes if c.system == "icd10pcs"]

    def has_errors(self) -> bool:
        """Whether any edit has severity ``error``."""
        return any(e.severity == "error" for e in self.edits)

    def edit_ids(self) -> list[str]:
        """Edit ids in order (handy in tests)."""
        return [e.id for e in self.edits]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "context": dict(self.context),
            "defaults": list(self.defaults),
            "final_codes": [c.to_dict() for c in self.final_codes],
            "edits": [e.to_dict() for e in self.edits],
            "queries": [q.to_dict() for q in self.queries],
            "drg": self.drg.to_dict() if self.drg else None,
            "rules_run": list(self.rules_run),
            "changes": [_plain(dict(c)) for c in self.changes],
            "proposed": [{"rule": e.rule, "edit": e.id, "severity": e.severity, "codes": list(e.codes),
                          "fix": _plain(e.fix)} for e in self.proposed],
            "policy": dict(self.policy),
            "summary": {
                "errors": sum(e.severity == "error" for e in self.edits),
                "warnings": sum(e.severity == "warning" for e in self.edits),
                "info": sum(e.severity == "info" for e in self.edits),
                "queries": len(self.queries),
                "applied_changes": len(self.changes),
                "proposed_fixes": len(self.proposed),
            },
        }
