"""Tables of coding-quality audits (on the workbench's ``Base``; migration ``0002_audit``).

* ``audits`` -- an audit: name, mode (blind / review), scope and sampling plan, the recorded
  frame (ordered ids + SHA-256) and sample draw, status.
* ``audit_samples`` -- each sampled encounter: its final coding frozen at sampling time, the
  auditor's coding and the score.
* ``audit_findings`` -- each discrepancy with its root cause, rationale and guideline citation.
* ``audit_responses`` -- the coded party's responses to a finding.
* ``audit_determinations`` -- the auditor's final determinations (the latest one is also kept
  on the finding).

Every change is also recorded with ``opencac.store.events.record_event``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opencac.store.models import Base, User, utcnow

AUDIT_STATUSES = ("planned", "sampled", "in_progress", "complete")


class Audit(Base):
    """One coding-quality audit."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(10), default="blind")
    status: Mapped[str] = mapped_column(String(20), default="planned", index=True)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    base_rate: Mapped[float] = mapped_column(Float, default=6500.0)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frame_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    frame_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sample_record: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sampled_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    created_by: Mapped[User | None] = relationship()
    samples: Mapped[list[AuditSample]] = relationship(back_populates="audit", order_by="AuditSample.sample_order",
                                                      cascade="all, delete-orphan")


class AuditSample(Base):
    """A sampled encounter with the final coding as sampled and the auditor's coding."""

    __tablename__ = "audit_samples"
    __table_args__ = (UniqueConstraint("audit_id", "encounter_id", name="uq_audit_samples_audit_encounter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"), index=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    sample_order: Mapped[int] = mapped_column(Integer, default=0)
    stratum: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="random")
    risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    final: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audited: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    score: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    auditor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    audited_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    audit: Mapped[Audit] = relationship(back_populates="samples")
    findings: Mapped[list[AuditFinding]] = relationship(back_populates="sample", order_by="AuditFinding.id",
                                                        cascade="all, delete-orphan")


class AuditFinding(Base):
    """One discrepancy and its defence."""

    __tablename__ = "audit_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("audit_samples.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    final_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    audited_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    root_cause: Mapped[str] = mapped_column(String(30), default="coder_error")
    rationale: Mapped[str] = mapped_column(Text, default="")
    citation: Mapped[str] = mapped_column(String(300), default="")
    override: Mapped[bool] = mapped_column(Boolean, default=True)
    financial_impact: Mapped[float] = mapped_column(Float, default=0.0)
    determination: Mapped[str | None] = mapped_column(String(20), nullable=True)
    determination_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    sample: Mapped[AuditSample] = relationship(back_populates="findings")
    responses: Mapped[list[AuditResponse]] = relationship(back_populates="finding", order_by="AuditResponse.id",
                                                          cascade="all, delete-orphan")
    determinations: Mapped[list[AuditDetermination]] = relationship(
        back_populates="finding", order_by="AuditDetermination.id", cascade="all, delete-orphan")


class AuditResponse(Base):
    """The coded party's response to a finding."""

    __tablename__ = "audit_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("audit_findings.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    finding: Mapped[AuditFinding] = relationship(back_populates="responses")
    user: Mapped[User | None] = relationship()


class AuditDetermination(Base):
    """The auditor's final determination on a finding (history kept)."""

    __tablename__ = "audit_determinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("audit_findings.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    finding: Mapped[AuditFinding] = relationship(back_populates="determinations")
    user: Mapped[User | None] = relationship()
