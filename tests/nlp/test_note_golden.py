"""End to end on a realistic (invented) discharge summary: sections, sentences, mentions with
assertion and attributes, compared with expected values written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.nlp import Mention, MentionMatcher, analyze

NOTE = (Path(__file__).parent / "fixtures" / "discharge_note.txt").read_text(encoding="utf-8")

TERMS = [
    ("Hypertension", "I10"), ("Diabetes, type 2", "E11.9"), ("Chronic kidney disease, stage 3b", "N18.32"),
    ("Dyspnea", "R06.00"), ("Pain, chest", "R07.9"), ("Fever", "R50.9"), ("Chills", "R68.83"),
    ("Replacement, knee, total", "0SRC0J9"), ("Infarction, myocardial", "I21.9"), ("Cancer, breast", "C50.919"),
    ("Smoker", "F17.210"), ("Effusion, pleural", "J90"), ("Pneumothorax", "J93.9"),
    ("Failure, heart, diastolic, acute on chronic", "I50.33"), ("Failure, heart, congestive", "I50.9"),
    ("Pneumonia", "J18.9"), ("Infection, urinary tract", "N39.0"), ("Edema", "R60.9"),
]


@pytest.fixture(scope="module")
def mentions() -> list[Mention]:
    return MentionMatcher.build(TERMS).find(analyze(NOTE, "discharge"))


def _first(ms: list[Mention], code: str, after: str = "") -> Mention:
    lo = NOTE.index(after) if after else 0
    return next(m for m in ms if code in m.payloads and m.start >= lo and not m.subsumed)


def test_sections() -> None:
    doc = analyze(NOTE)
    assert [s.label for s in doc.sections] == [
        "discharge", "hpi", "hpi", "past_history", "family_history", "social_history", "medications",
        "allergies", "exam", "labs", "imaging", "hospital_course", "assessment", "diagnoses",
    ]
    for s in doc.sections:
        assert NOTE[s.start : s.end] == NOTE[s.start : s.end].strip()


def test_sentences_keep_abbreviations_and_numbers() -> None:
    sents = [NOTE[s.start : s.end] for s in analyze(NOTE).sentences]
    assert ("Mr. J. Doe is a 72 y.o. male with a history of HTN, T2DM and CKD stage 3b who presents with 3 days "
            "of worsening dyspnea.") in sents
    assert "Medications: metformin 500 mg b.i.d., lisinopril 10 mg daily." not in sents  # heading split off
    assert "metformin 500 mg b.i.d., lisinopril 10 mg daily." in sents
    assert "Labs:" in sents and "Hb 10.2 g/dL, creatinine 2.1 mg/dL." in sents


@pytest.mark.parametrize(
    ("code", "after", "text", "section", "assertion"),
    [
        ("I10", "", "HTN", "hpi", "historical"),
        ("R06.00", "HISTORY OF PRESENT", "dyspnea", "hpi", "affirmed"),
        ("R07.9", "", "chest pain", "hpi", "negated"),
        ("R50.9", "", "fever", "hpi", "negated"),
        ("R68.83", "", "chills", "hpi", "negated"),
        ("I10", "Past Medical History", "Hypertension", "past_history", "historical"),
        ("0SRC0J9", "", "total knee replacement", "past_history", "historical"),
        ("I21.9", "Family", "MI", "family_history", "family"),
        ("C50.919", "", "breast cancer", "family_history", "family"),
        ("F17.210", "", "smoker", "social_history", "historical"),
        ("J90", "", "pleural effusions", "imaging", "affirmed"),
        ("J93.9", "", "pneumothorax", "imaging", "negated"),
        ("I50.33", "Hospital Course", "acute on chronic diastolic CHF", "hospital_course", "affirmed"),
        ("J18.9", "", "Pneumonia", "hospital_course", "negated"),
        ("N39.0", "", "UTI", "hospital_course", "uncertain"),
        ("R06.00", "Assessment", "dyspnea", "assessment", "hypothetical"),
        ("N18.32", "Discharge Diagnoses", "Chronic kidney disease, stage 3b", "diagnoses", "affirmed"),
    ],
)
def test_mentions(mentions: list[Mention], code: str, after: str, text: str, section: str, assertion: str) -> None:
    m = _first(mentions, code, after)
    assert (m.text, m.section, m.assertion) == (text, section, assertion)
    assert NOTE[m.start : m.end] == m.text


def test_a_match_inside_the_words_of_a_longer_one_is_subsumed(mentions: list[Mention]) -> None:
    """"CHF" (congestive heart failure, I50.9) lies inside "acute on chronic diastolic CHF" (I50.33),
    though that match holds only the "heart failure" of the abbreviation's expansion."""
    lo = NOTE.index("Hospital Course")
    chf = [m for m in mentions if "I50.9" in m.payloads and m.start >= lo and m.text == "CHF"]
    assert chf and all(m.subsumed for m in chf)


def test_attributes(mentions: list[Mention]) -> None:
    hf = _first(mentions, "I50.33", "Assessment")
    assert hf.attributes.get("acuity") == "acute_on_chronic"
    assert hf.attributes.get("type") == "diastolic"
    ckd = _first(mentions, "N18.32", "Discharge Diagnoses")
    assert ckd.attributes.get("stage") == "3b"
    knee = _first(mentions, "0SRC0J9")
    assert knee.attributes.get("laterality") == "right"
    edema = _first(mentions, "R60.9")
    assert edema.attributes.get("laterality") == "bilateral"
