"""ICD-10-CM index loaders: CMS XML (fixtures in the official format) and the flattened CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.codesets.cmindex import csv_title, expand, load_index_dir, read_csv, read_xml
from opencac.errors import CodeSetSourceError

from .conftest import FIXTURES


def _phrases(terms):  # type: ignore[no-untyped-def]
    return {(t[0], t[1]) for t in terms}


def test_xml_index_fixture() -> None:
    kind, rows = read_xml(FIXTURES / "index_sample.xml")
    assert kind == "index"
    terms = expand(kind, rows)
    ph = _phrases(terms)
    assert ("Diabetes type 2 with chronic kidney disease", "E11.22") in ph
    assert ("Diabetes mellitus type 2 with chronic kidney disease", "E11.22") in ph  # with the nonessential word
    assert ("Diabetes", "E11.9") in ph and ("Diabetes mellitus", "E11.9") in ph
    assert ("Disease kidney", "N28.9") in ph and ("Disease kidney functional", "N28.9") in ph
    # "see" is resolved to the target term's code and kept on the entry
    see = [t for t in terms if t[0] == "Disease sugar"]
    assert see and see[0][1] == "E11.9" and see[0][6] == "Diabetes, type 2"
    # "see also" kept beside the row's own code
    gly = [t for t in terms if t[0] == "Glycosuria"]
    assert gly and gly[0][1] == "R81" and gly[0][7] == "Diabetes"
    assert all(t[3] == "index" for t in terms)


def test_xml_neoplasm_and_drug_fixtures() -> None:
    kind, rows = read_xml(FIXTURES / "neoplasm_sample.xml")
    assert kind == "neoplasm"
    ph = _phrases(expand(kind, rows))
    assert ("malignant neoplasm of intestine large", "C18.9") in ph
    assert ("secondary malignant neoplasm of intestine large", "C78.5") in ph
    assert ("benign neoplasm of intestine large", "D12.6") in ph
    assert ("colon", "C18.9") not in ph  # see -> resolves to a row without its own code
    # morphology words of the index's "see Neoplasm, <column>, by site" entries, both word orders
    assert ("adenocarcinoma of intestine large", "C18.9") in ph and ("intestine large carcinoma", "C18.9") in ph
    assert ("intestine large metastases", "C78.5") in ph and ("adenoma of intestine large", "D12.6") in ph
    kind, rows = read_xml(FIXTURES / "drug_sample.xml")
    assert kind == "drug"
    terms = expand(kind, rows)
    ph = _phrases(terms)
    assert ("poisoning by Acetaminophen", "T39.1X1") in ph
    assert ("adverse effect of Acetaminophen", "T39.1X5") in ph
    assert ("underdosing of Acetaminophen", "T39.1X6") in ph
    assert all(t[3] == "drug" for t in terms)


def test_csv_fixture_nonessential_and_see() -> None:
    kind, rows = read_csv(FIXTURES / "index_sample.csv")
    assert kind == "index"
    terms = expand(kind, rows)
    ph = _phrases(terms)
    assert ("Abasia", "F44.4") in ph and ("hysterical Abasia", "F44.4") in ph and ("Abasia astasia", "F44.4") in ph
    assert ("Headache tension", "G44.209") in ph and ("Headache tension type", "G44.209") in ph
    hemi = [t for t in terms if t[0] == "Hemicrania"]
    assert hemi and hemi[0][1] == "G43.909" and hemi[0][6] == "Migraine"
    aura = [t for t in terms if t[0] == "Migraine with aura"]
    assert aura and aura[0][1] == "G43.109" and aura[0][7] == "Migraine, classical"
    assert not [t for t in terms if t[0].startswith("Mellitus")]  # see target absent -> no entry


def test_load_index_dir_prefers_xml(tmp_path: Path) -> None:
    for name in ("index_sample.xml", "index_sample.csv", "drug_sample.xml"):
        (tmp_path / name).write_bytes((FIXTURES / name).read_bytes())
    terms, info = load_index_dir(tmp_path)
    assert info["fy"] == 2025
    assert "index_sample.xml" in info["extra"]["index"] and "drug" in info["extra"]
    assert not any(t[1] == "F44.4" for t in terms)  # CSV of the same kind is not used


def test_bad_index_files(tmp_path: Path) -> None:
    with pytest.raises(CodeSetSourceError):
        load_index_dir(tmp_path)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CodeSetSourceError):
        read_csv(tmp_path / "x.csv")
    (tmp_path / "y.xml").write_text("<ICD10CM.tabular/>")
    with pytest.raises(CodeSetSourceError):
        read_xml(tmp_path / "y.xml")


@pytest.mark.shared
def test_real_cms_index(cm_index_dir: Path) -> None:
    kind, rows = read_csv(cm_index_dir / "ICD10CM_2025_Index.csv")
    assert kind == "index" and len(rows) > 50000
    ph = _phrases(expand(kind, rows))
    assert ("Diabetes type 2 with chronic kidney disease", "E11.22") in ph
    assert ("Diabetes mellitus type 2 with chronic kidney disease", "E11.22") in ph
    assert ("Abdominalgia", "R10.9") in ph  # see "Pain, abdominal"
    xml = cm_index_dir / "icd-10-cm-neoplasm-2025.xml"
    if xml.is_file():
        kind, rows = read_xml(xml)
        assert kind == "neoplasm"
        ph = _phrases(expand(kind, rows))
        assert any(code == "C18.9" and "malignant neoplasm of" in p for p, code in ph)


def test_every_spelling_of_a_comma_variant_term_becomes_a_phrase() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Cryptorchid, cryptorchism, cryptorchidism", code="Q53.9"),
            Row(1, "bilateral", code="Q53.20"),
            Row(0, "Syphilis, syphilitic (acquired)", code="A53.9"), Row(1, "aorta", code="A52.02"),
            Row(0, "Tenderness, abdominal", code="R10.819")]
    ph = _phrases(expand("index", rows))
    assert {("Cryptorchid", "Q53.9"), ("cryptorchism", "Q53.9"), ("cryptorchidism", "Q53.9")} <= ph
    assert ("cryptorchidism bilateral", "Q53.20") in ph
    assert ("syphilitic aorta", "A52.02") in ph and ("Syphilis aorta", "A52.02") in ph
    # an inverted modifier is no spelling of its own
    assert ("Tenderness abdominal", "R10.819") in ph and ("abdominal", "R10.819") not in ph


def test_site_adjectives_normalise_to_the_neoplasm_table_site() -> None:
    from opencac.nlp.normalize import normalize_phrase

    for adjective, site in (("cecal", "cecum"), ("ileal", "ileum"), ("mediastinal", "mediastinum"),
                            ("axillary", "axilla"), ("mandibular", "mandible"), ("palpebral", "eyelid"),
                            ("facial", "face"), ("macular", "macula")):
        assert normalize_phrase(f"{adjective} adenocarcinoma") == normalize_phrase(f"{site} adenocarcinoma")


def test_see_reference_brings_the_target_subterms_and_ignores_nec() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Calculus, calculi, calculous", code="N20.9"), Row(1, "kidney", code="N20.0"),
            Row(2, "congenital", code="Q63.8"), Row(1, "ureter", code="N20.1"),
            Row(0, "Dependence", code="F19.20"), Row(1, "drug NEC", code="F19.20"), Row(2, "nicotine", code="F17.200"),
            Row(3, "cigarettes", code="F17.210"),
            Row(0, "Lithiasis", see="Calculus"), Row(0, "Smoker", see="Dependence, drug, nicotine")]
    ph = _phrases(expand("index", rows))
    assert ("Lithiasis kidney", "N20.0") in ph and ("Lithiasis ureter", "N20.1") in ph
    assert ("Lithiasis kidney congenital", "Q63.8") in ph
    # "see Dependence, drug, nicotine" names the row "drug NEC > nicotine"
    assert ("Smoker", "F17.200") in ph and ("Smoker cigarettes", "F17.210") in ph
    # a subterm's path is kept for the rationale
    terms = [t for t in expand("index", rows) if t[0] == "Smoker cigarettes"]
    assert "see Dependence > drug NEC > nicotine > cigarettes" in terms[0][4]


@pytest.mark.parametrize(("term", "nonessential", "title", "mods"), [
    # the flattening cut the title at its first parenthesis: the rest is still the title
    ("acute and", "(on) chronic (congestive)", "acute and chronic", ("on", "congestive")),
    ("gravitational", "(G) forces or states (effect of)", "gravitational forces or states", ("G", "effect of")),
    ("Amnes", "(t)ic syndrome (post-traumatic)", "Amnesic syndrome", ("t", "post-traumatic")),
    ("foot", "(except toe(s) alone)", "foot", ("s",)),
    ("hypoxia", "", "hypoxia", ()),
])
def test_csv_title_reads_term_and_nonessential_column_as_one_title(term: str, nonessential: str, title: str,
                                                                  mods: tuple[str, ...]) -> None:
    assert csv_title(term, nonessential) == (title, mods)


def test_real_cms_index_titles_keep_their_essential_words(cm_index_dir: Path) -> None:
    """"Failure, respiratory, acute and (on) chronic" read as "acute and" made "acute respiratory
    failure" a J96.20 (acute and chronic) phrase."""
    _, rows = read_csv(cm_index_dir / "ICD10CM_2025_Index.csv")
    pairs = {(r.title, r.code) for r in rows if r.code in ("I50.23", "J96.20")}
    # "Failure, heart, systolic, acute, and (on) chronic" (was read as "and")
    assert {("and chronic", "I50.23"), ("and acute", "I50.23"), ("acute and chronic", "J96.20")} <= pairs, pairs
    # two rows lost their last word in the flattening: "acute and (on)" and, under "acute", "and (on)"
    assert ("and chronic", "I50.813") in {(r.title, r.code) for r in rows if r.code == "I50.813"}
    assert not [r.title for r in rows if r.title.endswith(" and") or r.title == "and"]


def test_a_cross_reference_in_parentheses_is_no_optional_word() -> None:
    """"Loss (of) > appetite (see Anorexia) R63.0": with "(see Anorexia)" placed before
    "appetite", the matcher cut the phrase at "see" and "loss" alone read as R63.0 (82 wrong
    codes on CodiEsp train out of the box); "Carcinoma > basal cell (see also Neoplasm, skin,
    malignant)" made every "carcinoma" C44.91."""
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Loss", nemod=("of",)), Row(1, "appetite", nemod=("see Anorexia",), code="R63.0"),
            Row(0, "Carcinoma", nemod=("malignant",)),
            Row(1, "basal cell", nemod=("pigmented", "see also Neoplasm, skin, malignant"), code="C44.91")]
    ph = _phrases(expand("index", rows))
    assert ("Loss appetite", "R63.0") in ph and ("Carcinoma basal cell pigmented", "C44.91") in ph
    assert not any("see" in p.lower().split() for p, _ in ph), sorted(ph)


def test_a_flattened_title_cut_after_a_combining_vowel_has_no_code(tmp_path: Path) -> None:
    """ "Cancer(o)phobia F45.29" flattens to "Cancer" + "(o)": the row keeps its place, not the
    code (every "cancer" read as a phobia)."""
    p = tmp_path / "ICD10CM_Index.csv"
    p.write_text("RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n"
                 "1,C,0,Cancer,,,(o),F45.29\n2,C,0,Cancerophobia,,,,F45.29\n3,D,0,Digit,,,(s),R68.89\n",
                 encoding="utf-8")
    _, rows = read_csv(p)
    assert [r.code for r in rows] == ["", "F45.29", "R68.89"]


def test_an_organism_as_cause_of_disease_is_also_its_name_alone() -> None:
    """ "Staphylococcus > as cause of disease classified elsewhere > aureus" (B95.61): notes name the
    organism ("cultures positive for Staphylococcus aureus"), or write the index's abbreviation
    ("E. coli"). A path that names only a kind of organism or "specified NEC" gets no such phrase."""
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Staphylococcus, staphylococcal"), Row(1, "as cause of disease classified elsewhere", code="B95.8"),
            Row(2, "aureus", code="B95.61"), Row(2, "specified NEC", code="B95.7"),
            Row(0, "Infection, infected, infective", code="B99.9"), Row(1, "bacterial NOS", code="A49.9"),
            Row(2, "as cause of disease classified elsewhere", code="B96.89"),
            Row(3, "Escherichia coli [E. coli]", code="B96.20"), Row(3, "Enterococcus", code="B95.2"),
            Row(1, "Klebsiella", code="A49.8"), Row(2, "as cause of disease classified elsewhere", code="B96.1"),
            Row(1, "staphylococcal, unspecified site"),
            Row(2, "as cause of disease classified elsewhere", code="B95.8"),
            Row(3, "aureus", code="B95.61"),
            Row(0, "Virus, viral"), Row(1, "as cause of disease classified elsewhere", code="B97.89"),
            Row(0, "Pseudomonas"), Row(1, "aeruginosa, as cause of disease classified elsewhere", code="B96.5")]
    ph = _phrases(expand("index", rows))
    for phrase, code in (("Staphylococcus aureus", "B95.61"), ("Staphylococcus", "B95.8"),
                         ("Escherichia coli", "B96.20"), ("E. coli", "B96.20"), ("Enterococcus", "B95.2"),
                         ("Klebsiella", "B96.1"), ("Pseudomonas aeruginosa", "B96.5")):
        assert (phrase, code) in ph, phrase
    codes_alone = {code for phrase, code in ph if "cause" not in phrase and "Infection" not in phrase}
    assert "B96.89" not in codes_alone  # "Infection > bacterial NOS > as cause": a kind, no organism
    assert "B97.89" not in codes_alone  # "Virus > as cause": every "virus" would read it
    assert "B95.7" not in codes_alone  # "specified NEC" names no organism
    assert ("aureus", "B95.61") not in ph  # the words after "staphylococcal, unspecified site" alone


def test_neoplasm_lymph_gland_is_also_a_lymph_node() -> None:
    from opencac.codesets.cmindex import Row

    cells = ["", "C77.9", "", "D36.0", "D48.7", "D49.89"]
    rows = [Row(0, "Neoplasm, neoplastic"),
            Row(1, "lymph, lymphatic channel NEC", cells=["", "C79.89", "", "", "", ""]),
            Row(2, "gland", cells=cells),
            Row(3, "inguina, inguinal", cells=["", "C77.4", "", "D36.0", "D48.7", "D49.89"]),
            Row(3, "epigastric, inferior", cells=["", "C77.1", "", "D36.0", "D48.7", "D49.89"])]
    ph = _phrases(expand("neoplasm", rows))
    assert ("lymph node inguinal metastasis", "C77.4") in ph and ("lymph gland inguina metastasis", "C77.4") in ph
    # a comma that is no spelling variant keeps both words
    assert ("lymph node epigastric inferior metastasis", "C77.1") in ph
    assert ("lymph node inferior metastasis", "C77.1") not in ph
    assert ("metastasis to lymph node", "C77.9") in ph


def test_index_references_into_the_neoplasm_table_resolve_to_the_site_and_column() -> None:
    from opencac.codesets.cmindex import Row, neoplasm_sites

    table = [Row(0, "Neoplasm, neoplastic", cells=["C80.1", "C79.9", "D09.9", "D36.9", "D48.9", "D49.9"]),
             Row(1, "cartilage (articular) (joint) NEC", cells=["C41.9", "C79.51", "", "D16.9", "D48.0", "D49.2"]),
             Row(1, "connective tissue NEC", cells=["C49.9", "C79.89", "", "D21.9", "D48.1", "D49.2"]),
             Row(1, "abdomen, abdominal", cells=["C76.2", "C79.8-", "D09.8", "D36.7", "D48.7", "D49.89"])]
    sites = neoplasm_sites(table)
    rows = [Row(0, "Chondrosarcoma", see="Neoplasm, cartilage, malignant"),
            Row(0, "Hemangioblastoma", see="Neoplasm, connective tissue, uncertain behavior"),
            Row(0, "Leiomyosarcoma", see_also="Neoplasm, connective tissue, malignant"),
            Row(0, "Chondroma", see_also="Neoplasm, cartilage, benign"),
            Row(0, "Adenocarcinoma", see_also="Neoplasm, malignant, by site"),
            Row(0, "Abdominoma", see="Neoplasm, abdominal, malignant")]
    ph = _phrases(expand("index", rows, sites))
    assert {("Chondrosarcoma", "C41.9"), ("Hemangioblastoma", "D48.1"), ("Leiomyosarcoma", "C49.9"),
            ("Chondroma", "D16.9"), ("Abdominoma", "C76.2")} <= ph
    # "by site": the note's site decides (the neoplasm table's templates), no code of its own
    assert not any(p == "Adenocarcinoma" for p, _ in ph)
    # without the table the references stay unresolved, as before
    assert not any(p == "Chondrosarcoma" for p, _ in _phrases(expand("index", rows)))


def test_a_sarcoma_named_by_its_tissue_is_a_sarcoma_of_its_site() -> None:
    from opencac.nlp.normalize import normalize_phrase

    assert normalize_phrase("leiomyosarcoma of the colon").endswith(normalize_phrase("sarcoma of the colon"))
    assert normalize_phrase("liposarcomas") == normalize_phrase("lipo sarcoma")
    assert normalize_phrase("sarcoma") == "sarcoma"


def test_see_references_find_their_row_by_any_spelling_of_each_level() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Pneumonia", code="J18.9"), Row(1, "broncho-, bronchial", code="J18.0"),
            Row(0, "Fracture, pathological", code="M84.40"), Row(1, "hip", code="M84.459"),
            Row(0, "Fracture, traumatic"), Row(1, "radius"), Row(2, "upper end", code="S52.10-"),
            Row(0, "Ulcer"), Row(1, "duodenum", code="K26.9"), Row(2, "with"), Row(3, "hemorrhage", code="K26.4"),
            Row(0, "Bronchopneumonia", see="Pneumonia, broncho"),
            Row(0, "Smith's fracture", see="Fracture, radius, upper end"),
            Row(0, "Hemorrhage"), Row(1, "duodenum"), Row(2, "ulcer", see="Ulcer, duodenum, with hemorrhage"),
            Row(0, "Kimmelstiel disease", see="E08-E13 with .21"),
            Row(0, "Thyrotoxicosis", code="E05.90"), Row(1, "with"), Row(2, "thyroid storm", code="E05.91"),
            Row(0, "Crisis"), Row(1, "thyroid", see="Thyrotoxicosis with thyroid storm"),
            Row(0, "Graves' disease", see="Thyrotoxicosis (diffuse), with, thyroid storm"),
            Row(0, "Diabetes, diabetic", code="E11.9"), Row(1, "type 2", code="E11.9"), Row(2, "with"),
            Row(3, "hyperglycemia", code="E11.65"), Row(1, "with"), Row(2, "amyotrophy", code="E11.44"),
            Row(0, "Uncontrolled"), Row(1, "diabetes", see="Diabetes, by type, with hyperglycemia"),
            Row(0, "Amyotrophy"), Row(1, "diabetic", see="Diabetes, amyotrophy"),
            Row(0, "Tuberculosis"), Row(1, "lymph gland or node", code="A18.2"),
            Row(0, "Adenitis"), Row(1, "tuberculous", see="Tuberculosis, lymph gland"),
            Row(0, "Complication"), Row(1, "transfusion", code="T80.92"),
            Row(0, "Transfusion"), Row(1, "reaction", see="Complications, transfusion")]
    ph = _phrases(expand("index", rows))
    assert ("Bronchopneumonia", "J18.0") in ph
    # the main term "Fracture, traumatic" (the first "Fracture" has no "radius")
    assert ("Smith's fracture", "S52.10-") in ph
    assert ("Hemorrhage duodenum ulcer", "K26.4") in ph
    # the type of diabetes unstated: E11 (Official Guidelines I.C.4.a.2)
    assert ("Kimmelstiel disease", "E11.21") in ph
    # "X with Y" in one part, and a reference's nonessential words
    assert ("Crisis thyroid", "E05.91") in ph and ("Graves' disease", "E05.91") in ph
    assert ("Uncontrolled diabetes", "E11.65") in ph
    # a subterm under "with", the one longer title, a plural main term
    assert ("Amyotrophy diabetic", "E11.44") in ph and ("Adenitis tuberculous", "A18.2") in ph
    assert ("Transfusion reaction", "T80.92") in ph


def test_neoplasm_sites_are_also_named_the_way_notes_name_them() -> None:
    from opencac.codesets.cmindex import Row

    def cells(c: str, s: str, b: str, u: str) -> list[str]:
        return [c, s, "", b, "", u]

    rows = [Row(0, "Neoplasm, neoplastic"),
            Row(1, "intestine, intestinal", cells=cells("C26.0", "C78.80", "D13.99", "D49.0")),
            Row(2, "large", cells=cells("C18.9", "C78.5", "D12.6", "D49.0")),
            Row(3, "colon", cells=cells("C18.9", "C78.5", "D12.6", "D49.0")),
            Row(4, "descending", cells=cells("C18.6", "C78.5", "D12.4", "D49.0")),
            Row(1, "salivary gland or duct", nemod=("major",), cells=cells("C08.9", "C79.89", "D11.9", "D49.0")),
            Row(1, "skin NOS", cells=cells("C44.90", "C79.2", "D23.9", "D49.2")),
            Row(2, "eyelid", cells=cells("C44.10-", "C79.2", "D23.1-", "D49.2")),
            Row(3, "basal cell carcinoma", cells=cells("C44.11-", "", "", ""))]
    ph = _phrases(expand("neoplasm", rows))
    # the organ's path stays; the site before its organ and the organ then the site are added
    assert ("carcinoma of intestine large colon descending", "C18.6") in ph
    assert {("descending colon carcinoma", "C18.6"), ("carcinoma of colon descending", "C18.6"),
            ("descending colon adenoma", "D12.4")} <= ph
    # a title's alternatives: the first one alone
    assert ("salivary gland tumor", "D49.0") in ph and ("salivary gland or duct tumor", "D49.0") in ph
    # a morphology level is no site: not turned into "basal cell carcinoma eyelid" (its whole path stays)
    assert not any("carcinoma eyelid" in p for p, _ in ph)
    assert ("skin eyelid basal cell carcinoma cancer", "C44.11-") in ph
    assert ("skin eyelid cancer", "C44.10-") in ph and ("eyelid skin cancer", "C44.10-") in ph


def test_a_drug_table_substance_is_also_the_status_of_its_long_term_use() -> None:
    from opencac.codesets.cmindex import Row, long_term_therapy

    def drug(title: str, t: str, level: int = 0) -> Row:
        return Row(level, title, cells=[f"{t}1", f"{t}2", f"{t}3", f"{t}4", f"{t}5", f"{t}6"])

    rows = [drug("Prednisone", "T38.0X"), drug("Insulin", "T38.3X"), drug("Metformin", "T38.3X"),
            drug("Acenocoumarol", "T45.51"), drug("Ticlopidine", "T45.52"), drug("Ibuprofen", "T39.31"),
            drug("Aspirin", "T39.01"), drug("Amoxicillin", "T36.0X"), drug("Omeprazole", "T47.1X"),
            drug("Acetylsalicylic acid", "T39.01"), drug("salts", "T39.01", level=1)]
    terms = expand("drug", rows)
    ph = _phrases(terms)
    assert {("Prednisone", "Z79.52"), ("Insulin", "Z79.4"), ("Metformin", "Z79.84"), ("Acenocoumarol", "Z79.01"),
            ("Ticlopidine", "Z79.02"), ("Ibuprofen", "Z79.1"), ("Aspirin", "Z79.82"),
            ("Amoxicillin", "Z79.2")} <= ph
    # drug table terms (the matcher takes these although it leaves the poisoning phrases out)
    assert {t[3] for t in terms if t[1].startswith("Z79")} == {"drug"}
    # a class without a long-term-use code, and a substance's subterm, give none
    assert not any(p == "Omeprazole" and c.startswith("Z") for p, c in ph)
    assert not any(c.startswith("Z79") and "salts" in p for p, c in ph)
    assert long_term_therapy(["", "", "", "", "--", "--"], "x") == ""


def test_a_reference_may_name_a_row_by_two_levels_in_the_other_order() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Diverticulosis", code="K57.90"), Row(1, "large intestine", code="K57.30"),
            Row(1, "small intestine", code="K57.10"),
            Row(1, "colon", see="Diverticulosis, intestine, large"),
            Row(1, "jejunum", see="Diverticulosis, intestine, small"),
            Row(1, "ileum", see="Diverticulosis, intestine, medium")]
    ph = _phrases(expand("index", rows))
    assert {("Diverticulosis colon", "K57.30"), ("Diverticulosis jejunum", "K57.10")} <= ph
    assert not any(p == "Diverticulosis ileum" for p, _ in ph)  # no such row: unresolved, as before


def test_a_term_path_also_reads_as_notes_word_it_without_its_qualifier() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Neuroblastoma"), Row(1, "olfactory", code="C30.0"), Row(1, "unspecified site", code="C74.90"),
            Row(0, "Malignancy"), Row(1, "unspecified site", code="C80.1"),
            Row(0, "Status", nemod=("post",)), Row(1, "estrogen receptor"), Row(2, "positive", code="Z17.0"),
            Row(1, "colostomy", code="Z93.3"),
            Row(1, "absence, epileptic", see="Epilepsy, by type, with status epilepticus"),
            Row(0, "Epilepsy", code="G40.909"),
            Row(0, "Fracture, traumatic", code="T14.8"), Row(1, "rib", code="S22.39-"),
            Row(0, "Wound, open", code="T14.8"), Row(1, "thigh", code="S71.10-")]
    ph = _phrases(expand("index", rows))
    # a morphology's unspecified site: the morphology alone; not the generic "malignancy" (C80.1 by the tabular)
    assert ("Neuroblastoma", "C74.90") in ph and ("Neuroblastoma unspecified site", "C74.90") in ph
    assert ("Malignancy", "C80.1") not in ph
    assert ("Neuroblastoma", "C30.0") not in ph  # a named site keeps its words
    # a status of two words or more without "status"; a bare procedure name is no status; status epilepticus is a state
    assert ("estrogen receptor positive", "Z17.0") in ph and ("Status estrogen receptor positive", "Z17.0") in ph
    assert not any(p == "colostomy" for p, _ in ph)
    assert not any(p == "absence epileptic" for p, _ in ph)
    # the default a note leaves unsaid: a fracture is traumatic, a wound open
    assert ("fracture rib", "S22.39-") in ph and ("Fracture traumatic rib", "S22.39-") in ph
    assert ("wound thigh", "S71.10-") in ph
    assert not any(p == "fracture" for p, _ in ph)  # the main term alone keeps its own phrase only


def test_a_main_term_listing_forms_of_one_word_reads_each_form() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Tear, torn"), Row(1, "meniscus", code="S83.209-"), Row(1, "rotator cuff", code="M75.10-"),
            Row(0, "Gout, chronic", code="M1A.9-"), Row(1, "hip", code="M1A.95-"),
            Row(0, "Stricture"), Row(1, "meniscus", see="Tear, meniscus")]
    ph = _phrases(expand("index", rows))
    assert {("Tear meniscus", "S83.209-"), ("torn meniscus", "S83.209-"), ("Tear rotator cuff", "M75.10-")} <= ph
    assert not any(p.startswith("Tear torn") for p, _ in ph)
    # a term and its qualifier stay one phrase ("chronic gout", not every "gout")
    assert ("Gout chronic hip", "M1A.95-") in ph and not any(p == "Gout hip" for p, _ in ph)
    # a reference by the first form resolves
    assert ("Stricture meniscus", "S83.209-") in ph


def test_a_joint_level_a_note_leaves_out() -> None:
    from opencac.codesets.cmindex import Row

    rows = [Row(0, "Pain"), Row(1, "foot", code="M79.67-"), Row(1, "joint", code="M25.50"),
            Row(2, "ankle", code="M25.57-"), Row(2, "foot", code="M25.57-")]
    ph = _phrases(expand("index", rows))
    assert ("Pain ankle", "M25.57-") in ph and ("Pain joint ankle", "M25.57-") in ph
    # the main term's own subterm keeps the words: "foot pain" is M79.67-, not the joint's code
    assert ("Pain foot", "M79.67-") in ph and ("Pain foot", "M25.57-") not in ph
