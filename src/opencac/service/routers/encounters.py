"""Encounters API: worklist, review state, decisions, finalisation, assignment, exports."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from opencac.errors import NotFoundError
from opencac.service import workflow
from opencac.service.coding import get_knowledge
from opencac.service.dependencies import READERS, REVIEWERS, get_read_session, get_session, require_roles
from opencac.service.export import export_csv, export_fhir
from opencac.service.schemas import (
    EncounterId,
    AssignIn,
    DecisionIn,
    DecisionResult,
    EditResolveIn,
    EditRowId,
    EditResolveResult,
    EncounterOut,
    ErrorOut,
    FinalCodeSetOut,
    FinalizeIn,
    WorklistResponse,
)
from opencac.service.views import edit_out, encounter_out, final_out, worklist_item
from opencac.store.events import record_event
from opencac.store.models import User

router = APIRouter(prefix="/api/v1/encounters", tags=["encounters"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}}
WRITE_ERRORS = {**ERRORS, 400: {"model": ErrorOut}, 409: {"model": ErrorOut, "description": "stale version"}}


@router.get("", response_model=WorklistResponse, responses=ERRORS, summary="The worklist")
def list_encounters(
    status: str | None = Query(None, description="comma-separated statuses", examples=["ready,in_review"]),
    setting: Literal["inpatient", "outpatient", "professional", "emergency"] | None = None,
    band: Literal["low", "medium", "high", "none"] | None = Query(None, description="confidence band"),
    edits: bool | None = Query(None, description="only encounters with (true) / without (false) edits"),
    assigned: Literal["me", "unassigned", "any"] | None = None,
    sort: Literal["priority", "newest", "oldest", "confidence", "edits", "updated"] = "priority",
    limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000),
    user: User = Depends(require_roles(*READERS)), session: Session = Depends(get_read_session),
) -> dict:
    """Filter and sort encounters for review."""
    f = workflow.WorklistFilter(status=status, setting=setting, band=band, edits=edits, assigned=assigned,
                                sort=sort, limit=limit, offset=offset)
    rows, total = workflow.worklist(session, f, user)
    ids = {e.assigned_to_id for e in rows if e.assigned_to_id}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
    return {"total": total, "items": [worklist_item(e, names) for e in rows]}


@router.get("/{encounter_id}", response_model=EncounterOut, responses=ERRORS,
            summary="One encounter with note, suggestions, evidence, edits, DRG and queries")
def get_encounter(encounter_id: EncounterId, user: User = Depends(require_roles(*READERS)),
                  read: Session = Depends(get_read_session), session: Session = Depends(get_session)) -> dict:
    """Viewing records a ``document.view`` audit event per document."""
    st = workflow.encounter_state(read, encounter_id)
    out = encounter_out(st)
    read.rollback()
    workflow.record_views(session, user, st, "api")  # a short write transaction of its own
    session.commit()
    return out


@router.post("/{encounter_id}/decisions", response_model=DecisionResult, responses=WRITE_ERRORS,
             summary="Accept, reject or modify a suggestion, or add a code")
def post_decision(encounter_id: EncounterId, body: DecisionIn, user: User = Depends(require_roles(*REVIEWERS)),
                  session: Session = Depends(get_session), kb: Any = Depends(get_knowledge)) -> dict:
    """Reject and modify need ``reason_code`` (see ``GET /api/v1/reasons``). A stale ``version`` answers 409."""
    d = workflow.decide(session, user, encounter_id, body.version, body.action, suggestion_id=body.suggestion_id,
                        code=body.code, reason_code=body.reason_code, reason_text=body.reason_text,
                        citation=body.citation, kb=kb)
    sid = d.suggestion_id
    session.commit()
    enc = workflow.get_encounter(session, encounter_id)
    from opencac.store.models import Suggestion

    sug = session.get(Suggestion, sid) if sid else None
    return {"decision_id": d.id, "encounter_version": enc.version, "suggestion_id": sid,
            "state": sug.state if sug else d.action}


@router.post("/{encounter_id}/edits/{edit_row_id}/resolve", response_model=EditResolveResult,
             responses={**WRITE_ERRORS, 409: {"model": ErrorOut, "description": "stale version or run, fix already "
                                                                               "resolved, codes changed since"}},
             summary="Apply or dismiss a fix the rules layer proposes")
def post_resolve_edit(encounter_id: EncounterId, edit_row_id: EditRowId, body: EditResolveIn,
                      user: User = Depends(require_roles(*REVIEWERS)), session: Session = Depends(get_session),
                      kb: Any = Depends(get_knowledge)) -> dict:
    """``apply`` records the fix as your decisions (replace -> modify, remove -> reject, add -> add,
    reason ``guideline`` with the edit's citation); ``dismiss`` needs a ``reason``. Both mark the edit
    resolved and record an ``edit.apply`` / ``edit.dismiss`` audit event. ``edit_row_id`` is the
    edit's ``id`` in ``GET /api/v1/encounters/{id}``."""
    edit, decisions = workflow.resolve_edit(session, user, encounter_id, edit_row_id, body.action,
                                            reason=body.reason, version=body.version, kb=kb)
    ids = [d.id for d in decisions]
    session.commit()
    st = workflow.encounter_state(session, encounter_id)
    row = next(x for x in st.edits if x.id == edit_row_id)
    return {"edit": edit_out(row), "encounter_version": st.encounter.version, "decision_ids": ids,
            "working_codes": workflow.working_codes(st.suggestions, order=workflow.rules_order(st.rules))}


@router.post("/{encounter_id}/finalize", response_model=FinalCodeSetOut, responses=WRITE_ERRORS,
             summary="Finalise the code set")
def post_finalize(encounter_id: EncounterId, body: FinalizeIn, user: User = Depends(require_roles(*REVIEWERS)),
                  session: Session = Depends(get_session), kb: Any = Depends(get_knowledge)) -> dict:
    """Creates a new final code-set version (the previous one is kept) and records the change.

    ``poa`` sets present-on-admission indicators per diagnosis; ``coded_by`` of the result says
    ``ai_plus_coder`` (engine suggestions reviewed) or ``coder_only``."""
    fcs = workflow.finalize(session, user, encounter_id, body.version, kb=kb, poa=body.poa)
    session.commit()
    enc = workflow.get_encounter(session, encounter_id)
    return final_out(fcs, enc.version) or {}


@router.post("/{encounter_id}/assign", response_model=DecisionResult, responses=WRITE_ERRORS,
             summary="Assign the encounter to a user (or unassign)")
def post_assign(encounter_id: EncounterId, body: AssignIn, user: User = Depends(require_roles("coder", "cdi")),
                session: Session = Depends(get_session)) -> dict:
    """Assignment feeds the worklist's "assigned to me" filter."""
    assignee = None
    if body.username:
        assignee = session.execute(select(User).where(User.username == body.username)).scalar_one_or_none()
        if assignee is None:
            raise NotFoundError(f"no user {body.username!r}.")
    workflow.assign(session, user, encounter_id, body.version, assignee)
    session.commit()
    enc = workflow.get_encounter(session, encounter_id)
    return {"decision_id": 0, "encounter_version": enc.version, "suggestion_id": None, "state": "assigned"}


@router.get("/{encounter_id}/export/fhir", responses=ERRORS, summary="Export the final code set as FHIR R4",
            response_description="a FHIR R4 Bundle with a Claim, Conditions and Procedures")
def get_export_fhir(encounter_id: EncounterId, user: User = Depends(require_roles(*READERS)),
                    session: Session = Depends(get_session)) -> dict:
    """Validated with ``fhir.resources`` R4B before it is returned (409 before finalisation)."""
    bundle = export_fhir(session, encounter_id)
    record_event(session, user, "encounter.export", "encounter", encounter_id, None, {"format": "fhir"})
    session.commit()
    return bundle


@router.get("/{encounter_id}/export/csv", response_class=PlainTextResponse, responses=ERRORS,
            summary="Export the final code set as CSV")
def get_export_csv(encounter_id: EncounterId, user: User = Depends(require_roles(*READERS)),
                   session: Session = Depends(get_session)) -> PlainTextResponse:
    """One row per code: encounter, version, system, sequence, code, description, source."""
    text = export_csv(session, encounter_id)
    record_event(session, user, "encounter.export", "encounter", encounter_id, None, {"format": "csv"})
    session.commit()
    return PlainTextResponse(text, media_type="text/csv")
