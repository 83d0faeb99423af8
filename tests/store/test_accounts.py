"""Accounts: argon2 hashes, roles, tokens, disabling."""

from __future__ import annotations

import pytest

from opencac.errors import ConflictError, InputError
from opencac.store import accounts
from opencac.store.models import AuditEvent


def test_create_authenticate_disable(session) -> None:  # noqa: ANN001
    user = accounts.create_user(session, "alice", "correct horse", roles="coder,auditor")
    session.commit()
    assert user.password_hash.startswith("$argon2")
    assert "correct horse" not in user.password_hash
    assert user.role_list == ["coder", "auditor"]
    assert accounts.authenticate(session, "alice", "correct horse") is not None
    assert accounts.authenticate(session, "alice", "wrong password") is None
    assert accounts.authenticate(session, "nobody", "correct horse") is None
    token = accounts.issue_token(session, "alice")
    assert accounts.user_for_token(session, token).username == "alice"  # type: ignore[union-attr]
    assert accounts.user_for_token(session, token + "x") is None
    accounts.set_active(session, "alice", False, actor="admin")
    session.commit()
    assert accounts.authenticate(session, "alice", "correct horse") is None
    assert accounts.user_for_token(session, token) is None
    actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
    assert actions == ["user.create", "token.issue", "user.disable"]


def test_bad_accounts_input(session) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="unknown role"):
        accounts.create_user(session, "bob", "longenough", roles="wizard")
    with pytest.raises(InputError, match="too short"):
        accounts.create_user(session, "bob", "short")
    accounts.create_user(session, "bob", "longenough")
    with pytest.raises(ConflictError):
        accounts.create_user(session, "bob", "longenough")
