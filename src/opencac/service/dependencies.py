"""FastAPI dependencies: database sessions, the current user, roles, CSRF.

Stable seam for other routers::

    from opencac.service.dependencies import get_session, get_read_session, current_user, require_roles
    @router.get("/x")
    def x(user: User = Depends(require_roles("auditor")), session: Session = Depends(get_session)): ...

* ``get_session`` -- a writing session (SQLite: ``BEGIN IMMEDIATE``); commit explicitly.
* ``get_read_session`` -- a read-only session (plain deferred transaction on SQLite).
* ``current_user`` -- bearer token (``Authorization: Bearer oc_...``) or session cookie; cookie
  requests with an unsafe method must carry the CSRF token (form field ``csrf_token`` or header
  ``X-CSRF-Token``). Raises ``AuthenticationError`` (401).
* ``require_roles(*roles)`` -- ``current_user`` holding one of ``roles`` (admin holds all), else 403.
* ``csrf_token_for(request)`` -- the token to put in forms (templates get it as ``csrf_token``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from opencac.errors import AuthenticationError, PermissionDeniedError
from opencac.service.security import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, SessionData
from opencac.service.settings import Settings
from opencac.store.accounts import user_for_token
from opencac.store.models import User

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


# Both session dependencies are *async* generators on purpose: their clean-up (rollback, close)
# then runs on the event loop instead of waiting for a free threadpool thread. With SQLite a
# failed request still holds the write lock until that rollback; if clean-up had to queue behind
# threads that are themselves waiting for the lock, every request would stall for busy_timeout.
async def get_session(request: Request) -> AsyncIterator[Session]:
    """A writing session; the route commits; rolled back and closed afterwards."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """A read-only session (no write lock on SQLite)."""
    session: Session = request.app.state.read_session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def session_data(request: Request) -> SessionData | None:
    """The valid session of the request's cookie, if any."""
    return request.app.state.codec.read(request.cookies.get(SESSION_COOKIE))  # type: ignore[no-any-return]


def csrf_token_for(request: Request) -> str:
    """The CSRF token for the request's session ('' when not logged in by cookie)."""
    data = session_data(request)
    return request.app.state.codec.csrf_token(data) if data else ""


async def csrf_protect(request: Request) -> None:
    """Reject cookie-authenticated unsafe requests without the session's CSRF token."""
    if request.method not in UNSAFE_METHODS or _bearer(request) is not None:
        return
    data = session_data(request)
    if data is None:
        return  # current_user will answer 401
    token = request.headers.get(CSRF_HEADER)
    if not token:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    if not request.app.state.codec.check_csrf(data, token):
        raise PermissionDeniedError("missing or invalid CSRF token: reload the page and try again.")


def session_revoked(session: Session, nonce: str) -> bool:
    """True when the browser session with this nonce (its session id) was logged out."""
    from opencac.store.models import RevokedSession

    return session.execute(select(RevokedSession.id).where(RevokedSession.nonce == nonce)).first() is not None


def revoke_session(session: Session, data: SessionData, max_age_s: int | None = None) -> None:
    """Revoke a browser session server-side (logout): a copy of its cookie stops working.

    Args:
        max_age_s: the cookies' lifetime; revocations older than it are pruned (their cookies have
            expired anyway, so the table stays small).
    """
    import datetime as dt

    from sqlalchemy import delete

    from opencac.store.models import RevokedSession, utcnow

    if max_age_s:
        session.execute(delete(RevokedSession).where(
            RevokedSession.revoked_at < utcnow() - dt.timedelta(seconds=max_age_s)))
    if not session_revoked(session, data.nonce):
        session.add(RevokedSession(nonce=data.nonce[:64], user_id=data.user_id))
        session.flush()


def _load_user(request: Request) -> User | None:
    factory = request.app.state.read_session_factory
    token = _bearer(request)
    with factory() as session:
        if token is not None:
            user = user_for_token(session, token)
            if user is None:
                raise AuthenticationError("invalid, expired or revoked bearer token.")
        else:
            data = session_data(request)
            if data is None:
                return None
            user = session.get(User, data.user_id)
            if user is None or not user.active or session_revoked(session, data.nonce):
                return None
        session.expunge(user)
        return user


def current_user(request: Request, _csrf: None = Depends(csrf_protect)) -> User:
    """The authenticated user (bearer token or session cookie); 401 otherwise."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    user = _load_user(request)
    if user is None:
        raise AuthenticationError("not logged in: send 'Authorization: Bearer <token>' or log in at /login.")
    request.state.user = user
    return user


def optional_user(request: Request) -> User | None:
    """The authenticated user, or None (no error)."""
    try:
        return _load_user(request)
    except AuthenticationError:
        return None


def require_roles(*roles: str) -> Callable[..., Any]:
    """Dependency factory: the current user, who must hold one of ``roles`` (admin holds all)."""
    wanted = tuple(roles)

    def dependency(user: User = Depends(current_user)) -> User:
        if wanted and not user.has_role(*wanted):
            raise PermissionDeniedError(
                f"user {user.username!r} (roles: {user.roles}) may not do this; it needs one of the roles",
                options=wanted)
        return user

    dependency.__name__ = "require_" + "_or_".join(wanted or ("any",))
    return dependency


#: Role groups used by the routers.
READERS = ("coder", "auditor", "cdi")
REVIEWERS = ("coder",)
INGESTERS = ("coder", "cdi")
AUDITORS = ("auditor",)
