"""Learning and routing in the workbench: decision hook, routing of coded encounters, admin pages.

Importing this module (the app includes it as a router module) installs SQLAlchemy session
hooks that:

* turn every new ``decisions`` row (accept / reject / modify / add / remove) into
  ``learning_examples`` rows tied to the suggestion's evidence, in the decision's own
  transaction (cheap: no learner work there);
* after the commit, wake the app's :class:`LearningQueue`: one background thread per
  database that feeds the stored rows, in id order, into the in-process
  :class:`~opencac.learning.OnlineLearner` (feedback memory + organisation priors) and marks
  them ``applied``. The rows are the durable record: at start-up the same thread warms the
  learner and replays every stored example (idempotent: each row is applied once per process);
* on a finalised code set (by a coder), learn the encounter as a training document (after commit,
  in the same thread; straight-through finalisations are not learnt back);
* when a coding run turns ``done``, route the encounter with the active routing policy:
  ``encounters.queue`` = route, ``encounters.priority`` (worklist sorts it descending) and
  ``route_reason``, plus a ``route_decisions`` row with the reasons and complexity factors; a
  ``straight_through`` run is then finalised by the system user
  (``coded_by="ai_straight_through"``, :func:`finalize_routed_run`) right after the worker's commit.

The hooks never raise into the workbench's transaction: a failure is logged (type only, no
note text) and the flush goes on.

Pages (admin): ``/admin/routing`` (thresholds, target precision -> projected automation) and
``/admin/models`` (versions, promote, roll back). JSON under ``/api/v1/routing`` and
``/api/v1/models``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence
from opencac.errors import PolicyError
from opencac.learning.feedback import Decision as LearnDecision
from opencac.learning.feedback import TrainingDocument, canon
from opencac.learning.online import OnlineLearner
from opencac.learning.registry import ModelRegistry
from opencac.routing import RULES_ADDED, RoutingPolicy, route
from opencac.service.dependencies import csrf_token_for, get_read_session, get_session, require_roles
from opencac.store.learning_models import LearningExample, RouteDecisionRow, RoutingPolicyRow
from opencac.store.models import CodingRun, Decision, Document, Encounter, FinalCodeSet, Suggestion, User

log = logging.getLogger(__name__)
router = APIRouter()

#: ``encounters.priority`` per route decision (the worklist sorts priority descending).
WORKLIST_PRIORITY = {("coder_review", 1): 30, ("cdi_query", 1): 28, ("cdi_query", 2): 25, ("coder_review", 2): 20,
                     ("cdi_query", 3): 15, ("coder_review", 3): 10, ("straight_through", 3): 0}

_lock = threading.Lock()
_learners: dict[tuple[str, str | None], OnlineLearner] = {}
_tables_ok: dict[str, bool] = {}


def _model_path() -> str | None:
    return os.environ.get("OPENCAC_MODEL") or None


def learner(model_path: str | None = None, database: str = "") -> OnlineLearner:
    """The process-wide online learner of a model and database (overlay only until the engine is needed).

    Each database (workbench instance) has its own learner, so what one workbench's coders
    teach never leaks into another's.
    """
    key = (database, model_path if model_path is not None else _model_path())
    with _lock:
        lr = _learners.get(key)
        if lr is None:
            lr = OnlineLearner(key[1] if key[1] and Path(key[1]).exists() else None)
            _learners[key] = lr
        return lr


def _db_key(session: Session) -> str:
    return str(session.get_bind().url)


def _tables_present(session: Session) -> bool:
    bind = session.get_bind()
    key = str(bind.url)
    if key not in _tables_ok:
        names = set(inspect(session.connection()).get_table_names())
        _tables_ok[key] = {"learning_examples", "route_decisions", "routing_policies"} <= names
    return _tables_ok[key]


def active_policy(session: Session) -> tuple[int | None, RoutingPolicy]:
    """The active stored policy (id, policy), else ``$OPENCAC_ROUTING_POLICY``, else defaults."""
    if _tables_present(session):
        row = session.execute(select(RoutingPolicyRow).where(RoutingPolicyRow.active.is_(True))
                              .order_by(RoutingPolicyRow.id.desc())).scalars().first()
        if row is not None:
            return row.id, RoutingPolicy.from_dict(row.policy)
    path = os.environ.get("OPENCAC_ROUTING_POLICY")
    if path and Path(path).is_file():
        return None, RoutingPolicy.load(path)
    return None, RoutingPolicy()


# --- the hook ----------------------------------------------------------------------------------
def _examples_for(session: Session, dec: Decision) -> list[LearningExample]:
    sug = session.get(Suggestion, dec.suggestion_id) if dec.suggestion_id else None
    system = sug.system if sug is not None else None
    if system is None:
        return []
    from opencac.service.workflow import SYSTEM_USERNAME

    author = session.get(User, dec.user_id) if dec.user_id else None
    if author is not None and author.username == SYSTEM_USERNAME:
        return []  # straight-through acceptances are the engine's own output, not coder feedback
    evidence = list(sug.evidence or []) if sug is not None else []
    conf = sug.confidence if sug is not None else None
    common = {"encounter_id": dec.encounter_id, "system": system, "evidence": evidence, "user_id": dec.user_id,
              "org": "default"}
    out = []
    if dec.action in ("accept", "add"):
        code = dec.new_code or dec.code or (sug.code if sug else "")
        out.append(LearningExample(code=code, label=True, action=dec.action, confidence=conf, **common))
    elif dec.action in ("reject", "remove"):
        out.append(LearningExample(code=dec.code or sug.code, label=False, action=dec.action, confidence=conf, **common))
    elif dec.action == "modify":
        out.append(LearningExample(code=dec.code or sug.code, label=False, action="modify", confidence=conf, **common))
        if dec.new_code:
            out.append(LearningExample(code=dec.new_code, label=True, action="modify", **common))
    return out


def _doc_text(session: Session, encounter_id: int) -> str | None:
    doc = session.execute(select(Document).where(Document.encounter_id == encounter_id)
                          .order_by(Document.id)).scalars().first()
    return doc.text if doc is not None else None


_PENDING_KEY = "opencac_learning_pending"
_FINALS_KEY = "opencac_learning_finals"


def _on_decision(session: Session, dec: Decision) -> None:
    """Store the decision's labelled examples (same transaction); the learner takes them after commit."""
    if not _tables_present(session):
        return
    rows = _examples_for(session, dec)
    for r in rows:
        session.add(r)
    if rows:
        session.info[_PENDING_KEY] = True


def _on_final(session: Session, fcs: FinalCodeSet) -> None:
    """Remember a coder's finalisation; the learner learns the document after commit."""
    if getattr(fcs, "coded_by", None) == "ai_straight_through":
        return  # never teach the engine its own unreviewed output
    session.info.setdefault(_FINALS_KEY, []).append(fcs.encounter_id)


def _learn_final(session: Session, lr: OnlineLearner, encounter_id: int) -> None:
    fcs = session.execute(select(FinalCodeSet).where(FinalCodeSet.encounter_id == encounter_id)
                          .order_by(FinalCodeSet.id.desc())).scalars().first()
    text = _doc_text(session, encounter_id)
    if fcs is None or text is None:
        return
    doc = TrainingDocument(f"enc-{encounter_id}", text)
    for c in fcs.codes or []:
        if c.get("system") in doc.codes:
            doc.codes[c["system"]].append(canon(str(c.get("code", ""))))
    lr.overlay.learn_documents([doc])


class LearningQueue:
    """The one background thread per database that feeds stored ``learning_examples`` to the learner.

    Bounded and crash-safe: the queue holds no work items, only a wake-up (plus at most
    ``MAX_FINALS`` finalised encounter ids); the work is the ``learning_examples`` table itself.
    Each pass reads the rows past the last id it applied (minus ``LOOKBACK`` ids, for rows of
    concurrent PostgreSQL transactions that committed out of id order), at most ``BATCH`` at a
    time, applies those this process has not applied yet, in id order, and marks them
    ``applied``. The first pass (started at app start-up) warms the learner and replays every
    stored example, so a restart loses no feedback. A poll every ``poll_s`` seconds also picks up
    rows other processes (uvicorn workers) stored.

    Args:
        engine: the database engine (its URL keys the learner).
        poll_s: seconds between passes when nothing wakes the thread.
    """

    LOOKBACK = 200
    BATCH = 500
    MAX_FINALS = 10_000

    def __init__(self, engine: Any, poll_s: float = 2.0) -> None:
        from collections import deque

        from sqlalchemy.orm import sessionmaker

        self.database = str(engine.url)
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()
        self._requested = 0
        self._done = 0
        self._seen: set[int] = set()
        self._floor = 0
        self._finals: deque[int] = deque(maxlen=self.MAX_FINALS)
        self._thread: threading.Thread | None = None
        self.applied = 0
        self.errors = 0

    def start(self) -> None:
        """Start the thread (idempotent); its first pass warms the learner and replays the stored rows."""
        if self.alive:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="opencac-learning", daemon=True)
        self._thread.start()
        self.notify()

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            self._cond.notify_all()

    def notify(self, finals: list[int] | None = None) -> None:
        """Wake the thread (new rows committed; ``finals``: encounters finalised by a coder)."""
        with self._cond:
            self._finals.extend(finals or [])
            self._requested += 1
        self._wake.set()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until a pass that started after this call finished; ``False`` on timeout."""
        import time

        if not self.alive:
            self.start()
        self.notify()
        with self._cond:
            want = self._requested
            deadline = time.monotonic() + timeout
            while self._done < want and self.alive:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return self._done >= want

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            with self._cond:
                gen = self._requested
            try:
                if first:
                    warm_learner(self.database)
                    first = False
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep the thread alive; never log note text
                self.errors += 1
                log.error("learning queue error: %s", type(exc).__name__)
            with self._cond:
                self._done = max(self._done, gen)
                self._cond.notify_all()
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_once(self) -> int:
        """Apply every stored example this process has not applied yet (in id order); returns how many."""
        from sqlalchemy import update

        n = 0
        with self._run_lock:
            lr = learner(database=self.database)
            while True:
                with self._factory() as s:
                    if not _tables_present(s):
                        return n
                    rows = s.execute(select(LearningExample).where(LearningExample.id > self._floor)
                                     .order_by(LearningExample.id).limit(self.BATCH)).scalars().all()
                    new = [r for r in rows if r.id not in self._seen]
                    texts: dict[int, str | None] = {}
                    for r in new:
                        if r.encounter_id not in texts:
                            texts[r.encounter_id] = _doc_text(s, r.encounter_id)
                        text = texts[r.encounter_id]
                        if text is not None:
                            lr.decide(LearnDecision(f"enc-{r.encounter_id}", r.code, r.system,
                                                    "accept" if r.label else "reject", evidence=r.evidence,
                                                    confidence=r.confidence, user=str(r.user_id)), text=text)
                        self._seen.add(r.id)
                    fresh = [r.id for r in new if not r.applied]
                    if fresh:
                        s.execute(update(LearningExample).where(LearningExample.id.in_(fresh))
                                  .values(applied=True))
                    with self._cond:
                        finals = list(self._finals)
                        self._finals.clear()
                    for eid in dict.fromkeys(finals):
                        _learn_final(s, lr, eid)
                    s.commit()
                n += len(new)
                self.applied += len(new)
                if self._seen:
                    self._floor = max(self._floor, max(self._seen) - self.LOOKBACK)
                    self._seen = {i for i in self._seen if i > self._floor}
                if len(rows) < self.BATCH:
                    return n


_queues: dict[str, LearningQueue] = {}


def queue_for(engine: Any, start: bool = True) -> LearningQueue:
    """The learning queue of a database engine (created, and started, on first use)."""
    key = str(engine.url)
    with _lock:
        q = _queues.get(key)
        if q is None:
            q = _queues[key] = LearningQueue(engine)
    if start:
        q.start()
    return q


def stop_queues() -> None:
    """Stop every learning queue of this process (app shutdown, tests)."""
    with _lock:
        qs = list(_queues.values())
        _queues.clear()
    for q in qs:
        q.stop()


def warm_learner(database: str) -> None:
    """Build the database's learner and load what its first decision would (off the request path)."""
    lr = learner(database=database)
    lr.overlay.votes("warm up")


def on_startup(app: Any) -> None:
    """App start-up: start the learning queue (warm the learner, replay the stored examples)."""
    from opencac.service.coding import get_knowledge

    _kb_provider[str(app.state.engine.url)] = app.dependency_overrides.get(get_knowledge, get_knowledge)
    queue_for(app.state.engine)


def on_shutdown(app: Any) -> None:
    """App shutdown: stop the learning queue of the app's database."""
    with _lock:
        q = _queues.pop(str(app.state.engine.url), None)
    if q is not None:
        q.stop()


def result_from_rows(enc: Encounter, rows: list[Suggestion], rules: dict[str, Any] | None = None,
                     model: str = "") -> CodingResult:
    """Rebuild a ``CodingResult`` from stored suggestion rows (for routing).

    A row the rules layer added without an engine confidence (``source="rules"``, confidence
    None) comes back at confidence 0 with the ``opencac.routing.RULES_ADDED`` signal: routing
    sends its encounter to a coder rather than reading it as a low engine score.
    """
    res = CodingResult(f"enc-{enc.id}", context=EncounterContext(setting=enc.setting or "outpatient"),
                       rules=rules, model=model)
    for s in sorted(rows, key=lambda r: r.rank or 0):
        ev = [Evidence(int(e.get("start", 0)), int(e.get("end", 0)), str(e.get("text", "")),
                       str(e.get("section") or ""), e.get("sentence")) for e in (s.evidence or [])]
        signals = dict(s.signals or {})
        if s.source == "rules" and s.confidence is None:
            signals[RULES_ADDED] = 1.0
        res.ranked(s.system).append(CodeSuggestion(
            s.code, s.system, s.description or "", float(s.confidence or 0.0), ev, s.assertion or "affirmed",
            list(s.rationale or []), signals, s.rank or 0, bool(s.selected)))
    return res


def apply_feedback(session: Session, enc: Encounter, rows: list[Suggestion], text: str | None,
                   keep_selection: bool = False) -> int:
    """Adjust a new coding run's suggestion rows with what this workbench's coders taught so far.

    Confidences move with the feedback memory and organisation priors, ranks follow, and codes
    coders added on similar notes that the engine missed join as new suggestions. Returns how
    many rows changed or were added.

    Args:
        keep_selection: the rows' selection and ranks are the rules layer's final claim
            (``opencac.service.worker.align_with_rules``): confidences still move, but what is
            selected and its sequence stay, rows the rules added are left alone, and learned
            additions join unselected (a coder accepts them).
    """
    lr = learner(database=_db_key(session))
    if not len(lr.overlay) or text is None or not rows:
        return 0
    run_id = rows[0].run_id
    by_key = {(r.system, r.code): r for r in rows}
    if keep_selection:
        rows = [r for r in rows if r.source != "rules"]
        if not rows:
            return 0
    res = result_from_rows(enc, rows)
    before = {(s.system, s.code): s.confidence for s in res.diagnoses + res.procedures}
    lr.overlay.adjust(res, text)
    changed = 0
    for s in res.diagnoses + res.procedures:
        row = by_key.get((s.system, s.code))
        if row is not None and row.source == "rules":
            continue  # a code the rules put on the claim keeps its (absent) engine confidence
        if row is None:
            session.add(Suggestion(encounter_id=enc.id, run_id=run_id, system=s.system, code=s.code[:10],
                                   description=s.description, confidence=float(s.confidence), evidence=[],
                                   rationale=list(s.rationale), signals=dict(s.signals), assertion=s.assertion,
                                   rank=s.rank + (10_000 if keep_selection else 0),
                                   selected=bool(s.selected) and not keep_selection, source="engine",
                                   state="pending"))
            changed += 1
        elif keep_selection:
            if before.get((s.system, s.code)) != s.confidence:
                row.confidence = float(s.confidence)
                row.rationale = list(s.rationale)
                row.signals = {k: float(v) for k, v in s.signals.items()}
                changed += 1
        elif before.get((s.system, s.code)) != s.confidence or row.rank != s.rank:
            row.confidence, row.rank, row.selected = float(s.confidence), s.rank, bool(s.selected)
            row.rationale = list(s.rationale)
            row.signals = {k: float(v) for k, v in s.signals.items()}
            changed += 1
    return changed


def route_encounter(session: Session, enc: Encounter, run: CodingRun, rows: list[Suggestion],
                    text: str | None = None) -> Any:
    """Route an encounter from its run's suggestion rows; sets the worklist fields; returns the decision."""
    policy_id, policy = active_policy(session)
    d = route(result_from_rows(enc, rows, run.rules, run.model or ""), policy, text)
    enc.queue = d.route
    # keep an explicit ingest priority when it is higher (an urgent encounter stays urgent)
    enc.priority = max(int(enc.priority or 0), WORKLIST_PRIORITY.get((d.route, d.priority), 10))
    enc.route_reason = (d.reasons[0] if d.reasons else d.route)[:200]
    if _tables_present(session):
        session.add(RouteDecisionRow(encounter_id=enc.id, run_id=run.id, route=d.route, priority=d.priority,
                                     complexity=d.complexity, reasons=d.reasons, factors=_jsonable(d.factors),
                                     audit_sample=d.audit_sample, policy_id=policy_id))
    return d


_kb_provider: dict[str, Any] = {}


def finalize_routed_run(factory: Any, run_id: int) -> bool:
    """Finalise a coding run's encounter when its latest routing said ``straight_through``.

    Called by the coding worker after the run's commit (``opencac.service.worker.RUN_DONE_HOOKS``).
    The final code set is written by the system user with ``coded_by="ai_straight_through"``; the
    route decision (with its audit-sample draw) and ``encounters.queue`` stay as routed, so audits
    still sample straight-through encounters per the policy. Returns whether it finalised.
    """
    from opencac.service.workflow import finalize_straight_through

    with factory() as session:
        if not _tables_present(session):
            return False
        run = session.get(CodingRun, run_id)
        if run is None or run.status != "done":
            return False
        row = session.execute(select(RouteDecisionRow).where(RouteDecisionRow.run_id == run_id)
                              .order_by(RouteDecisionRow.id.desc())).scalars().first()
        enc = session.get(Encounter, run.encounter_id)
        if row is None or row.route != "straight_through" or enc is None or enc.status != "ready":
            return False
        kb = None
        provider = _kb_provider.get(str(session.get_bind().url))
        if provider is not None:
            try:
                kb = provider()
            except Exception as exc:  # noqa: BLE001 - finalise without code-set checks rather than not at all
                log.warning("code sets unavailable for straight-through finalisation: %s", type(exc).__name__)
        finalize_straight_through(session, enc.id, kb)
        session.commit()
        return True


def _jsonable(factors: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(factors, default=str))


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    try:
        with session.no_autoflush:
            for obj in list(session.new):
                if isinstance(obj, Decision):
                    _on_decision(session, obj)
                elif isinstance(obj, FinalCodeSet):
                    _on_final(session, obj)
            for obj in list(session.dirty):
                if isinstance(obj, CodingRun) and obj.status == "done" and "status" in _changed(obj):
                    enc = session.get(Encounter, obj.encounter_id)
                    rows = [s for s in session.new if isinstance(s, Suggestion) and s.run_id == obj.id]
                    if enc is not None:
                        text = _doc_text(session, enc.id)
                        from opencac.service.worker import rules_claim

                        apply_feedback(session, enc, rows, text,
                                       keep_selection=rules_claim(obj.rules) is not None)
                        rows = [s for s in session.new if isinstance(s, Suggestion) and s.run_id == obj.id]
                        route_encounter(session, enc, obj, rows, text)
    except Exception as exc:  # noqa: BLE001 - learning/routing must never break a coder's save
        log.error("learning/routing hook failed: %s", type(exc).__name__)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, False)
    finals = session.info.pop(_FINALS_KEY, [])
    if not pending and not finals:
        return
    try:
        queue_for(session.get_bind()).notify(finals)
    except Exception as exc:  # noqa: BLE001 - the rows are stored; the next pass or restart applies them
        log.error("learning queue notify failed: %s", type(exc).__name__)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_FINALS_KEY, None)


def _changed(obj: Any) -> set[str]:
    st = inspect(obj)
    return {a.key for a in st.attrs if a.history.has_changes()}


def install_hook() -> None:
    """Install the session hooks (idempotent)."""
    for name, fn in (("before_flush", _before_flush), ("after_commit", _after_commit),
                     ("after_rollback", _after_rollback)):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


install_hook()

from opencac.service import worker as _worker  # noqa: E402 - same layer; registers the straight-through step

if finalize_routed_run not in _worker.RUN_DONE_HOOKS:
    _worker.RUN_DONE_HOOKS.append(finalize_routed_run)

try:  # navigation links for admins
    from opencac.ui import register_nav

    register_nav("Routing", "/admin/routing", roles=("admin",), order=60)
    register_nav("Models", "/admin/models", roles=("admin",), order=61)
except ImportError:  # pragma: no cover - UI layer absent
    pass


# --- JSON API ----------------------------------------------------------------------------------
class TargetIn(BaseModel):
    """A new target precision for the active policy."""

    target_precision: float = Field(..., gt=0.5, le=1.0, examples=[0.95])


def _registry(request: Request) -> ModelRegistry:
    extra = getattr(request.app.state.settings, "extra", {}) or {}
    return ModelRegistry(extra.get("model_registry") or None)


@router.get("/api/v1/routing/policy", tags=["routing"])
def get_policy(user: User = Depends(require_roles("admin", "auditor")),
               session: Session = Depends(get_read_session)) -> dict[str, Any]:
    """The active routing policy (thresholds, fits on validation, projected automation)."""
    pid, pol = active_policy(session)
    return {"id": pid, "policy": pol.to_dict()}


@router.put("/api/v1/routing/policy", tags=["routing"])
def put_policy(body: dict[str, Any], user: User = Depends(require_roles("admin")),
               session: Session = Depends(get_session)) -> dict[str, Any]:
    """Store a routing policy (``RoutingPolicy.to_dict()``, e.g. from ``opencac thresholds fit``) as active."""
    pol = RoutingPolicy.from_dict(body)
    return {"id": _store_policy(session, pol, user), "policy": pol.to_dict()}


@router.post("/api/v1/routing/policy/target", tags=["routing"])
def set_target(body: TargetIn, user: User = Depends(require_roles("admin")),
               session: Session = Depends(get_session)) -> dict[str, Any]:
    """Move the active policy to another target precision; answers the projected automation."""
    from opencac.routing.fit import retarget

    _, pol = active_policy(session)
    new = retarget(pol, body.target_precision)
    pid = _store_policy(session, new, user)
    return {"id": pid, "target_precision": new.target_precision, "thresholds": new.thresholds,
            "projected_straight_through_rate": new.projection.get("straight_through_rate")}


def _store_policy(session: Session, pol: RoutingPolicy, user: User) -> int:
    from opencac.store.events import record_event

    if not _tables_present(session):
        raise PolicyError("the routing tables are missing: run the database migrations (0003_learning).")
    for row in session.execute(select(RoutingPolicyRow).where(RoutingPolicyRow.active.is_(True))).scalars():
        row.active = False
    row = RoutingPolicyRow(name=f"target {pol.target_precision:.2f}", policy=pol.to_dict(),
                           target_precision=pol.target_precision, active=True, created_by_id=user.id)
    session.add(row)
    session.flush()
    record_event(session, user, "routing_policy.activate", "routing_policy", row.id, None,
                 {"target_precision": pol.target_precision, "thresholds": pol.thresholds})
    session.commit()
    return row.id


@router.get("/api/v1/routing/encounters/{encounter_id}", tags=["routing"])
def encounter_route(encounter_id: int, user: User = Depends(require_roles("coder", "auditor", "cdi")),
                    session: Session = Depends(get_read_session)) -> dict[str, Any]:
    """The latest route decision of an encounter (route, priority, reasons, complexity factors)."""
    from opencac.errors import NotFoundError

    row = session.execute(select(RouteDecisionRow).where(RouteDecisionRow.encounter_id == encounter_id)
                          .order_by(RouteDecisionRow.id.desc())).scalars().first()
    if row is None:
        raise NotFoundError(f"encounter {encounter_id} has not been routed yet.")
    return {"encounter_id": encounter_id, "route": row.route, "priority": row.priority, "complexity": row.complexity,
            "reasons": row.reasons, "factors": row.factors, "audit_sample": row.audit_sample}


@router.get("/api/v1/models", tags=["models"])
def list_models(request: Request, user: User = Depends(require_roles("admin"))) -> list[dict[str, Any]]:
    """Registered model versions."""
    return [v.to_dict() for v in _registry(request).list()]


@router.post("/api/v1/models/{version}/promote", tags=["models"])
def promote_model(version: str, request: Request, force: bool = False,
                  user: User = Depends(require_roles("admin"))) -> dict[str, Any]:
    """Promote a version (409 when it scores worse on validation, unless ``force``)."""
    return _registry(request).promote(version, force=force, by=user.username).to_dict()


@router.post("/api/v1/models/rollback", tags=["models"])
def rollback_model(request: Request, user: User = Depends(require_roles("admin"))) -> dict[str, Any]:
    """Return production to the previous version."""
    return _registry(request).rollback(by=user.username).to_dict()


@router.get("/api/v1/learning/examples", tags=["learning"])
def list_examples(encounter_id: int | None = None, limit: int = 100,
                  user: User = Depends(require_roles("admin", "auditor")),
                  session: Session = Depends(get_read_session)) -> list[dict[str, Any]]:
    """Labelled examples learnt from decisions (newest first)."""
    q = select(LearningExample).order_by(LearningExample.id.desc()).limit(max(1, min(limit, 1000)))
    if encounter_id is not None:
        q = q.where(LearningExample.encounter_id == encounter_id)
    return [{"id": e.id, "encounter_id": e.encounter_id, "system": e.system, "code": e.code, "label": e.label,
             "action": e.action, "confidence": e.confidence, "applied": e.applied, "evidence": e.evidence}
            for e in session.execute(q).scalars()]


# --- pages -------------------------------------------------------------------------------------
def _render(request: Request, user: User, name: str, **ctx: Any) -> HTMLResponse:
    from opencac.ui import nav_items

    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, name, {"user": user, "csrf_token": csrf_token_for(request), "nav": nav_items(user.role_list), **ctx})


@router.get("/admin/routing", response_class=HTMLResponse, include_in_schema=False)
def routing_page(request: Request, user: User = Depends(require_roles("admin")),
                 session: Session = Depends(get_read_session), message: str | None = None) -> HTMLResponse:
    pid, pol = active_policy(session)
    fits = sorted(pol.fits.items())
    curve = pol.projection.get("curve") or []
    chart = None
    if curve:
        from opencac.audit.charts import automation_curve

        chart = automation_curve(curve, pol.target_precision)
    return _render(request, user, "admin_routing.html", policy=pol, policy_id=pid, fits=fits, curve=curve,
                   chart=chart, message=message)


@router.post("/admin/routing/target", include_in_schema=False)
def routing_target_form(request: Request, target_precision: float = Form(...),
                        user: User = Depends(require_roles("admin")),
                        session: Session = Depends(get_session)) -> RedirectResponse:
    set_target(TargetIn(target_precision=target_precision), user, session)
    return RedirectResponse("/admin/routing?message=target+precision+updated", status_code=303)


@router.get("/admin/models", response_class=HTMLResponse, include_in_schema=False)
def models_page(request: Request, user: User = Depends(require_roles("admin")),
                message: str | None = None) -> HTMLResponse:
    reg = _registry(request)
    return _render(request, user, "admin_models.html", versions=reg.list(), history=reg.history()[-10:],
                   message=message)


@router.post("/admin/models/{version}/promote", include_in_schema=False)
def models_promote_form(version: str, request: Request, force: bool = Form(False),
                        user: User = Depends(require_roles("admin"))) -> RedirectResponse:
    from urllib.parse import quote

    from opencac.errors import PromotionRefusedError

    try:
        _registry(request).promote(version, force=force, by=user.username)
        msg = f"{version} promoted"
    except PromotionRefusedError as exc:
        msg = str(exc)
    return RedirectResponse(f"/admin/models?message={quote(msg)}", status_code=303)


@router.post("/admin/models/rollback", include_in_schema=False)
def models_rollback_form(request: Request, user: User = Depends(require_roles("admin"))) -> RedirectResponse:
    from urllib.parse import quote

    from opencac.errors import RegistryError

    try:
        mv = _registry(request).rollback(by=user.username)
        msg = f"rolled back to {mv.version}"
    except RegistryError as exc:
        msg = str(exc)
    return RedirectResponse(f"/admin/models?message={quote(msg)}", status_code=303)
