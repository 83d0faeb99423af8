"""``opencac batch``: one clear error line for bad input; a real run when the engine exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from opencac.cli import batch as batch_cli

# A group app with only our command: the real ``opencac`` app collapses to a single
# command while other command modules have not landed.
app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _group() -> None:
    """opencac (test app)."""


batch_cli.register(app)
runner = CliRunner()


def test_missing_input_is_one_line_exit_2(tmp_path: Path) -> None:
    r = runner.invoke(app, ["batch", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--no-progress"])
    assert r.exit_code == 2
    assert "OC-E005" in r.output and "Traceback" not in r.output
    assert len([x for x in r.output.splitlines() if x.strip()]) == 1


def test_bad_format_and_workers_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    for extra in (["--format", "csv"], ["--workers", "-3"]):
        r = runner.invoke(app, ["batch", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--no-progress", *extra])
        assert r.exit_code == 2 and "OC-E701" in r.output and "Traceback" not in r.output


def test_jsonl_missing_text_column_names_the_fields(tmp_path: Path) -> None:
    p = tmp_path / "n.jsonl"
    p.write_text(json.dumps({"id": "a", "body": "x"}) + "\n")
    r = runner.invoke(app, ["batch", "-i", str(p), "-o", str(tmp_path / "o"), "--no-progress"])
    assert r.exit_code == 2 and "OC-E001" in r.output and "body" in r.output


@pytest.mark.slow
def test_cli_real_engine_on_codiesp_notes(tmp_path: Path, codiesp_dir: Path) -> None:
    pytest.importorskip("opencac.coding.engine", reason="the coding engine has not landed yet")
    inp = tmp_path / "in"
    inp.mkdir()
    for p in sorted((codiesp_dir / "dev" / "text_files_en").glob("*.txt"))[:4]:
        shutil.copy(p, inp / p.name)
    (inp / "zz-empty.txt").write_text("   \n")
    out = tmp_path / "out"
    r = runner.invoke(app, ["batch", "-i", str(inp), "-o", str(out), "--workers", "0", "--tsv", "--json",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["documents"], summary["coded"], summary["failures"]) == (5, 4, 1)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r_["doc_id"] for r_ in rows] == sorted(p.stem for p in inp.glob("*.txt"))[:4]
    assert all(r_["rules"] is not None for r_ in rows)  # the rules layer ran
    assert any(r_["diagnoses"] for r_ in rows)
    d_lines = (out / "D.tsv").read_text().splitlines()
    assert d_lines and all(line.split("\t")[1] == line.split("\t")[1].lower() for line in d_lines)
