"""ORM rows -> plain dicts shaped like the API schemas (shared by the API and the pages)."""

from __future__ import annotations

from typing import Any

from opencac.service.workflow import EncounterState, band_of, fix_text, rules_order, working_codes
from opencac.store.models import Decision, Edit, Encounter, FinalCodeSet, Suggestion, User


def user_out(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "display_name": u.display_name, "roles": u.role_list,
            "active": u.active}


def worklist_item(e: Encounter, usernames: dict[int, str] | None = None) -> dict[str, Any]:
    assigned = None
    if e.assigned_to_id is not None:
        assigned = (usernames or {}).get(e.assigned_to_id) or (e.assigned_to.username if e.assigned_to else None)
    return {"id": e.id, "external_id": e.external_id, "setting": e.setting, "status": e.status,
            "priority": e.priority, "min_confidence": e.min_confidence, "band": band_of(e.min_confidence),
            "edit_count": e.edit_count, "suggestion_count": e.suggestion_count, "assigned_to": assigned,
            "version": e.version, "date_of_service": e.date_of_service or e.discharge_date, "updated_at": e.updated_at}


def suggestion_out(s: Suggestion, text: str) -> dict[str, Any]:
    ev = []
    for e in s.evidence or []:
        try:
            a, b = int(e.get("start", 0)), int(e.get("end", 0))
        except (TypeError, ValueError, AttributeError):
            continue
        ev.append({"start": a, "end": b, "text": text[a:b] if 0 <= a <= b <= len(text) else "",
                   "section": str(e.get("section") or "")})
    return {"id": s.id, "system": s.system, "code": s.code, "description": s.description,
            "confidence": s.confidence, "assertion": s.assertion, "rank": s.rank, "selected": s.selected,
            "source": s.source, "state": s.state, "final_code": s.final_code, "evidence": ev,
            "rationale": [str(r) for r in (s.rationale or [])], "removed_by_rules": removed_by_rules(s)}


def removed_by_rules(s: Suggestion) -> str | None:
    """What took a suggestion off the rules layer's final claim (``<rule> - <op> (<edit>; <citation>)``),
    from its ``removed by the rules:`` rationale line; None when it was not removed by the rules."""
    from opencac.service.worker import RULES_REMOVED

    if s.selected:
        return None
    for r in s.rationale or []:
        if isinstance(r, str) and r.startswith(RULES_REMOVED):
            return r[len(RULES_REMOVED):]
    return None


def decision_out(d: Decision) -> dict[str, Any]:
    return {"id": d.id, "suggestion_id": d.suggestion_id, "user": d.user.username if d.user else "",
            "action": d.action, "code": d.code, "new_code": d.new_code, "reason_code": d.reason_code,
            "reason_text": d.reason_text, "citation": d.citation, "created_at": d.created_at}


def edit_out(x: Edit) -> dict[str, Any]:
    """An edit row with its fix: ``fix_status`` applied (by the rules) / proposed (to the coder) /
    unchanged, and the coder's ``resolution`` of a proposed fix (applied / dismissed)."""
    return {"id": x.id, "edit_id": x.edit_id, "severity": x.severity, "message": x.message, "citation": x.citation,
            "codes": x.codes or [], "run_id": x.run_id, "fix": x.fix, "fix_status": x.fix_status,
            "fix_text": fix_text(x.fix), "resolution": x.resolution,
            "resolved_by": x.resolved_by.username if x.resolved_by else None, "resolved_at": x.resolved_at,
            "resolution_reason": x.resolution_reason}


def final_out(f: FinalCodeSet | None, encounter_version: int | None = None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"version": f.version, "codes": f.codes, "finalized_by": f.finalized_by.username,
            "finalized_at": f.finalized_at, "coded_by": f.coded_by, "encounter_version": encounter_version}


def encounter_out(st: EncounterState) -> dict[str, Any]:
    e = st.encounter
    text = st.documents[0].text if st.documents else ""
    run = st.run
    return {
        "id": e.id, "external_id": e.external_id, "status": e.status, "version": e.version, "setting": e.setting,
        "date_of_service": e.date_of_service, "admission_date": e.admission_date,
        "discharge_date": e.discharge_date, "assigned_to": e.assigned_to.username if e.assigned_to else None,
        "documents": [{"id": d.id, "kind": d.kind, "source_format": d.source_format, "sha256": d.sha256,
                       "text": d.text} for d in st.documents],
        "run": None if run is None else {
            "id": run.id, "status": run.status, "model": run.model, "codeset_versions": run.codeset_versions or {},
            "error": run.error, "attempts": run.attempts, "created_at": run.created_at,
            "finished_at": run.finished_at},
        "suggestions": [suggestion_out(s, text) for s in st.suggestions],
        "edits": [edit_out(x) for x in st.edits],
        "queries": [{"id": q.id, "kind": q.kind, "text": q.text, "codes": q.codes or [], "status": q.status}
                    for q in st.queries],
        "decisions": [decision_out(d) for d in st.decisions],
        "final": final_out(st.final),
        "working_codes": working_codes(st.suggestions, order=rules_order(st.rules)),
        "rules": st.rules,
        "warnings": st.warnings,
    }
