"""Audit events: hash chain appends, and verify detects edited, deleted and reordered events."""

from __future__ import annotations

from sqlalchemy import delete, update

from opencac.audit.chain import GENESIS_HASH, compute_hash, verify_chain
from opencac.store.events import record_event, verify_events
from opencac.store.models import AuditEvent


def _fill(session, n: int = 5) -> None:  # noqa: ANN001
    for i in range(n):
        record_event(session, "alice", "decision.accept", "suggestion", i, {"state": "pending"},
                     {"state": "accepted", "code": f"E11.{i}"})
    session.commit()


def test_chain_links_and_verifies(session) -> None:  # noqa: ANN001
    _fill(session)
    events = session.query(AuditEvent).order_by(AuditEvent.seq).all()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for a, b in zip(events, events[1:]):
        assert b.prev_hash == a.hash
    report = verify_events(session)
    assert report.ok and report.count == 5
    assert report.summary() == "ok, 5 events"


def test_verify_detects_edit(session) -> None:  # noqa: ANN001
    _fill(session)
    session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(after={"state": "rejected"}))
    session.commit()
    report = verify_events(session)
    assert not report.ok
    assert report.first is not None and report.first.seq == 3 and report.first.kind == "edited"


def test_verify_detects_delete(session) -> None:  # noqa: ANN001
    _fill(session)
    session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    session.commit()
    report = verify_events(session)
    assert not report.ok
    assert report.first is not None and report.first.seq == 3 and report.first.kind == "deleted"


def test_verify_detects_truncated_tail(session) -> None:  # noqa: ANN001
    _fill(session)
    session.execute(delete(AuditEvent).where(AuditEvent.seq == 5))
    session.commit()
    report = verify_events(session)
    assert not report.ok and report.first is not None and report.first.kind == "truncated"


def test_verify_detects_reorder(session) -> None:  # noqa: ANN001
    _fill(session)
    # Swap the stored positions of events 2 and 3 (via a free seq value).
    session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(seq=1000))
    session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(seq=2))
    session.execute(update(AuditEvent).where(AuditEvent.seq == 1000).values(seq=3))
    session.commit()
    report = verify_events(session)
    assert not report.ok
    assert report.first is not None and report.first.seq == 2 and report.first.kind == "reordered"


def test_pure_chain_functions() -> None:
    ev = {"ts": None, "actor": "a", "action": "x", "entity": "e", "entity_id": "1", "before": None,
          "after": {"b": 1, "a": 2}}
    h1 = compute_hash(GENESIS_HASH, ev)
    assert h1 == compute_hash(GENESIS_HASH, dict(ev, after={"a": 2, "b": 1}))  # key order irrelevant
    assert h1 != compute_hash(GENESIS_HASH, dict(ev, actor="b"))
    rows = [dict(ev, seq=1, prev_hash=GENESIS_HASH, hash=h1)]
    assert verify_chain(rows).ok
    rows[0]["actor"] = "mallory"
    assert verify_chain(rows).first.kind == "edited"  # type: ignore[union-attr]
