"""Accounts: users, argon2 password hashes, API bearer tokens.

Public API::

    create_user(session, username, password, roles=("coder",), display_name="", actor=None) -> User
    authenticate(session, username, password) -> User | None
    set_active(session, username, active, actor=None) -> User
    set_password(session, username, password, actor=None) -> User
    list_users(session) -> list[User]
    issue_token(session, username, name="api", days=None, actor=None) -> str   # plain token, shown once
    user_for_token(session, token) -> User | None
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opencac.errors import ConflictError, InputError, NotFoundError
from opencac.store.events import record_event
from opencac.store.models import ROLES, ApiToken, User, utcnow

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "oc_"


@lru_cache(maxsize=1)
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """Argon2id hash of ``password``."""
    return str(_hasher().hash(password))


def check_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored argon2 hash."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not stored:
        return False
    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def _dummy_verify() -> None:
    # Spend the same time on unknown users as on wrong passwords (no user enumeration by timing).
    check_password(_dummy_hash(), "not-the-password")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("dummy-password-for-timing")


def parse_roles(roles: str | Iterable[str]) -> list[str]:
    """Validate roles (comma-separated text or an iterable); raises InputError on an unknown one."""
    items = [r.strip().lower() for r in (roles.split(",") if isinstance(roles, str) else roles) if r.strip()]
    if not items:
        raise InputError("at least one role is required.", options=ROLES)
    for r in items:
        if r not in ROLES:
            raise InputError(f"unknown role {r!r}.", options=ROLES)
    return sorted(set(items), key=ROLES.index)


def get_user(session: Session, username: str) -> User:
    """The user called ``username``; NotFoundError otherwise."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user {username!r}.")
    return user


def create_user(session: Session, username: str, password: str, roles: str | Iterable[str] = ("coder",),
                display_name: str = "", actor: User | str | None = None) -> User:
    """Create an active user with an argon2-hashed password (records ``user.create``)."""
    if not _USERNAME.match(username or ""):
        raise InputError(f"invalid username {username!r}: expected 2-80 letters, digits or _.@-")
    if len(password or "") < MIN_PASSWORD:
        raise InputError(f"password too short: expected at least {MIN_PASSWORD} characters")
    role_list = parse_roles(roles)
    if session.execute(select(User.id).where(User.username == username)).first() is not None:
        raise ConflictError(f"user {username!r} already exists.")
    user = User(username=username, display_name=display_name or username, password_hash=hash_password(password),
                roles=",".join(role_list), active=True)
    session.add(user)
    session.flush()
    record_event(session, actor, "user.create", "user", user.id, None,
                 {"username": username, "roles": role_list, "active": True})
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user whose password matches, else None (constant-ish time either way)."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        _dummy_verify()
        return None
    if not check_password(user.password_hash, password) or not user.active:
        return None
    user.last_login = utcnow()
    return user


def set_active(session: Session, username: str, active: bool, actor: User | str | None = None) -> User:
    """Enable or disable a user; disabling also revokes their API tokens."""
    user = get_user(session, username)
    before = user.active
    user.active = active
    if not active:
        for tok in session.execute(select(ApiToken).where(ApiToken.user_id == user.id)).scalars():
            tok.revoked = True
    record_event(session, actor, "user.enable" if active else "user.disable", "user", user.id,
                 {"active": before}, {"active": active})
    return user


def set_password(session: Session, username: str, password: str, actor: User | str | None = None) -> User:
    """Replace a user's password."""
    if len(password or "") < MIN_PASSWORD:
        raise InputError(f"password too short: expected at least {MIN_PASSWORD} characters")
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    record_event(session, actor, "user.password", "user", user.id, None, None)
    return user


def list_users(session: Session) -> list[User]:
    """All users, by username."""
    return list(session.execute(select(User).order_by(User.username)).scalars())


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, username: str, name: str = "api", days: int | None = None,
                actor: User | str | None = None) -> str:
    """Create an API bearer token for ``username``; returns the plain token (only its hash is kept)."""
    user = get_user(session, username)
    if not user.active:
        raise InputError(f"user {username!r} is disabled.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(days=days) if days else None
    tok = ApiToken(user_id=user.id, name=name[:100], token_hash=_token_digest(token), expires_at=expires)
    session.add(tok)
    session.flush()
    record_event(session, actor, "token.issue", "user", user.id, None, {"token_id": tok.id, "name": tok.name})
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning a valid (unrevoked, unexpired) token, else None."""
    if not token:
        return None
    tok = session.execute(select(ApiToken).where(ApiToken.token_hash == _token_digest(token))).scalar_one_or_none()
    if tok is None or tok.revoked or (tok.expires_at is not None and tok.expires_at < utcnow()):
        return None
    user = session.get(User, tok.user_id)
    if user is None or not user.active:
        return None
    return user
