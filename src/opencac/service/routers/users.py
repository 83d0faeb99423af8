"""User administration API (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from opencac.service.dependencies import get_read_session, get_session, require_roles
from opencac.service.schemas import ErrorOut, UserCreate, UserOut
from opencac.service.views import user_out
from opencac.store import accounts
from opencac.store.models import User

router = APIRouter(prefix="/api/v1/users", tags=["users"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}}


@router.get("", response_model=list[UserOut], responses=ERRORS, summary="List users")
def list_users(_: User = Depends(require_roles("admin")), session: Session = Depends(get_read_session)) -> list:
    """All accounts (admin)."""
    return [user_out(u) for u in accounts.list_users(session)]


@router.post("", response_model=UserOut, status_code=201, responses=ERRORS, summary="Create a user")
def create_user(body: UserCreate, admin: User = Depends(require_roles("admin")),
                session: Session = Depends(get_session)) -> dict:
    """Create an account with an argon2-hashed password (admin)."""
    u = accounts.create_user(session, body.username, body.password, body.roles, body.display_name, actor=admin)
    session.commit()
    return user_out(u)


@router.post("/{username}/disable", response_model=UserOut, responses=ERRORS, summary="Disable a user")
def disable_user(username: str, admin: User = Depends(require_roles("admin")),
                 session: Session = Depends(get_session)) -> dict:
    """Disable an account and revoke its tokens (admin)."""
    u = accounts.set_active(session, username, False, actor=admin)
    session.commit()
    return user_out(u)
