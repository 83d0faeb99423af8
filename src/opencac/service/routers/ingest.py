"""Ingest API: JSON, plain text and FHIR R4 Bundles; coding runs in the background afterwards."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.orm import Session

from opencac.service.app import notify_worker
from opencac.service.dependencies import INGESTERS, get_session, require_roles
from opencac.service.ingest import IngestData, create_encounter, parse_fhir_bundle
from opencac.service.schemas import ErrorOut, IngestRequest, IngestResponse
from opencac.store.models import Encounter, User

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}}

FHIR_EXAMPLE = {
    "resourceType": "Bundle", "type": "collection",
    "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-02"}},
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                      "period": {"start": "2025-11-03"}}},
        {"resource": {"resourceType": "DocumentReference", "id": "d1", "status": "current",
                      "content": [{"attachment": {"contentType": "text/plain",
                                                  "data": "QXNzZXNzbWVudDogdHlwZSAyIGRpYWJldGVzIG1lbGxpdHVzLg=="}}]}},
    ],
}


def _done(request: Request, session: Session, enc: Encounter) -> dict[str, Any]:
    session.commit()
    notify_worker(request)
    doc = enc.documents[0]
    from sqlalchemy import select

    from opencac.store.models import CodingRun

    run_id = session.execute(select(CodingRun.id).where(CodingRun.encounter_id == enc.id)).scalars().first()
    return {"encounter_id": enc.id, "document_id": doc.id, "run_id": run_id, "status": enc.status,
            "version": enc.version}


@router.post("", response_model=IngestResponse, status_code=201, responses=ERRORS,
             summary="Ingest a note (JSON) with its encounter and patient")
def ingest_json(body: IngestRequest, request: Request, user: User = Depends(require_roles(*INGESTERS)),
                session: Session = Depends(get_session)) -> dict:
    """Stores the note and queues a coding run; poll ``GET /api/v1/encounters/{id}`` for status."""
    e = body.encounter
    data = IngestData(text=body.text, setting=e.setting, encounter_external_id=e.external_id,
                      date_of_service=e.date_of_service, admission_date=e.admission_date,
                      discharge_date=e.discharge_date, discharge_status=e.discharge_status, priority=e.priority,
                      patient=body.patient.model_dump() if body.patient else {}, source_format="json")
    enc = create_encounter(session, data, user, request.app.state.settings.max_document_bytes)
    return _done(request, session, enc)


@router.post("/text", response_model=IngestResponse, status_code=201, responses=ERRORS,
             summary="Ingest a plain-text note",
             openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {
                 "schema": {"type": "string"},
                 "example": "Assessment: type 2 diabetes mellitus without complications."}}}})
async def ingest_text(request: Request,
                      setting: Literal["inpatient", "outpatient", "professional", "emergency"] = Query(
                          "outpatient", description="encounter setting"),
                      date_of_service: dt.date | None = Query(None, description="ISO date"),
                      external_id: str | None = Query(None, max_length=100),
                      user: User = Depends(require_roles(*INGESTERS))) -> dict:
    """The body is the note itself (UTF-8 text)."""
    from starlette.concurrency import run_in_threadpool

    from opencac.text.document import read_note_bytes

    raw = await request.body()
    text = read_note_bytes(raw, name="request body", max_bytes=request.app.state.settings.max_document_bytes)
    data = IngestData(text=text, setting=setting, date_of_service=date_of_service,
                      encounter_external_id=external_id, source_format="text")

    def work() -> dict:
        with request.app.state.session_factory() as session:
            enc = create_encounter(session, data, user, request.app.state.settings.max_document_bytes)
            return _done(request, session, enc)

    return await run_in_threadpool(work)


@router.post("/fhir", response_model=IngestResponse, status_code=201, responses=ERRORS,
             summary="Ingest a FHIR R4 Bundle (Patient, Encounter, DocumentReference)")
def ingest_fhir(request: Request, bundle: dict[str, Any] = Body(..., examples=[FHIR_EXAMPLE]),
                user: User = Depends(require_roles(*INGESTERS)), session: Session = Depends(get_session)) -> dict:
    """Validated with ``fhir.resources`` R4B models; the note is the DocumentReference attachment
    (base64 ``data``) or its narrative."""
    max_bytes = request.app.state.settings.max_document_bytes
    data = parse_fhir_bundle(bundle, max_bytes)
    enc = create_encounter(session, data, user, max_bytes)
    return _done(request, session, enc)
