"""Service fixtures: the app on SQLite and on PostgreSQL, a fake coder and knowledge base, users."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from svc_fakes import FakeKB, fake_coder  # noqa: E402
from svc_helpers import USERS, add_users  # noqa: E402

from opencac.service.app import create_app  # noqa: E402
from opencac.service.coding import get_knowledge  # noqa: E402
from opencac.service.settings import Settings  # noqa: E402
from opencac.store.accounts import issue_token  # noqa: E402
from opencac.store.testing import postgres_unreachable_reason, temp_database  # noqa: E402

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        reason = postgres_unreachable_reason()
        if reason:
            pytest.skip(reason)
    with temp_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def app(db_url: str) -> Iterator[Any]:
    settings = Settings(database_url=db_url, secret_key="test-secret", start_worker=False, max_document_bytes=20_000,
                        login_max_attempts=3, login_window_s=60)
    application = create_app(settings, coder=fake_coder)
    application.dependency_overrides[get_knowledge] = lambda: FakeKB()
    add_users(application)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def tokens(app: Any) -> dict[str, str]:
    out = {}
    with app.state.session_factory() as s:
        for name in USERS:
            out[name] = issue_token(s, name, actor="test")
        s.commit()
    return out


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
