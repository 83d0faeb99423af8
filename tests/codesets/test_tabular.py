"""ICD-10-CM facts checked against the official FY2026 tabular (inside simple-icd-10-cm)."""

from __future__ import annotations

import datetime as dt

import pytest

from opencac.codesets.refs import parse_refs, ref_covers
from opencac.codesets.tabular import bundled_tabular_path, with_seventh
from opencac.codesets.types import CodeSystem
from opencac.errors import UnknownCodeError


def test_e11_billability(kb) -> None:
    assert kb.is_billable("E11.9")
    assert not kb.is_billable("E11")
    e11 = kb.get("E11")
    assert e11.kind == "category" and not e11.billable
    assert kb.get("e119").code == "E11.9"
    assert kb.get("E11.9").description == "Type 2 diabetes mellitus without complications"


def test_e11_excludes1(kb) -> None:
    e11 = kb.get("E11")
    assert "type 1 diabetes mellitus (E10.-)" in e11.excludes1
    assert "gestational diabetes (O24.4-)" in e11.excludes1
    assert {"E10.-", "O24.4-", "E08.-", "E09.-", "E13.-", "P70.2"} <= set(e11.excludes1_codes)
    inherited = kb.inherited_notes("E11.9")["excludes1"]
    sources = {src for src, _text, _refs in inherited}
    assert {"E11.9", "E11"} <= sources
    pairs = kb.excludes1_pairs(["E11.9", "E10.9", "I10"])
    assert ("E11.9", "E10.9", "type 1 diabetes mellitus (E10.-)") in pairs
    assert not any("I10" in (a, b) for a, b, _ in pairs)


def test_n18_3_children(kb) -> None:
    kids = [c.code for c in kb.children("N18.3")]
    assert kids == ["N18.30", "N18.31", "N18.32"]
    assert not kb.is_billable("N18.3")
    assert all(kb.is_billable(k) for k in kids)
    assert [a.code for a in kb.ancestors("N18.30")] == ["N18.3", "N18", "N17-N19", "14"]


def test_seventh_character_and_placeholder(kb) -> None:
    assert with_seventh("T81.40", "A") == "T81.40XA"
    assert with_seventh("T79.4", "A") == "T79.4XXA"
    assert with_seventh("S72.001", "A") == "S72.001A"
    for code in ("T81.40XA", "T81.40XD", "T81.40XS", "S72.001A", "S72.001K"):
        assert kb.is_billable(code), code
    assert not kb.is_billable("T81.40")  # needs the 7th character
    assert not kb.is_billable("S72.001")
    assert kb.find("T81.40A") is None or not kb.is_billable("T81.40A")
    sev = dict(kb.seventh_characters("T81.40XA"))
    assert sev == {"A": "initial encounter", "D": "subsequent encounter", "S": "sequela"}
    assert kb.get("T81.40XA").description.endswith("initial encounter")
    assert kb.get("T81.40XA").parent == "T81.40"
    # S06: 7th characters D and S do not apply with 6th character 7 or 8 (tabular S06 note)
    assert kb.is_billable("S06.1X7A")
    assert kb.find("S06.1X7D") is None and kb.is_billable("S06.1X6D")


def test_generated_codes_match_official_code_list(kb) -> None:
    listing = bundled_tabular_path().parent / "code-list-April-2026.txt"
    if not listing.is_file():
        pytest.skip("simple-icd-10-cm code list not shipped in this version")
    official = {line.strip() for line in listing.read_text().splitlines() if line.strip() and "-" not in line}
    ours = {c.code.replace(".", "") for c in kb.codes(CodeSystem.ICD10CM) if c.kind != "block"}
    assert kb.get("B10").kind == "category" and kb.get("B10").parent == "B10-B10"
    assert ours == official


def test_i10_notes(kb) -> None:
    i10 = kb.get("I10")
    assert i10.billable
    assert any("hypertension (arterial)" in t for t in i10.includes)
    notes = kb.inherited_notes("I10")
    kinds = set(notes)
    assert "use_additional" in kinds  # block I10-I1A: use additional code for exposure to tobacco etc.
    texts = " ".join(t for _s, t, _r in notes["use_additional"])
    assert "tobacco" in texts
    i11 = kb.inherited_notes("I12.9")
    assert any("N18" in " ".join(refs) for _s, _t, refs in i11.get("use_additional", []))
    assert kb.get("T81.4").code_also and "T81.32-" in kb.get("T81.4").code_also_codes


def test_manifestation_flag(kb) -> None:
    g63 = kb.get("G63")
    assert g63.manifestation
    assert "in diseases classified elsewhere" in g63.description
    assert g63.code_first
    assert not kb.get("E11.9").manifestation
    assert kb.get("D63.1").manifestation  # "Anemia in chronic kidney disease", code first underlying CKD
    assert kb.get("F02.80").manifestation  # under F02 "Dementia in other diseases classified elsewhere"
    # a "code first" note alone is a sequencing note, not a manifestation (Guidelines I.A.13)
    assert kb.get("N18.3").code_first or kb.inherited_notes("N18.30").get("code_first")
    assert not kb.get("N18.30").manifestation and not kb.get("Z92.82").manifestation


def test_refs() -> None:
    assert parse_refs("diabetes (E08-E13)") == ("E08-E13",)
    assert parse_refs("dermatitis (L23.3, L27.0-L27.1)") == ("L23.3", "L27.0-L27.1")
    assert parse_refs("vitamin B12 deficiency anemia (D51.-)") == ("D51.-",)
    assert parse_refs("E11.-") == ("E11.-",)
    assert ref_covers("E08-E13", "E11.9") and not ref_covers("E08-E13", "E14.0")
    assert ref_covers("E11.-", "E11.65") and not ref_covers("E11.-", "E10.65")
    assert ref_covers("N18.3", "N18.30") and not ref_covers("N18.3", "N18.4")
    assert ref_covers("T82.6-T82.7", "T82.7XXA") and not ref_covers("T82.6-T82.7", "T82.8")


def test_unknown_code(kb) -> None:
    with pytest.raises(UnknownCodeError):
        kb.get("E11.99999")
    with pytest.raises(UnknownCodeError):
        kb.normalize("not a code")
    assert kb.find("Q99.999") is None
    assert kb.find("C79.8-").code == "C79.8" and kb.find("E11.-").code == "E11"  # index-style incomplete codes


def test_current_equivalents_fy2026(kb) -> None:
    assert kb.current_equivalents("E11.9") == ["E11.9"]
    eq = kb.current_equivalents("M54.5")
    assert set(eq) == {"M54.50", "M54.51", "M54.59"} and eq[0] == "M54.50"
    assert kb.current_equivalents("R51")[0] == "R51.9"
    s72 = kb.current_equivalents("S72.001")
    assert s72[0] == "S72.001A" and len(s72) == 16
    # with only FY2026 loaded, FY2026 answers for every date: nothing is guessed
    assert kb.as_of_equivalent("R51.9", dt.date(2018, 5, 1)) == "R51.9"


def test_terms_cm(kb) -> None:
    terms = [t for t in kb.terms(CodeSystem.ICD10CM) if t.code == "I10"]
    phrases = {t.phrase for t in terms}
    assert "Essential (primary) hypertension" in {t.path for t in terms}
    assert "high blood pressure" in phrases
    assert "hypertension" in phrases  # inclusion term without its nonessential modifiers
    assert any(t.source == "inclusion" and "arterial" in t.nonessential for t in terms)
