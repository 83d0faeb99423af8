"""Migrations: ``upgrade head`` creates exactly the core tables the models describe (no drift)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from opencac.store.models import Base

CORE_TABLES = {"users", "api_tokens", "patients", "encounters", "documents", "coding_runs", "suggestions",
               "decisions", "final_code_sets", "edits", "queries", "audit_events", "audit_chain_head",
               "revoked_sessions"}


def test_upgrade_head_matches_core_models(engine) -> None:  # noqa: ANN001
    names = set(inspect(engine).get_table_names())
    assert CORE_TABLES <= names and "alembic_version" in names
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    core_diffs = []
    for d in diffs:
        flat = d if isinstance(d, tuple) else d[0]
        text = repr(flat)
        if any(f"'{t}'" in text or f"name='{t}'" in text or f"Table('{t}'" in text for t in CORE_TABLES):
            core_diffs.append(text[:200])
    assert core_diffs == [], "0001_core is out of date with store/models.py:\n" + "\n".join(core_diffs)


def test_upgrade_is_idempotent(engine) -> None:  # noqa: ANN001
    from opencac.store.db import upgrade

    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        rev = conn.exec_driver_sql("select version_num from alembic_version").scalar()
    assert rev is not None
