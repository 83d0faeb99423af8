"""Append-only audit events, hash-chained (``opencac.audit.chain``).

Public API (used by every layer that changes or reveals data)::

    record_event(session, actor, action, entity, entity_id, before=None, after=None) -> AuditEvent
    verify_events(session, max_problems=20) -> ChainReport

``record_event`` appends inside the caller's transaction: the event commits or rolls back with
the change it describes. Appends are serialised by locking the single ``audit_chain_head`` row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions are ``BEGIN IMMEDIATE``), so
sequence numbers have no gaps and the chain never forks.

Never put note text into ``before``/``after``: record ids, codes and hashes instead.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opencac.audit.chain import GENESIS_HASH, ChainReport, compute_hash, verify_chain
from opencac.store.models import AuditChainHead, AuditEvent, User, utcnow


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _actor_name(actor: User | str | None) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, User):
        return actor.username
    return str(actor)


def record_event(session: Session, actor: User | str | None, action: str, entity: str,
                 entity_id: Any = None, before: Any = None, after: Any = None) -> AuditEvent:
    """Append one audit event to the chain, in the caller's transaction.

    Args:
        session: the open session whose transaction the event joins.
        actor: the user (or a name such as ``"system"``, ``"worker"``).
        action: dotted verb, e.g. ``document.view``, ``decision.accept``, ``final_code_set.change``.
        entity: the kind of thing acted on (``encounter``, ``document``, ``suggestion``, ``user``...).
        entity_id: its id (stored as text).
        before / after: JSON-able state before and after (no note text).

    Returns:
        The flushed ``AuditEvent`` (``seq`` and ``hash`` set).
    """
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditChainHead(id=1, last_seq=0, last_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    data = {
        "ts": utcnow(),
        "actor": _actor_name(actor),
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "before": _jsonable(before),
        "after": _jsonable(after),
    }
    prev = head.last_hash
    digest = compute_hash(prev, data)
    ev = AuditEvent(seq=head.last_seq + 1, prev_hash=prev, hash=digest, **data)
    session.add(ev)
    session.execute(update(AuditChainHead).where(AuditChainHead.id == 1)
                    .values(last_seq=ev.seq, last_hash=digest))
    session.flush()
    session.expire(head)
    return ev


def verify_events(session: Session, max_problems: int = 20, batch: int = 5000) -> ChainReport:
    """Verify the whole stored chain (events in ``seq`` order, head row compared at the end).

    Returns:
        A ``ChainReport``: ``ok`` and ``count``, or ``problems[0]`` naming the first bad event.
    """

    def rows() -> Any:
        last = -1
        while True:
            chunk = session.execute(select(AuditEvent).where(AuditEvent.seq > last)
                                    .order_by(AuditEvent.seq).limit(batch)).scalars().all()
            if not chunk:
                return
            for ev in chunk:
                yield ev.to_chain_dict()
            last = chunk[-1].seq
            session.expunge_all()

    head = session.execute(select(AuditChainHead.last_hash).where(AuditChainHead.id == 1)).scalar_one_or_none()
    return verify_chain(rows(), expect_head=head, max_problems=max_problems)


def events_for(session: Session, entity: str | None = None, entity_id: Any = None,
               limit: int = 200, offset: int = 0) -> list[AuditEvent]:
    """Events filtered by entity (and id), newest first."""
    q = select(AuditEvent)
    if entity:
        q = q.where(AuditEvent.entity == entity)
    if entity_id is not None:
        q = q.where(AuditEvent.entity_id == str(entity_id))
    return list(session.execute(q.order_by(AuditEvent.seq.desc()).limit(limit).offset(offset)).scalars())
