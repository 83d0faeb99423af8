"""Server-rendered pages of the review workbench (Jinja2 + small vanilla JS for partial updates).

Forms post with the session's CSRF token; requests sent by the page script carry ``X-Partial: 1``
and get back only the ``#review`` fragment (``_review.html``), others a 303 redirect.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from opencac.coding.types import SETTINGS
from opencac.errors import AuthenticationError, ConflictError, OpenCACError, RateLimitedError
from opencac.service import workflow
from opencac.service.coding import get_knowledge
from opencac.service.dependencies import (
    READERS,
    csrf_token_for,
    get_read_session,
    get_session,
    require_roles,
    revoke_session,
    session_data,
)
from opencac.service.routers.auth import login_attempt
from opencac.service.security import SESSION_COOKIE
from opencac.service.schemas import MAX_INT, EditRowId, EncounterId
from opencac.service.views import edit_out, suggestion_out, worklist_item
from opencac.store.events import record_event, verify_events
from opencac.store.models import (
    ENCOUNTER_STATUSES,
    POA_VALUES,
    REASON_CODES,
    AuditEvent,
    Document,
    Edit,
    Suggestion,
    User,
)

router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200,
           user: User | None = None) -> Response:
    """Render a page with the common context (user, CSRF token, navigation)."""
    from opencac.ui import nav_items

    user = user or getattr(request.state, "user", None)
    ctx = {"request": request, "user": user, "csrf_token": csrf_token_for(request),
           "nav": nav_items(user.role_list if user else [])}
    ctx.update(context)
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status_code)


def render_error(request: Request, status: int, message: str) -> Response:
    """An error page (used by the app's error handler for HTML requests)."""
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/worklist"
    return target


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/worklist", status_code=303)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


LOGIN_COOKIE = "opencac_login"


def _login_form(request: Request, next_url: str, error: str | None, username: str, status: int = 200) -> Response:
    """The login page with a fresh double-submit token (login CSRF protection)."""
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", {"next": _safe_next(next_url), "error": error, "username": username,
                                          "login_token": token}, status_code=status, user=None)
    resp.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                    secure=request.app.state.settings.secure_cookies, path="/login")
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/worklist") -> Response:  # noqa: A002
    return _login_form(request, next, None, "")


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, username: str = Form(..., max_length=80), password: str = Form(..., max_length=1000),
                 next: str = Form("/worklist"), login_token: str = Form("", max_length=100),  # noqa: A002
                 session: Session = Depends(get_session)) -> Response:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, login_token):
        return _login_form(request, next, "The login form expired; please log in again.", username, 403)
    try:
        user = login_attempt(request, session, username, password)
    except (AuthenticationError, RateLimitedError) as exc:
        return _login_form(request, next, exc.message, username, exc.http_status)
    record_event(session, user, "auth.login", "user", user.id, None, {"channel": "web"})
    session.commit()
    settings = request.app.state.settings
    cookie, _data = request.app.state.codec.new_cookie(user.id)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    resp.set_cookie(SESSION_COOKIE, cookie, max_age=settings.session_hours * 3600, httponly=True,
                    samesite="strict", secure=settings.secure_cookies, path="/")
    return resp


@router.post("/logout")
def logout(request: Request, user: User = Depends(require_roles()),
           session: Session = Depends(get_session)) -> Response:
    """Revoke the session server-side (its id, the cookie's nonce, goes to ``revoked_sessions``)."""
    data = session_data(request)
    if data is not None:
        revoke_session(session, data, max_age_s=request.app.state.codec.max_age_s)
        record_event(session, user, "auth.logout", "user", user.id, None, {})
        session.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/worklist", response_class=HTMLResponse)
def worklist_page(request: Request, status: str | None = None, setting: str | None = None, band: str | None = None,
                  edits: str | None = None, assigned: str | None = None, sort: str = "priority",
                  offset: int = Query(0, ge=0), user: User = Depends(require_roles(*READERS)),
                  session: Session = Depends(get_read_session)) -> Response:
    f = workflow.WorklistFilter(status=status or None, setting=setting or None, band=band or None,
                                edits=None if not edits else edits == "true", assigned=assigned or None,
                                sort=sort or "priority", limit=50, offset=offset)
    rows, total = workflow.worklist(session, f, user)
    ids = {e.assigned_to_id for e in rows if e.assigned_to_id}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
    params = {k: v for k, v in {"status": status, "setting": setting, "band": band, "edits": edits,
                                "assigned": assigned, "sort": sort}.items() if v}
    return render(request, "worklist.html", {
        "items": [worklist_item(e, names) for e in rows], "total": total, "f": f,
        "statuses": ENCOUNTER_STATUSES, "settings": SETTINGS, "sorts": list(workflow.SORTS),
        "prev_url": "/worklist?" + urlencode({**params, "offset": max(0, offset - f.limit)}),
        "next_url": "/worklist?" + urlencode({**params, "offset": offset + f.limit})}, user=user)


def _review_context(session: Session, user: User, encounter_id: int) -> dict[str, Any]:
    st = workflow.encounter_state(session, encounter_id)
    text = st.documents[0].text if st.documents else ""
    sugg = []
    for s in st.suggestions:
        d = suggestion_out(s, text)
        d["band"] = workflow.band_of(s.confidence)
        sugg.append(d)
    code_of = {s.id: s.code for s in st.suggestions}
    working = workflow.working_codes(st.suggestions, order=workflow.rules_order(st.rules))
    # evidence of the codes on the working set is marked strongly; the rest of the ranked
    # candidates' evidence only faintly, so the note is readable
    on_set = {c["suggestion_id"] for c in working}
    docs = []
    for doc in st.documents:
        segs = [(seg, ids, ", ".join(code_of[i] for i in ids if i in code_of), any(i in on_set for i in ids))
                for seg, ids in workflow.highlight_segments(doc.text, [s for s in st.suggestions if doc is st.documents[0]])]
        docs.append({"id": doc.id, "kind": doc.kind, "segments": segs})
    drg = (st.rules or {}).get("drg") if st.rules else None
    return {"state": st, "enc": st.encounter, "docs": docs, "suggestions": sugg, "edits": [edit_out(x) for x in st.edits],
            "queries": st.queries, "final": st.final, "working": working,
            "rules_final": [c for c in ((st.rules or {}).get("final_codes") or []) if isinstance(c, dict)],
            "poa_defaults": workflow.poa_defaults(st), "poa_values": POA_VALUES,
            "drg": drg if isinstance(drg, dict) else None, "run": st.run, "warnings": st.warnings,
            "assigned": st.encounter.assigned_to.username if st.encounter.assigned_to else None,
            "reasons": REASON_CODES, "can_review": user.has_role("coder") and st.encounter.status not in ("new", "coding")}


@router.get("/encounters/{encounter_id}", response_class=HTMLResponse)
def encounter_page(request: Request, encounter_id: EncounterId, user: User = Depends(require_roles(*READERS)),
                   read: Session = Depends(get_read_session), session: Session = Depends(get_session)) -> Response:
    ctx = _review_context(read, user, encounter_id)
    response = render(request, "encounter.html", ctx, user=user)
    workflow.record_views(session, user, ctx["state"], "web")
    session.commit()
    return response


def _after_action(request: Request, session: Session, user: User, encounter_id: int, status: int = 200,
                  **extra: Any) -> Response:
    if request.headers.get("x-partial"):
        ctx = _review_context(session, user, encounter_id)
        ctx.update(extra)
        return render(request, "_review.html", ctx, status_code=status, user=user)
    if status >= 400:
        ctx = _review_context(session, user, encounter_id)
        ctx.update(extra)
        return render(request, "encounter.html", ctx, status_code=status, user=user)
    return RedirectResponse(f"/encounters/{encounter_id}", status_code=303)


@router.post("/encounters/{encounter_id}/decide", response_class=HTMLResponse)
def decide_form(request: Request, encounter_id: EncounterId, action: str = Form(..., max_length=10),
                version: int = Form(..., ge=0, le=MAX_INT), suggestion_id: int | None = Form(None, ge=1, le=MAX_INT), code: str | None = Form(None, max_length=100),
                reason_code: str | None = Form(None, max_length=30), reason_text: str | None = Form(None, max_length=2000),
                citation: str | None = Form(None, max_length=300), user: User = Depends(require_roles("coder")),
                session: Session = Depends(get_session), kb: Any = Depends(get_knowledge)) -> Response:
    if code and " " in code.strip():
        code = code.strip().split(" ")[0]  # a type-ahead pick "E11.9 — description"
    def act() -> str:
        workflow.decide(session, user, encounter_id, version, action, suggestion_id=suggestion_id, code=code,
                        reason_code=reason_code or None, reason_text=reason_text, citation=citation, kb=kb)
        label = {"accept": "Accepted", "reject": "Rejected", "modify": "Modified", "add": "Added"}.get(action, action)
        return f"{label}."

    return _run_action(request, session, user, encounter_id, act)


def _run_action(request: Request, session: Session, user: User, encounter_id: int, act: Any) -> Response:
    """Run a coder's action (``act`` returns the confirmation), commit, and re-render the screen;
    a conflict (409) or another OpenCAC error rolls back and shows its message."""
    try:
        message = act()
        session.commit()
    except ConflictError as exc:
        session.rollback()
        return _after_action(request, session, user, encounter_id, 409, conflict=exc.message)
    except OpenCACError as exc:
        session.rollback()
        return _after_action(request, session, user, encounter_id, exc.http_status, error=exc.message)
    return _after_action(request, session, user, encounter_id, message=message)


@router.post("/encounters/{encounter_id}/edits/{edit_row_id}/resolve", response_class=HTMLResponse)
def resolve_edit_form(request: Request, encounter_id: EncounterId, edit_row_id: EditRowId,
                      action: str = Form(..., max_length=10), version: int = Form(..., ge=0, le=MAX_INT),
                      reason: str | None = Form(None, max_length=2000), user: User = Depends(require_roles("coder")),
                      session: Session = Depends(get_session), kb: Any = Depends(get_knowledge)) -> Response:
    def act() -> str:
        edit, _ = workflow.resolve_edit(session, user, encounter_id, edit_row_id, action, reason=reason,
                                        version=version, kb=kb)
        return f"Proposed fix of {edit.edit_id or 'the edit'} {edit.resolution}."

    return _run_action(request, session, user, encounter_id, act)


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (read once; Starlette caches the parsed form)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/encounters/{encounter_id}/finalize", response_class=HTMLResponse)
def finalize_form(request: Request, encounter_id: EncounterId, version: int = Form(..., ge=0, le=MAX_INT),
                  form: dict[str, str] = Depends(form_fields),
                  user: User = Depends(require_roles("coder")), session: Session = Depends(get_session),
                  kb: Any = Depends(get_knowledge)) -> Response:
    def act() -> str:
        # The form sends one "poa:<code>" select per diagnosis of the working code set.
        poa = {k[4:]: str(v) for k, v in form.items() if k.startswith("poa:") and len(k) <= 14}
        fcs = workflow.finalize(session, user, encounter_id, version, kb=kb, poa=poa)
        return f"Finalised: {len(fcs.codes)} codes."

    return _run_action(request, session, user, encounter_id, act)


@router.post("/encounters/{encounter_id}/assign", response_class=HTMLResponse)
def assign_form(request: Request, encounter_id: EncounterId, version: int = Form(..., ge=0, le=MAX_INT),
                to: str = Form("me", max_length=10), user: User = Depends(require_roles("coder", "cdi")),
                session: Session = Depends(get_session)) -> Response:
    try:
        workflow.assign(session, user, encounter_id, version, user if to == "me" else None)
        session.commit()
    except ConflictError as exc:
        session.rollback()
        return _after_action(request, session, user, encounter_id, 409, conflict=exc.message)
    return _after_action(request, session, user, encounter_id,
                         message="Assigned to you." if to == "me" else "Unassigned.")


@router.get("/encounters/{encounter_id}/audit", response_class=HTMLResponse)
def encounter_audit_page(request: Request, encounter_id: EncounterId, user: User = Depends(require_roles(*READERS)),
                         session: Session = Depends(get_read_session)) -> Response:
    enc = workflow.get_encounter(session, encounter_id)
    sids = [str(i) for i in session.execute(select(Suggestion.id).where(Suggestion.encounter_id == enc.id)).scalars()]
    dids = [str(i) for i in session.execute(select(Document.id).where(Document.encounter_id == enc.id)).scalars()]
    from opencac.store.models import CodingRun

    rids = [str(i) for i in session.execute(select(CodingRun.id).where(CodingRun.encounter_id == enc.id)).scalars()]
    cond = [and_(AuditEvent.entity == "encounter", AuditEvent.entity_id == str(enc.id))]
    eids = [str(i) for i in session.execute(select(Edit.id).where(Edit.encounter_id == enc.id)).scalars()]
    for entity, ids in (("suggestion", sids), ("document", dids), ("coding_run", rids), ("edit", eids)):
        if ids:
            cond.append(and_(AuditEvent.entity == entity, AuditEvent.entity_id.in_(ids)))
    events = session.execute(select(AuditEvent).where(or_(*cond)).order_by(AuditEvent.seq)).scalars().all()
    return render(request, "audit_trail.html", {"enc": enc, "events": events}, user=user)


@router.get("/audit-log", response_class=HTMLResponse)
def audit_log_page(request: Request, user: User = Depends(require_roles("auditor")),
                   session: Session = Depends(get_read_session)) -> Response:
    report = verify_events(session)
    events = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(200)).scalars().all()
    return render(request, "audit_log.html", {"report": report, "events": events}, user=user)
