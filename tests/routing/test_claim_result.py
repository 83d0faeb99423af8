"""Routing judges the claim the rules layer built, not the engine's raw selection (batch, CLI)."""

from __future__ import annotations

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence
from opencac.routing import CODER_REVIEW, RULES_ADDED, STRAIGHT_THROUGH, RoutingPolicy, claim_result, route


def _s(code: str, conf: float, selected: bool = True) -> CodeSuggestion:
    return CodeSuggestion(code, "icd10cm", code, conf, [Evidence(0, 5, "x", section="assessment")], "affirmed",
                          selected=selected)


def _fc(code: str, conf: float | None, added_by: str | None = None) -> dict:
    return {"code": code, "system": "icd10cm", "description": code, "confidence": conf, "added_by": added_by}


def _result(final: list[dict] | None, dx: list[CodeSuggestion]) -> CodingResult:
    rules = None if final is None else {"final_codes": final, "edits": [], "queries": []}
    return CodingResult("enc-1", diagnoses=dx, context=EncounterContext(setting="inpatient"), rules=rules)


POLICY = RoutingPolicy(thresholds={"icd10cm:inpatient": 0.9}, complexity_limit=1.0)


def test_without_rules_the_result_is_unchanged() -> None:
    res = _result(None, [_s("J18.9", 0.97)])
    assert claim_result(res) is res


def test_a_code_the_rules_removed_is_not_judged() -> None:
    # The engine selected a weak header the rules dropped: the claim (J18.9) passes on its own.
    res = _result([_fc("J18.9", 0.97)], [_s("J18.9", 0.97), _s("J18", 0.40)])
    view = claim_result(res)
    assert [s.code for s in view.diagnoses if s.selected] == ["J18.9"]
    assert route(res, POLICY).route == CODER_REVIEW  # the raw selection fails on J18
    assert route(view, POLICY).route == STRAIGHT_THROUGH
    assert [s.selected for s in res.diagnoses] == [True, True]  # the engine's lists are untouched


def test_a_code_the_rules_added_without_confidence_needs_a_coder() -> None:
    res = _result([_fc("E11.22", 0.97), _fc("Z79.4", None, "opencac.companions.v1")], [_s("E11.22", 0.97)])
    view = claim_result(res)
    added = [s for s in view.diagnoses if s.code == "Z79.4"]
    assert len(added) == 1 and added[0].selected and added[0].signals.get(RULES_ADDED)
    assert route(res, POLICY).route == STRAIGHT_THROUGH  # the raw selection never sees Z79.4
    d = route(view, POLICY)
    assert d.route == CODER_REVIEW
    assert any("Z79.4 added by the rules layer" in r for r in d.reasons)


def test_a_replacement_keeps_the_confidence_the_rules_carried() -> None:
    # I10 rewritten to I12.9 by the hypertension/CKD rule: the new code carries I10's confidence.
    res = _result([_fc("I12.9", 0.95, "opencac.hypertension.v1"), _fc("N18.30", 0.93)],
                  [_s("I10", 0.95), _s("N18.30", 0.93)])
    view = claim_result(res)
    sel = {s.code: s.confidence for s in view.diagnoses if s.selected}
    assert sel == {"I12.9": 0.95, "N18.30": 0.93}
    assert route(view, POLICY).route == STRAIGHT_THROUGH
    low = _result([_fc("I12.9", 0.5, "opencac.hypertension.v1")], [_s("I10", 0.5)])
    assert route(claim_result(low), POLICY).route == CODER_REVIEW
