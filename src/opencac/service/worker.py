"""Background coding: a worker thread that claims queued coding runs from the database.

Crash-safe: the queue *is* the ``coding_runs`` table. On start, runs left ``running`` by a
crashed process are put back to ``queued`` (and, while running, runs ``running`` for over
``STALE_RUN_S``); the worker claims one run at a time with a conditional update
(``queued`` -> ``running``, ``attempts`` + 1). ``attempts`` is the claim token: a process whose run
was re-queued and re-claimed meanwhile discards its result, so a run is stored once.

A run is stored as the rules layer's final claim (:func:`align_with_rules`): the selected
suggestions are the claim's codes in its sequence, whatever the engine selected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from opencac.coding.types import CodingResult, EncounterContext
from opencac.service.coding import Coder
from opencac.service.workflow import code_key, fix_codes
from opencac.store.events import record_event
from opencac.store.models import CodingRun, Document, Edit, Encounter, Patient, Query, Suggestion, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3

#: Called as ``hook(factory, run_id)`` after a run's ``done`` result is committed (e.g. the learning
#: module finalises a straight-through encounter). A failing hook is logged (type only) and ignored.
RUN_DONE_HOOKS: list[Callable[[sessionmaker[Session], int], None]] = []


def encounter_context(enc: Encounter, patient: Patient | None) -> EncounterContext:
    """The ``EncounterContext`` of a stored encounter."""
    age = None
    when = enc.discharge_date or enc.date_of_service
    if patient is not None and patient.birth_date is not None and when is not None:
        b = patient.birth_date
        age = when.year - b.year - ((when.month, when.day) < (b.month, b.day))
    sex = (patient.sex or "U") if patient else "U"
    return EncounterContext(setting=enc.setting, age=age, sex=sex if sex in ("F", "M", "U") else "U",
                            date_of_service=enc.date_of_service, admission_date=enc.admission_date,
                            discharge_date=enc.discharge_date, discharge_status=enc.discharge_status or "01")


def requeue_interrupted(factory: sessionmaker[Session], older_than_s: float = 0.0) -> int:
    """Put runs left ``running`` (by a crash) back to ``queued``; returns how many.

    Args:
        older_than_s: only runs started at least this long ago (0 = all). A process that was
            still coding a re-queued run discards its result (see ``process_run``).
    """
    cond = [CodingRun.status == "running"]
    if older_than_s > 0:
        import datetime as dt

        cond.append(CodingRun.started_at < utcnow() - dt.timedelta(seconds=older_than_s))
    with factory() as session:
        n = session.execute(update(CodingRun).where(*cond)
                            .values(status="queued")).rowcount  # type: ignore[attr-defined]
        session.commit()
    if n:
        log.warning("re-queued %d coding run(s) interrupted by a restart", n)
    return int(n or 0)


def claim_next(factory: sessionmaker[Session]) -> int | None:
    """Claim the oldest queued run (queued -> running); its id, or None."""
    with factory() as session:
        for run_id in session.execute(select(CodingRun.id).where(CodingRun.status == "queued")
                                      .order_by(CodingRun.id).limit(5)).scalars().all():
            n = session.execute(update(CodingRun).where(CodingRun.id == run_id, CodingRun.status == "queued")
                                .values(status="running", started_at=utcnow(),
                                        attempts=CodingRun.attempts + 1)).rowcount  # type: ignore[attr-defined]
            if n:
                session.execute(update(Encounter).where(Encounter.id == select(CodingRun.encounter_id)
                                                        .where(CodingRun.id == run_id).scalar_subquery(),
                                                        Encounter.status == "new").values(status="coding"))
                session.commit()
                return int(run_id)
        session.commit()
    return None


#: ``Edit.fix_status`` values of the rules layer (``opencac.edits.model.Edit.fix_status``).
FIX_STATUSES = ("applied", "proposed", "unchanged")


def _fix_of(edit: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """An edit dict's fix (JSON-able) and fix status; an output without ``fix_status`` (older
    rules layers) counts as ``applied`` when it says so, else ``proposed``."""
    fix = edit.get("fix")
    if not isinstance(fix, dict) or not fix:
        return None, None
    import json

    fix = json.loads(json.dumps(fix, default=str))
    status = edit.get("fix_status")
    if status not in FIX_STATUSES:
        status = "applied" if edit.get("applied") else "proposed"
    return fix, str(status)


#: Rationale line of a suggestion the rules layer took off the claim (``removed by the rules: <rule> ...``)
#: and of a code it put on the claim; the workbench shows the first as "removed by the rules".
RULES_REMOVED = "removed by the rules: "
RULES_ADDED = "added by the rules: "


def rules_claim(rules: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The rules layer's final claim (``RulesOutcome.to_dict()["final_codes"]``, in sequence), or
    None when the rules did not run or gave no final codes (a stand-in coder, an older output)."""
    if not isinstance(rules, dict) or not isinstance(rules.get("final_codes"), list):
        return None
    return [c for c in rules["final_codes"] if isinstance(c, dict) and c.get("code")]


def _edit_for(edits: list[dict[str, Any]], rule: str | None, code: str) -> dict[str, Any] | None:
    """The edit of ``rule`` (any rule when None) whose fix or codes name ``code``."""
    k = code_key(code)
    for e in edits:
        if rule and e.get("rule") != rule:
            continue
        fix = fix_codes(e.get("fix") if isinstance(e.get("fix"), dict) else None)
        named = [*fix.get("remove", []), *fix.get("replace", {}).keys(), *fix.get("replace", {}).values(),
                 *fix.get("add", [])]
        if any(code_key(c) == k for c in named) or (rule and any(code_key(str(c)) == k for c in e.get("codes") or [])):
            return e
    return None


def _spans(items: Any) -> list[dict[str, Any]]:
    """Evidence offsets of rules-layer spans (``{"start", "end", ...}``) as stored on a suggestion row."""
    return [{"start": int(x["start"]), "end": int(x["end"]), "section": None, "sentence": None}
            for x in items or [] if isinstance(x, dict) and "start" in x and "end" in x]


def _cite(e: dict[str, Any] | None) -> str:
    if not e:
        return ""
    return f" ({e.get('id', '')}" + (f"; {e['citation']}" if e.get("citation") else "") + ")"


def _removal_note(code: str, changes: list[dict[str, Any]], edits: list[dict[str, Any]]) -> str:
    """``removed by the rules: <rule> (<op>) (<edit>; <citation>)`` for a code the claim no longer holds."""
    k = code_key(code)
    for ch in changes:
        if code_key(str(ch.get("code"))) == k and ch.get("op") in ("remove", "replace", "remove_duplicate"):
            rule = str(ch.get("rule") or "")
            what = f"replaced by {ch['new']}" if ch.get("op") == "replace" and ch.get("new") else str(ch.get("op"))
            return f"{RULES_REMOVED}{rule} - {what}{_cite(_edit_for(edits, rule, code))}"
    e = _edit_for(edits, None, code)
    if e is not None and e.get("fix_status") == "applied":
        return f"{RULES_REMOVED}{e.get('rule') or e.get('id')}{_cite(e)}"
    return f"{RULES_REMOVED}not on the final claim"


def align_with_rules(rows: list[Suggestion], rules: dict[str, Any] | None, enc: Encounter,
                     run: CodingRun) -> list[Suggestion]:
    """Make the stored selection the rules layer's final claim; returns the rows the rules added.

    * an engine suggestion on the claim is selected (a candidate the engine left unselected too);
    * a selected one the rules removed or replaced stays, unselected, with a rationale line
      ``removed by the rules: <rule> - <op> (<edit>; <citation>)``;
    * a claim code with no engine row gets a ``source="rules"`` row: the rules layer's description,
      evidence and confidence (None for an addition; a code written in place of an engine code
      carries that code's confidence, as ``FinalCode.confidence`` does), the rule and citation in
      its rationale (routing: a rules row without confidence needs a coder,
      ``opencac.routing.RULES_ADDED``);
    * ranks follow the claim's sequence (principal first), then the other rows in engine order.

    Without a final claim (``rules_claim`` is None) the engine's selection is kept as it is.
    """
    claim = rules_claim(rules)
    if claim is None:
        return []
    changes = [c for c in (rules or {}).get("changes") or [] if isinstance(c, dict)]
    edits = [e for e in (rules or {}).get("edits") or [] if isinstance(e, dict)]
    by_key: dict[tuple[str, str], Suggestion] = {}
    for r in rows:
        by_key.setdefault((r.system, code_key(r.code)), r)
    on_claim: set[int] = set()
    added: list[Suggestion] = []
    for system in ("icd10cm", "icd10pcs"):
        mine = [c for c in claim if str(c.get("system") or "icd10cm") == system]
        for seq, fc in enumerate(mine, 1):
            code, rule = str(fc["code"]), fc.get("added_by")
            why = f"{RULES_ADDED}{rule}{_cite(_edit_for(edits, rule, code))}" if rule else None
            row = by_key.get((system, code_key(code)))
            if row is not None:
                if why and not row.selected:
                    row.rationale = [*row.rationale, why]
                row.selected, row.rank = True, seq
                on_claim.add(id(row))
                continue
            ev = _spans(fc.get("evidence"))
            if not ev:
                fix = (_edit_for(edits, rule, code) or {}).get("fix") or {}
                for a in fix.get("add") or []:
                    if isinstance(a, dict) and code_key(str(a.get("code"))) == code_key(code):
                        ev = _spans(a.get("evidence"))
            conf = fc.get("confidence")
            row = Suggestion(encounter_id=enc.id, run_id=run.id, system=system, code=code[:10],
                             description=str(fc.get("description") or ""),
                             confidence=float(conf) if conf is not None else None, assertion="affirmed",
                             rank=seq, selected=True, evidence=ev,
                             rationale=[why or f"{RULES_ADDED}the final claim"], signals={},
                             source="rules", state="pending")
            added.append(row)
            by_key[(system, code_key(code))] = row
            on_claim.add(id(row))
        n = len(mine)
        for r in sorted((r for r in rows if r.system == system and id(r) not in on_claim), key=lambda r: r.rank):
            if r.selected:
                r.selected = False
                r.rationale = [*r.rationale, _removal_note(r.code, changes, edits)]
            r.rank = n + r.rank
    return added


def _store_result(session: Session, run: CodingRun, enc: Encounter, result: CodingResult) -> None:
    rows = []
    for s in list(result.diagnoses) + list(result.procedures):
        rows.append(Suggestion(
            encounter_id=enc.id, run_id=run.id, system=s.system, code=s.code, description=s.description,
            confidence=float(s.confidence), assertion=s.assertion, rank=s.rank, selected=bool(s.selected),
            evidence=[{"start": e.start, "end": e.end, "section": e.section, "sentence": e.sentence}
                      for e in s.evidence],
            rationale=list(s.rationale), signals={k: float(v) for k, v in (s.signals or {}).items()},
            source="engine", state="pending"))
    rules = result.rules or None
    # The working code set is the rules layer's final claim (headers, replaced and excluded codes off).
    rows += align_with_rules(rows, rules, enc, run)
    session.add_all(rows)
    edits = list((rules or {}).get("edits") or [])
    for e in edits:
        e = e if isinstance(e, dict) else {"message": str(e)}
        fix, fix_status = _fix_of(e)
        session.add(Edit(encounter_id=enc.id, run_id=run.id, edit_id=str(e.get("id", ""))[:100],
                         severity=str(e.get("severity", "warning"))[:20], message=str(e.get("message", "")),
                         citation=(str(e["citation"])[:300] if e.get("citation") else None),
                         codes=list(e.get("codes") or []), fix=fix, fix_status=fix_status))
    for q in list((rules or {}).get("queries") or []):
        q = q if isinstance(q, dict) else {"text": str(q)}
        text = q.get("text") or q.get("question") or q.get("message") or ""
        session.add(Query(encounter_id=enc.id, run_id=run.id, kind=str(q.get("kind") or q.get("id") or "")[:100],
                          text=str(text), codes=list(q.get("codes") or [])))
    run.model = result.model
    run.codeset_versions = dict(result.codeset)
    run.rules = rules
    run.warnings = list(result.warnings)
    scored = [s for s in rows if s.confidence is not None]
    selected = [s.confidence for s in scored if s.selected] or [s.confidence for s in scored]
    enc.min_confidence = min(selected) if selected else None
    enc.edit_count = len(edits)
    enc.suggestion_count = len(rows)


def process_run(factory: sessionmaker[Session], run_id: int, coder: Coder) -> str:
    """Code one claimed run and store suggestions, edits and queries; returns the final run status."""
    with factory() as session:
        run = session.get(CodingRun, run_id)
        if run is None:
            return "missing"
        claim = run.attempts  # each claim increments attempts: our token of ownership
        doc = session.get(Document, run.document_id)
        enc = session.get(Encounter, run.encounter_id)
        assert doc is not None and enc is not None
        ctx = encounter_context(enc, enc.patient)
        text = doc.text
        session.rollback()  # release the read (and SQLite lock) while coding
    try:
        result = coder(text, ctx)
        error = None
    except Exception as exc:  # noqa: BLE001 - the run records the failure; no note text in the log
        result, error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
        log.error("coding run %d failed: %s", run_id, type(exc).__name__)
    with factory() as session:
        run = session.get(CodingRun, run_id)
        enc = session.get(Encounter, run.encounter_id) if run else None
        if run is None or enc is None:
            return "missing"
        if run.status != "running" or run.attempts != claim:
            # Re-queued (and maybe re-claimed) by another process meanwhile: its result wins.
            log.warning("coding run %d was re-claimed elsewhere; discarding this result", run_id)
            return "superseded"
        run.finished_at = utcnow()
        if result is None:
            run.status = "queued" if run.attempts < MAX_ATTEMPTS else "failed"
            run.error = error
            if run.status == "failed":
                enc.status = "error"
                enc.version += 1
                record_event(session, "worker", "coding_run.failed", "coding_run", run.id, None,
                             {"encounter_id": enc.id, "error": error})
        else:
            _store_result(session, run, enc, result)
            run.status = "done"
            enc.status = "ready"
            enc.version += 1
            enc.updated_at = utcnow()
            enc.updated_by_id = None
            record_event(session, "worker", "coding_run.done", "coding_run", run.id, None,
                         {"encounter_id": enc.id, "model": result.model, "codeset": dict(result.codeset),
                          "diagnoses": [s.code for s in result.diagnoses],
                          "procedures": [s.code for s in result.procedures],
                          "claim": [c["code"] for c in rules_claim(result.rules) or []],
                          "edits": enc.edit_count})
        session.commit()
        status = run.status
        log.info("coding run %d %s (encounter %d, %d suggestions)", run_id, status, enc.id, enc.suggestion_count)
    if status == "done":
        for hook in list(RUN_DONE_HOOKS):
            try:
                hook(factory, run_id)
            except Exception as exc:  # noqa: BLE001 - the run is stored; a hook must not undo it
                log.error("run-done hook failed for coding run %d: %s", run_id, type(exc).__name__)
    return status


class CodingWorker:
    """An in-process worker thread; ``notify()`` wakes it after an ingest."""

    def __init__(self, factory: sessionmaker[Session], coder_provider: Callable[[], Coder],
                 poll_s: float = 1.0) -> None:
        self._factory = factory
        self._coder_provider = coder_provider
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0

    def start(self) -> None:
        """Re-queue interrupted runs and start the thread."""
        requeue_interrupted(self._factory)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="opencac-coding-worker", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Wake the worker (new work queued)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current run."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> int:
        """Process queued runs in the calling thread until none is left (tests, CLI); returns how many."""
        n = 0
        while (run_id := claim_next(self._factory)) is not None:
            process_run(self._factory, run_id, self._coder_provider())
            n += 1
        self.processed += n
        return n

    #: A run ``running`` for longer than this is taken as lost (its process died) and re-queued.
    STALE_RUN_S = 600.0

    def _loop(self) -> None:
        import time

        last_stale_check = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_stale_check > 60:
                    last_stale_check = time.monotonic()
                    requeue_interrupted(self._factory, self.STALE_RUN_S)
                self.drain()
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; never log note text
                log.error("coding worker error: %s", type(exc).__name__)
            self._wake.wait(self._poll_s)
            self._wake.clear()

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()


def worker_status(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Counts of coding runs by status."""
    from sqlalchemy import func

    with factory() as session:
        rows = session.execute(select(CodingRun.status, func.count()).group_by(CodingRun.status)).all()
    return {str(s): int(n) for s, n in rows}
