"""Pydantic request/response schemas of the REST API (each with an OpenAPI example)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator


#: Database integer ids and versions (PostgreSQL ``integer``).
MAX_INT = 2_147_483_647
IntId = Annotated[int, Field(ge=1, le=MAX_INT)]
Version = Annotated[int, Field(ge=0, le=MAX_INT, description="the encounter version you read")]


def _ex(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]}, from_attributes=True)


class ErrorBody(BaseModel):
    code: str = Field(description="stable OpenCAC error code (OC-E###)")
    message: str


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer."""

    model_config = _ex({"error": {"code": "OC-E402", "message": "OC-E402: encounter 7 was changed by bob ..."}})
    error: ErrorBody


class TokenRequest(BaseModel):
    model_config = _ex({"username": "alice", "password": "correct horse battery", "name": "my-script"})
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=1000)
    name: str = Field("api", max_length=100, description="a label for the token")


class UserOut(BaseModel):
    model_config = _ex({"id": 1, "username": "alice", "display_name": "Alice", "roles": ["coder"], "active": True})
    id: int
    username: str
    display_name: str
    roles: list[str]
    active: bool


class TokenResponse(BaseModel):
    model_config = _ex({"token": "oc_3q2...", "token_type": "bearer",
                        "user": {"id": 1, "username": "alice", "display_name": "Alice", "roles": ["coder"],
                                 "active": True}})
    token: str
    token_type: str = "bearer"
    user: UserOut


class UserCreate(BaseModel):
    model_config = _ex({"username": "bob", "password": "a long password", "roles": ["coder"],
                        "display_name": "Bob"})
    username: str = Field(min_length=2, max_length=80)
    password: str = Field(min_length=8, max_length=1000)
    roles: list[Literal["coder", "auditor", "cdi", "admin"]] = Field(default_factory=lambda: ["coder"], min_length=1)
    display_name: str = Field("", max_length=200)


class PatientIn(BaseModel):
    """Optional demographics (kept for fairness monitoring)."""

    model_config = _ex({"external_id": "MRN-001", "birth_date": "1950-03-02", "sex": "F", "race": "White",
                        "ethnicity": "Not Hispanic or Latino", "preferred_language": "en", "payer": "Medicare"})
    external_id: str | None = Field(None, max_length=100)
    birth_date: dt.date | None = None
    sex: Literal["F", "M", "U"] | None = None
    race: str | None = Field(None, max_length=100)
    ethnicity: str | None = Field(None, max_length=100)
    preferred_language: str | None = Field(None, max_length=50)
    payer: str | None = Field(None, max_length=100)


class EncounterIn(BaseModel):
    model_config = _ex({"external_id": "ENC-1001", "setting": "inpatient", "admission_date": "2025-11-01",
                        "discharge_date": "2025-11-04", "discharge_status": "01", "priority": 0})
    external_id: str | None = Field(None, max_length=100)
    setting: Literal["inpatient", "outpatient", "professional", "emergency"] = "outpatient"
    date_of_service: dt.date | None = None
    admission_date: dt.date | None = None
    discharge_date: dt.date | None = None
    discharge_status: str | None = Field(None, max_length=10)
    priority: int = Field(0, ge=-1000, le=1000)


class IngestRequest(BaseModel):
    """A note with its encounter and (optionally) patient."""

    model_config = _ex({"text": "Assessment: type 2 diabetes mellitus without complications.",
                        "encounter": {"setting": "outpatient", "date_of_service": "2025-11-03"},
                        "patient": {"birth_date": "1950-03-02", "sex": "F"}})
    text: str = Field(min_length=1, description="the note text (UTF-8)")
    encounter: EncounterIn = Field(default_factory=EncounterIn)
    patient: PatientIn | None = None


class IngestResponse(BaseModel):
    model_config = _ex({"encounter_id": 12, "document_id": 12, "run_id": 12, "status": "new", "version": 1})
    encounter_id: int
    document_id: int
    run_id: int
    status: str
    version: int


class WorklistItem(BaseModel):
    model_config = _ex({"id": 12, "external_id": "ENC-1001", "setting": "inpatient", "status": "ready",
                        "priority": 0, "min_confidence": 0.62, "band": "medium", "edit_count": 1,
                        "suggestion_count": 4, "assigned_to": None, "version": 2,
                        "date_of_service": "2025-11-03", "updated_at": "2025-11-03T10:00:00"})
    id: int
    external_id: str | None
    setting: str
    status: str
    priority: int
    min_confidence: float | None
    band: str
    edit_count: int
    suggestion_count: int
    assigned_to: str | None
    version: int
    date_of_service: dt.date | None
    updated_at: dt.datetime


class WorklistResponse(BaseModel):
    model_config = _ex({"total": 1, "items": [WorklistItem.model_config["json_schema_extra"]["examples"][0]]})  # type: ignore[index]
    total: int
    items: list[WorklistItem]


class EvidenceOut(BaseModel):
    start: int
    end: int
    text: str
    section: str = ""


class SuggestionOut(BaseModel):
    model_config = _ex({"id": 5, "system": "icd10cm", "code": "E11.9",
                        "description": "Type 2 diabetes mellitus without complications", "confidence": 0.91,
                        "assertion": "affirmed", "rank": 1, "selected": True, "source": "engine",
                        "state": "pending", "final_code": None,
                        "evidence": [{"start": 12, "end": 36, "text": "type 2 diabetes mellitus",
                                      "section": "assessment"}], "rationale": ["index: Diabetes, type 2"]})
    id: int
    system: str
    code: str
    description: str
    confidence: float | None
    assertion: str
    rank: int
    selected: bool
    source: str
    state: str
    final_code: str | None
    evidence: list[EvidenceOut]
    rationale: list[str]
    removed_by_rules: str | None = Field(
        None, description="the rule (and edit, citation) that took this engine suggestion off the final claim; "
                          "null when the rules did not remove it")


class EditOut(BaseModel):
    """A rules-layer edit. ``fix_status``: ``applied`` (the rules changed the codes themselves),
    ``proposed`` (the coder applies or dismisses it: ``POST .../edits/{id}/resolve``), ``unchanged``
    (nothing left to change) or null (no fix). ``resolution``: the coder's answer to a proposed fix."""

    model_config = _ex({"id": 4, "edit_id": "COMPLETION-7TH", "severity": "warning",
                        "message": "T14.90 needs a 7th character. Proposed, not applied: the episode of care is "
                                   "not documented.", "citation": "ICD-10-CM Official Guidelines I.C.19.a",
                        "codes": ["T14.90"], "run_id": 2, "fix": {"replace": {"T14.90": "T14.90XA"}},
                        "fix_status": "proposed", "fix_text": "replace T14.90 -> T14.90XA", "resolution": None,
                        "resolved_by": None, "resolved_at": None, "resolution_reason": None})
    id: int
    edit_id: str
    severity: str
    message: str
    citation: str | None
    codes: list[Any]
    run_id: int | None = None
    fix: dict[str, Any] | None = Field(None, description='{"add": [...], "remove": [...], "replace": {old: new}, '
                                                         '"sequence": [...]}')
    fix_status: Literal["applied", "proposed", "unchanged"] | None = None
    fix_text: str = Field("", description="the fix in one line")
    resolution: Literal["applied", "dismissed"] | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolution_reason: str | None = None


class QueryOut(BaseModel):
    id: int
    kind: str
    text: str
    codes: list[Any]
    status: str


class DecisionOut(BaseModel):
    model_config = _ex({"id": 3, "suggestion_id": 5, "user": "alice", "action": "reject", "code": "I10",
                        "new_code": None, "reason_code": "not_documented", "reason_text": "BP normal",
                        "citation": "ICD-10-CM Official Guidelines IV.J", "created_at": "2025-11-03T10:01:00"})
    id: int
    suggestion_id: int | None
    user: str
    action: str
    code: str | None
    new_code: str | None
    reason_code: str | None
    reason_text: str | None
    citation: str | None
    created_at: dt.datetime


class FinalCode(BaseModel):
    seq: int
    system: str
    code: str
    description: str = ""
    source: str = ""
    poa: str | None = Field(None, description="present-on-admission indicator (diagnoses): Y, N, U, W, 1 or ''")


class FinalCodeSetOut(BaseModel):
    model_config = _ex({"version": 1, "codes": [{"seq": 1, "system": "icd10cm", "code": "E11.9",
                                                 "description": "Type 2 diabetes mellitus without complications",
                                                 "source": "engine"}],
                        "finalized_by": "alice", "finalized_at": "2025-11-03T10:05:00", "encounter_version": 5})
    version: int
    codes: list[FinalCode]
    finalized_by: str
    finalized_at: dt.datetime
    coded_by: str | None = Field(None, description="ai_straight_through | ai_plus_coder | coder_only")
    encounter_version: int | None = None


class DocumentOut(BaseModel):
    id: int
    kind: str
    source_format: str
    sha256: str
    text: str


class RunOut(BaseModel):
    id: int
    status: str
    model: str | None
    codeset_versions: dict[str, Any]
    error: str | None
    attempts: int
    created_at: dt.datetime
    finished_at: dt.datetime | None


class EncounterOut(BaseModel):
    """One encounter with everything the review needs."""

    model_config = _ex({"id": 12, "status": "ready", "version": 2, "setting": "outpatient",
                        "documents": [{"id": 12, "kind": "note", "source_format": "json", "sha256": "ab12...",
                                       "text": "Assessment: type 2 diabetes mellitus without complications."}],
                        "suggestions": [], "edits": [], "queries": [], "decisions": [], "final": None,
                        "working_codes": [], "rules": None, "run": None, "external_id": None,
                        "date_of_service": "2025-11-03", "admission_date": None, "discharge_date": None,
                        "assigned_to": None, "warnings": []})
    id: int
    external_id: str | None
    status: str
    version: int
    setting: str
    date_of_service: dt.date | None
    admission_date: dt.date | None
    discharge_date: dt.date | None
    assigned_to: str | None
    documents: list[DocumentOut]
    run: RunOut | None
    suggestions: list[SuggestionOut]
    edits: list[EditOut]
    queries: list[QueryOut]
    decisions: list[DecisionOut]
    final: FinalCodeSetOut | None
    working_codes: list[FinalCode]
    rules: dict[str, Any] | None
    warnings: list[str]


class DecisionIn(BaseModel):
    """A decision on a suggestion (or the addition of a code). ``version`` is the encounter version
    you saw: if someone saved in between you get 409 and nothing is changed."""

    model_config = _ex({"action": "reject", "suggestion_id": 5, "reason_code": "not_documented",
                        "reason_text": "ruled out in the assessment", "citation": "ICD-10-CM IV.H", "version": 2})
    action: Literal["accept", "reject", "modify", "add"]
    suggestion_id: IntId | None = None
    code: str | None = Field(None, max_length=10, description="new code for modify / add")
    reason_code: str | None = Field(None, max_length=30)
    reason_text: str | None = Field(None, max_length=2000)
    citation: str | None = Field(None, max_length=300)
    version: Version


class DecisionResult(BaseModel):
    model_config = _ex({"decision_id": 3, "encounter_version": 3, "suggestion_id": 5, "state": "rejected"})
    decision_id: int
    encounter_version: int
    suggestion_id: int | None
    state: str


class EditResolveIn(BaseModel):
    """Apply or dismiss an edit's proposed fix. ``apply`` turns the fix into your decisions on the
    working code set (replace -> modify, remove -> reject, add -> add); ``dismiss`` keeps the codes
    and needs a ``reason``. ``version`` (optional) is the encounter version you saw: 409 when stale."""

    model_config = _ex({"action": "dismiss", "reason": "episode of care is subsequent: coded T14.90XD by hand",
                        "version": 3})
    action: Literal["apply", "dismiss"]
    reason: str | None = Field(None, max_length=2000, description="why (required to dismiss)")
    version: Version | None = None

    @model_validator(mode="after")
    def _reason_to_dismiss(self) -> EditResolveIn:
        if self.action == "dismiss" and not (self.reason or "").strip():
            raise ValueError("a reason is required to dismiss a proposed fix")
        return self


class EditResolveResult(BaseModel):
    model_config = _ex({"edit": {"id": 4, "edit_id": "COMPLETION-7TH", "severity": "warning",
                                 "message": "T14.90 needs a 7th character.", "citation": "ICD-10-CM I.C.19.a",
                                 "codes": ["T14.90"], "run_id": 2, "fix": {"replace": {"T14.90": "T14.90XA"}},
                                 "fix_status": "proposed", "fix_text": "replace T14.90 -> T14.90XA",
                                 "resolution": "applied", "resolved_by": "alice",
                                 "resolved_at": "2025-11-03T10:02:00", "resolution_reason": None},
                        "encounter_version": 4, "decision_ids": [9],
                        "working_codes": [{"seq": 1, "system": "icd10cm", "code": "T14.90XA", "description": "",
                                           "source": "coder-modified"}]})
    edit: EditOut
    encounter_version: int
    decision_ids: list[int] = Field(description="the decisions the fix made (empty for dismiss)")
    working_codes: list[FinalCode]


class VersionIn(BaseModel):
    model_config = _ex({"version": 3})
    version: Version


class FinalizeIn(BaseModel):
    model_config = _ex({"version": 3, "poa": {"I21.4": "Y", "J18.9": "N"}})
    version: Version
    poa: dict[Annotated[str, Field(max_length=10)], Annotated[str, Field(max_length=1)]] = Field(
        default_factory=dict, max_length=500,
        description="POA indicator per diagnosis code (Y, N, U, W, 1 or '' for none); codes not given keep "
                    "the known default (the rules layer's / the previous final version's)")


class AssignIn(BaseModel):
    model_config = _ex({"version": 3, "username": "alice"})
    version: Version
    username: str | None = Field(None, max_length=80, description="None to unassign")


class CodeHit(BaseModel):
    model_config = _ex({"code": "E11.9", "system": "icd10cm",
                        "description": "Type 2 diabetes mellitus without complications", "billable": True,
                        "score": 0.93})
    code: str
    system: str
    description: str
    billable: bool
    score: float


class AuditEventOut(BaseModel):
    model_config = _ex({"seq": 41, "ts": "2025-11-03T10:01:00", "actor": "alice", "action": "decision.reject",
                        "entity": "suggestion", "entity_id": "5", "before": {"state": "pending", "code": "I10"},
                        "after": {"state": "rejected", "code": "I10", "reason_code": "not_documented"},
                        "prev_hash": "9f...", "hash": "a3..."})
    seq: int
    ts: dt.datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: Any = None
    after: Any = None
    prev_hash: str
    hash: str


class VerifyOut(BaseModel):
    model_config = _ex({"ok": True, "count": 41, "message": "ok, 41 events", "first_bad_seq": None, "kind": None})
    ok: bool
    count: int
    message: str
    first_bad_seq: int | None
    kind: str | None


class StatusOut(BaseModel):
    model_config = _ex({"status": "ok", "runs": {"done": 10, "queued": 1}, "worker": True})
    status: str
    runs: dict[str, int]
    worker: bool


#: Path parameter of encounter routes.
EncounterId = Annotated[int, Path(ge=1, le=MAX_INT, description="encounter id", examples=[12])]
EditRowId = Annotated[int, Path(ge=1, le=MAX_INT, description="the edit's row id (EditOut.id)", examples=[4])]
