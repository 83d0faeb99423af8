"""What a batch worker does: load the engine once, then code chunks of documents.

The same functions serve the local process pool (as the pool initializer and task) and
the Ray actors (:mod:`opencac.batch.ray_runner`), so both produce identical rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from opencac.batch.readers import SourceDoc
from opencac.codesets.config import one_blas_thread
from opencac.errors import BatchDocumentError, OpenCACError
from opencac.text.document import DEFAULT_MAX_NOTE_BYTES, read_note_bytes


class Engine(Protocol):
    """What batch needs of a coding engine (``opencac.coding.engine.CodingEngine``)."""

    def code(self, text: str, doc_id: str = "note", context: Any = None) -> Any:
        """Code one note; returns a ``CodingResult``."""
        ...


@dataclass(frozen=True, slots=True)
class EngineFactory:
    """Picklable factory of the real engine: ``CodingEngine.load(model)`` in each worker.

    Attributes:
        model: a model path or name; ``None`` = the out-of-the-box engine (code sets only).
    """

    model: str | None = None

    def __call__(self) -> Engine:
        from opencac.coding.engine import CodingEngine

        return CodingEngine.load(self.model)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The coded rows of one chunk, as produced by a worker.

    Attributes:
        rows: ``(ordinal, doc_id, status, json_line)`` per document, in input order;
            ``status`` is ``"ok"`` or ``"failed"``.
        pid: the worker process id.
        max_rss_kb: the worker's peak resident memory so far (KiB).
        fatal: ``(error class name, message)`` when the worker could not load its engine.
        cpu_s: CPU seconds the worker spent coding the chunk (independent of machine load).
    """

    rows: list[tuple[int, str, str, str]]
    pid: int
    max_rss_kb: int
    fatal: tuple[str, str] | None = None
    cpu_s: float = 0.0


class DocumentCoder:
    """Holds one loaded engine and codes documents with failure isolation.

    Args:
        engine_factory: picklable callable returning an engine (called once, here).
        rules: whether to run ``opencac.edits.apply_rules`` on each result.
        max_bytes: the largest note accepted.
        routing_policy: a routing policy as a dict (``RoutingPolicy.to_dict()``); ``None``
            = the default policy. Each row then carries its route decision.
        routing: route each result with ``opencac.routing.route`` (when importable).
        doc_timeout_s: a document taking longer is abandoned and recorded as a failure
            (``0`` = no limit). Uses ``SIGALRM``, so it applies only where coding runs in the
            main thread of a POSIX process (local workers, Ray actors, inline runs).
    """

    def __init__(self, engine_factory: Callable[[], Engine], rules: bool = True,
                 max_bytes: int = DEFAULT_MAX_NOTE_BYTES, routing_policy: dict[str, Any] | None = None,
                 routing: bool = True, doc_timeout_s: float = 0.0) -> None:
        self.engine = engine_factory()
        one_blas_thread()  # workers share the cores: a second BLAS thread per worker only spins
        self.doc_timeout_s = doc_timeout_s
        self.rules = rules
        self.max_bytes = max_bytes
        self._apply_rules: Callable[..., Any] | None = None
        self._context_cls: Any = None
        if rules:
            from opencac.edits import apply_rules

            self._apply_rules = apply_rules
        self._route: Callable[..., Any] | None = None
        self._policy: Any = None
        if routing:
            try:
                from opencac.routing import RoutingPolicy, claim_result, route
            except ImportError:  # routing is optional for batch: the summary says "provisional"
                pass
            else:
                # Route the claim the encounter would be billed with (the rules' final codes).
                self._route = lambda res, pol, text: route(claim_result(res), pol, text)
                self._policy = (RoutingPolicy.from_dict(routing_policy) if routing_policy is not None
                                else RoutingPolicy())

    def _context(self, data: dict[str, Any] | None) -> Any:
        if data is None:
            return None
        if self._context_cls is None:
            from opencac.coding.types import EncounterContext

            self._context_cls = EncounterContext
        return self._context_cls.from_dict(data)

    def code_one(self, doc: SourceDoc) -> tuple[str, dict[str, Any]]:
        """Code one document; returns ``("ok", row)`` or ``("failed", failure_row)``.

        Never raises for a bad document: input errors and engine exceptions become a
        failure row naming the error (never the note text).
        """
        try:
            with _time_limit(self.doc_timeout_s):
                return self._code_one(doc)
        except _DocumentTimeout:
            return "failed", failure_row(doc.doc_id, BatchDocumentError(
                f"coding {doc.doc_id} took longer than {self.doc_timeout_s:g} s and was abandoned"))

    def _code_one(self, doc: SourceDoc) -> tuple[str, dict[str, Any]]:
        try:
            if doc.error is not None:
                raise BatchDocumentError(doc.error)
            if doc.path is not None:
                raw = doc.data if doc.data is not None else Path(doc.path).read_bytes()
                text = read_note_bytes(raw, name=Path(doc.path).name, max_bytes=self.max_bytes)
            else:
                text = read_note_bytes((doc.text or "").encode("utf-8", "surrogatepass"),
                                       name=f"document {doc.doc_id}", max_bytes=self.max_bytes)
            try:
                context = self._context(doc.context)
            except (TypeError, ValueError) as exc:
                raise BatchDocumentError(f"the encounter context of {doc.doc_id} is invalid "
                                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
            result = self.engine.code(text, doc_id=doc.doc_id, context=context)
            if self._apply_rules is not None:
                self._apply_rules(result, text)
            row = result.to_dict()
            row["doc_id"] = doc.doc_id
            if self._route is not None:
                d = self._route(result, self._policy, text)
                row["route"] = {"route": d.route, "priority": d.priority, "reasons": list(d.reasons),
                                "complexity": round(float(d.complexity), 6), "audit_sample": bool(d.audit_sample)}
            return "ok", row
        except Exception as exc:  # failure isolation: one bad document never stops the run
            return "failed", failure_row(doc.doc_id, exc)

    def code_chunk(self, docs: Sequence[SourceDoc]) -> ChunkResult:
        """Code a chunk of documents, in order; one JSON line per document."""
        c0 = time.process_time()
        rows = []
        for doc in docs:
            status, row = self.code_one(doc)
            rows.append((doc.ordinal, doc.doc_id, status, dumps(row)))
        return ChunkResult(rows, os.getpid(), peak_rss_kb(), cpu_s=time.process_time() - c0)


class _DocumentTimeout(BaseException):
    """Raised by SIGALRM inside a document that ran out of time (BaseException, so that the
    engine's own ``except Exception`` blocks cannot swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``_DocumentTimeout`` in this (main) thread after ``seconds``; no-op elsewhere."""
    if seconds <= 0 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise _DocumentTimeout()

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def failure_row(doc_id: str, exc: BaseException) -> dict[str, Any]:
    """The failures-file record of a document: id, error code and message, no note text."""
    if isinstance(exc, OpenCACError):
        return {"doc_id": doc_id, "error_code": exc.code, "error_type": type(exc).__name__, "error": exc.message}
    # Any other exception: its type and where it was raised, never its message, which may
    # quote the note (a KeyError on a phrase...): no note text in logs or side files.
    where = ""
    tb = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    if tb:
        frame = tb[-1]
        where = f" at {Path(frame.filename).name}:{frame.lineno} in {frame.name}"
    return {"doc_id": doc_id, "error_code": BatchDocumentError.code, "error_type": type(exc).__name__,
            "error": f"coding raised {type(exc).__name__}{where}"}


def dumps(row: dict[str, Any]) -> str:
    """Deterministic one-line JSON (same bytes for the same row in every worker)."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024) if sys.platform == "darwin" else int(peak)


# -- process-pool plumbing (module globals: one coder per worker process) -----------------
_CODER: DocumentCoder | None = None
_INIT_ERROR: tuple[str, str] | None = None


def init_worker(engine_factory: Callable[[], Engine], rules: bool, max_bytes: int,
                routing_policy: dict[str, Any] | None = None, doc_timeout_s: float = 0.0) -> None:
    """Pool initializer: load the engine once per worker process.

    A failure is kept and reported by the first task (a raising initializer would only
    show up as a broken pool, without the reason).
    """
    global _CODER, _INIT_ERROR
    _die_with_parent()
    try:
        _CODER = DocumentCoder(engine_factory, rules=rules, max_bytes=max_bytes, routing_policy=routing_policy,
                               doc_timeout_s=doc_timeout_s)
    except OpenCACError as exc:
        _INIT_ERROR = (type(exc).__name__, exc.message)
    except Exception as exc:
        _INIT_ERROR = (type(exc).__name__, f"{type(exc).__name__}: {str(exc)[:300]}")


def run_chunk(docs: list[SourceDoc]) -> ChunkResult:
    """Pool task: code one chunk with this worker's engine."""
    if _CODER is None:
        return ChunkResult([], os.getpid(), peak_rss_kb(), fatal=_INIT_ERROR or ("RuntimeError", "no engine"))
    return _CODER.code_chunk(docs)


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this worker when its parent dies (no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:  # best effort only
        return
