"""``opencac check CLAIM.json [--json]``: exit 0 clean, 1 error edits, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opencac.cli.main import app

CLAIMS = Path(__file__).resolve().parents[1] / "fixtures" / "claims"


@pytest.fixture()
def runner(kb: Any) -> CliRunner:  # kb: skip when the code sets cannot be loaded
    return CliRunner()


def test_clean_claim_exits_0(runner: CliRunner) -> None:
    r = runner.invoke(app, ["check", str(CLAIMS / "clean_outpatient.json")])
    assert r.exit_code == 0, r.output
    assert "Final code set" in r.output and "J02.9" in r.output


def test_error_claim_exits_1_with_json(runner: CliRunner) -> None:
    r = runner.invoke(app, ["check", str(CLAIMS / "errors.json"), "--json"])
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    ids = {e["id"] for e in data["edits"]}
    assert {"MCE-SEX-DX", "MCE-SEX-PROC", "MCE-MANIFESTATION-PDX", "MCE-DUPLICATE", "EXCLUDES1"} <= ids
    assert data["mode"] == "claim" and data["summary"]["errors"] >= 5
    for e in data["edits"]:
        assert {"id", "severity", "message", "citation", "codes", "evidence"} <= set(e)
    assert data["drg"] is not None and data["drg"]["drg"]


def test_inpatient_claim_shows_drg(runner: CliRunner) -> None:
    r = runner.invoke(app, ["check", str(CLAIMS / "inpatient_hf.json"), "--json"])
    data = json.loads(r.stdout)
    assert data["drg"]["drg"] == "291" and data["drg"]["weight"] > 1
    assert any(d["code"] == "I5023" and d["level"] == "MCC" for d in data["drg"]["drivers"])
    r2 = runner.invoke(app, ["check", str(CLAIMS / "inpatient_hf.json")])
    assert "MS-DRG 291" in r2.output


@pytest.mark.parametrize("name, fragment", [
    ("bad_json.json", "not valid JSON"),
    ("unknown_code.json", "Q99.99X"),
    ("no_such_file.json", "not found"),
])
def test_bad_input_one_line_exit_2(runner: CliRunner, name: str, fragment: str) -> None:
    r = runner.invoke(app, ["check", str(CLAIMS / name)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in r.output
