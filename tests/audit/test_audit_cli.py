"""``opencac audit ...`` commands: thin wrappers, one clear error line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from opencac.audit.records import write_records
from opencac.audit.synthetic import synthetic_population
from opencac.cli.audit import register

FIX = Path(__file__).parent / "fixtures"
runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep "audit" as a sub-command
        pass

    return app


def run(*args: str):
    return runner.invoke(_app(), ["audit", *args])


def test_sample_size_prints_formula() -> None:
    r = run("sample-size", "--confidence", "0.95", "--precision", "0.05", "--expected-error", "0.05",
            "--population", "1000")
    assert r.exit_code == 0, r.output
    assert "n0 = z^2 * p * (1 - p) / E^2" in r.output and "-> 69" in r.output and "Recommended sample size" in r.output
    r = run("sample-size", "--confidence", "1.5")
    assert r.exit_code == 2 and "OC-E602" in r.output and "Traceback" not in r.output


def test_sample_reproducible_and_probe(tmp_path: Path) -> None:
    frame = write_records(synthetic_population(400, seed=1), tmp_path / "frame.csv")
    out1, out2, out3 = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    for out, seed in ((out1, "7"), (out2, "7"), (out3, "8")):
        r = run("sample", "--frame", str(frame), "--method", "stratified", "--by", "payer", "--min-per-stratum", "5",
                "--n", "40", "--seed", seed, "--out", str(out), "--setting", "inpatient")
        assert r.exit_code == 0, r.output
    assert out1.read_text() == out2.read_text() and out1.read_text() != out3.read_text()
    rec = json.loads(out1.with_suffix(".json").read_text())
    assert rec["seed"] == 7 and rec["scope"]["settings"] == ["inpatient"] and len(rec["items"]) == 40
    assert rec["frame_size"] == len(rec["frame_ids"]) < 400
    r = run("sample", "--frame", str(frame), "--seed", "3", "--out", str(tmp_path / "sized.csv"))
    assert r.exit_code == 0 and "Recommended sample size" in r.output
    r = run("sample", "--frame", str(frame), "--method", "probe", "--n", "30", "--seed", "5",
            "--out", str(tmp_path / "probe.csv"))
    assert r.exit_code == 0
    r = run("sample", "--frame", str(frame), "--from-probe", str(tmp_path / "probe.json"), "--probe-errors", "3",
            "--seed", "5", "--out", str(tmp_path / "full.csv"))
    assert r.exit_code == 0, r.output
    full = json.loads((tmp_path / "full.json").read_text())
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert [i["encounter_id"] for i in full["items"][:30]] == [i["encounter_id"] for i in probe["items"]]
    r = run("sample", "--frame", str(frame), "--method", "targeted", "--n", "10", "--seed", "1",
            "--out", str(tmp_path / "t.csv"))
    assert r.exit_code == 2 and "OC-E603" in r.output
    r = run("sample", "--frame", str(tmp_path / "nope.csv"), "--seed", "1", "--out", str(tmp_path / "x.csv"))
    assert r.exit_code == 2 and "not found" in r.output


def test_score_writes_report(tmp_path: Path) -> None:
    r = run("score", "--findings", str(FIX / "findings.csv"), "--out-dir", str(tmp_path), "--records",
            str(FIX / "frame.csv"), "--min-group", "2", "--base-rate", "6000")
    assert r.exit_code == 0, r.output
    assert "encounters 4" in r.output and "kappa" in r.output
    for name in ("report.html", "report.pdf", "encounters.csv", "findings.csv", "codes.csv", "fairness.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run("score", "--findings", str(bad), "--out-dir", str(tmp_path / "x"))
    assert r.exit_code == 2 and "OC-E601" in r.output


def test_fairness_exit_code_signals_alerts(tmp_path: Path) -> None:
    planted = write_records(synthetic_population(3000, seed=1, planted={"payer": ("Medicaid", "query", 0.15)}),
                            tmp_path / "p.csv")
    fair = write_records(synthetic_population(3000, seed=1), tmp_path / "f.csv")
    r = run("fairness", "--records", str(planted), "--out-dir", str(tmp_path / "o"))
    assert r.exit_code == 1 and "Medicaid" in r.output and "alert" in r.output
    data = json.loads((tmp_path / "o" / "fairness.json").read_text())
    assert [(a["attribute"], a["outcome"], a["group"]) for a in data["alerts"]] == [("payer", "query", "Medicaid")]
    r = run("fairness", "--records", str(fair))
    assert r.exit_code == 0 and "0 alert(s)" in r.output


def test_model_card(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(FIX / "model", model)
    frame = write_records(synthetic_population(500, seed=2), tmp_path / "f.csv")
    r = run("model-card", "--model", str(model), "--fairness-records", str(frame))
    assert r.exit_code == 0, r.output
    md = (model / "model_card.md").read_text()
    assert md.startswith("# Model card: opencac-supervised (opencac-2026.2)")
    assert "### Performance by group" in md
    r = run("model-card", "--model", str(tmp_path))
    assert r.exit_code == 2 and "manifest.json" in r.output
