"""Sections and sentences: labels, and offsets that round-trip into the original text."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.nlp import analyze
from opencac.nlp.sections import find_sections, heading_label
from opencac.nlp.sentences import split_sentences

NOTE = """HISTORY OF PRESENT ILLNESS: 65-year-old man seen by Dr. Smith approx. 3 days ago.
He takes 3.5 mg of warfarin, e.g. daily. No fever.

Past Medical History:
Hypertension. Type 2 diabetes.
Family history: Mother had breast cancer.
Social History: smokes.
PHYSICAL EXAM
Lungs clear.
Labs: Hb 13.7 g/dl.
Imaging: CT of the chest normal.
Impression: pneumonia.
Assessment and Plan: antibiotics.
PROCEDURES: bronchoscopy.
Hospital course: uneventful.
Discharge diagnoses: pneumonia.
"""


def test_sections_labels_in_order() -> None:
    doc = analyze(NOTE)
    labels = [s.label for s in doc.sections]
    assert labels == ["hpi", "past_history", "family_history", "social_history", "exam", "labs", "imaging",
                      "assessment", "assessment", "procedures", "hospital_course", "diagnoses"]


def test_section_offsets_round_trip() -> None:
    doc = analyze(NOTE)
    for s in doc.sections:
        assert doc.text[s.start : s.end] == s.text_of(NOTE)
        assert doc.text[s.start : s.end].strip() == doc.text[s.start : s.end]
    fam = next(s for s in doc.sections if s.label == "family_history")
    assert NOTE[fam.start : fam.end] == "Family history: Mother had breast cancer."
    assert doc.section_at(NOTE.index("breast")) == "family_history"


def test_sentences_survive_abbreviations_and_decimals() -> None:
    doc = analyze(NOTE)
    sents = [NOTE[s.start : s.end] for s in doc.sentences]
    assert "65-year-old man seen by Dr. Smith approx. 3 days ago." in sents
    assert "He takes 3.5 mg of warfarin, e.g. daily." in sents
    assert "No fever." in sents
    assert "HISTORY OF PRESENT ILLNESS:" in sents
    assert "Hypertension." in sents and "Type 2 diabetes." in sents
    assert "Mother had breast cancer." in sents


def test_sentences_are_ordered_non_overlapping_and_trimmed() -> None:
    doc = analyze(NOTE)
    prev_end = 0
    for s in doc.sentences:
        assert prev_end <= s.start < s.end
        text = NOTE[s.start : s.end]
        assert text == text.strip() and text
        assert "\n" not in text
        prev_end = s.end


def test_no_headings_gives_one_other_section() -> None:
    text = "We describe a 37-year-old man.\nHe had fever.\n"
    doc = analyze(text, doc_id="x")
    assert doc.id == "x"
    assert [(s.label, text[s.start : s.end]) for s in doc.sections] == [
        ("other", "We describe a 37-year-old man.\nHe had fever.")]
    assert [text[s.start : s.end] for s in doc.sentences] == ["We describe a 37-year-old man.", "He had fever."]


def test_heading_words_inside_sentences_are_not_headings() -> None:
    text = "The history of hypertension is long.\nPlan to review.\n"
    assert [s.label for s in find_sections(text)] == ["other"]
    assert heading_label("Assessment  and plan") == "assessment"
    assert heading_label("Hospital Course") == "hospital_course"
    assert heading_label("nonsense") is None


def test_split_sentences_edge_cases() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []
    t = "Temp 38.5 C. Seen by J. Doe. Is it pneumonia? Yes!"
    assert [t[s.start : s.end] for s in split_sentences(t)] == [
        "Temp 38.5 C.", "Seen by J. Doe.", "Is it pneumonia?", "Yes!"]


@pytest.mark.parametrize(("text", "want"), [
    ("1. Hypertension.\n2. Diabetes.", ["1. Hypertension.", "2. Diabetes."]),  # list markers open a line
    ("   a. Fever was present.\nb. Cough.", ["a. Fever was present.", "b. Cough."]),
    ("Given i.v. fluids. Seen at 10 a.m. Today.", ["Given i.v. fluids.", "Seen at 10 a.m. Today."]),
    ("Dr. Smith saw him. Temp 38.5 C. Then fine.", ["Dr. Smith saw him.", "Temp 38.5 C.", "Then fine."]),
    ("Met with J. Doe. OK.", ["Met with J. Doe.", "OK."]),
    ("... A new line", ["...", "A new line"]),
    ("Fever. cough, and more. (Done.) Next", ["Fever. cough, and more.", "(Done.)", "Next"]),
])
def test_split_sentences_rules(text: str, want: list[str]) -> None:
    assert [text[s.start : s.end] for s in split_sentences(text)] == want


def test_split_sentences_of_one_very_long_line() -> None:
    """Thousands of sentences on one line (a paragraph pasted without breaks) split one by one;
    every look at a boundary is local, so this stays fast (it took 20 s when each boundary
    copied and searched the line from its start)."""
    text = " ".join(f"Sentence {i} of Dr. Ruiz with fever (38.5 C.) and pain." for i in range(3000))
    got = split_sentences(text)
    assert len(got) == 3000
    assert text[got[1234].start : got[1234].end] == "Sentence 1234 of Dr. Ruiz with fever (38.5 C.) and pain."


@pytest.mark.parametrize("text", ["Pain" + "." * 200_000, "Pain" + "?!." * 70_000 + ")" * 1000, "." * 200_000 + " Next"])
def test_split_sentences_of_a_long_run_of_marks(text: str) -> None:
    """A run of periods with no white space after it is one pass (the backtracking boundary
    pattern tried every position of the run against its whole rest: minutes for 200,000)."""
    got = split_sentences(text)
    assert text[got[0].start : got[0].end].startswith(("Pain", "."))
    assert got[-1].end == len(text)


def test_codiesp_notes_round_trip(codiesp_dir: Path) -> None:
    files = sorted((codiesp_dir / "train" / "text_files_en").glob("*.txt"))[:25]
    assert files
    for f in files:
        text = f.read_text(encoding="utf-8")
        doc = analyze(text, doc_id=f.stem)
        assert doc.sentences
        n_lines = sum(1 for line in text.splitlines() if line.strip())
        assert len(doc.sentences) >= n_lines
        for s in doc.sentences:
            assert text[s.start : s.end].strip() == text[s.start : s.end]


@pytest.mark.parametrize("heading", ["Assessment:", "IMPRESSION:", "Family History:", "HPI:", "Medications:"])
def test_known_headings(heading: str) -> None:
    doc = analyze(f"{heading} something here.\n")
    assert doc.sections[0].label != "other"


def test_inline_family_and_past_history_cover_their_line_only() -> None:
    text = "HPI:\nFever for 3 days.\nFamily history: mother with diabetes.\nHe presented with cough.\n"
    doc = analyze(text)
    assert [(s.label, text[s.start : s.end]) for s in doc.sections] == [
        ("hpi", "HPI:\nFever for 3 days."),
        ("family_history", "Family history: mother with diabetes."),
        ("hpi", "He presented with cough."),
    ]
    text2 = "Past medical history: hypertension.\n- diabetes\n  asthma\nShe was admitted with pneumonia."
    labels = [(s.label, text2[s.start : s.end]) for s in analyze(text2).sections]
    assert labels == [("past_history", "Past medical history: hypertension.\n- diabetes\n  asthma"),
                      ("other", "She was admitted with pneumonia.")]


def test_block_heading_runs_to_next_heading() -> None:
    text = "FAMILY HISTORY:\nMother with diabetes.\nFather with stroke.\nPLAN:\nFollow up."
    assert [s.label for s in analyze(text).sections] == ["family_history", "plan"]


def test_numbered_list_items_stay_whole() -> None:
    text = "Assessment and Plan:\n1. Fracture of the femur. Possible pneumonia.\n2. CKD stage 3b.\na. Other."
    assert [text[s.start : s.end] for s in analyze(text).sentences] == [
        "Assessment and Plan:", "1. Fracture of the femur.", "Possible pneumonia.", "2. CKD stage 3b.", "a. Other."]
