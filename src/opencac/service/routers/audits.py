"""Coding-quality audits in the workbench: plan, sample, re-code or review, defend, report.

Pages (auditor / admin): ``/audits`` (list + new audit), ``/audits/{id}`` (plan, sample,
progress, findings, report links), ``/audits/{id}/samples/{sid}`` (the note, the blind
re-coding or review form, the score, findings with rationale + citation, responses and
determinations). The coded party (coder / CDI) may open a sampled encounter's page to respond.

JSON under ``/api/v1/audits`` and ``/api/v1/audit-findings``. Every change goes through
:func:`opencac.store.events.record_event` (ids and codes; free text such as rationales and
responses only as SHA-256 fingerprints, since it may quote the note).

Library seams: :mod:`opencac.audit` (scope, sampling, scoring, metrics, fairness, report).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
from pathlib import Path
from typing import Any

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from opencac.audit.fairness import fairness_report, records_with_outcomes
from opencac.audit.metrics import DEFAULT_BASE_RATE
from opencac.audit.records import EncounterRecord
from opencac.audit.report import build_report, html_to_pdf, render_html, write_csvs
from opencac.audit.sample_size import attribute_sample_size
from opencac.audit.sampling import METHODS, draw_sample, target_criteria_from_dict
from opencac.audit.scope import AuditScope
from opencac.audit.scoring import (
    AUDIT_MODES,
    DETERMINATIONS,
    ROOT_CAUSES,
    AuditedEncounter,
    AuditorCoding,
    AuditWorkbook,
    CodedEncounter,
    Finding,
    Response as FindingResponse,
    findings_from_score,
    score_encounter,
)
from opencac.errors import AuditInputError, AuditStateError, GrouperError, NotFoundError, UnknownCodeError
from opencac.service.coding import get_knowledge
from opencac.service.dependencies import csrf_token_for, get_read_session, get_session, require_roles
from opencac.store.audit_models import Audit, AuditDetermination, AuditFinding, AuditResponse, AuditSample
from opencac.store.events import record_event
from opencac.store.models import CodingRun, Document, Edit, Encounter, FinalCodeSet, Query, Suggestion, User, utcnow

router = APIRouter()

AUDITORS = ("auditor",)
MAX_ID = 2**31 - 1
AuditId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="audit id", examples=[1])]
SampleId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="sampled-encounter id", examples=[1])]
FindingId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="audit finding id", examples=[1])]
RESPONDERS = ("coder", "cdi", "auditor")

try:  # navigation link for auditors (admin sees all)
    from opencac.ui import register_nav

    register_nav("Audits", "/audits", roles=AUDITORS, order=40)
except ImportError:  # pragma: no cover - UI registry absent
    pass


# --- schemas -----------------------------------------------------------------------------------
class AuditCreate(BaseModel):
    """A new audit: population (scope) and sampling plan."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Q1 inpatient AI straight-through", "mode": "blind",
        "scope": {"settings": ["inpatient"], "coded_by": ["ai_straight_through"]},
        "method": "random", "n": 30, "seed": 20260101}]})

    name: str = Field(..., min_length=1, max_length=200)
    mode: str = Field("blind", description="blind (re-code without seeing final codes) or review")
    scope: dict[str, Any] = Field(default_factory=dict, description="AuditScope fields")
    method: str = Field("random", description="random | stratified | targeted | probe")
    n: int | None = Field(None, ge=1, le=100_000, description="Sample size; omitted = attribute-sampling size")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Random seed (generated and recorded if omitted)")
    confidence: float = Field(0.95, ge=0.5, lt=1.0)
    precision: float = Field(0.05, gt=0.0, lt=1.0)
    expected_error: float = Field(0.05, ge=0.0, lt=1.0)
    by: str = Field("setting", max_length=50, description="Stratified: stratum key")
    allocation: str = Field("proportional", description="Stratified: proportional | equal")
    min_per_stratum: int = Field(0, ge=0, le=10_000)
    criteria: dict[str, Any] | None = Field(None, description="Targeted: TargetCriteria fields")
    base_rate: float = Field(DEFAULT_BASE_RATE, gt=0, le=1e7, description="Payment per relative weight 1.0")


class CodingIn(BaseModel):
    """The auditor's coding of a sampled encounter (principal diagnosis first)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "codes": ["I50.23", "I10", "E11.9"], "poa": {"I50.23": "Y"}, "drg": "291", "drg_weight": 1.3378}]})

    codes: list[str] = Field(..., min_length=1, max_length=100)
    poa: dict[str, str] = Field(default_factory=dict)
    drg: str | None = Field(None, max_length=10)
    drg_weight: float | None = Field(None, ge=0, le=100)
    root_cause: str | None = Field(None, description="Default root cause of the drafted findings")


class DefendIn(BaseModel):
    """Rationale and guideline citation for an override (both required)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "rationale": "Echo documents acute on chronic systolic heart failure",
        "citation": "ICD-10-CM Official Guidelines I.C.9.a.1", "root_cause": "documentation"}]})

    rationale: str = Field(..., min_length=1, max_length=5000)
    citation: str = Field(..., min_length=1, max_length=300)
    root_cause: str | None = None


class ResponseIn(BaseModel):
    """The coded party's response."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "The progress note on day 2 supports it."}]})

    text: str = Field(..., min_length=1, max_length=5000)


class DeterminationIn(BaseModel):
    """The auditor's final determination."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"outcome": "upheld", "note": "Echo is in the record"}]})

    outcome: str = Field(..., description="upheld | overturned | modified")
    note: str = Field("", max_length=5000)


# --- the frame: finalised encounters as audit records ------------------------------------------
def _age(birth: dt.date | None, on: dt.date | None) -> int | None:
    if birth is None or on is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


#: ``final_code_sets.coded_by`` -> the audit layer's ``CODED_BY`` names.
_CODED_BY_AUDIT = {"ai_straight_through": "ai_straight_through", "ai_plus_coder": "ai_coder", "coder_only": "coder"}


def build_frame(session: Session) -> list[EncounterRecord]:
    """Every encounter with a current final code set, as :class:`EncounterRecord` (id = encounter id)."""
    finals = session.execute(select(FinalCodeSet).where(FinalCodeSet.current.is_(True))
                             .order_by(FinalCodeSet.encounter_id)).scalars().all()
    if not finals:
        return []
    ids = [f.encounter_id for f in finals]
    encs = {e.id: e for e in session.execute(select(Encounter).where(Encounter.id.in_(ids))).scalars()}
    users = dict(session.execute(select(User.id, User.username)).all())
    runs: dict[int, str | None] = {}
    for r in session.execute(select(CodingRun).where(CodingRun.encounter_id.in_(ids)).order_by(CodingRun.id)).scalars():
        runs[r.encounter_id] = r.model
    engine_suggested = set(session.execute(select(Suggestion.encounter_id).where(
        Suggestion.encounter_id.in_(ids), Suggestion.source == "engine")).scalars())
    edits: dict[int, list[str]] = {}
    for eid, edit_id in session.execute(select(Edit.encounter_id, Edit.edit_id).where(Edit.encounter_id.in_(ids))):
        edits.setdefault(eid, []).append(edit_id)
    queried = set(session.execute(select(Query.encounter_id).where(Query.encounter_id.in_(ids))).scalars())
    out = []
    for f in finals:
        e = encs[f.encounter_id]
        p = e.patient
        when = e.discharge_date or e.date_of_service or f.finalized_at.date()
        if f.coded_by in _CODED_BY_AUDIT:  # the explicit marker recorded at finalisation (0004_seams)
            coded_by = _CODED_BY_AUDIT[f.coded_by]
        else:  # code sets finalised before the marker existed: inferred as before
            coded_by = ("ai_straight_through" if (e.queue or "") == "straight_through"
                        else ("ai_coder" if e.id in engine_suggested else "coder"))
        straight = coded_by == "ai_straight_through"
        poa = {c["code"]: c["poa"] for c in f.codes if c.get("system") == "icd10cm" and c.get("poa")}
        drg = f.drg or {}
        out.append(EncounterRecord(
            encounter_id=str(e.id), service_date=when, setting=e.setting, coded_by=coded_by,
            model_version=runs.get(e.id), coder=None if straight else users.get(f.finalized_by_id),
            confidence=e.min_confidence, drg=str(drg["drg"]) if drg.get("drg") else None,
            drg_weight=float(drg["weight"]) if drg.get("weight") is not None else None,
            codes=tuple(c["code"] for c in f.codes), payer=p.payer if p else None,
            edits=tuple(edits.get(e.id, ())), age=_age(p.birth_date if p else None, when),
            sex=p.sex if p else None, race=p.race if p else None, ethnicity=p.ethnicity if p else None,
            language=p.preferred_language if p else None, automated=straight, queried=e.id in queried,
            extra={"external_id": e.external_id or "", "poa": json.dumps(poa, sort_keys=True) if poa else ""}))
    return out


def _snapshot(rec: EncounterRecord) -> dict[str, Any]:
    raw_poa = rec.extra.get("poa") or ""
    return {"codes": list(rec.codes), "poa": json.loads(raw_poa) if raw_poa else {}, "drg": rec.drg, "drg_weight": rec.drg_weight,
            "coded_by": rec.coded_by, "model_version": rec.model_version, "confidence": rec.confidence,
            "service_date": rec.service_date.isoformat() if rec.service_date else None, "coder": rec.coder,
            "external_id": rec.extra.get("external_id", "")}


# --- operations ----------------------------------------------------------------------------------
def _audit(session: Session, audit_id: AuditId) -> Audit:
    a = session.get(Audit, audit_id)
    if a is None:
        raise NotFoundError(f"audit {audit_id} does not exist")
    return a


def _sample(session: Session, audit_id: AuditId, sample_id: SampleId) -> AuditSample:
    s = session.get(AuditSample, sample_id)
    if s is None or s.audit_id != audit_id:
        raise NotFoundError(f"sampled encounter {sample_id} is not in audit {audit_id}")
    return s


def _finding(session: Session, finding_id: FindingId) -> AuditFinding:
    f = session.get(AuditFinding, finding_id)
    if f is None:
        raise NotFoundError(f"audit finding {finding_id} does not exist")
    return f


def create_audit(session: Session, user: User, body: AuditCreate) -> Audit:
    """Validate and store a new audit (scope + plan); records ``audit.create``."""
    if body.mode not in AUDIT_MODES:
        raise AuditInputError(f"audit mode {body.mode!r} is not known", options=AUDIT_MODES)
    if body.method not in METHODS:
        raise AuditInputError(f"sampling method {body.method!r} is not known", options=METHODS)
    scope = AuditScope.from_dict({**body.scope, "name": body.name})
    if body.method == "targeted":
        target_criteria_from_dict(body.criteria or {})
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31 - 1)
    plan = body.model_dump(exclude={"name", "mode", "scope", "seed", "base_rate"})
    a = Audit(name=body.name, mode=body.mode, status="planned", scope=scope.to_dict(), plan=plan,
              base_rate=body.base_rate, seed=seed, created_by_id=user.id)
    session.add(a)
    session.flush()
    record_event(session, user, "audit.create", "audit", a.id, None,
                 {"name": a.name, "mode": a.mode, "scope": a.scope, "plan": plan, "seed": seed})
    return a


def draw(session: Session, user: User, audit_id: AuditId) -> Audit:
    """Apply the scope to the finalised encounters and draw the sample; records ``audit.sample``.

    Raises:
        AuditStateError: The audit already has a sample.
        SamplingError: Nothing in scope, or the plan cannot be met.
    """
    a = _audit(session, audit_id)
    if a.status != "planned":
        raise AuditStateError(f"audit {audit_id} already has its sample (status {a.status})")
    scope = AuditScope.from_dict(a.scope)
    frame = scope.apply(build_frame(session))
    plan = dict(a.plan)
    calc = None
    n = plan.get("n")
    if n is None and plan.get("method") == "probe":
        n = min(30, max(1, len(frame)))  # a conventional probe of 30 (or the whole frame when smaller)
    elif n is None:
        calc = attribute_sample_size(plan.get("confidence", 0.95), plan.get("precision", 0.05),
                                     plan.get("expected_error", 0.05), max(1, len(frame)))
        n = min(calc.recommended, max(1, len(frame)))
    params: dict[str, Any] = {"n": int(n)}
    if plan.get("method") == "stratified":
        params.update(by=plan.get("by", "setting"), allocation=plan.get("allocation", "proportional"),
                      min_per_stratum=int(plan.get("min_per_stratum") or 0))
    elif plan.get("method") == "targeted":
        params["criteria"] = plan.get("criteria") or {}
    sample = draw_sample(frame, plan.get("method", "random"), int(a.seed or 0), **params)
    sample.size_calc = calc
    by_id = {r.encounter_id: r for r in frame}
    for item in sample.items:
        session.add(AuditSample(audit_id=a.id, encounter_id=int(item.encounter_id), sample_order=item.order,
                                stratum=item.stratum, reason=item.reason, risk=item.risk,
                                final=_snapshot(by_id[item.encounter_id])))
    a.frame_hash = sample.frame_hash
    a.frame_ids = list(sample.frame_ids)
    a.sample_record = sample.to_dict(include_frame=False)
    a.status = "sampled"
    a.sampled_at = utcnow()
    session.flush()
    record_event(session, user, "audit.sample", "audit", a.id, None,
                 {"method": sample.method, "seed": sample.seed, "frame_hash": sample.frame_hash,
                  "frame_size": sample.frame_size, "encounters": sample.ids})
    return a


def extend_from_probe(session: Session, user: User, audit_id: int) -> Audit:
    """Size the full sample from the audited probe's error count and draw the rest of it by
    extending the probe's hash ranking over the recorded frame; records ``audit.sample.extend``.

    Raises:
        AuditStateError: Not a probe audit, already extended, or probe encounters still unaudited.
    """
    from opencac.audit.sampling import full_sample_from_probe
    from opencac.audit.workfile import sample_from_dict

    a = _audit(session, audit_id)
    if (a.plan or {}).get("method") != "probe" or not a.sample_record:
        raise AuditStateError(f"audit {audit_id} is not a probe audit with a drawn probe")
    if (a.sample_record or {}).get("method") != "probe":
        raise AuditStateError(f"audit {audit_id} was already extended to its full sample")
    pending = [s.encounter_id for s in a.samples if s.status != "audited"]
    if pending:
        raise AuditStateError(f"{len(pending)} probe encounter(s) are not audited yet: audit them first")
    scores = workbook(a).final_scores()
    errors = sum(1 for sc in scores if not sc.accurate)
    frame_ids = [str(x) for x in a.frame_ids]
    probe = sample_from_dict({**a.sample_record, "frame_ids": frame_ids})
    plan = a.plan or {}
    full = full_sample_from_probe([EncounterRecord(i) for i in frame_ids], probe, errors,
                                  plan.get("confidence", 0.95), plan.get("precision", 0.05))
    current = {r.encounter_id: r for r in build_frame(session)}
    have = {str(s.encounter_id) for s in a.samples}
    added, skipped = [], []
    for item in full.items:
        if item.encounter_id in have:
            continue
        rec = current.get(item.encounter_id)
        if rec is None:  # no longer finalised: noted, not silently replaced
            skipped.append(item.encounter_id)
            continue
        a.samples.append(AuditSample(audit_id=a.id, encounter_id=int(item.encounter_id), sample_order=item.order,
                                     reason="full sample after probe", final=_snapshot(rec)))
        added.append(item.encounter_id)
    if skipped:
        full.notes.append(f"{len(skipped)} drawn encounter(s) were no longer finalised and were not added: "
                          + ", ".join(skipped[:20]))
    a.sample_record = {**full.to_dict(include_frame=False), "probe": {"size": probe.size, "errors": errors}}
    if a.status == "complete":
        a.status, a.completed_at = "in_progress", None
    session.flush()
    record_event(session, user, "audit.sample.extend", "audit", a.id, {"probe_size": probe.size},
                 {"probe_errors": errors, "full_size": full.size, "added": added, "skipped": skipped})
    return a


def _codes(values: list[str]) -> tuple[str, ...]:
    out = []
    for v in values:
        for part in str(v).replace(";", ",").replace("|", ",").replace("\n", ",").split(","):
            c = part.strip().upper()
            if c:
                if len(c) > 10 or not c.replace(".", "").isalnum():
                    raise AuditInputError(f"{c[:20]!r} does not look like an ICD-10-CM or ICD-10-PCS code")
                out.append(c)
    if not out:
        raise AuditInputError("the auditor's coding needs at least one code")
    return tuple(out)


def record_coding(session: Session, user: User, audit_id: AuditId, sample_id: SampleId, body: CodingIn,
                  kb: Any = None) -> AuditSample:
    """Record the auditor's coding, score it and draft findings; records ``audit.recode``.

    Codes are normalised and checked against the code sets when ``kb`` is given.

    Raises:
        AuditStateError: Findings of this encounter already have responses or determinations.
        UnknownCodeError: A code is not in ICD-10-CM / ICD-10-PCS.
    """
    a = _audit(session, audit_id)
    s = _sample(session, audit_id, sample_id)
    if a.status == "planned":
        raise AuditStateError(f"audit {audit_id} has no sample yet")
    if any(f.responses or f.determination for f in s.findings):
        raise AuditStateError("this encounter's findings already have responses or determinations; "
                              "its coding can no longer be changed")
    if body.root_cause is not None and body.root_cause not in ROOT_CAUSES:
        raise AuditInputError(f"root cause {body.root_cause!r} is not known", options=ROOT_CAUSES)
    codes = _codes(body.codes)
    if kb is not None:
        codes = tuple(_known(kb, c) for c in codes)
    before = s.audited
    audited: dict[str, Any] = {"codes": list(codes), "poa": {k.upper(): v.upper() for k, v in body.poa.items()},
                               "drg": body.drg or None, "drg_weight": body.drg_weight, "drg_source": "manual"}
    if not body.drg and body.drg_weight is None:
        # No manual override: the auditor's DRG and weight are grouped from the auditor's codes.
        audited.update(_regrouped(session, s.encounter_id, codes, audited["poa"]))
    score = score_encounter(_coded(s), AuditorCoding(codes, audited["poa"], audited["drg"], audited["drg_weight"]))
    for f in list(s.findings):
        session.delete(f)
    session.flush()
    for f in findings_from_score(score, body.root_cause):
        session.add(AuditFinding(audit_id=a.id, sample_id=s.id, kind=f.kind, final_code=f.final_code,
                                 audited_code=f.audited_code, root_cause=f.root_cause, override=f.override,
                                 financial_impact=f.financial_impact))
    s.audited, s.score, s.status, s.auditor_id, s.audited_at = audited, score.to_dict(), "audited", user.id, utcnow()
    if a.status == "sampled":
        a.status = "in_progress"
    session.flush()
    session.refresh(s)
    record_event(session, user, "audit.recode", "audit_sample", s.id, before,
                 {"audit_id": a.id, "encounter_id": s.encounter_id, "codes": list(codes), "drg": audited["drg"],
                  "accurate": score.accurate, "findings": len(s.findings)})
    return s


def _regrouped(session: Session, encounter_id: int, codes: tuple[str, ...], poa: dict[str, str]) -> dict[str, Any]:
    """``drg`` / ``drg_weight`` / ``drg_source`` of the auditor's codes (``opencac.service.coding.regroup``)."""
    from opencac.service.coding import regroup
    from opencac.service.worker import encounter_context

    enc = session.get(Encounter, encounter_id)
    if enc is None or enc.setting != "inpatient":
        return {"drg_source": "not_applicable"}
    try:
        res = regroup(list(codes), encounter_context(enc, enc.patient), poa=poa)
    except GrouperError as exc:
        return {"drg_source": "ungrouped", "drg_note": exc.message}
    return {"drg": res.get("drg"), "drg_weight": res.get("weight"), "drg_source": "regrouped"}


def _known(kb: Any, code: str) -> str:
    norm = kb.normalize(code)
    if kb.find(norm) is None:
        raise UnknownCodeError(f"{code!r} is not an ICD-10-CM or ICD-10-PCS code in the loaded code sets")
    return str(norm)


def _coded(s: AuditSample) -> CodedEncounter:
    f = s.final or {}
    return CodedEncounter(str(s.encounter_id), tuple(f.get("codes") or ()), f.get("poa") or {}, f.get("drg"),
                          f.get("drg_weight"), f.get("coded_by"), f.get("model_version"), f.get("confidence"),
                          f.get("service_date"))


def _lib_finding(row: AuditFinding) -> Finding:
    f = Finding(str(row.sample.encounter_id), row.kind, row.final_code, row.audited_code, row.root_cause,
                row.rationale, row.citation, row.override,
                [FindingResponse(r.user.username if r.user else "", r.text, r.created_at.isoformat(timespec="seconds"))
                 for r in row.responses], row.determination, row.determination_note, row.financial_impact,
                str(row.id))
    return f


def _digest(text: str) -> str | None:
    """SHA-256 of free text for the audit trail (the text itself may quote the note, so the
    event carries its fingerprint; the text is in the audit tables)."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest() if text else None


def defend(session: Session, user: User, finding_id: FindingId, body: DefendIn) -> AuditFinding:
    """Attach rationale + guideline citation (+ root cause); records ``audit.finding.defend``."""
    row = _finding(session, finding_id)
    if row.determination is not None:
        raise AuditStateError(f"finding {finding_id} is already determined ({row.determination})")
    f = _lib_finding(row)
    f.rationale, f.citation = body.rationale.strip(), body.citation.strip()
    if body.root_cause:
        if body.root_cause not in ROOT_CAUSES:
            raise AuditInputError(f"root cause {body.root_cause!r} is not known", options=ROOT_CAUSES)
        f.root_cause = body.root_cause
    f.require_defence()
    before = {"rationale_sha256": _digest(row.rationale), "citation": row.citation, "root_cause": row.root_cause}
    row.rationale, row.citation, row.root_cause, row.updated_at = f.rationale, f.citation, f.root_cause, utcnow()
    session.flush()
    record_event(session, user, "audit.finding.defend", "audit_finding", row.id, before,
                 {"rationale_sha256": _digest(row.rationale), "citation": row.citation,
                  "root_cause": row.root_cause})
    return row


def respond(session: Session, user: User, finding_id: FindingId, body: ResponseIn) -> AuditResponse:
    """The coded party's response; records ``audit.finding.respond``."""
    row = _finding(session, finding_id)
    _lib_finding(row).respond(user.username, body.text)  # validates state and text
    r = AuditResponse(finding_id=row.id, user_id=user.id, text=body.text.strip())
    session.add(r)
    session.flush()
    record_event(session, user, "audit.finding.respond", "audit_finding", row.id, None,
                 {"response_id": r.id, "text_sha256": _digest(r.text)})
    return r


def determine(session: Session, user: User, finding_id: FindingId, body: DeterminationIn) -> AuditFinding:
    """The auditor's final determination (an upheld override needs rationale + citation);
    records ``audit.finding.determine``; completes the audit when every finding is determined."""
    row = _finding(session, finding_id)
    f = _lib_finding(row)
    f.determine(body.outcome, body.note.strip())
    before = {"determination": row.determination}
    row.determination, row.determination_note, row.updated_at = f.determination, f.determination_note, utcnow()
    session.add(AuditDetermination(finding_id=row.id, user_id=user.id, outcome=body.outcome, note=body.note.strip()))
    session.flush()
    record_event(session, user, "audit.finding.determine", "audit_finding", row.id, before,
                 {"determination": row.determination, "note_sha256": _digest(row.determination_note)})
    a = _audit(session, row.audit_id)
    if all(s.status == "audited" for s in a.samples) and all(
            x.determination for s in a.samples for x in s.findings):
        a.status, a.completed_at = "complete", utcnow()
        record_event(session, user, "audit.complete", "audit", a.id, None, {"status": "complete"})
    return row


def workbook(a: Audit) -> AuditWorkbook:
    """The audit as a library :class:`AuditWorkbook` (scores and findings with their trail)."""
    wb = AuditWorkbook(a.name, a.mode)
    for s in a.samples:
        coded = _coded(s)
        ae = AuditedEncounter(coded)
        if s.audited is not None:
            ae.audited = AuditorCoding(tuple(s.audited.get("codes") or ()), s.audited.get("poa") or {},
                                       s.audited.get("drg"), s.audited.get("drg_weight"))
            ae.score = score_encounter(coded, ae.audited)
            ae.findings = [_lib_finding(f) for f in s.findings]
        wb.encounters[coded.encounter_id] = ae
    return wb


def build_audit_report(session: Session, a: Audit) -> Any:
    """The :class:`~opencac.audit.report.AuditReport` of an audit (fairness over the scoped frame)."""
    from opencac.audit.workfile import sample_from_dict

    wb = workbook(a)
    scores = wb.final_scores()
    if not scores:
        raise AuditStateError(f"audit {a.id} has no audited encounter yet: nothing to report")
    scope = AuditScope.from_dict(a.scope)
    sample = None
    if a.sample_record:
        sample = sample_from_dict({**a.sample_record, "frame_ids": a.frame_ids})
        probe_info = a.sample_record.get("probe")
        if probe_info:
            from opencac.audit.sample_size import size_from_probe

            sample.size_calc = size_from_probe(probe_info["errors"], probe_info["size"],
                                               a.plan.get("confidence", 0.95), a.plan.get("precision", 0.05),
                                               max(1, len(a.frame_ids)))
        elif a.plan.get("n") is None and a.plan.get("method") != "probe":
            sample.size_calc = attribute_sample_size(a.plan.get("confidence", 0.95), a.plan.get("precision", 0.05),
                                                     a.plan.get("expected_error", 0.05), max(1, len(a.frame_ids)))
    frame = [r for r in build_frame(session) if r.encounter_id in set(a.frame_ids)]
    fair = fairness_report(records_with_outcomes(frame, {s.encounter_id: s.accurate for s in scores})) if frame else None
    creator = a.created_by.username if a.created_by else ""
    return build_report(scores, wb.findings, audit_name=a.name, auditor=creator, mode=a.mode, scope=scope,
                        sample=sample, kappa=second_audit_kappa(session, a, scores), fairness=fair,
                        base_rate=a.base_rate, seed=int(a.seed or 0))


def second_audit_kappa(session: Session, a: Audit, scores: list[Any]) -> Any:
    """Cohen's kappa (encounter accurate / not) against other audits of the same encounters.

    For each encounter of this audit also audited in another audit, the earliest other
    audit's coding is scored against the same frozen final coding and paired with this one.
    Returns None when no encounter was audited twice.
    """
    from opencac.audit.metrics import cohens_kappa, paired_labels

    ids = [s.encounter_id for s in a.samples if s.status == "audited"]
    if not ids:
        return None
    others = session.execute(select(AuditSample).where(
        AuditSample.encounter_id.in_(ids), AuditSample.audit_id != a.id, AuditSample.status == "audited")
        .order_by(AuditSample.audited_at, AuditSample.id)).scalars().all()
    mine = {s.encounter_id: s for s in a.samples}
    second = {}
    for o in others:
        if o.encounter_id in second or not o.audited:
            continue
        second[o.encounter_id] = score_encounter(
            _coded(mine[o.encounter_id]),
            AuditorCoding(tuple(o.audited.get("codes") or ()), o.audited.get("poa") or {}, o.audited.get("drg"),
                          o.audited.get("drg_weight")))
    la, lb = paired_labels(scores, list(second.values()))
    return cohens_kappa(la, lb) if la else None


def audit_out(a: Audit, detail: bool = False) -> dict[str, Any]:
    """JSON view of an audit."""
    done = sum(1 for s in a.samples if s.status == "audited")
    out: dict[str, Any] = {"id": a.id, "name": a.name, "mode": a.mode, "status": a.status, "scope": a.scope,
                           "plan": a.plan, "seed": a.seed, "base_rate": a.base_rate, "frame_hash": a.frame_hash,
                           "frame_size": len(a.frame_ids or []), "sample_size": len(a.samples), "audited": done,
                           "created_at": a.created_at.isoformat(timespec="seconds")}
    if detail:
        out["samples"] = [sample_out(s, reveal=True) for s in a.samples]
        out["size_calc"] = (a.sample_record or {}).get("size_calc")
    return out


def sample_out(s: AuditSample, reveal: bool) -> dict[str, Any]:
    """JSON view of a sampled encounter; final codes hidden when ``reveal`` is False (blind)."""
    final = dict(s.final or {})
    if not reveal:
        final = {k: v for k, v in final.items() if k not in ("codes", "poa", "drg", "drg_weight", "coder")}
    return {"id": s.id, "encounter_id": s.encounter_id, "order": s.sample_order, "stratum": s.stratum,
            "reason": s.reason, "status": s.status, "final": final, "audited": s.audited, "score": s.score,
            "findings": [finding_out(f) for f in s.findings]}


def finding_out(f: AuditFinding) -> dict[str, Any]:
    """JSON view of a finding with its trail."""
    return {"id": f.id, "kind": f.kind, "final_code": f.final_code, "audited_code": f.audited_code,
            "root_cause": f.root_cause, "rationale": f.rationale, "citation": f.citation,
            "financial_impact": f.financial_impact, "determination": f.determination,
            "determination_note": f.determination_note,
            "responses": [{"by": r.user.username if r.user else None, "text": r.text,
                           "at": r.created_at.isoformat(timespec="seconds")} for r in f.responses]}


def _reveal(a: Audit, s: AuditSample, user: User) -> bool:
    return a.mode == "review" or s.status == "audited" or not user.has_role(*AUDITORS)


# --- JSON API ------------------------------------------------------------------------------------
@router.get("/api/v1/audits", tags=["audits"], summary="List audits")
def api_list(user: User = Depends(require_roles(*AUDITORS)),
             session: Session = Depends(get_read_session)) -> list[dict[str, Any]]:
    """Audits, newest first."""
    return [audit_out(a) for a in session.execute(select(Audit).order_by(Audit.id.desc())).scalars()]


@router.post("/api/v1/audits", tags=["audits"], status_code=201, summary="Create an audit (scope + sampling plan)")
def api_create(body: AuditCreate, user: User = Depends(require_roles(*AUDITORS)),
               session: Session = Depends(get_session)) -> dict[str, Any]:
    """Stores the plan; the seed is generated and recorded when not given."""
    a = create_audit(session, user, body)
    session.commit()
    return audit_out(a)


@router.get("/api/v1/audits/{audit_id}", tags=["audits"], summary="An audit with its sample and findings")
def api_get(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
            session: Session = Depends(get_read_session)) -> dict[str, Any]:
    """Final codes are included (this is the audit manager's view)."""
    return audit_out(_audit(session, audit_id), detail=True)


@router.post("/api/v1/audits/{audit_id}/sample", tags=["audits"], summary="Draw the sample")
def api_sample(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
               session: Session = Depends(get_session)) -> dict[str, Any]:
    """Applies the scope to finalised encounters, draws the sample and records seed + frame hash."""
    a = draw(session, user, audit_id)
    session.commit()
    return audit_out(a, detail=True)


@router.post("/api/v1/audits/{audit_id}/extend", tags=["audits"],
             summary="Size and draw the full sample from an audited probe")
def api_extend(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
               session: Session = Depends(get_session)) -> dict[str, Any]:
    """Uses the probe's error rate in the attribute-sampling formula; the probe stays part of the sample."""
    a = extend_from_probe(session, user, audit_id)
    session.commit()
    return audit_out(a, detail=True)


@router.get("/api/v1/audits/{audit_id}/samples/{sample_id}", tags=["audits"],
            summary="One sampled encounter (final codes hidden in blind mode until re-coded)")
def api_sample_get(audit_id: AuditId, sample_id: SampleId, user: User = Depends(require_roles(*RESPONDERS)),
                   session: Session = Depends(get_read_session)) -> dict[str, Any]:
    """The worksheet for the auditor."""
    a = _audit(session, audit_id)
    s = _sample(session, audit_id, sample_id)
    return sample_out(s, reveal=_reveal(a, s, user))


@router.post("/api/v1/audits/{audit_id}/samples/{sample_id}/coding", tags=["audits"],
             summary="Record the auditor's coding and score it")
def api_coding(audit_id: AuditId, sample_id: SampleId, body: CodingIn, user: User = Depends(require_roles(*AUDITORS)),
               session: Session = Depends(get_session), kb: Any = Depends(get_knowledge)) -> dict[str, Any]:
    """Scores each code (correct / incorrect / missing / extra), principal, sequencing, POA and DRG.
    Codes are checked against ICD-10-CM / ICD-10-PCS (404 for an unknown code)."""
    s = record_coding(session, user, audit_id, sample_id, body, kb)
    session.commit()
    return sample_out(s, reveal=True)


@router.post("/api/v1/audit-findings/{finding_id}/defend", tags=["audits"],
             summary="Rationale and guideline citation for an override")
def api_defend(finding_id: FindingId, body: DefendIn, user: User = Depends(require_roles(*AUDITORS)),
               session: Session = Depends(get_session)) -> dict[str, Any]:
    """Both rationale and citation are required."""
    f = defend(session, user, finding_id, body)
    session.commit()
    return finding_out(f)


@router.post("/api/v1/audit-findings/{finding_id}/responses", tags=["audits"], status_code=201,
             summary="The coded party responds to a finding")
def api_respond(finding_id: FindingId, body: ResponseIn, user: User = Depends(require_roles(*RESPONDERS)),
                session: Session = Depends(get_session)) -> dict[str, Any]:
    """Allowed until the finding is determined."""
    respond(session, user, finding_id, body)
    session.commit()
    return finding_out(_finding(session, finding_id))


@router.post("/api/v1/audit-findings/{finding_id}/determination", tags=["audits"],
             summary="The auditor's final determination")
def api_determine(finding_id: FindingId, body: DeterminationIn, user: User = Depends(require_roles(*AUDITORS)),
                  session: Session = Depends(get_session)) -> dict[str, Any]:
    """upheld | overturned | modified; upholding an override needs its rationale and citation."""
    f = determine(session, user, finding_id, body)
    session.commit()
    return finding_out(f)


@router.get("/api/v1/audits/{audit_id}/metrics", tags=["audits"], summary="Audit metrics with intervals")
def api_metrics(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
                session: Session = Depends(get_read_session)) -> dict[str, Any]:
    """Precision/recall (bootstrap CI), encounter and DRG accuracy (Wilson CI), financial impact."""
    from opencac.audit.metrics import as_plain

    rep = build_audit_report(session, _audit(session, audit_id))
    return {"metrics": as_plain(rep.metrics), "by_coded_by": as_plain(rep.by_coded_by),
            "fairness_alerts": rep.fairness.to_dict()["alerts"] if rep.fairness else []}


_REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _report_response(session: Session, user: User, a: Audit, kind: str) -> Response:
    rep = build_audit_report(session, a)
    record_event(session, user, "audit.report", "audit", a.id, None, {"format": kind})
    session.commit()
    if kind == "html":
        return HTMLResponse(render_html(rep), headers={"Content-Security-Policy": _REPORT_CSP})
    if kind == "pdf":
        html = render_html(rep)
        with tempfile.TemporaryDirectory() as d:
            data = html_to_pdf(html, Path(d) / "report.pdf").read_bytes()
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="audit-{a.id}-report.pdf"'})
    with tempfile.TemporaryDirectory() as d:
        paths = write_csvs(rep, d)
        data = paths["findings" if kind == "findings.csv" else "encounters"].read_bytes()
    return Response(data, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-{a.id}-{kind}"'})


@router.get("/api/v1/audits/{audit_id}/report.pdf", tags=["audits"], summary="The audit report as PDF",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def api_report_pdf(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
                   session: Session = Depends(get_session)) -> Response:
    """WeasyPrint PDF for the compliance officer."""
    return _report_response(session, user, _audit(session, audit_id), "pdf")


# --- pages -----------------------------------------------------------------------------------------
def _render(request: Request, user: User, name: str, **ctx: Any) -> Response:
    from opencac.ui import nav_items

    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, name, {"user": user, "csrf_token": csrf_token_for(request), "nav": nav_items(user.role_list),
                        **ctx})


@router.get("/audits", response_class=HTMLResponse, include_in_schema=False)
def page_list(request: Request, message: str | None = None, user: User = Depends(require_roles(*AUDITORS)),
              session: Session = Depends(get_read_session)) -> Response:
    audits = [audit_out(a) for a in session.execute(select(Audit).order_by(Audit.id.desc())).scalars()]
    return _render(request, user, "audit_list.html", audits=audits, methods=METHODS, modes=AUDIT_MODES,
                   message=message, frame_size=len(build_frame(session)))


def _split(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


@router.post("/audits/new", include_in_schema=False)
def page_create(request: Request, name: str = Form(..., max_length=200), mode: str = Form("blind"),
                method: str = Form("random"), n: str = Form(""), seed: str = Form(""),
                settings: str = Form(""), coded_by: str = Form(""), payers: str = Form(""),
                code_families: str = Form(""), date_from: str = Form(""), date_to: str = Form(""),
                by: str = Form("setting"), min_per_stratum: str = Form("0"), confidence_below: str = Form(""),
                drg_weight_min: str = Form(""), edits: str = Form(""), straight_through_only: str = Form(""),
                base_rate: str = Form(""),
                user: User = Depends(require_roles(*AUDITORS)), session: Session = Depends(get_session)) -> Response:
    try:
        criteria = None
        if method == "targeted":
            criteria = {"confidence_below": float(confidence_below) if confidence_below else None,
                        "drg_weight_min": float(drg_weight_min) if drg_weight_min else None,
                        "straight_through_only": bool(straight_through_only), "edits": _split(edits)}
        body = AuditCreate(
            name=name, mode=mode, method=method, n=int(n) if n.strip() else None,
            seed=int(seed) if seed.strip() else None, by=by or "setting",
            min_per_stratum=int(min_per_stratum or 0), criteria=criteria,
            base_rate=float(base_rate) if base_rate.strip() else DEFAULT_BASE_RATE,
            scope={"settings": _split(settings), "coded_by": _split(coded_by), "payers": _split(payers),
                   "code_families": _split(code_families), "date_from": date_from or None, "date_to": date_to or None})
    except ValueError as exc:
        raise AuditInputError(f"invalid audit form: {str(exc).splitlines()[0][:200]}") from None
    a = create_audit(session, user, body)
    session.commit()
    return RedirectResponse(f"/audits/{a.id}", status_code=303)


@router.get("/audits/{audit_id}", response_class=HTMLResponse, include_in_schema=False)
def page_detail(request: Request, audit_id: AuditId, message: str | None = None,
                user: User = Depends(require_roles(*AUDITORS)), session: Session = Depends(get_read_session)) -> Response:
    a = _audit(session, audit_id)
    findings = [(s, f) for s in a.samples for f in s.findings]
    return _render(request, user, "audit_detail.html", a=a, info=audit_out(a), findings=findings, message=message,
                   size_calc=(a.sample_record or {}).get("size_calc"))


@router.post("/audits/{audit_id}/sample", include_in_schema=False)
def page_sample(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
                session: Session = Depends(get_session)) -> Response:
    a = draw(session, user, audit_id)
    session.commit()
    return RedirectResponse(f"/audits/{a.id}?message=sample+drawn", status_code=303)


@router.post("/audits/{audit_id}/extend", include_in_schema=False)
def page_extend(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
                session: Session = Depends(get_session)) -> Response:
    a = extend_from_probe(session, user, audit_id)
    session.commit()
    return RedirectResponse(f"/audits/{a.id}?message=full+sample+drawn+from+the+probe", status_code=303)


@router.get("/audits/{audit_id}/samples/{sample_id}", response_class=HTMLResponse, include_in_schema=False)
def page_sample_detail(request: Request, audit_id: AuditId, sample_id: SampleId, message: str | None = None,
                       user: User = Depends(require_roles(*RESPONDERS)),
                       session: Session = Depends(get_session)) -> Response:
    a = _audit(session, audit_id)
    s = _sample(session, audit_id, sample_id)
    docs = session.execute(select(Document).where(Document.encounter_id == s.encounter_id)
                           .order_by(Document.id)).scalars().all()
    for d in docs:
        record_event(session, user, "document.view", "document", d.id, None,
                     {"encounter_id": s.encounter_id, "audit_id": a.id})
    session.commit()
    view = sample_out(s, reveal=_reveal(a, s, user))
    return _render(request, user, "audit_encounter.html", a=a, s=s, view=view, docs=docs, message=message,
                   is_auditor=user.has_role(*AUDITORS), root_causes=ROOT_CAUSES, determinations=DETERMINATIONS)


@router.post("/audits/{audit_id}/samples/{sample_id}/coding", include_in_schema=False)
def page_coding(audit_id: AuditId, sample_id: SampleId, codes: str = Form(..., max_length=2000), poa: str = Form(""),
                drg: str = Form(""), drg_weight: str = Form(""), root_cause: str = Form(""),
                user: User = Depends(require_roles(*AUDITORS)), session: Session = Depends(get_session),
                kb: Any = Depends(get_knowledge)) -> Response:
    try:
        poa_map = {k.strip(): v.strip() for k, v in (p.split(":", 1) for p in _split(poa.replace("|", ",")))}
        weight = float(drg_weight) if drg_weight.strip() else None
    except ValueError:
        raise AuditInputError("POA entries look like CODE:Y, and the DRG weight is a number") from None
    record_coding(session, user, audit_id, sample_id,
                  CodingIn(codes=[codes], poa=poa_map, drg=drg.strip() or None, drg_weight=weight,
                           root_cause=root_cause or None), kb)
    session.commit()
    return RedirectResponse(f"/audits/{audit_id}/samples/{sample_id}?message=coding+recorded", status_code=303)


def _back(finding: AuditFinding, message: str) -> Response:
    return RedirectResponse(f"/audits/{finding.audit_id}/samples/{finding.sample_id}?message={message}#f{finding.id}",
                            status_code=303)


@router.post("/audits/findings/{finding_id}/defend", include_in_schema=False)
def page_defend(finding_id: FindingId, rationale: str = Form("", max_length=5000), citation: str = Form("", max_length=300),
                root_cause: str = Form(""), user: User = Depends(require_roles(*AUDITORS)),
                session: Session = Depends(get_session)) -> Response:
    row = _finding(session, finding_id)
    f = _lib_finding(row)
    f.rationale, f.citation = rationale.strip(), citation.strip()
    f.require_defence()  # one clear message before pydantic's length checks
    defend(session, user, finding_id, DefendIn(rationale=rationale, citation=citation, root_cause=root_cause or None))
    session.commit()
    return _back(row, "override+defended")


@router.post("/audits/findings/{finding_id}/respond", include_in_schema=False)
def page_respond(finding_id: FindingId, text: str = Form(..., max_length=5000), user: User = Depends(require_roles(*RESPONDERS)),
                 session: Session = Depends(get_session)) -> Response:
    if not text.strip():
        raise AuditInputError("a response needs some text")
    respond(session, user, finding_id, ResponseIn(text=text))
    session.commit()
    return _back(_finding(session, finding_id), "response+recorded")


@router.post("/audits/findings/{finding_id}/determine", include_in_schema=False)
def page_determine(finding_id: FindingId, outcome: str = Form(...), note: str = Form("", max_length=5000),
                   user: User = Depends(require_roles(*AUDITORS)), session: Session = Depends(get_session)) -> Response:
    row = determine(session, user, finding_id, DeterminationIn(outcome=outcome, note=note))
    session.commit()
    return _back(row, "determination+recorded")


@router.get("/audits/{audit_id}/report.html", include_in_schema=False)
def page_report_html(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
                     session: Session = Depends(get_session)) -> Response:
    return _report_response(session, user, _audit(session, audit_id), "html")


@router.get("/audits/{audit_id}/report.pdf", include_in_schema=False)
def page_report_pdf(audit_id: AuditId, user: User = Depends(require_roles(*AUDITORS)),
                    session: Session = Depends(get_session)) -> Response:
    return _report_response(session, user, _audit(session, audit_id), "pdf")


@router.get("/audits/{audit_id}/{kind}", include_in_schema=False)
def page_report_csv(audit_id: AuditId, kind: str, user: User = Depends(require_roles(*AUDITORS)),
                    session: Session = Depends(get_session)) -> Response:
    if kind not in ("findings.csv", "encounters.csv"):
        raise NotFoundError(f"no such audit export {kind!r}", options=("findings.csv", "encounters.csv"))
    return _report_response(session, user, _audit(session, audit_id), kind)

