"""``opencac users ...`` and ``opencac audit-log verify`` (CLI over the store)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from opencac.cli.main import app


def test_users_and_audit_verify(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("OPENCAC_DATABASE_URL", url)
    monkeypatch.setenv("OPENCAC_PASSWORD", "a long password")
    r = CliRunner()
    res = r.invoke(app, ["users", "create", "boss", "--role", "admin", "--role", "auditor"])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["users", "create", "c1"])
    assert res.exit_code == 0
    res = r.invoke(app, ["users", "create", "c1"])
    assert res.exit_code == 2 and "already exists" in res.output
    res = r.invoke(app, ["users", "create", "c2", "--role", "wizard"])
    assert res.exit_code == 2 and "unknown role" in res.output and "Traceback" not in res.output
    res = r.invoke(app, ["users", "token", "c1"])
    assert res.exit_code == 0 and res.output.strip().startswith("oc_")
    assert r.invoke(app, ["users", "disable", "c1"]).exit_code == 0
    listing = r.invoke(app, ["users", "list"]).output
    assert "boss" in listing and "auditor,admin" in listing and "c1" in listing
    res = r.invoke(app, ["audit-log", "verify"])
    assert res.exit_code == 0 and res.output.strip() == "ok, 4 events"
    # tamper: edit event 2 -> exit 1 naming it
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    res = r.invoke(app, ["audit-log", "verify"])
    assert res.exit_code == 1 and "event 2" in res.output and "edited" in res.output
    with eng.begin() as c:
        c.execute(text("UPDATE audit_events SET actor = 'cli' WHERE seq = 2"))
        c.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    res = r.invoke(app, ["audit-log", "verify"])
    assert res.exit_code == 1 and "event 4" in res.output and "deleted" in res.output
