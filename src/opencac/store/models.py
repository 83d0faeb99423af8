"""SQLAlchemy 2 data model of the coding workbench.

Stable seams (other layers build on these; keep them):

* ``Base`` -- the one ``DeclarativeBase``. The audit helper adds tables in
  ``opencac/store/audit_models.py`` and the learning helper in ``store/learning_models.py``, on
  this same ``Base``; migrations ``0002_audit`` / ``0003_learning`` follow ``0001_core``.
* Table names below are part of the schema contract (``users``, ``patients``, ``encounters``,
  ``documents``, ``coding_runs``, ``suggestions``, ``decisions``, ``final_code_sets``,
  ``edits``, ``queries``, ``audit_events``, ``audit_chain_head``, ``api_tokens``,
  ``revoked_sessions``; ``final_code_sets.coded_by`` and ``revoked_sessions`` come with ``0004_seams``;
  ``edits.fix`` / ``fix_status`` and the coder's ``resolution`` of a proposed fix with ``0005_edit_fixes``).
* Append audit events only through ``opencac.store.events.record_event``.

Times are stored as naive UTC datetimes (``utcnow()``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Roles known to the workbench.
ROLES = ("coder", "auditor", "cdi", "admin")

#: Encounter statuses, in workflow order.
ENCOUNTER_STATUSES = ("new", "coding", "ready", "in_review", "final", "error")

#: Coding-run statuses.
RUN_STATUSES = ("queued", "running", "done", "failed")

#: How a final code set came about (``final_code_sets.coded_by``).
CODED_BY = ("ai_straight_through", "ai_plus_coder", "coder_only")

#: Present-on-admission indicators (CMS UB-04 POA reporting; "" = not reported / exempt).
POA_VALUES = ("Y", "N", "U", "W", "1", "")

#: User name of the system account that finalises straight-through encounters.
SYSTEM_USERNAME = "opencac-system"

#: How a coder resolved an edit's proposed fix (``edits.resolution``).
EDIT_RESOLUTIONS = ("applied", "dismissed")

#: Decision actions.
DECISION_ACTIONS = ("accept", "reject", "modify", "add", "remove")

#: Reason pick list for reject / modify (the free text and optional guideline citation go beside).
REASON_CODES = {
    "not_documented": "Not supported by documentation",
    "negated": "Condition negated / ruled out",
    "uncertain": "Uncertain diagnosis (outpatient)",
    "history_only": "History only / resolved",
    "more_specific": "A more specific code applies",
    "less_specific": "Documentation supports a less specific code",
    "wrong_laterality": "Wrong laterality / site",
    "integral": "Integral to another condition",
    "excludes1": "Excludes1 conflict",
    "guideline": "Official guideline applies",
    "duplicate": "Duplicate",
    "other": "Other",
}


def utcnow() -> dt.datetime:
    """The current UTC time as a naive datetime (how the store keeps times)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    """The declarative base of every OpenCAC table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    """A workbench account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    roles: Mapped[str] = mapped_column(String(200), default="coder")  # comma-separated ROLES
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_login: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def role_list(self) -> list[str]:
        """The user's roles as a list."""
        return [r for r in (self.roles or "").split(",") if r]

    def has_role(self, *roles: str) -> bool:
        """True when the user holds any of ``roles`` (admin holds all)."""
        mine = set(self.role_list)
        return "admin" in mine or bool(mine & set(roles))


class ApiToken(Base):
    """A bearer token for the REST API (only its SHA-256 is stored)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="api")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class RevokedSession(Base):
    """A logged-out browser session: its cookie's nonce may not authenticate again."""

    __tablename__ = "revoked_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Patient(Base):
    """A patient; demographics are optional (used later for fairness monitoring)."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    birth_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(10), nullable=True)
    race: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ethnicity: Mapped[str | None] = mapped_column(String(100), nullable=True)
    preferred_language: Mapped[str | None] = mapped_column(String(50), nullable=True)
    payer: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Encounter(Base):
    """An encounter to code. ``version`` is the optimistic-locking counter: every change of the
    encounter's coding state bumps it, and a writer that holds an older one gets a conflict."""

    __tablename__ = "encounters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), nullable=True, index=True)
    setting: Mapped[str] = mapped_column(String(20), default="outpatient", index=True)
    date_of_service: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    admission_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    discharge_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    discharge_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    # Routing fields (filled by the routing layer later).
    queue: Mapped[str | None] = mapped_column(String(50), nullable=True, index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    route_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    # Denormalised summary for the worklist.
    min_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    edit_count: Mapped[int] = mapped_column(Integer, default=0)
    suggestion_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    patient: Mapped[Patient | None] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])
    documents: Mapped[list[Document]] = relationship(back_populates="encounter", order_by="Document.id")

    __table_args__ = (Index("ix_encounters_status_priority", "status", "priority"),)


class Document(Base):
    """A clinical document of an encounter (the note text itself)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    kind: Mapped[str] = mapped_column(String(50), default="note")
    source_format: Mapped[str] = mapped_column(String(20), default="text")  # text | json | fhir
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    encounter: Mapped[Encounter] = relationship(back_populates="documents")


class CodingRun(Base):
    """One run of the engine + rules over an encounter's document."""

    __tablename__ = "coding_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    codeset_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Suggestion(Base):
    """A code suggested by the engine (or added by a coder: ``source='coder'``)."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("coding_runs.id", ondelete="CASCADE"), nullable=True)
    system: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(500), default="")
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rationale: Mapped[list[Any]] = mapped_column(JSON, default=list)
    signals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    assertion: Mapped[str] = mapped_column(String(20), default="affirmed")
    rank: Mapped[int] = mapped_column(Integer, default=0)
    selected: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20), default="engine")  # engine | coder
    # Current review state: pending | accepted | rejected | modified | added | removed
    state: Mapped[str] = mapped_column(String(20), default="pending")
    final_code: Mapped[str | None] = mapped_column(String(10), nullable=True)  # set on modify
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Decision(Base):
    """A reviewer's decision on a suggestion (append-only history)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    suggestion_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id", ondelete="CASCADE"),
                                                      nullable=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(10))
    code: Mapped[str | None] = mapped_column(String(10), nullable=True)  # code before
    new_code: Mapped[str | None] = mapped_column(String(10), nullable=True)  # on modify / add
    reason_code: Mapped[str | None] = mapped_column(String(30), nullable=True)
    reason_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    citation: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship()


class FinalCodeSet(Base):
    """A finalised, sequenced code set of an encounter. Re-finalising adds a new version."""

    __tablename__ = "final_code_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # [{seq, system, code, description, source, poa}] -- poa (diagnoses only) is one of POA_VALUES
    codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    drg: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # One of CODED_BY (None on rows finalised before migration 0004_seams).
    coded_by: Mapped[str | None] = mapped_column(String(30), nullable=True, index=True)
    finalized_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    finalized_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    current: Mapped[bool] = mapped_column(Boolean, default=True)

    finalized_by: Mapped[User] = relationship()
    __table_args__ = (UniqueConstraint("encounter_id", "version", name="uq_final_code_sets_enc_version"),)


class Edit(Base):
    """A rules-layer edit raised on an encounter's coding run."""

    __tablename__ = "edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("coding_runs.id", ondelete="CASCADE"), nullable=True)
    edit_id: Mapped[str] = mapped_column(String(100), default="")
    severity: Mapped[str] = mapped_column(String(20), default="warning")
    message: Mapped[str] = mapped_column(Text, default="")
    citation: Mapped[str | None] = mapped_column(String(300), nullable=True)
    codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    # The rules layer's fix ({"add", "remove", "replace", "sequence"}) and its status (``applied`` /
    # ``proposed`` / ``unchanged``, see ``opencac.edits.model.Edit.fix_status``); since 0005_edit_fixes.
    fix: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fix_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # A coder's answer to a proposed fix: one of EDIT_RESOLUTIONS, who, when and why.
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    resolution_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])


class Query(Base):
    """A CDI query draft to the provider."""

    __tablename__ = "queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("coding_runs.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(100), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft | sent | answered | closed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """An append-only, hash-chained audit event (see ``opencac.audit.chain``)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True, index=True)
    ts: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(50), index=True)
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(50), nullable=True)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_id"),)

    def to_chain_dict(self) -> dict[str, Any]:
        """The mapping ``opencac.audit.chain`` hashes and verifies."""
        return {"seq": self.seq, "ts": self.ts, "actor": self.actor, "action": self.action,
                "entity": self.entity, "entity_id": self.entity_id, "before": self.before,
                "after": self.after, "prev_hash": self.prev_hash, "hash": self.hash}


class AuditChainHead(Base):
    """One row (id 1): the last sequence number and hash. Locking it serialises appends."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
