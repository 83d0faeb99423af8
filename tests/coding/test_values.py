"""Value-coded mentions: BMI -> Z68.xx, weeks of gestation -> Z3A.xx, Glasgow coma scale -> R40.24xx."""

from __future__ import annotations

import pytest

from opencac.coding.engine import CodingEngine
from opencac.coding.values import bmi_code, find_values, gcs_code, gestation_code, value_hits
from opencac.nlp.pipeline import analyze


@pytest.mark.parametrize(("value", "code"), [
    (17.5, "Z68.1"), (19.99, "Z68.1"), (20.0, "Z68.20"), (36.9, "Z68.36"), (39.9, "Z68.39"), (40.0, "Z68.41"),
    (44.9, "Z68.41"), (45.0, "Z68.42"), (55.0, "Z68.43"), (65.0, "Z68.44"), (72.0, "Z68.45"), (5.0, None)])
def test_bmi_ranges_follow_the_index(value: float, code: str | None) -> None:
    assert bmi_code(value) == code


@pytest.mark.parametrize(("pct", "code"), [(3, "Z68.51"), (50, "Z68.52"), (90, "Z68.53"), (97, "Z68.54")])
def test_bmi_percentiles_are_pediatric(pct: int, code: str) -> None:
    assert bmi_code(pct, percentile=True) == code


@pytest.mark.parametrize(("weeks", "code"), [(6, "Z3A.01"), (8, "Z3A.08"), (21, "Z3A.21"), (42, "Z3A.42"),
                                             (43, "Z3A.49"), (2, None), (60, None)])
def test_gestation_weeks(weeks: int, code: str | None) -> None:
    assert gestation_code(weeks) == code


@pytest.mark.parametrize(("total", "when", "code"), [(15, "0", "R40.2410"), (13, "2", "R40.2412"),
                                                     (12, "3", "R40.2423"), (8, "1", "R40.2431"), (3, "0", "R40.2430"),
                                                     (2, "0", None), (16, "0", None)])
def test_glasgow_bands(total: int, when: str, code: str | None) -> None:
    assert gcs_code(total, when) == code


@pytest.mark.parametrize(("text", "expected"), [
    ("Height 1.65 m, weight 54.5 kg (BMI 20 kg/m2).", ["Z68.20"]),
    ("body mass index (BMI) of 43.5 kg/m2", ["Z68.41"]),  # one mention, not two
    ("Obese patient with BMI: 36,2.", ["Z68.36"]),
    ("admitted with a mass index (BMI) 41kg/m2", ["Z68.41"]),
    ("extreme obesity (BMI > 40 kg/m2)", ["Z68.41"]),
    ("BMI at the 97th percentile for age", ["Z68.54"]),
    ("mucocutaneous BMI, blood pressure 99/62", []),  # a value after other words is not the BMI
    ("ventriculomegaly at week 21 of gestation", ["Z3A.21"]),
    ("live product of 19.6 weeks of gestation", ["Z3A.19"]),  # completed weeks
    ("at 34+5 weeks' gestation", ["Z3A.34"]),
    ("a 38 weeks pregnant woman", ["Z3A.38"]),
    ("gestational age of 32 weeks", ["Z3A.32"]),
    ("Preterm newborn of 30 weeks of gestation.", []),  # Z3A: maternal record only
    ("On arrival at the emergency department, GCS 8/15.", ["R40.2432"]),
    ("Glasgow coma scale score of 12 on admission", ["R40.2423"]),
    ("conscious and oriented, Glasgow 15", ["R40.2410"]),
    ("GCS 3 hours later", []),
    ("No measurements were documented.", []),
])
def test_find_values(text: str, expected: list[str]) -> None:
    assert [code for code, *_ in find_values(text)] == expected


def test_offsets_cover_the_measure_and_its_value() -> None:
    text = "Morbid obesity, BMI 43 kg/m2."
    (code, start, end, path), = find_values(text)
    assert text[start:end] == "BMI 43"
    assert path == "body mass index adult 43"


def test_value_hits_carry_assertion_and_sentence() -> None:
    text = "History: obesity.\nNo GCS 8 was recorded. BMI 31 today."
    doc = analyze(text, "n")
    hits = {h.code: h for h in value_hits(doc)}
    assert set(hits) == {"R40.2430", "Z68.31"}
    assert hits["R40.2430"].assertion == "negated"
    assert hits["Z68.31"].assertion == "affirmed"
    assert hits["Z68.31"].sentence == doc.sentence_index(text.index("BMI"))
    assert not hits["Z68.31"].incomplete and hits["Z68.31"].source == "index"


def test_engine_proposes_the_complete_code_with_its_evidence() -> None:
    engine = CodingEngine.load(None)
    text = "A 30-year-old woman at week 21 of gestation. Obese, BMI 36."
    res = engine.code(text)
    by_code = {s.code: s for s in res.diagnoses}
    for code, quoted in (("Z3A.21", "week 21 of gestation"), ("Z68.36", "BMI 36")):
        assert code in by_code, f"{code} missing from {sorted(by_code)}"
        ev = by_code[code].evidence[0]
        assert text[ev.start:ev.end] == quoted
    # the complete code ranks above its category, which the dictionary alone reaches
    codes = [s.code for s in res.diagnoses]
    assert codes.index("Z68.36") < codes.index("Z68")


@pytest.mark.parametrize("text", [
    "BMI" + " : " * 3000 + "x",  # ran for minutes when blanks could be split two ways between gap words
    "BMI" + " of  " * 3000 + "x",
    ("GCS " + "of " * 50) * 200,
    "12 weeks" + " " * 50_000 + "x",
])
def test_pathological_inputs_finish_and_find_nothing(text: str) -> None:
    assert list(find_values(text)) == []


def test_gap_words_are_bounded() -> None:
    assert [c for c, *_ in find_values("BMI of about approximately 31")] == ["Z68.31"]
    assert list(find_values("BMI was of is about approximately around 31")) == []  # six gap words: not one measure
