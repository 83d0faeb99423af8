"""Scoring one audited encounter, and defending each finding.

An auditor either re-codes blind (does not see the final codes; their own codes are then
compared with the final ones) or reviews the final codes. Either way the comparison is the
same: :func:`score_encounter` labels each code

* ``correct``  - in the final set and in the auditor's set;
* ``incorrect`` - a final code the auditor replaced with a different code of the same
  3-character category (e.g. E11.9 -> E11.65): the right condition, the wrong code;
* ``extra``    - a final code the auditor removed;
* ``missing``  - an auditor code absent from the final set;

and checks the principal diagnosis, the sequencing of the codes both agree on, the POA
indicators and the MS-DRG. Each discrepancy becomes a :class:`Finding` with a root cause
from :data:`ROOT_CAUSES`. Overrides must carry a rationale and a guideline citation; the
coded party may respond; the auditor records the final determination.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from opencac.errors import AuditInputError, AuditOverrideError, AuditStateError

CODE_VERDICTS = ("correct", "incorrect", "missing", "extra")
FINDING_KINDS = ("incorrect", "missing", "extra", "principal", "sequencing", "poa", "drg")
ROOT_CAUSES = ("documentation", "guideline_application", "ai_error", "coder_error", "edit_missed")
AUDIT_MODES = ("blind", "review")
DETERMINATIONS = ("upheld", "overturned", "modified")


def _norm(code: str) -> str:
    return code.strip().upper().replace(".", "")


def _category(code: str) -> str:
    return _norm(code)[:3]


def default_root_cause(coded_by: str | None) -> str:
    """Root cause assumed until the auditor says otherwise: AI error for straight-through
    encounters, coder error when a coder finalised."""
    return "ai_error" if coded_by == "ai_straight_through" else "coder_error"


@dataclass(frozen=True)
class CodedEncounter:
    """The final coding of an encounter as it left coding.

    Attributes:
        encounter_id: The encounter.
        codes: Final codes in sequence; ``codes[0]`` is the principal (first-listed) diagnosis.
        poa: Code -> POA indicator (Y, N, U, W, 1).
        drg: Final MS-DRG.
        drg_weight: Its relative weight.
        coded_by: One of ``ai_straight_through``, ``ai_coder``, ``coder``.
        model_version: Model that suggested codes.
        confidence: AI encounter confidence (for reliability charts).
        service_date: ISO date (for trends).
    """

    encounter_id: str
    codes: tuple[str, ...]
    poa: Mapping[str, str] = field(default_factory=dict)
    drg: str | None = None
    drg_weight: float | None = None
    coded_by: str | None = None
    model_version: str | None = None
    confidence: float | None = None
    service_date: str | None = None


@dataclass(frozen=True)
class AuditorCoding:
    """The auditor's coding of the same encounter (codes in sequence, principal first)."""

    codes: tuple[str, ...]
    poa: Mapping[str, str] = field(default_factory=dict)
    drg: str | None = None
    drg_weight: float | None = None


@dataclass(frozen=True)
class CodeVerdict:
    """One code's verdict: ``final_code`` and/or ``audited_code`` with a verdict."""

    verdict: str
    final_code: str | None
    audited_code: str | None


@dataclass
class Response:
    """The coded party's response to a finding."""

    by: str
    text: str
    at: str


@dataclass
class Finding:
    """One discrepancy the auditor found, with its defence trail.

    Attributes:
        encounter_id: The encounter.
        kind: One of :data:`FINDING_KINDS`.
        final_code, audited_code: The codes involved (either may be None).
        root_cause: One of :data:`ROOT_CAUSES`.
        rationale: Why the auditor's position is right (required for an override).
        citation: Guideline citation, e.g. "ICD-10-CM Official Guidelines I.A.15".
        override: True when the auditor overrides the final coding (changes the codes).
        responses: The coded party's responses.
        determination: ``upheld`` / ``overturned`` / ``modified`` once decided.
        determination_note: The auditor's note on the determination.
        financial_impact: Relative-weight change attributable (DRG findings).
        id: Stable id within the audit (set by :class:`AuditWorkbook`).
    """

    encounter_id: str
    kind: str
    final_code: str | None = None
    audited_code: str | None = None
    root_cause: str = "coder_error"
    rationale: str = ""
    citation: str = ""
    override: bool = True
    responses: list[Response] = field(default_factory=list)
    determination: str | None = None
    determination_note: str = ""
    financial_impact: float = 0.0
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise AuditInputError(f"finding kind {self.kind!r} is not known", options=FINDING_KINDS)
        if self.root_cause not in ROOT_CAUSES:
            raise AuditInputError(f"root cause {self.root_cause!r} is not known", options=ROOT_CAUSES)

    @property
    def defended(self) -> bool:
        """True when an override has both a rationale and a citation."""
        return bool(self.rationale.strip() and self.citation.strip())

    def require_defence(self) -> None:
        """Raise AuditOverrideError when this override lacks rationale or citation.

        Raises:
            AuditOverrideError: Naming the encounter, the code and what is missing.
        """
        if not self.override:
            return
        missing = [n for n, v in (("rationale", self.rationale), ("guideline citation", self.citation)) if not v.strip()]
        if missing:
            code = self.audited_code or self.final_code or self.kind
            raise AuditOverrideError(
                f"override of {code} on encounter {self.encounter_id} needs a {' and a '.join(missing)}")

    def respond(self, by: str, text: str, at: str | None = None) -> Response:
        """Record the coded party's response.

        Raises:
            AuditStateError: After the final determination.
            AuditInputError: Empty response text.
        """
        if self.determination is not None:
            raise AuditStateError(f"finding {self.id or self.kind} is already determined ({self.determination})")
        if not text.strip():
            raise AuditInputError("a response needs some text")
        r = Response(by, text.strip(), at or datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.responses.append(r)
        return r

    def determine(self, outcome: str, note: str = "") -> None:
        """Record the auditor's final determination.

        Raises:
            AuditInputError: Unknown outcome.
            AuditOverrideError: Upholding an override that lacks rationale or citation.
        """
        if outcome not in DETERMINATIONS:
            raise AuditInputError(f"determination {outcome!r} is not known", options=DETERMINATIONS)
        if outcome in ("upheld", "modified"):
            self.require_defence()
        self.determination = outcome
        self.determination_note = note

    @property
    def stands(self) -> bool:
        """True when the finding counts as an error (not overturned)."""
        return self.determination != "overturned"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class EncounterScore:
    """Scored comparison of final vs audited coding for one encounter.

    Attributes:
        encounter_id: The encounter.
        verdicts: One per code (see module docstring).
        principal_correct: First-listed code equal (None when either side has no codes).
        sequencing_correct: Codes both sides share appear in the same relative order.
        poa_mismatches: Codes both sides share whose POA indicator differs.
        drg_correct: Final DRG equals the audited DRG (None when either is unknown).
        weight_change: Audited minus final relative weight (0 when unknown).
        coded_by, model_version, confidence, service_date: Copied from the coded encounter.
    """

    encounter_id: str
    verdicts: list[CodeVerdict]
    principal_correct: bool | None
    sequencing_correct: bool
    poa_mismatches: list[str]
    drg_correct: bool | None
    weight_change: float
    coded_by: str | None = None
    model_version: str | None = None
    confidence: float | None = None
    service_date: str | None = None
    final_drg: str | None = None
    audited_drg: str | None = None
    final_principal: str | None = None
    audited_principal: str | None = None

    def count(self, verdict: str) -> int:
        """Number of codes with this verdict."""
        return sum(1 for v in self.verdicts if v.verdict == verdict)

    @property
    def tp(self) -> int:
        """Final codes the auditor agreed with."""
        return self.count("correct")

    @property
    def fp(self) -> int:
        """Final codes that were wrong (incorrect + extra)."""
        return self.count("incorrect") + self.count("extra")

    @property
    def fn(self) -> int:
        """Auditor codes the final set lacked (incorrect + missing)."""
        return self.count("incorrect") + self.count("missing")

    @property
    def accurate(self) -> bool:
        """All codes right, principal right, sequencing right and POA right."""
        return self.fp == 0 and self.fn == 0 and self.principal_correct is not False \
            and self.sequencing_correct and not self.poa_mismatches

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the counts."""
        d = asdict(self)
        d.update(tp=self.tp, fp=self.fp, fn=self.fn, accurate=self.accurate,
                 **{v: self.count(v) for v in CODE_VERDICTS})
        return d


def _dedupe(codes: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for c in codes:
        n = _norm(c)
        if n and n not in seen:
            seen.add(n)
            out.append(c.strip().upper())
    return out


def score_encounter(final: CodedEncounter, audited: AuditorCoding) -> EncounterScore:
    """Compare final and audited coding (see module docstring for the labels).

    Pairs an extra final code with a missing audited code of the same 3-character category
    as one ``incorrect`` verdict, in sequence order, so that a wrong specificity counts as
    one error on each side rather than an extra plus a missing.
    """
    f_codes = _dedupe(final.codes)
    a_codes = _dedupe(audited.codes)
    f_norm = {_norm(c): c for c in f_codes}
    a_norm = {_norm(c): c for c in a_codes}
    verdicts: list[CodeVerdict] = []
    extra = [c for c in f_codes if _norm(c) not in a_norm]
    missing = [c for c in a_codes if _norm(c) not in f_norm]
    for c in f_codes:
        if _norm(c) in a_norm:
            verdicts.append(CodeVerdict("correct", c, a_norm[_norm(c)]))
    paired_missing: set[str] = set()
    for c in extra:
        partner = next((m for m in missing if m not in paired_missing and _category(m) == _category(c)), None)
        if partner is not None:
            paired_missing.add(partner)
            verdicts.append(CodeVerdict("incorrect", c, partner))
        else:
            verdicts.append(CodeVerdict("extra", c, None))
    verdicts += [CodeVerdict("missing", None, m) for m in missing if m not in paired_missing]

    principal = None if not f_codes or not a_codes else _norm(f_codes[0]) == _norm(a_codes[0])
    shared_f = [_norm(c) for c in f_codes if _norm(c) in a_norm]
    shared_a = [_norm(c) for c in a_codes if _norm(c) in f_norm]
    sequencing = shared_f == shared_a
    fpoa = {_norm(k): v.strip().upper() for k, v in final.poa.items()}
    apoa = {_norm(k): v.strip().upper() for k, v in audited.poa.items()}
    poa_bad = [f_norm[c] for c in shared_f if c in apoa and fpoa.get(c, "") != apoa[c]]
    drg_ok = None if not final.drg or not audited.drg else final.drg.strip() == audited.drg.strip()
    wchange = 0.0
    if final.drg_weight is not None and audited.drg_weight is not None:
        wchange = audited.drg_weight - final.drg_weight
    return EncounterScore(
        encounter_id=final.encounter_id, verdicts=verdicts, principal_correct=principal,
        sequencing_correct=sequencing, poa_mismatches=poa_bad, drg_correct=drg_ok,
        weight_change=round(wchange, 4), coded_by=final.coded_by, model_version=final.model_version,
        confidence=final.confidence, service_date=final.service_date, final_drg=final.drg,
        audited_drg=audited.drg, final_principal=f_codes[0] if f_codes else None,
        audited_principal=a_codes[0] if a_codes else None,
    )


def findings_from_score(
    score: EncounterScore, root_cause: str | None = None, rationale: str = "", citation: str = "",
) -> list[Finding]:
    """Draft one finding per discrepancy, root cause defaulted from who coded.

    The drafts are overrides without a defence yet: the auditor must add a rationale and a
    citation (:meth:`Finding.require_defence`) before they can be upheld.
    """
    rc = root_cause or default_root_cause(score.coded_by)
    out: list[Finding] = []
    for v in score.verdicts:
        if v.verdict != "correct":
            out.append(Finding(score.encounter_id, v.verdict, v.final_code, v.audited_code, rc, rationale, citation))
    if score.principal_correct is False:
        out.append(Finding(score.encounter_id, "principal", score.final_principal, score.audited_principal, rc,
                           rationale, citation))
    if not score.sequencing_correct:
        out.append(Finding(score.encounter_id, "sequencing", None, None, rc, rationale, citation))
    for c in score.poa_mismatches:
        out.append(Finding(score.encounter_id, "poa", c, c, rc, rationale, citation))
    if score.drg_correct is False:
        out.append(Finding(score.encounter_id, "drg", score.final_drg, score.audited_drg, rc, rationale,
                           citation, financial_impact=score.weight_change))
    return out


@dataclass
class AuditedEncounter:
    """One encounter in an audit: what was coded, what the auditor found."""

    final: CodedEncounter
    audited: AuditorCoding | None = None
    auditor: str = ""
    score: EncounterScore | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class AuditWorkbook:
    """In-memory audit: sampled encounters, the auditor's coding, findings and their trail.

    Blind mode hides the final codes from :meth:`worksheet` until the auditor has coded the
    encounter; review mode shows them.

    Attributes:
        name: Audit name.
        mode: ``blind`` or ``review``.
        encounters: encounter id -> :class:`AuditedEncounter` (in sample order).
    """

    name: str
    mode: str = "blind"
    encounters: dict[str, AuditedEncounter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in AUDIT_MODES:
            raise AuditInputError(f"audit mode {self.mode!r} is not known", options=AUDIT_MODES)

    def add(self, final: CodedEncounter) -> None:
        """Add a sampled encounter."""
        self.encounters[final.encounter_id] = AuditedEncounter(final)

    def _get(self, encounter_id: str) -> AuditedEncounter:
        try:
            return self.encounters[encounter_id]
        except KeyError:
            raise AuditInputError(f"encounter {encounter_id!r} is not in audit {self.name!r}") from None

    def worksheet(self, encounter_id: str) -> dict[str, Any]:
        """What the auditor may see: final codes hidden in blind mode until re-coded."""
        e = self._get(encounter_id)
        show = self.mode == "review" or e.audited is not None
        return {
            "encounter_id": encounter_id, "mode": self.mode,
            "final_codes": list(e.final.codes) if show else None,
            "final_drg": e.final.drg if show else None,
            "audited_codes": list(e.audited.codes) if e.audited else None,
        }

    def record_coding(
        self, encounter_id: str, coding: AuditorCoding, auditor: str = "", root_cause: str | None = None,
    ) -> EncounterScore:
        """Record the auditor's coding, score it and draft findings (replacing earlier drafts)."""
        e = self._get(encounter_id)
        e.audited, e.auditor = coding, auditor
        e.score = score_encounter(e.final, coding)
        e.findings = findings_from_score(e.score, root_cause)
        for i, f in enumerate(e.findings):
            f.id = f"{encounter_id}#{i + 1}"
        return e.score

    def finding(self, finding_id: str) -> Finding:
        """Look up a finding by id (``<encounter>#<n>``)."""
        for e in self.encounters.values():
            for f in e.findings:
                if f.id == finding_id:
                    return f
        raise AuditInputError(f"finding {finding_id!r} is not in audit {self.name!r}")

    def defend(self, finding_id: str, rationale: str, citation: str, root_cause: str | None = None) -> Finding:
        """Attach the override's rationale and guideline citation (both required).

        Raises:
            AuditOverrideError: Rationale or citation empty.
        """
        f = self.finding(finding_id)
        f.rationale, f.citation = rationale, citation
        if root_cause is not None:
            if root_cause not in ROOT_CAUSES:
                raise AuditInputError(f"root cause {root_cause!r} is not known", options=ROOT_CAUSES)
            f.root_cause = root_cause
        f.require_defence()
        return f

    @property
    def scores(self) -> list[EncounterScore]:
        """Scores of the encounters audited so far, in sample order."""
        return [e.score for e in self.encounters.values() if e.score is not None]

    @property
    def findings(self) -> list[Finding]:
        """All findings, in sample order."""
        return [f for e in self.encounters.values() for f in e.findings]

    def final_scores(self) -> list[EncounterScore]:
        """Scores after determinations: an overturned finding no longer counts as an error
        (an incorrect/extra code becomes ``correct``, a missing one is dropped; principal, sequencing, POA and DRG flags flip back)."""
        import copy

        out = []
        for e in self.encounters.values():
            if e.score is None:
                continue
            s = copy.deepcopy(e.score)
            for f in e.findings:
                if f.stands:
                    continue
                if f.kind in ("incorrect", "extra", "missing"):
                    for i, v in enumerate(s.verdicts):
                        if v.verdict == f.kind and v.final_code == f.final_code and v.audited_code == f.audited_code:
                            if f.kind == "missing":  # the auditor's added code was not needed
                                del s.verdicts[i]
                            else:  # the final code stands
                                s.verdicts[i] = CodeVerdict("correct", v.final_code, v.final_code)
                            break
                elif f.kind == "principal":
                    s.principal_correct = True
                elif f.kind == "sequencing":
                    s.sequencing_correct = True
                elif f.kind == "poa":
                    s.poa_mismatches = [c for c in s.poa_mismatches if c != f.final_code]
                elif f.kind == "drg":
                    s.drg_correct, s.weight_change = True, 0.0
            out.append(s)
        return out
