"""Decisions become labelled examples tied to their evidence; finalised encounters become documents."""

from __future__ import annotations

import pytest

from opencac.errors import FeedbackError
from opencac.learning import (
    Decision,
    ExampleLog,
    documents_as_decisions,
    examples_from_decision,
    examples_from_decisions,
    finalised_document,
)

EV = [{"start": 5, "end": 14, "text": "pneumonia", "section": "assessment"}]


def test_each_action_gives_its_labels() -> None:
    acc = examples_from_decision(Decision("e1", "J18.9", "icd10cm", "accept", evidence=EV, confidence=0.8))
    assert [(x.code, x.label, x.action) for x in acc] == [("j189", True, "accept")]
    assert acc[0].evidence == EV and acc[0].confidence == 0.8
    rej = examples_from_decision(Decision("e1", "I10", "icd10cm", "reject", reason="not documented"))
    assert [(x.code, x.label) for x in rej] == [("i10", False)]
    add = examples_from_decision(Decision("e1", "0BH17EZ", "icd10pcs", "add"))
    assert [(x.code, x.system, x.label) for x in add] == [("0bh17ez", "icd10pcs", True)]
    mod = examples_from_decision(Decision("e1", "E11.9", "icd10cm", "modify", new_code="E11.65", evidence=EV))
    assert [(x.code, x.label) for x in mod] == [("e119", False), ("e1165", True)]
    assert all(x.evidence == EV for x in mod)


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (Decision("e1", "J18.9", "icd10cm", "approve"), "unknown decision action"),
        (Decision("e1", "J18.9", "icd9", "accept"), "unknown code system"),
        (Decision("e1", " ", "icd10cm", "accept"), "needs a code"),
        (Decision("e1", "E11.9", "icd10cm", "modify"), "needs new_code"),
    ],
)
def test_bad_decisions_are_clear_errors(decision: Decision, message: str) -> None:
    with pytest.raises(FeedbackError, match=message):
        examples_from_decision(decision)


def test_finalised_document_keeps_final_and_rejected_codes() -> None:
    ds = [
        Decision("e1", "J18.9", "icd10cm", "accept"),
        Decision("e1", "I10", "icd10cm", "reject"),
        Decision("e1", "E11.9", "icd10cm", "modify", new_code="E11.65"),
    ]
    doc = finalised_document("e1", "note text", [("J18.9", "icd10cm"), ("E11.65", "icd10cm")], ds, org="h1")
    assert doc.codes["icd10cm"] == ["j189", "e1165"]
    assert doc.rejected["icd10cm"] == ["i10", "e119"]
    assert doc.org == "h1"
    back = documents_as_decisions(doc)
    assert sorted((d.code, d.action) for d in back) == [("e1165", "accept"), ("e119", "reject"), ("i10", "reject"),
                                                        ("j189", "accept")]


def test_example_log_round_trip(tmp_path) -> None:
    log = ExampleLog(tmp_path / "ex.jsonl")
    exs = examples_from_decisions([Decision("e1", "J18.9", "icd10cm", "accept", evidence=EV),
                                   Decision("e1", "I10", "icd10cm", "reject")])
    assert log.append(exs) == 2
    back = list(log)
    assert [(x.code, x.label) for x in back] == [("j189", True), ("i10", False)]
    assert back[0].evidence == EV
    (tmp_path / "ex.jsonl").open("a").write("{broken\n")
    with pytest.raises(FeedbackError, match="line 3"):
        list(log)


def test_finalised_document_keeps_where_the_final_codes_were_found() -> None:
    text = "Pt. with pneumonia and diabetes type 2 with hyperglycemia."
    ev_dm = [{"start": 23, "end": 57, "text": text[23:57]}]
    ds = [
        Decision("e1", "J18.9", "icd10cm", "accept", evidence=[{"start": 9, "end": 18, "text": "pneumonia"}]),
        Decision("e1", "E11.9", "icd10cm", "modify", new_code="E11.65", evidence=ev_dm),
        Decision("e1", "I10", "icd10cm", "reject", evidence=[{"start": 0, "end": 3}]),
        Decision("e1", "R73.9", "icd10cm", "accept", evidence=[{"start": 44, "end": 57}]),  # not in the final set
        Decision("e1", "J18.9", "icd10cm", "accept", evidence=[{"start": 9, "end": 999}, {"end": 3}]),  # bad spans
    ]
    doc = finalised_document("e1", text, [("J18.9", "icd10cm"), ("E11.65", "icd10cm")], ds)
    assert doc.evidence == {"icd10cm": {"j189": [(9, 18)], "e1165": [(23, 57)]}}
    assert "pneumonia" == text[9:18]


def test_coded_documents_keep_their_evidence_on_the_learning_path() -> None:
    from opencac.coding.corpus import CodedDocument
    from opencac.learning.feedback import from_coded
    from opencac.learning.online import _as_engine_docs

    doc = CodedDocument("d1", "Fever. Liver ultrasound.", {"icd10cm": ["r509"], "icd10pcs": ["bf45zzz"]},
                        {"icd10cm": {"r509": [(0, 6)]}, "icd10pcs": {"bf45zzz": [(7, 24)]}})
    td = from_coded(doc)
    assert td.evidence == {"icd10cm": {"r509": [(0, 6)]}, "icd10pcs": {"bf45zzz": [(7, 24)]}}
    (back,) = _as_engine_docs([td])
    assert back.evidence == doc.evidence and back.codes == doc.codes
