"""Pure hash-chain functions for the append-only audit event log.

Each event carries the hash of the event before it (``prev_hash``) and its own ``hash``, which
covers its content *and* ``prev_hash``. Nothing here touches a database: the store layer
(``opencac.store.events``) persists events and feeds them back to :func:`verify_chain`.

Detection (events are given in their stored order, ``seq`` ascending):

* **edited** -- the recomputed hash of an event differs from its stored hash;
* **deleted** -- an event's ``prev_hash`` names no event in the log, or ``seq`` jumps;
* **reordered** -- an event's ``prev_hash`` names another event of the log, not the one
  stored before it.

Deleting the *last* events leaves a valid shorter chain; callers that need to detect that keep
the head hash elsewhere (``expect_head``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The ``prev_hash`` of the first event of a chain.
GENESIS_HASH = "0" * 64

#: The event fields the hash covers (``seq`` is not covered, so that reordering is told
#: apart from editing; the link to the previous event fixes the order).
HASHED_FIELDS = ("ts", "actor", "action", "entity", "entity_id", "before", "after")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON-serialisable in an audit event: {type(value).__name__}")


def canonical_ts(ts: dt.datetime) -> str:
    """ISO-8601 UTC text of a timestamp, microseconds kept (naive values are taken as UTC)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of an event's hashed fields (sorted keys, no whitespace)."""
    payload: dict[str, Any] = {}
    for key in HASHED_FIELDS:
        value = event.get(key)
        if key == "ts" and isinstance(value, dt.datetime):
            value = canonical_ts(value)
        elif key == "entity_id" and value is not None:
            value = str(value)
        payload[key] = value
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_default,
                      ensure_ascii=False).encode("utf-8")


def compute_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``prev_hash`` followed by the canonical bytes of the event.

    Args:
        prev_hash: hex hash of the previous event (``GENESIS_HASH`` for the first).
        event: a mapping with the keys of ``HASHED_FIELDS``.

    Returns:
        The 64-character hex digest.
    """
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical_bytes(event))
    return h.hexdigest()


@dataclass(slots=True)
class ChainProblem:
    """The first problem found in a chain."""

    seq: int
    kind: str  # "edited" | "deleted" | "reordered" | "truncated"
    message: str


@dataclass(slots=True)
class ChainReport:
    """Outcome of :func:`verify_chain`."""

    count: int
    ok: bool
    head: str = GENESIS_HASH
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def first(self) -> ChainProblem | None:
        """The first problem, or None."""
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        """One line: ``ok, N events`` or the first problem."""
        if self.ok:
            return f"ok, {self.count} events"
        p = self.problems[0]
        return f"FAILED at event {p.seq}: {p.kind}: {p.message}"


def verify_chain(events: Iterable[Mapping[str, Any]], expect_head: str | None = None,
                 max_problems: int = 20) -> ChainReport:
    """Verify a stored chain.

    Args:
        events: mappings with ``seq``, ``prev_hash``, ``hash`` and the ``HASHED_FIELDS``, in
            stored order (``seq`` ascending).
        expect_head: if given, the hash the last event must carry (detects a truncated tail).
        max_problems: stop after this many problems.

    Returns:
        A :class:`ChainReport`; ``problems[0]`` is the first bad event and why.
    """
    rows = list(events)
    by_hash = {str(r.get("hash")): i for i, r in enumerate(rows)}
    problems: list[ChainProblem] = []
    prev_hash = GENESIS_HASH
    prev_seq: int | None = None
    for i, row in enumerate(rows):
        seq = int(row["seq"])
        stored = str(row.get("hash"))
        recomputed = compute_hash(str(row.get("prev_hash")), row)
        if recomputed != stored:
            problems.append(ChainProblem(seq, "edited",
                                         f"event {seq} ({row.get('action')}) was edited: its content no "
                                         "longer matches its hash"))
        elif row.get("prev_hash") != prev_hash:
            linked = by_hash.get(str(row.get("prev_hash")))
            if linked is not None and linked != i - 1:
                other = rows[linked]["seq"]
                problems.append(ChainProblem(seq, "reordered",
                                             f"event {seq} follows event {other} in the chain but is stored "
                                             f"after event {prev_seq}"))
            elif linked is None and row.get("prev_hash") != GENESIS_HASH:
                problems.append(ChainProblem(seq, "deleted",
                                             f"the event before event {seq} is missing (deleted, or edited "
                                             "and re-hashed)"))
            else:
                problems.append(ChainProblem(seq, "reordered",
                                             f"event {seq} claims to start the chain but is stored after "
                                             f"event {prev_seq}"))
        elif prev_seq is not None and seq != prev_seq + 1:
            problems.append(ChainProblem(seq, "deleted",
                                         f"events {prev_seq + 1}..{seq - 1} are missing (deleted)"))
        if len(problems) >= max_problems:
            break
        prev_hash = stored
        prev_seq = seq
    if not problems and expect_head is not None and prev_hash != expect_head:
        problems.append(ChainProblem(prev_seq or 0, "truncated",
                                     "the last event is not the expected head: events at the end were deleted"))
    return ChainReport(count=len(rows), ok=not problems, head=prev_hash, problems=problems)
