"""Audit-event API: the trail of an entity, and chain verification (auditor/admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from opencac.service.dependencies import READERS, get_read_session, require_roles
from opencac.service.worker import worker_status
from opencac.service.schemas import AuditEventOut, ErrorOut, StatusOut, VerifyOut
from opencac.store.events import events_for, verify_events
from opencac.store.models import User

router = APIRouter(prefix="/api/v1", tags=["audit-log"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}


@router.get("/audit-events", response_model=list[AuditEventOut], responses=ERRORS, summary="Audit events")
def list_events(entity: str | None = Query(None, max_length=50, examples=["encounter"]),
                entity_id: str | None = Query(None, max_length=50), limit: int = Query(200, ge=1, le=1000),
                offset: int = Query(0, ge=0, le=10_000_000), _: User = Depends(require_roles("auditor")),
                session: Session = Depends(get_read_session)) -> list:
    """Newest first; filter by entity and id (auditor)."""
    return [ev.to_chain_dict() for ev in events_for(session, entity, entity_id, limit, offset)]


@router.get("/audit-events/verify", response_model=VerifyOut, responses=ERRORS, summary="Verify the hash chain")
def verify(_: User = Depends(require_roles("auditor")), session: Session = Depends(get_read_session)) -> dict:
    """Detects edited, deleted and reordered events; names the first bad one."""
    r = verify_events(session)
    first = r.first
    return {"ok": r.ok, "count": r.count, "message": r.summary(), "first_bad_seq": first.seq if first else None,
            "kind": first.kind if first else None}


@router.get("/status", response_model=StatusOut, responses=ERRORS, summary="Service and worker status")
def status(request: Request, _: User = Depends(require_roles(*READERS))) -> dict:
    """Coding runs by status and whether the worker thread runs."""
    return {"status": "ok", "runs": worker_status(request.app.state.read_session_factory),
            "worker": request.app.state.worker.alive}
