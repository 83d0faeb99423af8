"""Tables of the learning and routing layers (on the workbench's ``Base``; migration ``0003_learning``).

* ``learning_examples`` -- every accept / reject / modify / add decision as a labelled
  (encounter, code) example tied to its evidence; ``applied`` once the online learner took it.
* ``route_decisions`` -- each routing of an encounter's coding run (route, priority, reasons,
  complexity factors, audit sample draw).
* ``routing_policies`` -- routing policies (``RoutingPolicy.to_dict()``); one is ``active``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from opencac.store.models import Base, utcnow


class LearningExample(Base):
    """A labelled example learnt from one coder decision."""

    __tablename__ = "learning_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"), nullable=True)
    system: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(10), index=True)
    label: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str] = mapped_column(String(10))
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    org: Mapped[str] = mapped_column(String(100), default="default")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RouteDecisionRow(Base):
    """One routing of an encounter (the latest one drives the worklist)."""

    __tablename__ = "route_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("coding_runs.id", ondelete="CASCADE"), nullable=True)
    route: Mapped[str] = mapped_column(String(20), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    complexity: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    factors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audit_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("routing_policies.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RoutingPolicyRow(Base):
    """A stored routing policy; the one with ``active`` set is used by the workbench."""

    __tablename__ = "routing_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="policy")
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    target_precision: Mapped[float] = mapped_column(Float, default=0.95)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
