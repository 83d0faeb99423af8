"""CDI queries follow compliant query practice: non-leading, indicators quoted with offsets,
"Other" and "Clinically undetermined" options, never a word about reimbursement."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .guideline_cases import CASES
from .helpers import make_result
from opencac.edits import apply_rules
from opencac.edits.cdi import GAPS
from opencac.edits.model import Query

FORBIDDEN = re.compile(r"\b(drg|ms-drg|reimburs\w*|payment|pay|paid|revenue|cc|mcc|severity of illness|case mix|"
                       r"financial|dollars?|money|cost|denial|audit|relative weight|case weight)\b|\$", re.I)
LEADING = re.compile(r"\b(please (document|add|confirm) (that|the diagnosis of)|can you (add|document) "
                     r"(acute|chronic|sepsis|malnutrition)|consider documenting)\b", re.I)

CDI_CASES = [c for c in CASES if c.get("queries")]


def _queries(case: dict[str, Any], kb: Any) -> tuple[str, list[Query]]:
    res = make_result(case["text"], case.get("dx"), case.get("px"), case.get("context"), kb=kb)
    out = apply_rules(res, case["text"], kb=kb, strict=True)
    return case["text"], out.queries


def _check_compliant(text: str, q: Query) -> None:
    body = q.physician_text()
    own = " ".join([q.question] + [o.label for o in q.options])  # everything but the quoted indicators
    assert not FORBIDDEN.search(own), f"{q.id}: forbidden wording {FORBIDDEN.search(own)}"
    assert not LEADING.search(own), f"{q.id}: leading wording"
    labels = [o.label for o in q.options]
    assert "Other (please specify)" in labels and "Clinically undetermined" in labels
    assert len(labels) >= 4, "multiple choice with more than one reasonable option"
    assert q.clinical_indicators, "a query presents the clinical indicators"
    for s in q.clinical_indicators:
        assert text[s.start:s.end] == s.text and s.text in body
    for o in q.options:
        assert (o.code or "") not in body or not o.code, "codes are not shown to the provider"
    assert q.citation and "Compliant Query" in q.citation


@pytest.mark.parametrize("case", CDI_CASES, ids=[c["id"] for c in CDI_CASES])
def test_queries_are_compliant(case: dict[str, Any], kb: Any) -> None:
    text, queries = _queries(case, kb)
    assert queries
    for q in queries:
        _check_compliant(text, q)
    d = queries[0].to_dict()
    assert {"id", "topic", "question", "options", "clinical_indicators", "physician_text"} <= set(d)


def test_every_gap_template_is_compliant() -> None:
    for g in GAPS:
        q = Query("Q1", g.topic, g.question, [], [])
        assert not FORBIDDEN.search(g.question) and not LEADING.search(g.question), g.id
        for label, _code in g.options:
            assert not FORBIDDEN.search(label), (g.id, label)
        assert q.question.endswith("?")


def test_forbidden_detector_can_fail() -> None:
    assert FORBIDDEN.search("Documenting acute respiratory failure raises the DRG")
    assert FORBIDDEN.search("the relative weight of the stay")
    assert FORBIDDEN.search("this affects reimbursement")


def test_laterality_query_when_side_not_documented(kb: Any) -> None:
    text = "Otitis media."
    res = make_result(text, [{"code": "H66.90", "ev": "Otitis media"}], kb=kb)
    out = apply_rules(res, text, kb=kb, strict=True)
    assert [q.topic for q in out.queries] == ["laterality"]
    _check_compliant(text, out.queries[0]) if out.queries[0].clinical_indicators else None
    labels = [o.label for o in out.queries[0].options]
    assert {"Right", "Left", "Bilateral", "Other (please specify)", "Clinically undetermined"} <= set(labels)


def test_negated_indicator_not_quoted(kb: Any) -> None:
    text = "Pneumonia. No sputum culture obtained. Chest x-ray shows right lower lobe infiltrate."
    res = make_result(text, [{"code": "J18.9", "ev": "Pneumonia"}],
                      context={"setting": "inpatient", "discharge_date": "2025-11-03"}, kb=kb)
    out = apply_rules(res, text, kb=kb, strict=True)
    q = [q for q in out.queries if q.topic == "pneumonia organism"][0]
    assert all("sputum" not in s.text.lower() for s in q.clinical_indicators)
    assert any("x-ray" in s.text.lower() for s in q.clinical_indicators)
