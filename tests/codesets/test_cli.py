"""``opencac codes`` via typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opencac.cli.main import app

runner = CliRunner()


def test_lookup_json(kb_env: Path) -> None:
    res = runner.invoke(app, ["codes", "lookup", "e119", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["code"] == "E11.9" and data["billable"] is True
    assert [h["code"] for h in data["hierarchy"]] == ["4", "E08-E13", "E11"]
    assert any(n["at"] == "E11" for n in data["notes"]["excludes1"])


def test_lookup_table_and_pcs(kb_env: Path) -> None:
    res = runner.invoke(app, ["codes", "lookup", "T81.40XA", "--as-of", "2025-12-01"])
    assert res.exit_code == 0, res.output
    assert "initial encounter" in res.output and "billable" in res.output
    # validity in words: a code in the earliest loaded code set may be older; one in the newest is current
    assert "valid FY2026 or earlier to current (in the loaded code sets FY2026); this lookup: FY2026" in \
        " ".join(res.output.split())
    res = runner.invoke(app, ["codes", "lookup", "0DTJ4ZZ"])
    assert res.exit_code == 0 and "Percutaneous Endoscopic" in res.output and "Appendix" in res.output


def test_lookup_unknown_code_exit_2(kb_env: Path) -> None:
    res = runner.invoke(app, ["codes", "lookup", "ZZZ.999"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "OC-E102" in lines[0]
    res = runner.invoke(app, ["codes", "lookup", "E11.9", "--as-of", "yesterday"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output


def test_search(kb_env: Path) -> None:
    res = runner.invoke(app, ["codes", "search", "type 2 diabetes mellitus with diabetic chronic kidney disease",
                              "--json", "--limit", "5"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows[0]["code"] == "E11.22"
    res = runner.invoke(app, ["codes", "search", "resection appendix", "--system", "icd10pcs", "--json"])
    rows = json.loads(res.stdout)
    assert rows and all(r["system"] == "icd10pcs" for r in rows)
    assert any(r["code"].startswith("0DTJ") for r in rows[:3])
    res = runner.invoke(app, ["codes", "search", "x", "--system", "snomed"])
    assert res.exit_code == 2 and "OC-E101" in res.output


def test_info(kb_env: Path) -> None:
    res = runner.invoke(app, ["codes", "info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert "icd10cm-2026" in data["versions"] and data["counts"]["icd10pcs_codes"] > 70000


def test_import_index_and_add_version_errors(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from .conftest import FIXTURES

    monkeypatch.setenv("OPENCAC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("OPENCAC_DATA_DIR", str(tmp_path / "data"))
    idx = tmp_path / "index"
    idx.mkdir()
    (idx / "index_sample.xml").write_bytes((FIXTURES / "index_sample.xml").read_bytes())
    res = runner.invoke(app, ["codes", "import-index", str(idx)])
    assert res.exit_code == 0, res.output
    stored = json.loads((tmp_path / "config" / "codesets.json").read_text())
    assert stored["index_dir"] == str(idx.resolve())
    res = runner.invoke(app, ["codes", "import-index", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "OC-E104" in res.output
    res = runner.invoke(app, ["codes", "add-version", "--fy", "2019"])
    assert res.exit_code == 2 and "exactly one source" in res.output
    res = runner.invoke(app, ["codes", "add-version", "--fy", "2019", "--tabular", str(tmp_path / "nope.xml")])
    assert res.exit_code == 2 and "not found" in res.output


def test_validity_line_wording() -> None:
    from opencac.cli.codes import _validity_line

    assert _validity_line({"from": 2023, "to": None, "loaded": [2023, 2026]}, 2026) == \
        "valid FY2023 to current (in the loaded code sets FY2023, FY2026); this lookup: FY2026"
    assert _validity_line({"from": None, "to": 2022, "loaded": [2021]}, 2021) == \
        "valid FY2021 or earlier to FY2022 (in the loaded code sets FY2021); this lookup: FY2021"
