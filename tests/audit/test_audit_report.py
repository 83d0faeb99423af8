"""Reports (HTML, PDF, CSV) and model cards."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from opencac.audit.fairness import fairness_report, records_with_outcomes
from opencac.audit.model_card import NOT_PROVIDED, build_model_card, load_model_card_inputs
from opencac.audit.records import read_frame
from opencac.audit.report import build_report, render_html, write_report
from opencac.audit.sample_size import attribute_sample_size
from opencac.audit.sampling import simple_random_sample
from opencac.audit.scope import AuditScope
from opencac.audit.synthetic import synthetic_population
from opencac.audit.workfile import load_audit_file
from opencac.errors import AuditInputError, AuditReportError

FIX = Path(__file__).parent / "fixtures"
HEADINGS = ["1. Summary", "2. What was audited", "3. How the sample was drawn", "4. Results", "5. Findings",
            "6. Fairness across patient groups", "7. Sign-off"]


def _report():
    af = load_audit_file(FIX / "findings.csv")
    scores = af.workbook.final_scores()
    frame = read_frame(FIX / "frame.csv")
    sample = simple_random_sample(frame, 4, seed=12)
    sample.size_calc = attribute_sample_size(0.95, 0.05, 0.05, len(frame))
    fair = fairness_report(records_with_outcomes(frame, {s.encounter_id: s.accurate for s in scores}),
                           min_group_size=2)
    return build_report(scores, af.workbook.findings, audit_name="Q1 inpatient audit", auditor="A. Auditor",
                        scope=AuditScope(settings=("inpatient",)), sample=sample, kappa=af.kappa(), fairness=fair,
                        base_rate=6000.0, seed=1)


def test_html_report_content() -> None:
    html = render_html(_report())
    for h in HEADINGS:
        assert h in html
    assert "Q1 inpatient audit" in html and "Setting: inpatient" in html
    assert "n0 = z^2 * p * (1 - p) / E^2" in html  # the sample-size formula is shown
    assert "ICD-10-CM Official Guidelines I.C.9.a.1" in html
    assert "overturned" in html and "Statin on the medication list" in html
    assert html.count("data:image/svg+xml;base64,") >= 5
    assert "Cohen&#39;s kappa" in html or "Cohen's kappa" in html
    assert "too few to judge" in html
    # financial impact: E001 DRG 293 -> 291: (1.3378 - 0.6737) * 6000 = +3,985
    assert "+3,985" in html


def test_pdf_csv_written(tmp_path: Path) -> None:
    paths = write_report(_report(), tmp_path)
    pdf = paths["pdf"]
    assert pdf.stat().st_size > 10_000 and pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        for h in HEADINGS:
            assert h in text, h
        assert "Encounter accuracy" in text and "Page 1 of" in text
    rows = list(csv.DictReader(paths["encounters"].open()))
    assert [r["encounter_id"] for r in rows] == ["E001", "E002", "E004", "E005"]
    assert rows[0]["payment_change"] == "3984.6" and rows[0]["accurate"] == "False"
    findings = list(csv.DictReader(paths["findings"].open()))
    assert {f["kind"] for f in findings if f["encounter_id"] == "E001"} == {"incorrect", "principal", "drg"}
    assert any(f["determination"] == "overturned" for f in findings)
    codes = list(csv.DictReader(paths["codes"].open()))
    assert sum(1 for c in codes if c["verdict"] == "missing") == 1
    fair = list(csv.DictReader(paths["fairness"].open()))
    assert {r["attribute"] for r in fair} >= {"sex", "language", "payer"}


def test_empty_report_refused() -> None:
    with pytest.raises(AuditReportError):
        build_report([], [])


def test_model_card_from_model_dir(tmp_path: Path) -> None:
    manifest, narrative = load_model_card_inputs(FIX / "model")
    fr = fairness_report(synthetic_population(2000, seed=4, planted={"language": ("Spanish", "accuracy", -0.2)}))
    card = build_model_card(manifest, narrative, local_fairness=fr, audit_metrics={"encounter accuracy": 0.88})
    assert card.name == "opencac-supervised" and card.version == "opencac-2026.2"
    titles = [t for t, _ in card.sections]
    assert titles == ["1. Details and output of the intervention", "2. Purpose of the intervention",
                      "3. Cautioned out-of-scope use", "4. Intervention development details and input features",
                      "5. Process used to ensure fairness in development", "6. External validation process",
                      "7. Quantitative measures of performance", "8. Ongoing maintenance of implementation and use"]
    md = card.to_markdown()
    assert "Volunteer maintainers" in md and "Not yet validated outside CodiEsp." in md
    assert "ICD-10-CM 2026" in md and "500 documents" in md and "| Test data: map | 0.412 |" in md
    assert "F 52%" in md and "Local audit: encounter accuracy" in md
    assert "Coding accuracy for Preferred language = Spanish (local data)" in md
    paths = card.write(tmp_path)
    html = paths["html"].read_text()
    assert "Intended users" in html and "Cautioned out-of-scope use" in html and "alert" in html
    bare = build_model_card({"name": "x"})
    assert NOT_PROVIDED in bare.to_markdown() and "Fairness of the intervention" in bare.to_markdown()
    with pytest.raises(AuditInputError):
        load_model_card_inputs(tmp_path / "missing")


def test_tiny_fairness_population_renders_and_says_nothing_judged() -> None:
    from opencac.audit.scoring import AuditorCoding, CodedEncounter, score_encounter

    scores = [score_encounter(CodedEncounter("E1", ("I10",)), AuditorCoding(("I10",)))]
    fr = fairness_report(synthetic_population(20, seed=1))  # every group below 30; some rates are 100%
    html = render_html(build_report(scores, [], fairness=fr))
    assert "no group could be judged" in html and "no group was large enough to judge" in html
