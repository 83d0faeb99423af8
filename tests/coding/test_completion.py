"""Completing a matched header code: the documented side, else the unspecified leaf."""

from __future__ import annotations

import pytest

from opencac.coding.completion import complete_code, stated_side, unspecified_leaf
from opencac.coding.engine import CodingEngine


@pytest.mark.parametrize(("window", "side"), [("tumour of the left kidney", "left"), ("Right knee pain", "right"),
                                              ("both eyes", "bilateral"), ("left and right", None),
                                              ("no side given", None), ("the patient left the ward", "left")])
def test_stated_side(window: str, side: str | None) -> None:
    assert stated_side(window) == side


@pytest.mark.parametrize(("code", "window", "expected"), [
    ("C64", "tumor of the left kidney", "C64.2"),
    ("C64", "renal carcinoma", "C64.9"),
    ("M79.60", "pain in the right leg", "M79.604"),
    ("M79.60", "pain in the right limb", "M79.609"),  # the side's codes name arm / leg: the note names neither
    ("K59.0", "constipation", "K59.00"),
    ("D49.51", "left renal mass", "D49.512"),
])
def test_complete_code(kb: object, code: str, window: str, expected: str) -> None:
    got = complete_code(kb, code, window)
    assert got is not None and got[0] == expected, got


@pytest.mark.parametrize("code", ["K59.00", "S62.92", "W19", "ZZZ99"])
def test_no_completion_for_billable_seventh_character_or_unknown_codes(kb: object, code: str) -> None:
    assert complete_code(kb, code, "left hand") is None


def test_unspecified_leaf_walks_down(kb: object) -> None:
    assert unspecified_leaf(kb, "E11") == "E11.9"  # not E11.8 "with unspecified complications"
    assert unspecified_leaf(kb, "K59.0") == "K59.00"  # "Constipation, unspecified"
    assert unspecified_leaf(kb, "C50") == "C50.919"  # three levels down
    assert unspecified_leaf(kb, "R10.8") is None  # no unspecified child: nothing is guessed
    assert unspecified_leaf(kb, "Z3A") == "Z3A.00"  # "not specified", not Z3A.09 (9 weeks)
    assert unspecified_leaf(kb, "M79.60") == "M79.609"  # "unspecified limb", not "leg, unspecified"


def test_out_of_the_box_engine_follows_a_header_with_its_completion() -> None:
    engine = CodingEngine.load(None)
    text = "Neoplasm of the left kidney. Constipation."
    res = engine.code(text)
    codes = [s.code for s in res.diagnoses]
    assert "D49.512" in codes, codes
    # right after the header the words matched, on its score: D49 ("neoplasm") from the tabular
    # list alone, D49.51 ("neoplasm ... kidney") with the alphabetic index's neoplasm table
    header_code = codes[codes.index("D49.512") - 1]
    assert header_code in ("D49", "D49.51"), codes
    sugg = next(s for s in res.diagnoses if s.code == "D49.512")
    assert any("documented side (left)" in r for r in sugg.rationale)
    assert sugg.evidence and text[sugg.evidence[0].start:sugg.evidence[0].end] == sugg.evidence[0].text
    header = next(s for s in res.diagnoses if s.code == header_code)
    assert sugg.confidence == header.confidence



def test_a_header_with_a_code_found_below_it_is_not_completed() -> None:
    engine = CodingEngine.load(None)
    res = engine.code("Pregnant woman at 21 weeks of gestation. Obesity, BMI 36.")
    codes = [s.code for s in res.diagnoses]
    assert "Z3A.21" in codes and "Z68.36" in codes
    assert not any(c in codes for c in ("Z3A.00", "Z3A.09", "Z68.1")), codes
