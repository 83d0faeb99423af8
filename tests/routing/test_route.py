"""Route decisions and their reasons on built CodingResults; policy JSON round trip."""

from __future__ import annotations

import json

import pytest

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence
from opencac.errors import PolicyError
from opencac.routing import (
    CDI_QUERY,
    CODER_REVIEW,
    STRAIGHT_THROUGH,
    RoutingPolicy,
    assess_complexity,
    audit_draw,
    fit_policy,
    projected_automation,
    records_from_results,
    route,
)


def _s(code: str, system: str, conf: float, selected: bool = True, assertion: str = "affirmed",
       section: str = "assessment") -> CodeSuggestion:
    return CodeSuggestion(code, system, code, conf, [Evidence(10, 20, "x", section=section)], assertion,
                          selected=selected)


def _result(doc_id: str = "enc-1", dx=None, px=None, rules=None, setting: str = "inpatient") -> CodingResult:
    return CodingResult(
        doc_id,
        diagnoses=dx if dx is not None else [_s("J18.9", "icd10cm", 0.97)],
        procedures=px if px is not None else [],
        context=EncounterContext(setting=setting),
        rules=rules,
    )


@pytest.fixture()
def policy() -> RoutingPolicy:
    return RoutingPolicy(
        thresholds={"icd10cm:*": 0.9, "icd10pcs:*": 0.8, "icd10cm:outpatient": 0.95},
        complexity_limit=0.35,
        audit_sample_rate=0.0,
    )


def test_simple_encounter_goes_straight_through(policy: RoutingPolicy) -> None:
    d = route(_result(), policy)
    assert d.route == STRAIGHT_THROUGH
    assert d.priority == 3
    assert "pass their thresholds" in d.reasons[0]
    assert not d.failing_codes and not d.audit_sample
    assert set(d.factors) >= {"conditions", "low_confidence", "edits_and_gaps", "note_length"}


def test_low_confidence_code_goes_to_review(policy: RoutingPolicy) -> None:
    d = route(_result(dx=[_s("J18.9", "icd10cm", 0.97), _s("E11.9", "icd10cm", 0.6)]), policy)
    assert d.route == CODER_REVIEW
    assert "E11.9" in d.failing_codes and d.failing_codes["E11.9"] == (0.6, 0.9)
    assert any("E11.9 confidence 0.60 below threshold 0.90" in r for r in d.reasons)


def test_setting_threshold_overrides_system(policy: RoutingPolicy) -> None:
    d = route(_result(dx=[_s("J18.9", "icd10cm", 0.93)], setting="outpatient"), policy)
    assert d.route == CODER_REVIEW and d.failing_codes["J18.9"][1] == 0.95
    assert route(_result(dx=[_s("J18.9", "icd10cm", 0.93)], setting="inpatient"), policy).route == STRAIGHT_THROUGH


def test_group_with_no_threshold_never_passes() -> None:
    pol = RoutingPolicy(thresholds={"icd10cm:*": None}, audit_sample_rate=0.0)
    d = route(_result(dx=[_s("J18.9", "icd10cm", 0.999)]), pol)
    assert d.route == CODER_REVIEW
    assert any("no threshold meets the target precision" in r for r in d.reasons)


def test_open_error_edit_blocks_and_raises_priority(policy: RoutingPolicy) -> None:
    rules = {"edits": [{"id": "EXCLUDES1", "severity": "error", "message": "Excludes1 pair", "codes": ["A", "B"]}],
             "queries": []}
    d = route(_result(rules=rules), policy)
    assert d.route == CODER_REVIEW and d.priority == 1
    assert any("EXCLUDES1" in r for r in d.reasons)
    # a resolved edit no longer blocks
    rules["edits"][0]["status"] = "resolved"
    assert route(_result(rules=rules), policy).route == STRAIGHT_THROUGH


def test_info_edit_does_not_block(policy: RoutingPolicy) -> None:
    rules = {"edits": [{"id": "SEQ", "severity": "info", "message": "sequencing note"}]}
    assert route(_result(rules=rules), policy).route == STRAIGHT_THROUGH


def test_open_query_goes_to_cdi(policy: RoutingPolicy) -> None:
    rules = {"edits": [], "queries": [{"id": "Q-SEPSIS", "question": "Clinical validity of sepsis?"}]}
    d = route(_result(rules=rules), policy)
    assert d.route == CDI_QUERY
    assert "1 open documentation query" in d.reasons[0]
    pol2 = RoutingPolicy.from_dict({**policy.to_dict(), "cdi_on_queries": False})
    assert route(_result(rules=rules), pol2).route == CODER_REVIEW


def test_nothing_proposed_goes_to_review(policy: RoutingPolicy) -> None:
    d = route(_result(dx=[_s("J18.9", "icd10cm", 0.4, selected=False)]), policy)
    assert d.route == CODER_REVIEW and "no code proposed by the engine" in d.reasons


def test_complex_encounter_goes_to_review_with_factors(policy: RoutingPolicy) -> None:
    dx = [_s(c, "icd10cm", 0.99, section=sec) for c, sec in
          [("E11.9", "a"), ("I10", "b"), ("N18.3", "c"), ("J44.9", "d"), ("F32.9", "e"), ("K21.9", "f"),
           ("M19.90", "g"), ("G47.33", "h")]]
    dx.append(_s("R07.9", "icd10cm", 0.95, assertion="uncertain"))
    dx.append(_s("I21.9", "icd10cm", 0.5, selected=False, assertion="negated"))
    dx.append(_s("I21.4", "icd10cm", 0.5, selected=False))
    d = route(_result(dx=dx), policy, text="x" * 9000)
    assert d.route == CODER_REVIEW
    assert d.complexity > policy.complexity_limit
    f = d.factors
    assert f["conditions"]["value"] == 9
    assert f["interactions"]["value"] == 8  # selected chapters E I N J F K M G R: 9 distinct - 1
    assert "R07.9" in f["uncertain_assertions"]["detail"]["uncertain"]
    assert f["uncertain_assertions"]["detail"]["conflicting_categories"] == ["i21"]
    assert f["note_length"]["normalized"] == 1.0
    assert any("complexity" in r for r in d.reasons)


def test_rare_procedure_factor() -> None:
    pol = RoutingPolicy(thresholds={"icd10cm:*": 0.5, "icd10pcs:*": 0.5}, code_counts={"bw03zzz": 40}, rare_count=2)
    res = _result(px=[_s("BW03ZZZ", "icd10pcs", 0.9), _s("02703DZ", "icd10pcs", 0.9)])
    cx = assess_complexity(res, pol)
    assert cx.factors["rare_procedures"]["detail"] == ["02703DZ"]


def test_audit_sampling_is_reproducible_and_near_rate() -> None:
    draws = [audit_draw(f"doc-{i}", 0.1, seed=42) for i in range(5000)]
    assert draws == [audit_draw(f"doc-{i}", 0.1, seed=42) for i in range(5000)]
    assert 0.08 < sum(draws) / 5000 < 0.12
    assert draws != [audit_draw(f"doc-{i}", 0.1, seed=43) for i in range(5000)]
    pol = RoutingPolicy(thresholds={"icd10cm:*": 0.5}, audit_sample_rate=1.0, seed=1)
    d = route(_result(), pol)
    assert d.route == STRAIGHT_THROUGH and d.audit_sample and any("sampled for audit" in r for r in d.reasons)


def test_policy_save_load_and_errors(tmp_path, policy: RoutingPolicy) -> None:
    p = policy.save(tmp_path / "policy.json")
    again = RoutingPolicy.load(p)
    assert again.thresholds == policy.thresholds
    assert json.loads(p.read_text())["format"] == "opencac.routing-policy.v1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"target_precison": 0.9}))
    with pytest.raises(PolicyError, match="unknown policy key"):
        RoutingPolicy.load(bad)
    bad.write_text("{not json")
    with pytest.raises(PolicyError, match="not valid JSON"):
        RoutingPolicy.load(bad)
    with pytest.raises(PolicyError, match="not found"):
        RoutingPolicy.load(tmp_path / "missing.json")
    with pytest.raises(PolicyError, match="audit_sample_rate"):
        RoutingPolicy(audit_sample_rate=2).validate()


def test_fit_policy_from_results_and_projection() -> None:
    results, gold = [], {"icd10cm": {}, "icd10pcs": {}}
    for i in range(40):
        good = i % 4 != 0
        results.append(_result(f"d{i}", dx=[_s("J18.9", "icd10cm", 0.95 if good else 0.7),
                                           _s("E11.9", "icd10cm", 0.3, selected=False)]))
        gold["icd10cm"][f"d{i}"] = ["j18.9"] if good else ["i10"]
    recs, gc = records_from_results(results, gold)
    assert gc["icd10cm:*"] == 40 and len(recs) == 80
    pol = fit_policy(recs, gc, target_precision=0.95, base=RoutingPolicy(audit_sample_rate=0.0), method="empirical")
    assert pol.thresholds["icd10cm:*"] == 0.95
    assert pol.fits["icd10cm:*"]["recall"] == pytest.approx(30 / 40)
    proj = projected_automation(results, pol)
    assert proj["encounters"] == 40 and proj["straight_through_rate"] == pytest.approx(0.75)
    # the default asks a lower bound of precision (30 right codes pooled with their 0.95
    # confidences) to meet the target: enough for 0.95, not for 0.97, which the observed 30/30 meets
    default = fit_policy(recs, gc, target_precision=0.95)
    assert default.thresholds["icd10cm:*"] == 0.95
    assert default.meta["threshold_method"]["method"] == "bayes"
    assert fit_policy(recs, gc, target_precision=0.97).thresholds["icd10cm:*"] is None
    assert fit_policy(recs, gc, target_precision=0.97, method="empirical").thresholds["icd10cm:*"] == 0.95


def test_applied_fix_does_not_block_and_drg_impact_raises_cdi_priority(policy: RoutingPolicy) -> None:
    rules = {"edits": [{"id": "E11-COMBO", "severity": "error", "message": "combination code", "applied": True}]}
    assert route(_result(rules=rules), policy).route == STRAIGHT_THROUGH
    q = {"queries": [{"id": "Q1", "question": "Acuity of heart failure?"}]}
    assert route(_result(rules={**q, "drg": {"drg": "293", "impacts": []}}), policy).priority == 2
    moving = {**q, "drg": {"drg": "293", "impacts": [{"change": "query Q1 -> I50.21", "weight_delta": 0.45}]}}
    assert route(_result(rules=moving), policy).priority == 1


def test_proposed_fix_blocks_whatever_its_severity() -> None:
    # Only errors block under this policy: a proposed fix still needs a person, even an info one.
    pol = RoutingPolicy(thresholds={"icd10cm:*": 0.9}, complexity_limit=0.35, audit_sample_rate=0.0,
                        blocking_edit_severities=["error"])
    warn = {"id": "EXCLUDES1", "severity": "warning", "message": "pair", "codes": ["R73.9", "E11.65"],
            "fix": {"remove": ["R73.9"]}, "applied": False, "fix_status": "proposed"}
    d = route(_result(rules={"edits": [warn]}), pol)
    assert d.route == CODER_REVIEW
    assert any("EXCLUDES1 with a proposed fix" in r for r in d.reasons)
    info = {**warn, "severity": "info"}
    assert route(_result(rules={"edits": [info]}), pol).route == CODER_REVIEW
    # applied / unchanged fixes, and a proposed fix the coder resolved, do not block
    for e in ({**warn, "applied": True, "fix_status": "applied"}, {**warn, "fix_status": "unchanged"},
              {**warn, "status": "resolved"}):
        assert route(_result(rules={"edits": [e]}), pol).route == STRAIGHT_THROUGH, e


def test_rules_added_code_without_engine_confidence_needs_review(policy: RoutingPolicy) -> None:
    from opencac.routing import RULES_ADDED

    added = _s("Z79.4", "icd10cm", 0.0)
    added.signals[RULES_ADDED] = 1.0
    d = route(_result(dx=[_s("J18.9", "icd10cm", 0.97), added]), policy)
    assert d.route == CODER_REVIEW and "Z79.4" in d.failing_codes
    assert any("Z79.4 added by the rules layer without an engine confidence" in r for r in d.reasons)
    # a code the rules wrote with a confidence (e.g. in place of an engine code) is judged by it
    assert route(_result(dx=[_s("J18.9", "icd10cm", 0.97), _s("I12.9", "icd10cm", 0.96)]), policy).route \
        == STRAIGHT_THROUGH
