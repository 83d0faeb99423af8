"""Assertion: per-class accuracy floors on the hand-written sentence set, the CodiEsp offset
set, and targeted behaviour (scope, termination, pseudo-triggers, sections)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.nlp import analyze
from opencac.nlp.assertion import ASSERTIONS, assert_span, assert_within, find_triggers
from opencac.nlp.evaluation import evaluate_assertions, read_cases, read_offset_cases

FIXTURES = Path(__file__).parent / "fixtures"


def _assert(text: str, target: str, occurrence: int = 0) -> tuple[str, str | None]:
    doc = analyze(text)
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(target, start + 1)
    return assert_span(doc, start, start + len(target))


def test_fixture_is_big_and_covers_every_class() -> None:
    cases = read_cases(FIXTURES / "assertion_cases.jsonl")
    assert len(cases) >= 80
    assert {c.expected for c in cases} == set(ASSERTIONS)
    for c in cases:
        assert c.target in c.sentence


def test_per_class_floors_on_hand_written_sentences() -> None:
    report = evaluate_assertions(read_cases(FIXTURES / "assertion_cases.jsonl"))
    assert report.accuracy() >= 0.90, report.table()
    for label in ASSERTIONS:
        assert report.recall(label) >= 0.80, (label, report.table())
        assert report.precision(label) >= 0.80, (label, report.table())


@pytest.mark.parametrize("name", ["assertion_codiesp_dev.jsonl", "assertion_codiesp_train.jsonl"])
def test_per_class_floors_on_codiesp_offsets(codiesp_dir: Path, name: str) -> None:
    cases = read_offset_cases(FIXTURES / name, codiesp_dir)
    assert len(cases) >= 50
    report = evaluate_assertions(cases)
    assert report.accuracy() >= 0.85, report.table()
    for label in ("affirmed", "negated", "uncertain"):
        assert report.recall(label) >= 0.75, (label, report.table())
    for label in ("historical", "family", "hypothetical"):
        assert report.recall(label) >= 0.60, (label, report.table())


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ("No fever, but productive cough.", "productive cough", "affirmed"),  # "but" terminates
        ("No fever, but productive cough.", "fever", "negated"),
        ("Culture grew gram-negative bacilli.", "bacilli", "affirmed"),  # pseudo-trigger
        ("A 45-year-old man with pneumonia.", "pneumonia", "affirmed"),  # "year-old" is not "old"
        ("Old myocardial infarction.", "myocardial infarction", "historical"),
        ("No history of stroke.", "stroke", "negated"),  # negated outranks historical
        ("His mother has a history of breast cancer.", "breast cancer", "family"),  # family outranks historical
        ("Mother without diabetes.", "diabetes", "negated"),
        ("Pneumonia was ruled out.", "Pneumonia", "negated"),  # post-trigger
        ("Rule out pneumonia.", "pneumonia", "uncertain"),
        ("Pneumonia cannot be ruled out.", "Pneumonia", "uncertain"),  # longer trigger wins
        ("A transesophageal ultrasound was performed, ruling out secondary endocarditis.", "endocarditis", "negated"),
        ("Surgery was indicated without ruling out duodenal perforation.", "duodenal perforation", "uncertain"),
        ("A man with alcoholism, who had presented an episode of upper gastrointestinal bleeding.",
         "gastrointestinal bleeding", "historical"),
        ("CT of the abdomen and pelvis was not required.", "CT of the abdomen and pelvis", "negated"),
        ("A blood transfusion was not needed.", "blood transfusion", "negated"),
        ("A woman with a history of duodenal ulcer complaining of pain in the right renal fossa.", "right renal fossa",
         "affirmed"),  # the complaint ends the history's scope
        ("Pneumonia?", "Pneumonia", "uncertain"),
        ("No fever. Cough.", "Cough", "affirmed"),  # scope ends at the sentence
        ("History of pneumonia, no fever.", "pneumonia", "historical"),
        ("Previous MI, CKD stage 3.", "CKD", "affirmed"),  # short-range triggers stop at a comma
        ("Serology for HIV was negative.", "HIV", "negated"),
        ("CT was negative for pulmonary embolism.", "pulmonary embolism", "negated"),
        ("Diabetes in his father.", "Diabetes", "family"),
        ("Diabetes, father with hypertension.", "Diabetes", "affirmed"),
        ("The patient denies fever, chills, night sweats, weight loss, cough or dyspnea.", "dyspnea", "negated"),
        ("There was no fever and the patient presented jaundice.", "jaundice", "affirmed"),
        ("A girl with no personal or family history of interest was referred to the allergy unit.", "allergy",
         "affirmed"),
        ("There is no suspicion of hyperparathyroidism or other tumors.", "tumors", "negated"),
        ("A woman presenting a history of abdominal pain in the right hypochondrium.", "abdominal pain",
         "affirmed"),
        ("We planned to remove the tumors that cause the deformity.", "deformity", "affirmed"),
        ("A 2-month history of fever.", "fever", "affirmed"),
        ("No skin lesions suggestive of angiokeratomas.", "angiokeratomas", "negated"),
        ("If the patient develops fever, return.", "fever", "hypothetical"),
        ("He presented to the emergency department with a history of gastrointestinal bleeding.",
         "gastrointestinal bleeding", "affirmed"),
        ("Due to the uncertain origin of shock, death is not certified.", "shock", "affirmed"),
        ("Images in the liver that could correspond to metastases or hemangiomas.", "metastases", "uncertain"),
    ],
)
def test_targeted_behaviour(text: str, target: str, expected: str) -> None:
    assert _assert(text, target)[0] == expected


def test_window_limits_scope() -> None:
    text = "No fever on admission and during the first days of the stay in hospital the patient had jaundice."
    assert _assert(text, "jaundice")[0] == "affirmed"


def test_section_context() -> None:
    text = "Family history: diabetes.\nPast medical history: asthma.\nAssessment: asthma exacerbation."
    assert _assert(text, "diabetes") == ("family", "section:family_history")
    assert _assert(text, "asthma") == ("historical", "section:past_history")
    assert _assert(text, "asthma", occurrence=1) == ("affirmed", None)
    assert _assert("Family history: no diabetes.", "diabetes")[0] == "negated"


def test_trigger_text_is_reported() -> None:
    assert _assert("Findings compatible with tuberculosis.", "tuberculosis") == ("uncertain", "compatible with")
    assert _assert("It was decided to perform a nephrectomy.", "nephrectomy") == ("affirmed", None)


def test_find_triggers_offsets() -> None:
    s = "No fever; possible pneumonia?"
    trig = find_triggers(s)
    assert [(t.category, s[t.start : t.end]) for t in trig] == [
        ("negated", "No"), ("term", ";"), ("uncertain", "possible"), ("uncertain", "?")]


def test_document_without_sentences_uses_the_line() -> None:
    from opencac.text.document import Document

    doc = Document(id="d", text="Fever.\nNo cough.\n")
    s = doc.text.index("cough")
    assert assert_span(doc, s, s + 5)[0] == "negated"
    assert assert_span(doc, 0, 5)[0] == "affirmed"


def test_assertion_values_match_the_coding_layer() -> None:
    from opencac.coding.types import ASSERTIONS as CODING_ASSERTIONS

    assert tuple(ASSERTIONS) == tuple(CODING_ASSERTIONS)


@pytest.mark.parametrize(("text", "span", "phrase", "expected"), [
    ("A lesion in the right lung suggestive of metastasis.", "lung suggestive of metastasis", "metastasis to lung",
     ("uncertain", "suggestive of")),
    ("Metastasis, without lymph nodes.", "Metastasis, without lymph", "metastasis to lymph", ("negated", "without")),
    # a trigger made of the phrase's own words does not count, nor one before or after the span
    ("No fever. Lung metastasis.", "Lung metastasis", "lung metastasis", None),
    ("Kidney with no function.", "Kidney with no function", "kidney no function", None),
    ("Lung metastasis, not the liver.", "Lung metastasis", "lung metastasis", None),
])
def test_a_trigger_between_the_words_of_a_match(text: str, span: str, phrase: str,
                                                 expected: tuple[str, str] | None) -> None:
    """A bag-of-words match whose words lie apart takes the negation or uncertainty of a trigger
    between them; the triggers around the span are assert_span's."""
    doc = analyze(text)
    start = text.index(span)
    assert assert_within(doc, start, start + len(span), phrase) == expected
