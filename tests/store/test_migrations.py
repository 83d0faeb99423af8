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


def test_0005_adds_edit_fix_columns_and_keeps_rows(db_url: str) -> None:
    """0004 -> 0005 on a database with an edit row: the row survives, the new columns are NULL and
    writable, and the downgrade removes them again."""
    from alembic import command
    from sqlalchemy import text

    from opencac.store.db import alembic_config, make_engine, upgrade

    eng = make_engine(db_url)
    try:
        upgrade(eng, "0004_seams")
        with eng.begin() as conn:
            conn.execute(text("insert into users (id, username, display_name, password_hash, roles, active, created_at)"
                              " values (1, 'u', '', '', 'coder', true, '2025-01-01 00:00:00')"))
            conn.execute(text("insert into encounters (id, setting, status, priority, edit_count, suggestion_count,"
                              " version, created_at, updated_at) values (1, 'outpatient', 'ready', 0, 1, 0, 1,"
                              " '2025-01-01 00:00:00', '2025-01-01 00:00:00')"))
            conn.execute(text("insert into edits (id, encounter_id, edit_id, severity, message, codes, resolved)"
                              " values (1, 1, 'EXCLUDES1', 'warning', 'm', '[]', false)"))
        upgrade(eng, "0005_edit_fixes")
        cols = {c["name"] for c in inspect(eng).get_columns("edits")}
        assert {"fix", "fix_status", "resolution", "resolved_by_id", "resolved_at", "resolution_reason"} <= cols
        fks = [fk for fk in inspect(eng).get_foreign_keys("edits") if fk["constrained_columns"] == ["resolved_by_id"]]
        assert fks and fks[0]["referred_table"] == "users"
        with eng.begin() as conn:
            row = conn.execute(text("select edit_id, fix, fix_status, resolution from edits where id = 1")).one()
            assert tuple(row) == ("EXCLUDES1", None, None, None)
            conn.execute(text("update edits set fix_status = 'proposed', resolution = 'dismissed',"
                              " resolved_by_id = 1, resolution_reason = 'why' where id = 1"))
        cfg = alembic_config(eng.url.render_as_string(hide_password=False))
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004_seams")
        cols = {c["name"] for c in inspect(eng).get_columns("edits")}
        assert "fix" not in cols and "resolution" not in cols
        with eng.connect() as conn:
            assert conn.execute(text("select count(*) from edits")).scalar_one() == 1
    finally:
        eng.dispose()
