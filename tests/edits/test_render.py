"""``render_rules`` prints the final codes, edits, queries and DRG on a rich console."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from opencac.edits import apply_rules
from opencac.edits.render import render_rules

from .helpers import make_result


def _heart_failure_outcome(kb: Any) -> Any:
    """An inpatient heart-failure note through the rules: a combination code, a query, a DRG."""
    text = "Congestive heart failure, EF 30%, on furosemide. Hypertension. Cough."
    res = make_result(text, [{"code": "I50.9", "ev": "Congestive heart failure"}, {"code": "I10", "ev": "Hypertension"},
                             {"code": "R05.9", "ev": "Cough"}],
                      context={"setting": "inpatient", "age": 70, "sex": "F", "discharge_date": "2025-11-03"}, kb=kb)
    return apply_rules(res, text, kb=kb, strict=True)


def test_render_rules_shows_everything(kb: Any) -> None:
    out = _heart_failure_outcome(kb)
    con = Console(record=True, width=160)
    render_rules(out, con)
    txt = con.export_text()
    assert "Final code set" in txt and "I11.0" in txt and "principal" in txt
    assert "COMBINATION-CODE" in txt and "Physician query Q1" in txt and "Clinically undetermined" in txt
    assert f"MS-DRG {out.drg.drg}" in txt
    assert "defaulted: " in txt and "poa" in txt


def test_render_gives_each_edit_a_compact_block(kb: Any) -> None:
    """At 80 columns an edit takes a header line (severity, id, fix) and its message and citation
    at full width, not a five-column table that wraps every message into a narrow column."""
    out = _heart_failure_outcome(kb)
    con = Console(record=True, width=80)
    render_rules(out, con)
    lines = con.export_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Edits ("))
    heads = [ln for ln in lines[start + 1:] if ln.split()[:1] and ln.split()[0] in ("error", "warning", "info")]
    assert len(heads) == len(out.edits)
    for e in out.edits:  # each message appears whole, wrapped at most over a few full-width lines
        first = e.message.split()[0]
        assert any(ln.startswith("  " + first) for ln in lines), e.message
    end = next(i for i, ln in enumerate(lines) if i > start and (not ln.strip() or ln.startswith("Applied by")))
    block = lines[start:end]
    assert len(block) <= 5 * len(out.edits) + 1
    assert all(len(ln) <= 80 and ln == ln.rstrip() for ln in block)


def test_render_separates_applied_changes_and_proposed_fixes(kb: Any) -> None:
    text = "Pneumonia. Cough. Hypertension. Possible heart failure on exam."
    res = make_result(text, [{"code": "J18.9", "ev": "Pneumonia", "conf": 0.9}, {"code": "R05.9", "ev": "Cough", "conf": 0.15},
                             {"code": "I10", "ev": "Hypertension", "conf": 0.9},
                             {"code": "I50.9", "ev": "heart failure", "conf": 0.5}],
                      context={"setting": "outpatient"}, kb=kb)
    out = apply_rules(res, text, kb=kb, strict=True)
    con = Console(record=True, width=200)
    render_rules(out, con)
    txt = con.export_text()
    assert "Applied by the rules" in txt and "remove R05.9" in txt
    assert "Proposed fixes for the coder" in txt and "replace I10 -> I11.0" in txt
    assert "applied: remove R05.9" in txt and "proposed: replace I10 -> I11.0" in txt
