"""Store fixtures: every store test runs on SQLite and on PostgreSQL (skipped if unreachable)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from opencac.store.db import make_engine, session_factory, upgrade
from opencac.store.testing import postgres_unreachable_reason, temp_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        reason = postgres_unreachable_reason()
        if reason:
            pytest.skip(reason)
    with temp_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str):  # noqa: ANN201
    eng = make_engine(db_url, pool_size=5, max_overflow=5)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:  # noqa: ANN001
    factory = session_factory(engine)
    s = factory()
    yield s
    s.rollback()
    s.close()
