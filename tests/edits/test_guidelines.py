"""Table-driven guideline suite: each case names the Official Guidelines clause or
convention it exercises (see ``guideline_cases.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .guideline_cases import CASES
from .helpers import make_result
from opencac.edits import apply_rules, check_claim
from opencac.edits.model import RulesOutcome


def run_case(case: dict[str, Any], kb: Any) -> RulesOutcome:
    if "claim" in case:
        return check_claim(case["claim"], kb=kb, strict=True)
    result = make_result(case["text"], case.get("dx"), case.get("px"), case.get("context"), kb=kb,
                         model=case.get("model", "dictionary-only"))
    out = apply_rules(result, case["text"], kb=kb, strict=True)
    assert result.rules == out.to_dict()
    json.dumps(out.to_dict())  # plain data all the way down (stored by the service as JSON)
    return out


def check_expectations(case: dict[str, Any], out: RulesOutcome) -> None:
    dx = [c.code for c in out.diagnoses]
    px = [c.code for c in out.procedures]
    ids = set(out.edit_ids())
    where = f"{case['id']} [{case['clause']}]: dx={dx} px={px} edits={sorted(ids)}"
    if "final" in case:
        assert dx == case["final"], where
    if "final_px" in case:
        assert px == case["final_px"], where
    for code in case.get("has", []):
        assert code in dx + px, where
    for code in case.get("lacks", []):
        assert code not in dx + px, where
    if "principal" in case:
        assert dx and dx[0] == case["principal"], where
    if "role" in case:
        assert out.diagnoses[0].role == case["role"], where
    for eid in case.get("edits", []):
        assert eid in ids, where
    for eid in case.get("no_edits", []):
        assert eid not in ids, where
    status = {}
    for e in out.edits:
        status.setdefault(e.id, set()).add(e.fix_status)
    for eid in case.get("proposed", []):
        # the fix is left to the coder: codes unchanged, an open warning/error carries the fix
        assert "proposed" in status.get(eid, set()), f"{where} fix_status={status}"
        assert any(e.id == eid and e.fix and not e.applied and e.severity in ("warning", "error")
                   for e in out.edits) or case.get("proposed_info"), where
    for eid in case.get("applied", []):
        assert "applied" in status.get(eid, set()), f"{where} fix_status={status}"
    for e in out.edits:
        if e.fix_status == "proposed":
            assert not e.applied and e.fix, where
    for eid, text in case.get("says", {}).items():  # the edit's message gives this reason
        assert any(e.id == eid and text in e.message for e in out.edits), f"{where} {[e.message for e in out.edits]}"
    for eid, text in case.get("not_says", {}).items():
        assert not any(e.id == eid and text in e.message for e in out.edits), f"{where} {[e.message for e in out.edits]}"
    if "errors" in case:
        assert out.has_errors() == case["errors"], where
    topics = [q.topic for q in out.queries]
    for t in case.get("queries", []):
        assert t in topics, f"{where} queries={topics}"
    if case.get("no_queries"):
        assert topics == [], f"{where} queries={topics}"
    for e in out.edits:
        assert e.citation, f"{case['id']}: edit {e.id} has no citation"
        assert e.severity in ("error", "warning", "info")
        assert e.rule, f"{case['id']}: edit {e.id} does not name its rule"


def test_suite_size_and_clauses() -> None:
    assert len(CASES) >= 80
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert all(c.get("clause") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}|{c['clause']}" for c in CASES])
def test_guideline_case(case: dict[str, Any], kb: Any) -> None:
    check_expectations(case, run_case(case, kb))


@pytest.mark.parametrize(("combo", "acute", "chronic"), [
    ("I50.23", "I50.21", "I50.22"), ("I50.43", "I50.41", "I50.42"), ("J96.21", "J96.01", "J96.11"),
    ("K80.12", "K80.00", "K80.10"), ("K81.2", "K81.0", "K81.1"), ("D89.812", "D89.810", "D89.811"),
])
def test_acuity_parts_read_from_the_tabular_titles(kb: Any, combo: str, acute: str, chronic: str) -> None:
    from opencac.edits.guidelines import acuity_parts

    assert acuity_parts(kb, combo) == ((acute,), (chronic,))


@pytest.mark.parametrize("code", ["I50.22", "E11.9", "A24.2", "J96.01"])
def test_codes_that_are_no_acute_on_chronic_combination_have_no_parts(kb: Any, code: str) -> None:
    from opencac.edits.guidelines import acuity_parts

    assert acuity_parts(kb, code) == ((), ())


def test_a_proposed_fix_never_names_a_code_a_later_rule_took_out(kb: Any) -> None:
    """COMBINATION-CODE proposes "remove E11.9; add E11.22"; a later rule drops E11.9 beside
    E11.65. The proposal left to the coder must be "add E11.22" (the workbench refuses a fix that
    names a code no longer on the claim), and no proposed fix may name a code the claim lacks."""
    text = "Assessment: Type 2 diabetes mellitus with hyperglycemia. Chronic kidney disease.\n"
    result = make_result(text, [{"code": "E11.65", "ev": "Type 2 diabetes mellitus with hyperglycemia", "conf": 0.65},
                                {"code": "N18.9", "ev": "Chronic kidney disease", "conf": 0.6},
                                {"code": "E11.9", "ev": "Type 2 diabetes mellitus", "conf": 0.6}],
                         context={"setting": "outpatient", "date_of_service": "2025-11-03"}, kb=kb)
    out = apply_rules(result, text, kb=kb, strict=True)
    final = {c.code for c in out.final_codes}
    assert "E11.9" not in final and "E11.65" in final
    combo = [e for e in out.edits if e.id == "COMBINATION-CODE" and e.fix_status == "proposed"
             and any((a if isinstance(a, str) else a["code"]) == "E11.22" for a in e.fix.get("add", []))]
    assert combo, [(e.id, e.fix, e.fix_status) for e in out.edits]
    for e in out.edits:
        if e.fix_status != "proposed":
            continue
        named = list(e.fix.get("remove") or []) + list((e.fix.get("replace") or {}).keys())
        assert all(c in final for c in named), (e.id, e.fix, sorted(final))
        for a in e.fix.get("add") or []:
            spec = {"code": a} if isinstance(a, str) else a
            assert spec["code"] not in final
            assert all(spec[k] in final for k in ("before", "after") if spec.get(k)), (e.id, spec)
