"""The out-of-the-box scorer (``opencac.coding.heuristic``): ranking fixes and its confidence
curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opencac.coding import heuristic as H
from opencac.coding.engine import CodingEngine


@pytest.fixture(scope="module")
def engine() -> CodingEngine:
    return CodingEngine.load(None)


def _by_code(res):
    return {s.code: s for s in res.diagnoses}


def test_other_title_needs_other_in_the_note(engine: CodingEngine) -> None:
    """ "heart failure" reads I50.89 "Other heart failure" only as a word bag missing "other": it
    ranks below I50.9 and is not selected."""
    got = _by_code(engine.code("Assessment: heart failure.", doc_id="t"))
    assert got["I50.9"].selected
    assert "I50.89" not in got or (got["I50.89"].rank > got["I50.9"].rank and not got["I50.89"].selected)


@pytest.mark.parametrize(("phrase", "factor"), [
    ("failure heart specified", H._OTHER_FACTOR),  # the index's "Failure, heart, specified NEC" (I50.89)
    ("other heart failure", H._OTHER_FACTOR),
    ("failure heart unspecified", 1.0),
    ("failure heart acute", 1.0),
])
def test_a_residual_code_needs_its_other_or_specified_in_the_note(phrase: str, factor: float) -> None:
    from types import SimpleNamespace

    def hit(p: str) -> SimpleNamespace:
        return SimpleNamespace(score=0.75, source="index", n_tokens=3, phrase=p, text="heart failure", subsumed=False,
                               incomplete=False, system="icd10cm", assertion="affirmed", code="I50.9", section="other",
                               attributes={})

    assert H.hit_weight(hit(phrase)) == pytest.approx(factor * H.hit_weight(hit("failure heart chronic")))


@pytest.mark.parametrize(("code", "section", "factor"), [
    ("Z09", "other", H._ENCOUNTER_FACTOR),  # "At follow-up she was well."
    ("Z00.00", "labs", H._ENCOUNTER_FACTOR),  # "Laboratory tests were normal."
    ("Z09", "hpi", 1.0),  # "Reason for visit: follow-up after completed treatment."
    ("Z13.1", "assessment", 1.0),
    ("Z87.891", "other", 1.0),  # a status or history code is no encounter reason
    ("Z14.1", "other", 1.0),
])
def test_an_encounter_reason_counts_where_the_note_states_the_reason(code: str, section: str, factor: float) -> None:
    from types import SimpleNamespace

    def hit(c: str, sec: str) -> SimpleNamespace:
        return SimpleNamespace(score=1.0, source="index", n_tokens=2, phrase="follow up", text="follow-up",
                               subsumed=False, incomplete=False, system="icd10cm", assertion="affirmed", code=c,
                               section=sec, attributes={})

    assert H.hit_weight(hit(code, section)) == pytest.approx(factor * H.hit_weight(hit("R05.9", section)))


@pytest.mark.parametrize(("code", "phrase", "factor"), [
    ("Z94.0", "kidney transplant", H._STATUS_FACTOR),  # the narrative's transplant, more often than a status
    ("Z17.0", "estrogen receptor positive", H._STATUS_FACTOR),
    ("Z94.0", "status kidney transplant", 1.0),  # the note says "status"
    ("N18.6", "kidney transplant", 1.0),  # no status code
])
def test_a_status_code_without_the_word_status_counts_less_out_of_the_box(code: str, phrase: str,
                                                                          factor: float) -> None:
    from types import SimpleNamespace

    def hit(c: str, p: str) -> SimpleNamespace:
        return SimpleNamespace(score=1.0, source="index", n_tokens=2, phrase=p, text=p, subsumed=False,
                               incomplete=False, system="icd10cm", assertion="affirmed", code=c, section="other",
                               attributes={})

    assert H.hit_weight(hit(code, phrase)) == pytest.approx(factor * H.hit_weight(hit("R05.9", phrase)))


def test_header_ranks_after_the_billable_code_of_the_same_words(engine: CodingEngine) -> None:
    got = _by_code(engine.code("Type 2 diabetes mellitus.", doc_id="t"))
    assert got["E11.9"].selected and got["E11.9"].rank == 1
    assert got["E11"].rank > got["E11.9"].rank
    assert not got["E11"].selected


@pytest.mark.parametrize("system", ["icd10cm", "icd10pcs"])
def test_confidence_curve_is_a_monotone_probability_map(system: str) -> None:
    grid = np.linspace(0.0, 5.0, 501)
    conf = H.confidence(grid, system)
    assert np.all((conf >= 0.0) & (conf <= 1.0))
    assert np.all(np.diff(conf) >= -1e-12)
    xs = [x for x, _ in H.CALIBRATION[system]]
    assert xs == sorted(xs) and len(xs) >= 5, "the table is the fitted curve, not a placeholder"
    assert conf[0] < H.THRESHOLD[system] < conf[-1]


@pytest.mark.slow
def test_dictionary_only_confidences_are_calibrated_on_codiesp_dev(engine: CodingEngine, codiesp_dir: Path) -> None:
    """The curve was fitted on CodiEsp train; on dev (never fitted on) the confidences match the
    share of codes the corpus's coders coded (ECE; the old 1 - exp(-score) map gave 0.22)."""
    from opencac.coding.corpus import canon, load_corpus
    from opencac.coding.evaluate import mean_average_precision
    from opencac.coding.ranker import expected_calibration_error

    dev = load_corpus([codiesp_dir / "dev"])
    results = engine.code_many([d.text for d in dev], [d.id for d in dev], explain_top=0)
    for system, floor in (("icd10cm", 0.24), ("icd10pcs", 0.22)):
        gold = {d.id: {canon(c) for c in d.codes[system]} for d in dev if d.codes[system]}
        conf, lab = [], []
        for r in results:
            if r.doc_id in gold:
                for s in r.ranked(system):
                    conf.append(s.confidence)
                    lab.append(canon(s.code) in gold[r.doc_id])
        ece = expected_calibration_error(np.array(conf), np.array(lab, dtype=float))
        assert ece < 0.10, (system, ece)
        pred = {r.doc_id: [s.code for s in r.ranked(system)] for r in results}
        assert mean_average_precision(gold, pred) >= floor, system


def test_out_of_the_box_rationale_says_how_the_confidence_came_about(engine: CodingEngine) -> None:
    s = engine.code("Assessment: heart failure.", doc_id="t").diagnoses[0]
    line = [r for r in s.rationale if r.startswith("out-of-the-box match score")]
    assert line and H.VERSION in line[0] and f"confidence {s.confidence:.2f}" in line[0], s.rationale
    assert H.confidence([s.signals["heuristic_score"]], "icd10cm")[0] == pytest.approx(s.confidence, abs=1e-4)


def test_section_headings_are_no_findings(engine: CodingEngine) -> None:
    """ "Allergies:" heads a section (it was T78.40, "Allergy, unspecified", selected); a test's
    name heading its results ("Echocardiogram:") is still the test that was done."""
    note = "Allergies:\nPenicillin.\n\nEchocardiogram:\nejection fraction of 30%.\n\nAssessment: essential hypertension."
    res = engine.code(note, doc_id="t")
    dx = {s.code for s in res.diagnoses}
    assert "T78.40" not in dx and "I10" in dx, sorted(dx)
    assert any(s.code.startswith("B24") for s in res.procedures), [s.code for s in res.procedures]


def test_generic_index_words_are_not_mentions_alone() -> None:
    """ "insulin sliding scale" is no skin scaling (R23.4) and "further investigation" no
    encounter for examination (Z04.9): the index's one-word terms are too generic alone."""
    from opencac.nlp import MentionMatcher, analyze

    m = MentionMatcher.build([("Scale", "R23.4"), ("Investigation", "Z04.9"), ("Scaling, skin", "R23.4")])
    found = m.find(analyze("Insulin sliding scale. Further investigation was done. Scaling skin on the arms."))
    assert [x.text for x in found] == ["Scaling skin"]


@pytest.mark.parametrize(("words", "longer", "note", "expected"), [
    # session 13: "Anesthesia" (R20.0), "Nerves" (R45.0), "Sinus" (L98.8), "Gas" (R14.3), "Cold" (J00),
    # "Consumption" (A15.9), "May" (D72.0), the tabular "Activity" (Y93.9), "Donor" (Z52.9), "Arrest" (Z65.3)
    (["Anesthesia", "Nerves", "Sinus", "Gas", "Cold", "Consumption", "May", "Activity", "Donor", "Arrest"],
     [("Anesthesia of skin", "R20.0"), ("Arrest, cardiac", "I46.9")],
     "Surgery under general anesthesia; the ulnar nerve was spared. ECG: sinus rhythm. Arterial blood gas normal. "
     "Cold extremities. In May, alcohol consumption and physical activity were limited. The donor was his brother. "
     "Cardiac arrest. Anesthesia of skin.",
     ["Anesthesia of skin", "Cardiac arrest"]),
    # session 14: "local anesthetic", "analgesia" (R20.0), "Transient (meaning homeless)" (Z59.00), "adhesive"
    # dressings (K66.0), "dye" (Z77.098), "basal ganglia" (M67.40), "FFA" for fluorescein angiography (L66.12)
    (["Anesthetic", "Analgesia", "Transient", "Adhesive", "Dye", "Ganglion", "FFA"],
     [("Ganglion cyst", "M67.40"), ("Transient ischemic attack", "G45.9")],
     "Local anesthetic and analgesia were given. Transient improvement. An adhesive dressing. Methylene blue dye. "
     "Basal ganglia lesions. FFA showed leakage. A ganglion cyst of the wrist. Transient ischemic attack.",
     ["Transient ischemic attack", "ganglion cyst"]),
    # session 15: "no anomalies", a "deformity" or "dysplasia" (Q89.9, congenital), "clots" in the urine (I74.9),
    # "preserved diuresis" (R35.89), "as a newborn" (Z38.2), "congenital malformations" (Q89.9)
    (["Anomaly", "Deformity", "Dysplasia", "Clot", "Diuresis", "Newborn", "Neonatal", "Malformation"],
     [("Anomaly, kidney", "Q63.9"), ("Jaundice, newborn", "P59.9"), ("Cervical dysplasia", "N87.9")],
     "No anomalies. Thoracic deformity. Hematuria with clots. Preserved diuresis. As a newborn, neonatal care. "
     "Congenital malformations. Anomaly of the kidney. Newborn jaundice. Cervical dysplasia.",
     ["Anomaly of the kidney", "Cervical dysplasia", "Newborn jaundice"]),
])
def test_index_words_a_note_uses_for_something_else_are_not_mentions_alone(
        words: list[str], longer: list[tuple[str, str]], note: str, expected: list[str]) -> None:
    """One-word index and tabular terms that notes use for something else (general anesthesia, the
    ulnar nerve, sinus rhythm, a local anesthetic, basal ganglia...) are no mentions alone, found on
    the out-of-the-box engine's wrong codes on CodiEsp train. Longer terms still match."""
    from opencac.nlp import MentionMatcher, analyze

    m = MentionMatcher.build([(w, "X00") for w in words] + longer)
    assert sorted(x.text for x in m.find(analyze(note))) == expected


def test_article_a_and_his_are_no_bag_words() -> None:
    """ "a blood pressure" read "type A blood" (Z67.10), "his disease" His-Werner disease (A79.0)
    and "her heart disease" Hers' disease (E74.09) as bags of words; written as phrases they still
    match."""
    from opencac.nlp import MentionMatcher, analyze

    m = MentionMatcher.build([("Type A blood", "Z67.10"), ("Disease, His", "A79.0"), ("Blood pressure, high", "R03.0"),
                              ("Disease, Her's", "E74.09")])
    found = m.find(analyze("It showed a blood pressure that was high. Asymptomatic of his disease. Type A blood. "
                           "Edema related to her heart disease."))
    got = {(x.text, x.payloads[0]) for x in found}
    assert ("Type A blood", "Z67.10") in got
    assert not any(p in ("Z67.10", "A79.0", "E74.09") for t, p in got if t != "Type A blood"), got
    assert any(p == "R03.0" for _, p in got), got  # other bags still match


def test_lower_case_aids_is_no_acquired_immunodeficiency(engine: CodingEngine) -> None:
    """ "hearing aids" selected B20 and D84.9; "AIDS" in capitals still reads as AIDS (B20 with the
    alphabetic index, the tabular list's "immunodeficiency" without it)."""
    assert not {"B20", "D84.9"} & {s.code for s in engine.code("She uses hearing aids.", doc_id="t").diagnoses}
    assert {"B20", "D84.9"} & {s.code for s in engine.code("He has AIDS.", doc_id="t").diagnoses if s.selected}


@pytest.mark.parametrize(("note", "specific", "general"), [
    ("He had a reducible inguinal hernia.", "K40.90", "K46.9"),
    ("She was treated for malignant neoplasm of prostate.", "C61", "C80.1"),
    ("Chronic renal failure secondary to nephroangiopathy.", "N18.9", "N19"),
    ("He had epileptic seizures.", "G40.909", "R56.9"),
])
def test_a_phrase_inside_a_more_specific_one_is_not_selected(engine: CodingEngine, note: str, specific: str,
                                                             general: str) -> None:
    """ "hernia" inside "inguinal hernia" (and the like) names the same condition less specifically:
    the specific code is selected, the general one ranks below it and is not."""
    got = _by_code(engine.code(note, doc_id="t"))
    assert got[specific].selected, note
    assert general not in got or (got[general].rank > got[specific].rank and not got[general].selected), note


def test_specified_flag_needs_a_longer_phrase_with_all_the_words() -> None:
    from opencac.nlp import MentionMatcher, analyze

    m = MentionMatcher.build([("hernia", "K46.9"), ("inguinal hernia", "K40.90"), ("swelling", "R60.0"),
                              ("chest swelling", "R22.2"), ("kidney", "N28.9"), ("kidney transplant", "Z94.0")])
    found = {(x.text, x.phrase): x for x in m.find(analyze(
        "Reducible inguinal hernia. Swelling in the left side of the chest. Renal transplant."))}
    assert found[("hernia", "hernia")].specified
    assert not found[("inguinal hernia", "inguinal hernia")].specified
    # inside a loose bag of words ("Swelling ... chest"), a phrase is not taken as specified
    assert found[("Swelling", "swelling")].subsumed and not found[("Swelling", "swelling")].specified
    # a bag of the words side by side ("renal transplant" for "kidney transplant") specifies
    assert found[("Renal", "kidney")].specified


def test_specified_hits_lose_weight_only_for_diagnoses() -> None:
    from types import SimpleNamespace

    def hit(system: str, specified: bool) -> SimpleNamespace:
        return SimpleNamespace(score=1.0, source="index", n_tokens=1, phrase="hernia", text="hernia", subsumed=True,
                               specified=specified, incomplete=False, system=system, assertion="affirmed",
                               code="K46.9", section="", attributes={})

    assert H.hit_weight(hit("icd10cm", True)) == pytest.approx(H._SPECIFIED_FACTOR * H.hit_weight(hit("icd10cm", False)))
    assert H.hit_weight(hit("icd10pcs", True)) == pytest.approx(H.hit_weight(hit("icd10pcs", False)))


def test_a_manifestation_named_alone_is_no_entry_of_its_code(engine: CodingEngine) -> None:
    """N08 "Glomerular disorders in diseases classified elsewhere" lists "Nephropathy", N16 lists
    "Pyelonephritis": true only in the disease the title names. As entries of their own they made
    every nephropathy N08 and every pyelonephritis N16."""
    from opencac.coding.dictionary import _manifestation_without_cause as alone

    assert alone(engine.kb, "Nephropathy", "N08", "icd10cm")
    assert alone(engine.kb, "Pyelonephritis", "N16", "icd10cm")
    assert alone(engine.kb, "Polyneuropathy", "A69.22", "icd10cm")
    assert not alone(engine.kb, "Paraneoplastic limbic encephalopathy", "G13.1", "icd10cm")  # a name of its own
    assert not alone(engine.kb, "Pseudomembraneous colitis", "A04.7", "icd10cm")  # no manifestation code
    got = _by_code(engine.code("Acute pyelonephritis. Diabetic nephropathy was known.", doc_id="t"))
    assert "N16" not in got and "N08" not in got, sorted(got)
    assert got["N10"].selected


def test_out_of_the_box_a_header_is_never_selected(engine: CodingEngine) -> None:
    """N18.3 (a category with codes below it) was selected beside N18.30 when its score fell in the
    threshold's block: a header is not reported, its billable code is."""
    got = _by_code(engine.code("Assessment: chronic kidney disease, stage 3.", doc_id="t"))
    assert got["N18.30"].selected
    assert "N18.3" not in got or not got["N18.3"].selected
    for s in got.values():
        obj = engine.kb.find(s.code, "icd10cm")
        assert not (s.selected and obj is not None and not obj.billable), s.code


def test_a_phrase_cut_before_its_continuation_is_no_bag() -> None:
    """The index row "Hepatitis > B > with" (of "with hepatic coma", B19.11) ends in a connector:
    as a bag of words ("with" ignored) it was "hepatitis B" itself and read every hepatitis B as
    "with hepatic coma". Such phrases are matched only as written."""
    from opencac.nlp import MentionMatcher, analyze

    m = MentionMatcher.build([("Hepatitis B with", "B19.11"), ("Hepatitis B", "B19.10")])
    assert {x.payloads[0] for x in m.find(analyze("Chronic hepatitis B was diagnosed."))} == {"B19.10"}
    assert "B19.11" in {x.payloads[0] for x in m.find(analyze("Hepatitis B with hepatic coma."))}


def test_an_excludes1_pair_keeps_the_code_whose_note_does_not_exclude_the_other(engine: CodingEngine) -> None:
    """ "Pain" (R52) beside "abdominal pain" (R10.9): R52's Excludes1 note says "localized pain - code
    to pain by site (R10.-)", so R52 ranks lower out of the box; without the site code it stays."""
    note = "Abdominal pain for two days. The pain was severe and constant. He also reported nausea."
    got = _by_code(engine.code(note, doc_id="t"))
    alone = _by_code(engine.code("He complained of pain and nausea.", doc_id="t"))
    assert got["R10.9"].selected
    assert got["R52"].rank > got["R10.9"].rank
    assert got["R52"].signals["heuristic_score"] < alone["R52"].signals["heuristic_score"]


def test_excludes1_competition_rules() -> None:
    """Each side of a mutual Excludes1 pair (E10 / E11): the weaker one loses; a one-way pair: the
    code whose note names the other loses, however strong."""
    from types import SimpleNamespace

    class KB:
        pairs: list[tuple[str, str, str]] = []

        def find(self, code: str) -> SimpleNamespace:
            return SimpleNamespace(code=code)

        def excludes1_pairs(self, codes: list[str]) -> list[tuple[str, str, str]]:
            return [p for p in self.pairs if p[0] in codes and p[1] in codes]

    kb = KB()
    cands = [SimpleNamespace(code=c) for c in ("E11.9", "E10.9", "R52", "R10.9")]
    kb.pairs = [("E11.9", "E10.9", ""), ("E10.9", "E11.9", ""), ("R52", "R10.9", "")]
    got = H.excludes1_competition(kb, cands, np.array([1.0, 0.6, 1.2, 0.8]))
    assert got.tolist() == [1.0, 0.6 * H._EXCLUDES1_FACTOR, 1.2 * H._EXCLUDES1_FACTOR, 0.8]
    # equal scores of a mutual pair: neither is lowered; no kb: unchanged
    assert H.excludes1_competition(kb, cands[:2], np.array([1.0, 1.0])).tolist() == [1.0, 1.0]
    assert H.excludes1_competition(None, cands, np.array([1.0, 0.6, 1.2, 0.8])).tolist() == [1.0, 0.6, 1.2, 0.8]


def _procedures(res):
    return {s.code: s for s in res.procedures}


@pytest.mark.parametrize(("note", "first", "second", "selected"), [
    # a CT without a word on contrast: the table prefix (the coder completes the contrast)
    ("An abdominal CT showed a mass in the liver.", "BW20", "BW20ZZZ", (True, False)),
    # the note says no contrast was used: the complete code (the rules drop the prefix beside it)
    ("An abdominal CT without contrast showed a mass in the liver.", "BW20ZZZ", "BW20", (True, True)),
    # plain radiography is done without contrast as a rule: the complete code
    ("A chest X-ray showed a consolidation.", "BW03ZZZ", "BW03", (True, False)),
    # the approach: the index reads "cholecystectomy" open (0FT40ZZ); unless the note says so, the
    # prefix leads, and neither is proposed: the coder takes the approach from the operative report
    ("A cholecystectomy was performed.", "0FT4", "0FT40ZZ", (False, False)),
    ("An open cholecystectomy was performed.", "0FT40ZZ", "0FT4", (True, False)),
])
def test_what_the_note_states_decides_prefix_or_complete_code(engine: CodingEngine, note: str, first: str,
                                                              second: str, selected: tuple[bool, bool]) -> None:
    got = _procedures(engine.code(note, doc_id="t"))
    assert first in got and second in got, sorted(got)
    assert got[first].rank < got[second].rank
    assert (got[first].selected, got[second].selected) == selected


@pytest.mark.parametrize(("note", "selected"), [
    ("Examination of the right eye fundus showed papilledema.", {"08J0XZZ"}),
    ("The left eye fundus showed macular thickening.", {"08J1XZZ"}),
    ("The eye fundus was normal.", {"08J0XZZ", "08J1XZZ"}),  # no eye named: both were examined
])
def test_a_fundus_examination_is_of_the_eye_the_note_names(engine: CodingEngine, note: str, selected: set[str]) -> None:
    got = {s.code for s in engine.code(note, doc_id="t").procedures if s.selected and s.code.startswith("08J")}
    assert got == selected


def test_inferred_status_and_history_hits_weigh_less() -> None:
    from types import SimpleNamespace

    def hit(source: str, attributes: dict) -> SimpleNamespace:
        return SimpleNamespace(score=1.0, source=source, n_tokens=1, phrase="prednisone", text="prednisone",
                               subsumed=False, incomplete=False, system="icd10cm", assertion="affirmed", code="Z79.52",
                               section="other", attributes=attributes)

    plain = H.hit_weight(hit("index", {}))
    # a drug the note names, as its long-term use: 0.1 against the index's 0.9
    assert H.hit_weight(hit("drug", {})) == pytest.approx(plain * 0.1 / 0.9)
    # a history code read from a past condition
    assert H.hit_weight(hit("index", {"history_of": "C50.9"})) == pytest.approx(plain * 0.2)
