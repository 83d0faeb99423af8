"""Scoring hand-built audits: exact counts, metrics, defence trail, kappa."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.audit.metrics import (
    bootstrap_prf,
    cohens_kappa,
    compute_metrics,
    group_label_coded_by,
    metrics_by,
    reliability,
    trend_by_model_version,
    wilson_interval,
)
from opencac.audit.scoring import (
    AuditorCoding,
    AuditWorkbook,
    CodedEncounter,
    Finding,
    score_encounter,
)
from opencac.audit.workfile import load_audit_file
from opencac.errors import AuditInputError, AuditOverrideError, AuditStateError

FIX = Path(__file__).parent / "fixtures"


def test_score_encounter_labels_each_code() -> None:
    final = CodedEncounter("E1", ("I50.9", "I10", "E11.9", "Z79.4"), {"I10": "Y", "E11.9": "Y"}, "293", 0.6737,
                           "ai_straight_through")
    audited = AuditorCoding(("I50.23", "E11.9", "I10", "N18.3"), {"I10": "Y", "E11.9": "N"}, "291", 1.3378)
    s = score_encounter(final, audited)
    by = {v.verdict: [] for v in s.verdicts}
    for v in s.verdicts:
        by[v.verdict].append((v.final_code, v.audited_code))
    assert sorted(by["correct"]) == [("E11.9", "E11.9"), ("I10", "I10")]
    assert by["incorrect"] == [("I50.9", "I50.23")]  # same category I50: wrong specificity
    assert by["extra"] == [("Z79.4", None)]
    assert by["missing"] == [(None, "N18.3")]
    assert (s.tp, s.fp, s.fn) == (2, 2, 2)
    assert s.principal_correct is False
    assert s.sequencing_correct is False  # I10 before E11.9 in the final, after it in the audit
    assert s.poa_mismatches == ["E11.9"]
    assert s.drg_correct is False and s.weight_change == pytest.approx(0.6641)
    assert not s.accurate


def test_perfect_encounter_and_normalised_codes() -> None:
    s = score_encounter(CodedEncounter("E2", ("j18.9", "J44.1")), AuditorCoding(("J189", "J44.1")))
    assert s.accurate and (s.tp, s.fp, s.fn) == (2, 0, 0) and s.drg_correct is None


def _workbook() -> AuditWorkbook:
    wb = AuditWorkbook("hand-built", mode="blind")
    wb.add(CodedEncounter("A", ("I50.9", "I10"), drg="293", drg_weight=0.6737, coded_by="ai_straight_through",
                          model_version="m1", confidence=0.9, service_date="2026-01-02"))
    wb.add(CodedEncounter("B", ("J18.9", "J44.1"), drg="193", drg_weight=1.3051, coded_by="coder",
                          model_version="m1", confidence=0.5, service_date="2026-01-03"))
    wb.add(CodedEncounter("C", ("N39.0", "E87.1", "R50.9"), drg="690", drg_weight=0.7869, coded_by="ai_coder",
                          model_version="m2", confidence=0.8, service_date="2026-03-01"))
    return wb


def test_blind_worksheet_hides_final_codes_until_recoded() -> None:
    wb = _workbook()
    assert wb.worksheet("A")["final_codes"] is None and wb.worksheet("A")["final_drg"] is None
    wb.record_coding("A", AuditorCoding(("I50.9", "I10"), drg="293", drg_weight=0.6737))
    assert wb.worksheet("A")["final_codes"] == ["I50.9", "I10"]
    assert AuditWorkbook("r", mode="review", encounters=wb.encounters).worksheet("B")["final_codes"] == ["J18.9", "J44.1"]
    with pytest.raises(AuditInputError):
        AuditWorkbook("x", mode="peek")
    with pytest.raises(AuditInputError):
        wb.worksheet("Z")


def test_hand_built_audit_exact_metrics() -> None:
    wb = _workbook()
    wb.record_coding("A", AuditorCoding(("I50.23", "I10"), drg="291", drg_weight=1.3378), auditor="aud1")
    wb.record_coding("B", AuditorCoding(("J18.9", "J44.1"), drg="193", drg_weight=1.3051), auditor="aud1")
    wb.record_coding("C", AuditorCoding(("N39.0", "E87.1", "B96.20"), drg="690", drg_weight=0.7869), auditor="aud1")
    kinds = sorted(f.kind for f in wb.findings)
    assert kinds == ["drg", "extra", "incorrect", "missing", "principal"]
    (pdx,) = [f for f in wb.findings if f.kind == "principal"]
    assert (pdx.encounter_id, pdx.final_code, pdx.audited_code) == ("A", "I50.9", "I50.23")
    assert {f.root_cause for f in wb.findings if f.encounter_id == "A"} == {"ai_error"}
    assert {f.root_cause for f in wb.findings if f.encounter_id == "C"} == {"coder_error"}
    m = compute_metrics(wb.final_scores(), base_rate=6000.0, n_boot=500)
    # codes: A 1 correct 1 incorrect; B 2 correct; C 2 correct 1 extra 1 missing
    assert m.code_counts == {"correct": 5, "incorrect": 1, "missing": 1, "extra": 1}
    assert m.precision.value == pytest.approx(5 / 7) and m.recall.value == pytest.approx(5 / 7)
    assert m.encounter_accuracy.k == 1 and m.encounter_accuracy.n == 3
    assert m.drg_accuracy.value == pytest.approx(2 / 3)
    assert m.principal_accuracy.value == pytest.approx(2 / 3)
    assert m.weight_change_net == pytest.approx(0.6641)
    assert m.financial_impact_net == pytest.approx(0.6641 * 6000.0)
    assert m.underpaid_encounters == 1 and m.overpaid_encounters == 0
    assert m.precision.low <= m.precision.value <= m.precision.high
    groups = metrics_by(wb.final_scores(), group_label_coded_by, n_boot=100)
    assert groups["Coder alone"].encounter_accuracy.value == 1.0
    assert groups["AI (straight through)"].encounter_accuracy.value == 0.0
    trend = trend_by_model_version(wb.final_scores())
    assert [(t.model_version, t.n) for t in trend] == [("m1", 2), ("m2", 1)]
    assert trend[0].encounter_accuracy.value == 0.5
    bins, ece = reliability(wb.final_scores(), bins=2)
    assert [b.n for b in bins] == [0, 3] and ece == pytest.approx(abs((0.9 + 0.5 + 0.8) / 3 - 1 / 3))


def test_override_needs_rationale_and_citation_then_response_and_determination() -> None:
    wb = _workbook()
    wb.record_coding("A", AuditorCoding(("I50.23", "I10")))
    f = wb.findings[0]
    assert f.id == "A#1" and f.kind == "incorrect"
    with pytest.raises(AuditOverrideError, match="rationale and a guideline citation"):
        f.determine("upheld")
    with pytest.raises(AuditOverrideError, match="guideline citation"):
        wb.defend(f.id, "Echo documents acute on chronic systolic failure", "")
    wb.defend(f.id, "Echo documents acute on chronic systolic failure", "ICD-10-CM Official Guidelines I.C.9.a",
              root_cause="documentation")
    assert f.defended and f.root_cause == "documentation"
    f.respond("coder7", "The note says CHF only")
    f.determine("upheld", "Echo report is part of the record")
    assert f.determination == "upheld" and f.responses[0].by == "coder7"
    with pytest.raises(AuditStateError):
        f.respond("coder7", "again")
    with pytest.raises(AuditInputError):
        Finding("A", "typo")
    with pytest.raises(AuditInputError):
        wb.findings[0].determine("maybe")


def test_overturned_finding_no_longer_counts() -> None:
    wb = _workbook()
    wb.record_coding("C", AuditorCoding(("N39.0", "E87.1")))
    (extra,) = wb.findings
    assert extra.kind == "extra" and extra.final_code == "R50.9"
    assert not wb.final_scores()[0].accurate
    extra.respond("coder2", "Fever documented on day 2 without a cause")
    extra.determine("overturned", "Agree, fever supported")
    s = wb.final_scores()[0]
    assert s.accurate and (s.tp, s.fp, s.fn) == (3, 0, 0)
    assert not wb.scores[0].accurate  # the original score is kept


def test_wilson_matches_newcombe_1998() -> None:
    # Newcombe (1998) Stat Med 17:857, Table I, example 81/263, score method: 0.2553-0.3662
    e = wilson_interval(81, 263)
    assert (round(e.low, 4), round(e.high, 4)) == (0.2553, 0.3662)
    # example 15/148: 0.0624-0.1605
    e = wilson_interval(15, 148)
    assert (round(e.low, 4), round(e.high, 4)) == (0.0624, 0.1605)
    assert wilson_interval(0, 0).value is None


def test_kappa_textbook_example() -> None:
    # Wikipedia "Cohen's kappa", worked example: 50 proposals; both yes 20, A yes/B no 5,
    # A no/B yes 10, both no 15 -> p_o = 0.70, p_e = 0.50, kappa = 0.40.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    k = cohens_kappa(a, b)
    assert k.observed == pytest.approx(0.70) and k.expected == pytest.approx(0.50)
    assert k.kappa == pytest.approx(0.40)
    assert k.low < 0.40 < k.high and k.interpretation == "fair"
    # cross-check against scikit-learn on a 3-category table
    from sklearn.metrics import cohen_kappa_score

    x = list("aabbccabcabcaaab")
    y = list("abbbccaccabbaacb")
    assert cohens_kappa(x, y).kappa == pytest.approx(cohen_kappa_score(x, y))
    assert cohens_kappa(["a", "b"], ["a", "b"]).kappa == pytest.approx(1.0)
    with pytest.raises(AuditInputError):
        cohens_kappa(["a"], ["a", "b"])


def test_bootstrap_reproducible_and_brackets_point() -> None:
    counts = [(3, 1, 0), (2, 0, 1), (4, 0, 0), (1, 2, 2), (5, 1, 1)]
    p1, r1, f1 = bootstrap_prf(counts, n_boot=400, seed=3)
    p2, _, _ = bootstrap_prf(counts, n_boot=400, seed=3)
    assert p1 == p2
    assert p1.value == pytest.approx(15 / 19) and r1.value == pytest.approx(15 / 19)
    assert p1.low < p1.value < p1.high and f1.low <= f1.value <= f1.high


def test_load_audit_file_csv_with_double_audits() -> None:
    af = load_audit_file(FIX / "findings.csv")
    assert list(af.workbook.encounters) == ["E001", "E002", "E004", "E005"]
    f1 = [f for f in af.workbook.findings if f.encounter_id == "E001"]
    assert sorted(f.kind for f in f1) == ["drg", "incorrect", "principal"]
    assert all(f.root_cause == "documentation" and f.citation.startswith("ICD-10-CM") for f in f1)
    (f4,) = [f for f in af.workbook.findings if f.encounter_id == "E004"]
    assert f4.kind == "extra" and f4.determination == "overturned" and f4.responses[0].by == "c1"
    f5 = [f for f in af.workbook.findings if f.encounter_id == "E005"]
    assert sorted(f.kind for f in f5) == ["missing", "poa"] and all(f.determination == "upheld" for f in f5)
    scores = {s.encounter_id: s for s in af.workbook.final_scores()}
    assert scores["E004"].accurate and scores["E002"].accurate and not scores["E001"].accurate
    k = af.kappa()
    assert k is not None and k.n == 2  # E002 both accurate; E005 aud1 error vs aud2 accurate
    assert k.observed == pytest.approx(0.5)


def test_upheld_without_citation_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("encounter_id,final_codes,audited_codes,rationale,determination\n"
                 "X,I10,I10|E78.5,Lipid panel,upheld\n")
    with pytest.raises(AuditOverrideError, match="X"):
        load_audit_file(p)


def test_load_audit_file_json_with_per_finding_defence(tmp_path: Path) -> None:
    import json

    from opencac.audit.sampling import simple_random_sample
    from opencac.audit.synthetic import synthetic_population

    frame = synthetic_population(50, seed=1)
    sample = simple_random_sample(frame, 2, seed=3)
    data = {
        "audit": {"name": "JSON audit", "auditor": "A. Auditor", "mode": "review", "base_rate": 5000},
        "scope": {"settings": ["inpatient"]},
        "sample": sample.to_dict(),
        "encounters": [
            {"encounter_id": sample.ids[0], "coded_by": "ai_straight_through", "model_version": "m1",
             "final": {"codes": ["I50.9", "I10"], "drg": "293", "drg_weight": 0.6737},
             "audited": {"codes": ["I50.23", "I10"], "drg": "291", "drg_weight": 1.3378},
             "rationale": "Echo documents acute on chronic systolic failure",
             "citation": "ICD-10-CM Official Guidelines I.C.9.a.1", "root_cause": "documentation",
             "findings": [{"kind": "drg", "final_code": "293", "audited_code": "291", "root_cause": "edit_missed",
                           "rationale": "MCC missed by the grouper edit", "citation": "MS-DRG v43 definitions",
                           "responses": [{"by": "coder1", "text": "agree"}], "determination": "upheld"}]},
            {"encounter_id": sample.ids[1], "final": {"codes": ["J18.9"]}, "audited": {"codes": ["J18.9"]}},
        ],
    }
    p = tmp_path / "audit.json"
    p.write_text(json.dumps(data))
    af = load_audit_file(p)
    assert af.name == "JSON audit" and af.mode == "review" and af.base_rate == 5000
    assert af.scope is not None and af.scope.settings == ("inpatient",)
    assert af.sample is not None and af.sample.ids == sample.ids and af.sample.reproduces(frame)
    by_kind = {f.kind: f for f in af.workbook.findings}
    assert set(by_kind) == {"incorrect", "principal", "drg"}
    assert by_kind["drg"].root_cause == "edit_missed" and by_kind["drg"].determination == "upheld"
    assert by_kind["drg"].responses[0].text == "agree"
    assert by_kind["incorrect"].root_cause == "documentation" and by_kind["incorrect"].determination is None
    assert af.kappa() is None
    p.write_text(json.dumps({"encounters": [{"encounter_id": "X", "final": {"codes": ["I10"]},
                                             "audited": {"codes": ["I10"]}, "root_cause": "bad_luck"}]}))
    load_audit_file(p)  # no findings: the root cause is never applied
    p.write_text(json.dumps({"encounters": [{"encounter_id": "X", "final": {"codes": ["I10"]},
                                             "audited": {"codes": ["E11.9"]}, "root_cause": "bad_luck"}]}))
    with pytest.raises(AuditInputError, match="bad_luck"):
        load_audit_file(p)
