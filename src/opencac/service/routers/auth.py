"""Authentication API: bearer tokens and the current user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from opencac.errors import AuthenticationError, RateLimitedError
from opencac.service.dependencies import current_user, get_session
from opencac.service.schemas import ErrorOut, TokenRequest, TokenResponse, UserOut
from opencac.service.views import user_out
from opencac.store.accounts import authenticate, issue_token
from opencac.store.events import record_event
from opencac.store.models import User

router = APIRouter(prefix="/api/v1", tags=["auth"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}


def login_attempt(request: Request, session: Session, username: str, password: str) -> User:
    """Check a password with rate limiting per client address and user name.

    Raises:
        RateLimitedError: too many failures in the window (429).
        AuthenticationError: wrong user name or password (401).
    """
    limiter = request.app.state.login_limiter
    client = request.client.host if request.client else "unknown"
    keys = (f"{client}|{username.lower()}", f"user|{username.lower()}")
    wait = max(limiter.retry_after(k) for k in keys)
    if wait > 0:
        raise RateLimitedError(f"too many failed logins for {username!r}; try again in {int(wait) + 1} s.")
    user = authenticate(session, username, password)
    if user is None:
        for k in keys:
            limiter.fail(k)
        record_event(session, username[:80] or "?", "auth.login_failed", "user", None, None, {"client": client})
        session.commit()
        raise AuthenticationError("wrong user name or password, or the account is disabled.")
    for k in keys:
        limiter.reset(k)
    return user


@router.post("/auth/token", response_model=TokenResponse, responses={**ERRORS, 429: {"model": ErrorOut}},
             summary="Exchange a user name and password for an API bearer token")
def create_token(body: TokenRequest, request: Request, session: Session = Depends(get_session)) -> dict:
    """Returns a new bearer token (shown once; only its hash is stored). Failed attempts are rate limited."""
    user = login_attempt(request, session, body.username, body.password)
    token = issue_token(session, user.username, name=body.name, days=30, actor=user)
    session.commit()
    return {"token": token, "token_type": "bearer", "user": user_out(user)}


@router.get("/me", response_model=UserOut, responses=ERRORS, summary="The authenticated user")
def me(user: User = Depends(current_user)) -> dict:
    """Who the token or session belongs to, with roles."""
    return user_out(user)
