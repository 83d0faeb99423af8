"""The review workflow: worklist, encounter state, decisions, finalisation, optimistic locking.

Every function takes an open ``Session`` and leaves committing to the caller. Every change of an
encounter's coding state goes through :func:`bump_version`, which increments
``encounters.version`` only if it still equals the version the caller saw (409 otherwise).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from opencac.errors import ConflictError, InputError, NotFoundError, UnknownCodeError
from opencac.store.events import record_event
from opencac.store.models import (
    CODED_BY,
    POA_VALUES,
    REASON_CODES,
    SYSTEM_USERNAME,
    CodingRun,
    Decision,
    Document,
    Edit,
    Encounter,
    FinalCodeSet,
    Query,
    Suggestion,
    User,
    utcnow,
)

#: Confidence bands of the worklist (on the lowest confidence among proposed codes).
BANDS = {"low": (0.0, 0.5), "medium": (0.5, 0.8), "high": (0.8, 1.01)}
SORTS = {
    "priority": (Encounter.priority.desc(), Encounter.id),
    "newest": (Encounter.id.desc(),),
    "oldest": (Encounter.id,),
    "confidence": (Encounter.min_confidence.asc().nulls_last(), Encounter.id),
    "edits": (Encounter.edit_count.desc(), Encounter.id),
    "updated": (Encounter.updated_at.desc(), Encounter.id),
}
REVIEW_STATES = ("pending", "accepted", "rejected", "modified", "added")


def band_of(confidence: float | None) -> str:
    """The confidence band name of a value (``none`` when unknown)."""
    if confidence is None:
        return "none"
    for name, (lo, hi) in BANDS.items():
        if lo <= confidence < hi:
            return name
    return "high"


@dataclass(slots=True)
class WorklistFilter:
    """Worklist filters; None means no filter."""

    status: str | None = None
    setting: str | None = None
    band: str | None = None
    edits: bool | None = None
    assigned: str | None = None  # "me" | "unassigned" | None
    sort: str = "priority"
    limit: int = 50
    offset: int = 0


def _apply_filter(q: Select[Any], f: WorklistFilter, user: User | None) -> Select[Any]:
    from opencac.store.models import ENCOUNTER_STATUSES

    if f.status:
        statuses = [s for s in f.status.split(",") if s]
        for s in statuses:
            if s not in ENCOUNTER_STATUSES:
                raise InputError(f"unknown status {s!r}.", options=ENCOUNTER_STATUSES)
        q = q.where(Encounter.status.in_(statuses))
    if f.setting:
        q = q.where(Encounter.setting == f.setting)
    if f.band:
        if f.band == "none":
            q = q.where(Encounter.min_confidence.is_(None))
        elif f.band in BANDS:
            lo, hi = BANDS[f.band]
            q = q.where(and_(Encounter.min_confidence >= lo, Encounter.min_confidence < hi))
        else:
            raise InputError(f"unknown confidence band {f.band!r}.", options=[*BANDS, "none"])
    if f.edits is not None:
        q = q.where(Encounter.edit_count > 0 if f.edits else Encounter.edit_count == 0)
    if f.assigned == "me":
        q = q.where(Encounter.assigned_to_id == (user.id if user else -1))
    elif f.assigned == "unassigned":
        q = q.where(Encounter.assigned_to_id.is_(None))
    elif f.assigned not in (None, "", "any"):
        raise InputError(f"unknown assigned filter {f.assigned!r}.", options=["me", "unassigned", "any"])
    return q


def worklist(session: Session, f: WorklistFilter, user: User | None = None) -> tuple[list[Encounter], int]:
    """Encounters matching ``f`` (a page) and the total count."""
    if f.sort not in SORTS:
        raise InputError(f"unknown sort {f.sort!r}.", options=SORTS)
    if not 1 <= f.limit <= 500 or f.offset < 0:
        raise InputError("limit must be 1..500 and offset >= 0.")
    base = _apply_filter(select(Encounter), f, user)
    total = session.execute(_apply_filter(select(func.count(Encounter.id)), f, user)).scalar_one()
    rows = session.execute(base.order_by(*SORTS[f.sort]).limit(f.limit).offset(f.offset)).scalars().all()
    return list(rows), int(total)


def get_encounter(session: Session, encounter_id: int) -> Encounter:
    """The encounter; NotFoundError otherwise."""
    enc = session.get(Encounter, encounter_id)
    if enc is None:
        raise NotFoundError(f"no encounter {encounter_id}.")
    return enc


def bump_version(session: Session, encounter_id: int, expected: int | None, user: User | None,
                 what: str, **values: Any) -> int:
    """Increment the encounter's version if it is still ``expected`` (None = skip the check).

    Raises:
        ConflictError: someone else changed the encounter since the caller read it (409). The
            message says who and when, and that the caller's change was not saved.
    """
    cond = [Encounter.id == encounter_id]
    if expected is not None:
        cond.append(Encounter.version == expected)
    res = session.execute(update(Encounter).where(*cond).values(
        version=Encounter.version + 1, updated_at=utcnow(), updated_by_id=user.id if user else None, **values)
        .execution_options(synchronize_session=False))
    if res.rowcount == 0:  # type: ignore[attr-defined]
        row = session.execute(select(Encounter.version, Encounter.updated_at, Encounter.updated_by_id)
                              .where(Encounter.id == encounter_id)).first()
        if row is None:
            raise NotFoundError(f"no encounter {encounter_id}.")
        who = session.get(User, row.updated_by_id).username if row.updated_by_id else "the coding worker"
        raise ConflictError(
            f"encounter {encounter_id} was changed by {who} at {row.updated_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(it is now at version {row.version}; you sent version {expected}). Your {what} was NOT saved: "
            "reload the encounter, check their change, and apply yours again.")
    new_version = session.execute(select(Encounter.version).where(Encounter.id == encounter_id)).scalar_one()
    session.expire_all()
    return int(new_version)


# --- state of one encounter ------------------------------------------------------------------
@dataclass(slots=True)
class EncounterState:
    """Everything the review screen and the API show for one encounter."""

    encounter: Encounter
    documents: list[Document]
    run: CodingRun | None
    suggestions: list[Suggestion]
    edits: list[Edit]
    queries: list[Query]
    decisions: list[Decision]
    final: FinalCodeSet | None
    rules: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


def encounter_state(session: Session, encounter_id: int) -> EncounterState:
    """Load an encounter with its documents, latest run, suggestions, edits, queries, decisions, final set."""
    enc = get_encounter(session, encounter_id)
    docs = list(session.execute(select(Document).where(Document.encounter_id == enc.id)
                                .order_by(Document.id)).scalars())
    run = session.execute(select(CodingRun).where(CodingRun.encounter_id == enc.id)
                          .order_by(CodingRun.id.desc()).limit(1)).scalar_one_or_none()
    sugg = sorted(session.execute(select(Suggestion).where(Suggestion.encounter_id == enc.id)).scalars(),
                  key=lambda s: (s.system, s.source == "coder", s.rank, s.id))
    edits = list(session.execute(select(Edit).where(Edit.encounter_id == enc.id).order_by(Edit.id)).scalars())
    queries = list(session.execute(select(Query).where(Query.encounter_id == enc.id).order_by(Query.id)).scalars())
    decisions = list(session.execute(select(Decision).where(Decision.encounter_id == enc.id)
                                     .order_by(Decision.id)).scalars())
    final = session.execute(select(FinalCodeSet).where(FinalCodeSet.encounter_id == enc.id,
                                                       FinalCodeSet.current.is_(True))).scalar_one_or_none()
    return EncounterState(enc, docs, run, sugg, edits, queries, decisions, final,
                          rules=run.rules if run else None, warnings=list(run.warnings or []) if run else [])


def record_views(session: Session, user: User, state: EncounterState, channel: str) -> None:
    """Record a ``document.view`` event per document shown (no text, only ids and hashes)."""
    for doc in state.documents:
        record_event(session, user, "document.view", "document", doc.id, None,
                     {"encounter_id": state.encounter.id, "sha256": doc.sha256, "channel": channel})


# --- decisions ---------------------------------------------------------------------------------
def _validate_code(kb: Any, code: str, as_of: dt.date | None) -> tuple[str, str, str]:
    """(normalised code, system, description) of a code, or UnknownCodeError."""
    code = (code or "").strip()
    if not code:
        raise InputError("a code is required for modify and add.")
    try:
        c = kb.get(code, as_of=as_of)
    except UnknownCodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the code-set layer's own error
        from opencac.errors import OpenCACError

        if isinstance(exc, OpenCACError):
            raise UnknownCodeError(f"unknown code {code!r}: {exc.message}") from None
        raise
    system = getattr(c.system, "value", str(c.system))
    if hasattr(kb, "is_billable") and not kb.is_billable(c.code, as_of=as_of):
        raise InputError(f"code {c.code} is not billable (valid and a leaf) on {as_of or 'today'}: "
                         "pick a more specific code.")
    return c.code, system, c.description


def _reason(reason_code: str | None, required: bool) -> str | None:
    if not reason_code:
        if required:
            raise InputError("a reason is required for reject and modify.", options=list(REASON_CODES))
        return None
    if reason_code not in REASON_CODES:
        raise InputError(f"unknown reason {reason_code!r}.", options=list(REASON_CODES))
    return reason_code


def decide(session: Session, user: User, encounter_id: int, version: int | None, action: str,
           suggestion_id: int | None = None, code: str | None = None, reason_code: str | None = None,
           reason_text: str | None = None, citation: str | None = None, kb: Any = None) -> Decision:
    """Record one decision (accept / reject / modify / add) and bump the encounter version.

    Args:
        version: the encounter version the user saw (optimistic locking; None skips the check).
        action: ``accept`` | ``reject`` | ``modify`` | ``add``.
        suggestion_id: the suggestion decided on (not for ``add``).
        code: the new code for ``modify`` / ``add`` (validated with ``kb``).
        reason_code: one of ``REASON_CODES`` (required for reject and modify).

    Raises:
        InputError, NotFoundError, UnknownCodeError, ConflictError (409).
    """
    enc = get_encounter(session, encounter_id)
    if enc.status in ("new", "coding"):
        raise ConflictError(f"encounter {encounter_id} is still being coded (status {enc.status}); try again shortly.")
    reason_text = (reason_text or "").strip()[:2000] or None
    citation = (citation or "").strip()[:300] or None
    as_of = enc.discharge_date or enc.date_of_service
    if action == "add":
        rc = _reason(reason_code, False)
        new_code, system, desc = _validate_code(kb, code or "", as_of)
        dup = session.execute(select(Suggestion.id).where(
            Suggestion.encounter_id == enc.id, Suggestion.state.in_(("accepted", "added", "pending")),
            or_(Suggestion.code == new_code, Suggestion.final_code == new_code))).first()
        if dup is not None:
            raise ConflictError(f"code {new_code} is already on encounter {encounter_id} (suggestion {dup[0]}).")
        bump_version(session, enc.id, version, user, f"addition of {new_code}", status="in_review")
        sug = Suggestion(encounter_id=enc.id, run_id=None, system=system, code=new_code, description=desc,
                         confidence=None, evidence=[], rationale=[], source="coder",
                         state="added", selected=True, rank=10_000)
        session.add(sug)
        session.flush()
        dec = Decision(encounter_id=enc.id, suggestion_id=sug.id, user_id=user.id, action="add", code=None,
                       new_code=new_code, reason_code=rc, reason_text=reason_text, citation=citation)
        session.add(dec)
        session.flush()
        record_event(session, user, "decision.add", "suggestion", sug.id, None,
                     {"encounter_id": enc.id, "code": new_code, "system": system, "state": "added",
                      "reason_code": rc, "reason_text": reason_text, "citation": citation})
        return dec
    if action not in ("accept", "reject", "modify"):
        raise InputError(f"unknown action {action!r}.", options=["accept", "reject", "modify", "add"])
    if suggestion_id is None:
        raise InputError(f"suggestion_id is required for {action}.")
    sug = session.get(Suggestion, suggestion_id)
    if sug is None or sug.encounter_id != enc.id:
        raise NotFoundError(f"no suggestion {suggestion_id} on encounter {encounter_id}.")
    before = {"state": sug.state, "code": sug.final_code or sug.code}
    new_code = None
    if action == "accept":
        rc = _reason(reason_code, False)
        state = "added" if sug.source == "coder" else "accepted"
    elif action == "reject":
        rc = _reason(reason_code, True)
        state = "rejected"
    else:
        rc = _reason(reason_code, True)
        new_code, system, _desc = _validate_code(kb, code or "", as_of)
        if system != sug.system:
            raise InputError(f"modify must keep the code system ({sug.system}); {new_code} is {system}: "
                             "reject this one and add the new code instead.")
        if new_code == sug.code:
            raise InputError(f"{new_code} is the suggested code itself: accept it instead of modifying.")
        state = "modified"
    what = f"{action} of {sug.code}"
    bump_version(session, enc.id, version, user, what, status="in_review")
    sug = session.get(Suggestion, suggestion_id)
    assert sug is not None
    sug.state = state
    sug.final_code = new_code if action == "modify" else None
    dec = Decision(encounter_id=enc.id, suggestion_id=sug.id, user_id=user.id, action=action, code=sug.code,
                   new_code=new_code, reason_code=rc, reason_text=reason_text, citation=citation)
    session.add(dec)
    session.flush()
    record_event(session, user, f"decision.{action}", "suggestion", sug.id, before,
                 {"encounter_id": enc.id, "state": state, "code": new_code or sug.code, "reason_code": rc,
                  "reason_text": reason_text, "citation": citation})
    return dec


# --- proposed fixes of the rules layer -------------------------------------------------------
#: ``resolve_edit`` actions.
RESOLVE_ACTIONS = ("apply", "dismiss")


def code_key(code: str) -> str:
    """A code as compared across the workbench: no dots, upper case (``e11.9`` -> ``E119``)."""
    return str(code or "").replace(".", "").strip().upper()


def fix_codes(fix: dict[str, Any] | None) -> dict[str, Any]:
    """A fix reduced to its codes (no evidence spans, hence no note text): what the audit event keeps."""
    fix = fix or {}
    out: dict[str, Any] = {}
    if fix.get("replace"):
        out["replace"] = {str(o): str(n) for o, n in dict(fix["replace"]).items()}
    if fix.get("remove"):
        out["remove"] = [str(c) for c in fix["remove"]]
    if fix.get("add"):
        out["add"] = [str(a if isinstance(a, str) else (a or {}).get("code")) for a in fix["add"]]
    if fix.get("remove_dup"):
        out["remove_dup"] = str(fix["remove_dup"])
    if fix.get("sequence"):
        out["sequence"] = [str(c) for c in fix["sequence"]]
    return out


def fix_text(fix: dict[str, Any] | None) -> str:
    """A fix in one line for a coder: ``replace T14.90 -> T14.90XA; remove R05.9; add Z79.4``."""
    f = fix_codes(fix)
    parts = [f"replace {o} -> {n}" for o, n in (f.get("replace") or {}).items()]
    if f.get("remove"):
        parts.append("remove " + ", ".join(f["remove"]))
    if f.get("add"):
        parts.append("add " + ", ".join(f["add"]))
    if f.get("remove_dup"):
        parts.append(f"remove duplicate {f['remove_dup']}")
    if f.get("sequence"):
        parts.append("sequence " + ", ".join(f["sequence"][:4]) + (" ..." if len(f["sequence"]) > 4 else ""))
    return "; ".join(parts)


def resolve_edit(session: Session, user: User, encounter_id: int, edit_row_id: int, action: str,
                 reason: str | None = None, version: int | None = None, kb: Any = None) -> tuple[Edit, list[Decision]]:
    """Apply or dismiss the fix an edit of the rules layer proposes (``fix_status == "proposed"``).

    ``apply`` turns the fix into the coder's decisions on the working code set, through
    :func:`decide` (a coder's own path): ``replace`` old -> new modifies the suggestion holding old
    (or rejects it when new is already on the encounter), ``remove`` rejects, ``add`` accepts the
    engine's suggestion of the code or adds it (skipped when it is already there); each decision
    has reason ``guideline`` and the edit's citation. ``sequence`` and ``remove_dup`` need no
    decision: the working code set follows the rules layer's sequence and lists a code once.
    ``dismiss`` leaves the codes as they are and needs a reason. Either way the edit is marked
    resolved (who, when, why) and an ``edit.apply`` / ``edit.dismiss`` audit event records the
    fix's codes and the decisions it made (never note text).

    Args:
        edit_row_id: the ``edits`` row id (``EditOut.id``), not the rule's edit id.
        action: ``apply`` | ``dismiss``.
        reason: why (required to dismiss; optional for apply).
        version: the encounter version the coder saw (None skips the check).
        kb: the knowledge base that validates the codes put in (as for :func:`decide`).

    Raises:
        NotFoundError: no such encounter, or no such edit on it (404).
        ConflictError (409): stale ``version``; the encounter is still being coded; the edit has
            no proposed fix, was already resolved, or belongs to an older coding run; a code the
            fix changes is no longer on the working code set.
        InputError: unknown action, or dismiss without a reason.
    """
    enc = get_encounter(session, encounter_id)
    if action not in RESOLVE_ACTIONS:
        raise InputError(f"unknown action {action!r} for a proposed fix.", options=RESOLVE_ACTIONS)
    reason = (reason or "").strip()[:2000] or None
    if action == "dismiss" and not reason:
        raise InputError("a reason is required to dismiss a proposed fix.")
    if enc.status in ("new", "coding"):
        raise ConflictError(f"encounter {encounter_id} is still being coded (status {enc.status}); try again shortly.")
    edit = session.get(Edit, edit_row_id)
    if edit is None or edit.encounter_id != enc.id:
        raise NotFoundError(f"no edit {edit_row_id} on encounter {encounter_id}.")
    name = f"{edit.edit_id or 'edit'} (#{edit.id})"
    if edit.resolution:
        who = edit.resolved_by.username if edit.resolved_by else "someone"
        when = f" at {edit.resolved_at:%Y-%m-%d %H:%M:%S} UTC" if edit.resolved_at else ""
        raise ConflictError(f"the proposed fix of edit {name} was already {edit.resolution} by {who}{when}; "
                            "reload the encounter.")
    if not edit.fix or edit.fix_status != "proposed":
        raise ConflictError(f"edit {name} has no proposed fix to resolve (fix status: {edit.fix_status or 'none'}).")
    latest = session.execute(select(func.max(CodingRun.id)).where(CodingRun.encounter_id == enc.id)).scalar()
    if edit.run_id is not None and latest is not None and edit.run_id != latest:
        raise ConflictError(f"edit {name} comes from coding run {edit.run_id}, but encounter {encounter_id} was "
                            f"coded again since (run {latest}): its fix is stale; resolve the latest run's edits.")
    fix = dict(edit.fix)
    codes = fix_codes(fix)
    plan: list[tuple[str, int | None, str | None]] = []  # (decision action, suggestion id, code)
    if action == "apply":
        st = encounter_state(session, enc.id)
        working = {code_key(c["code"]): c for c in working_codes(st.suggestions, order=rules_order(st.rules))}
        changed = list((codes.get("replace") or {}).keys()) + list(codes.get("remove") or [])
        missing = [c for c in changed if code_key(c) not in working]
        if missing:
            raise ConflictError(
                f"the fix of edit {name} changes {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                f"no longer on the working code set of encounter {encounter_id} (changed since the rules ran): "
                "dismiss the fix with a reason, or change the codes yourself.")
        by_id = {s.id: s for s in st.suggestions}
        for old, new in (codes.get("replace") or {}).items():
            sug = by_id[working[code_key(old)]["suggestion_id"]]
            if code_key(new) in working:
                plan.append(("reject", sug.id, None))  # the replacement is already there: drop the old one
            elif code_key(sug.code) == code_key(new):
                plan.append(("accept", sug.id, None))  # back to the suggested code itself
            else:
                plan.append(("modify", sug.id, new))
        for code in codes.get("remove") or []:
            plan.append(("reject", working[code_key(code)]["suggestion_id"], None))
        for code in codes.get("add") or []:
            if code_key(code) in working:
                continue
            pending = next((s for s in st.suggestions if s.state == "pending" and code_key(s.code) == code_key(code)), None)
            plan.append(("accept", pending.id, None) if pending is not None else ("add", None, code))
    verb = "application" if action == "apply" else "dismissal"
    bump_version(session, enc.id, version, user, f"{verb} of the fix of edit {name}", status="in_review")
    decisions: list[Decision] = []
    why = f"proposed fix of {edit.edit_id or 'an edit'} applied" + (f": {reason}" if reason else "")
    for act, sid, code in plan:
        decisions.append(decide(session, user, enc.id, None, act, suggestion_id=sid, code=code,
                                reason_code="guideline", reason_text=why, citation=edit.citation, kb=kb))
    edit = session.get(Edit, edit_row_id)
    assert edit is not None
    edit.resolution = "applied" if action == "apply" else "dismissed"
    edit.resolved = True
    edit.resolved_by_id = user.id
    edit.resolved_at = utcnow()
    edit.resolution_reason = reason
    session.flush()
    record_event(session, user, f"edit.{action}", "edit", edit.id, {"fix_status": "proposed", "resolution": None},
                 {"encounter_id": enc.id, "run_id": edit.run_id, "edit_id": edit.edit_id, "fix": codes,
                  "resolution": edit.resolution, "reason": reason, "citation": edit.citation,
                  "decisions": [d.id for d in decisions]})
    return edit, decisions


# --- finalisation -----------------------------------------------------------------------------
def rules_order(rules: dict[str, Any] | None) -> list[str]:
    """The codes of the rules layer's proposed final code set, in its sequence (principal first)."""
    out = []
    for c in (rules or {}).get("final_codes") or []:
        if isinstance(c, dict) and c.get("code"):
            out.append(str(c["code"]))
    return out


def working_codes(suggestions: list[Suggestion], include_pending: bool = True,
                  order: list[str] | None = None) -> list[dict[str, Any]]:
    """The sequenced code set the decisions so far produce (diagnoses first, then procedures).

    Kept: accepted, modified (new code), added; with ``include_pending``, pending selected
    suggestions (the coding worker stores the rules layer's final claim as the selection:
    ``opencac.service.worker.align_with_rules``; a code the rules added has source ``rules``). Order within a system: the rules layer's sequence (``order``, principal
    diagnosis first) where it places the code, then engine rank, then coder-added in the order added.
    """
    keep = []
    for s in suggestions:
        if s.state in ("accepted", "modified", "added") or (include_pending and s.state == "pending" and s.selected):
            keep.append(s)
    out: list[dict[str, Any]] = []
    for system in ("icd10cm", "icd10pcs"):
        pos = {c: i for i, c in enumerate(order or [])}
        mine = sorted((s for s in keep if s.system == system),
                      key=lambda s: (pos.get(s.final_code or s.code, len(pos)), s.source == "coder", s.rank, s.id))
        seen: set[str] = set()
        for s in mine:
            code = s.final_code or s.code
            if code in seen:
                continue
            seen.add(code)
            origin = "rules" if s.source == "rules" else "engine"
            out.append({"seq": len([c for c in out if c["system"] == system]) + 1, "system": system, "code": code,
                        "description": s.description if not s.final_code else "",
                        "source": {"accepted": origin, "pending": origin, "modified": "coder-modified",
                                   "added": "coder-added"}[s.state],
                        "suggestion_id": s.id})
    return out


def normalize_poa(value: Any) -> str:
    """A POA indicator normalised to one of ``POA_VALUES`` (``""`` = not reported).

    Raises:
        InputError: not one of Y, N, U, W, 1 or empty.
    """
    v = "" if value is None else str(value).strip().upper()
    if v not in POA_VALUES:
        # UB-04 POA indicator values: CMS "Present on Admission Indicator Reporting" (Y/N/U/W/1, blank exempt).
        raise InputError(f"POA indicator {value!r} is not one of Y, N, U, W, 1 or empty.",
                         options=[v or "(empty)" for v in POA_VALUES])
    return v


def poa_defaults(state: EncounterState) -> dict[str, str]:
    """Known POA indicators per diagnosis code: the rules layer's final code set (which carries the
    encounter context's POA), overridden by the current final code set's (the coder's last word)."""
    out: dict[str, str] = {}
    for c in (state.rules or {}).get("final_codes") or []:
        if isinstance(c, dict) and c.get("code") and c.get("poa"):
            try:
                out[str(c["code"])] = normalize_poa(c["poa"])
            except InputError:
                continue  # an invalid indicator is the rules layer's POA-INVALID edit; not a default
    if state.final is not None:
        for c in state.final.codes or []:
            if c.get("system") == "icd10cm" and c.get("poa"):
                out[str(c["code"])] = str(c["poa"])
    return out


def _coded_by(state: EncounterState, user: User, coded_by: str | None) -> str:
    if coded_by is not None:
        if coded_by not in CODED_BY:
            raise InputError(f"unknown coded_by {coded_by!r}.", options=list(CODED_BY))
        return coded_by
    if user.username == SYSTEM_USERNAME:
        return "ai_straight_through"
    return "ai_plus_coder" if any(s.source == "engine" for s in state.suggestions) else "coder_only"


def system_user(session: Session) -> User:
    """The system account that finalises straight-through encounters (created inactive, no password,
    so it can never log in)."""
    user = session.execute(select(User).where(User.username == SYSTEM_USERNAME)).scalar_one_or_none()
    if user is None:
        user = User(username=SYSTEM_USERNAME, display_name="OpenCAC (straight-through)", password_hash="",
                    roles="coder", active=False)
        session.add(user)
        session.flush()
    return user


def finalize_straight_through(session: Session, encounter_id: int, kb: Any = None) -> FinalCodeSet:
    """Finalise an encounter without a coder (AI straight-through): by the system user, with
    ``coded_by='ai_straight_through'`` and the POA indicators the rules layer knows.

    Raises:
        Same as :func:`finalize`.
    """
    return finalize(session, system_user(session), encounter_id, None, kb=kb, coded_by="ai_straight_through")


def finalize(session: Session, user: User, encounter_id: int, version: int | None, kb: Any = None,
             poa: dict[str, str] | None = None, coded_by: str | None = None) -> FinalCodeSet:
    """Finalise the encounter's code set (a new ``FinalCodeSet`` version; the old one is kept).

    Pending selected suggestions (the rules layer's final claim as the worker stored it) are
    accepted at finalisation (recorded as decisions).
    Records ``final_code_set.change`` with the previous and the new code set.

    Args:
        poa: POA indicator per diagnosis code set by the coder (Y/N/U/W/1 or "" for none); codes
            not given keep the known default (:func:`poa_defaults`).
        coded_by: one of ``CODED_BY``; None derives it: the system user -> ``ai_straight_through``,
            an encounter with engine suggestions -> ``ai_plus_coder``, else ``coder_only``.

    Raises:
        ConflictError: stale ``version``, or the encounter is not yet coded.
        InputError: the resulting code set has no diagnosis; a bad POA indicator or code.
    """
    enc = get_encounter(session, encounter_id)
    if enc.status in ("new", "coding", "error"):
        raise ConflictError(f"encounter {encounter_id} cannot be finalised in status {enc.status}.")
    state = encounter_state(session, encounter_id)
    codes = working_codes(state.suggestions, order=rules_order(state.rules))
    if not any(c["system"] == "icd10cm" for c in codes):
        raise InputError(f"encounter {encounter_id} has no diagnosis code to finalise: accept or add at least one.")
    if kb is not None:
        as_of = enc.discharge_date or enc.date_of_service
        bad = [c["code"] for c in codes if hasattr(kb, "is_billable") and not kb.is_billable(c["code"], as_of=as_of)]
        if bad:
            # A claim carries only complete (billable) codes: ICD-10-CM Official Guidelines I.B.2.
            raise InputError(f"cannot finalise encounter {encounter_id}: {', '.join(bad)} "
                             f"{'is' if len(bad) == 1 else 'are'} not billable on {as_of or 'today'} "
                             "(a header or incomplete code): modify to a complete code, or reject.")
        for c in codes:
            if not c["description"]:
                try:
                    c["description"] = kb.get(c["code"], as_of=as_of).description
                except Exception:  # noqa: BLE001 - validated at decision time already
                    pass
    how = _coded_by(state, user, coded_by)
    given = {str(k).strip(): normalize_poa(v) for k, v in (poa or {}).items()}
    dx = {c["code"] for c in codes if c["system"] == "icd10cm"}
    stray = sorted(k for k in given if k not in dx)
    if stray:
        raise InputError(f"POA given for {', '.join(stray)}, which {'is' if len(stray) == 1 else 'are'} not a "
                         f"diagnosis of the code set of encounter {encounter_id}.")
    known = poa_defaults(state)
    for c in codes:
        if c["system"] == "icd10cm":
            c["poa"] = given[c["code"]] if c["code"] in given else known.get(c["code"], "")
    new_version = bump_version(session, enc.id, version, user, "finalisation", status="final")
    for s in state.suggestions:
        if s.state == "pending" and s.selected:
            s.state = "accepted"
            session.add(Decision(encounter_id=enc.id, suggestion_id=s.id, user_id=user.id, action="accept",
                                 code=s.code, reason_text="accepted at finalisation"))
            record_event(session, user, "decision.accept", "suggestion", s.id, {"state": "pending", "code": s.code},
                         {"encounter_id": enc.id, "state": "accepted", "code": s.code, "at": "finalisation"})
    prev = state.final
    before = None
    number = 1
    if prev is not None:
        prev.current = False
        before = {"version": prev.version, "codes": [(c["system"], c["code"]) for c in prev.codes]}
        number = prev.version + 1
    drg = (state.rules or {}).get("drg") if state.rules else None
    fcs = FinalCodeSet(encounter_id=enc.id, version=number, codes=codes, drg=drg if isinstance(drg, dict) else None,
                       coded_by=how, finalized_by_id=user.id, current=True)
    session.add(fcs)
    session.flush()
    record_event(session, user, "final_code_set.change", "encounter", enc.id, before,
                 {"version": number, "codes": [(c["system"], c["code"]) for c in codes],
                  "poa": {c["code"]: c["poa"] for c in codes if c["system"] == "icd10cm"},
                  "coded_by": how, "encounter_version": new_version})
    return fcs


def assign(session: Session, user: User, encounter_id: int, version: int | None, assignee: User | None) -> None:
    """Assign (or unassign) an encounter."""
    enc = get_encounter(session, encounter_id)
    before = {"assigned_to": enc.assigned_to.username if enc.assigned_to else None}
    bump_version(session, enc.id, version, user, "assignment", assigned_to_id=assignee.id if assignee else None)
    record_event(session, user, "encounter.assign", "encounter", enc.id, before,
                 {"assigned_to": assignee.username if assignee else None})


# --- highlights ------------------------------------------------------------------------------
def highlight_segments(text: str, suggestions: list[Suggestion]) -> list[tuple[str, list[int]]]:
    """Split ``text`` into segments, each with the ids of the suggestions whose evidence covers it."""
    bounds = {0, len(text)}
    spans: list[tuple[int, int, int]] = []
    for s in suggestions:
        for ev in s.evidence or []:
            try:
                a, b = int(ev.get("start", -1)), int(ev.get("end", -1))
            except (TypeError, ValueError, AttributeError):
                continue
            if 0 <= a < b <= len(text):
                spans.append((a, b, s.id))
                bounds.update((a, b))
    cuts = sorted(bounds)
    out: list[tuple[str, list[int]]] = []
    for a, b in zip(cuts, cuts[1:]):
        ids = sorted({sid for (x, y, sid) in spans if x <= a and b <= y})
        out.append((text[a:b], ids))
    return out
