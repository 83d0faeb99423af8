"""MentionMatcher on a small term list: abbreviations, plurals, whole tokens, bags, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencac.errors import ModelFormatError
from opencac.nlp import Mention, MentionMatcher, analyze

TERMS = [
    ("Hypertension", "I10"),
    ("Hypertension, essential", "I10"),
    ("Diabetes, type 2", "E11.9"),
    ("Type 2 diabetes mellitus", "E11.9"),
    ("Heart failure, congestive", "I50.9"),
    ("Failure, heart, systolic", "I50.20"),
    ("Fracture, femur, neck", "S72.00"),
    ("Fractures of ribs", "S22.49"),
    ("Artery, coronary, disease", "I25.10"),
    ("Coronary artery disease", "I25.10"),
    ("Pneumonia", "J18.9"),
    ("Pneumonia, lobar", "J18.1"),
    ("Disease", "R69"),
    ("Status", "Z99"),
    ("Urinary tract infection", "N39.0"),
    ("Pre-eclampsia", "O14.90"),
    ("Aarskog's syndrome", "Q87.19"),
    ("Computerized tomography (CT) of chest", "BW24"),
    ("Pain, chest", "R07.9"),
    ("Chest pain", "R07.9"),
    ("Arteries, narrowing", "I77.1"),
    ("Acute appendicitis with perforation", "K35.32"),
    ("Chronic kidney disease, stage 2", "N18.2"),
]


@pytest.fixture(scope="module")
def matcher() -> MentionMatcher:
    return MentionMatcher.build(TERMS)


def _find(m: MentionMatcher, text: str, **kw: object) -> list[Mention]:
    return m.find(analyze(text), **kw)  # type: ignore[arg-type]


def test_abbreviations_match_with_original_offsets(matcher: MentionMatcher) -> None:
    text = "Known HTN and T2DM. Admitted with CHF and a UTI."
    found = {(m.text, m.phrase) for m in _find(matcher, text) if m.kind == "exact"}
    assert ("HTN", "hypertension") in found
    assert ("T2DM", "diabetes type 2") in found
    assert ("UTI", "urinary tract infection") in found
    for m in _find(matcher, text):
        assert text[m.start : m.end] == m.text


def test_plurals_and_spelling_variants(matcher: MentionMatcher) -> None:
    text = "Multiple rib fractures. Narrowing of the arteries. Preeclampsia at 32 weeks. Aarskog syndrome."
    phrases = {m.phrase for m in _find(matcher, text)}
    assert "arteries narrowing" not in phrases  # phrases are stored normalised
    assert "artery narrowing" in phrases
    assert "preeclampsia" in phrases
    assert "aarskog syndrome" in phrases
    assert "fracture rib" in phrases  # bag: "rib fractures" vs "Fractures of ribs"


def test_whole_tokens_only(matcher: MentionMatcher) -> None:
    # "pneumoniae" (Streptococcus pneumoniae) and "bronchopneumonia" contain the phrase but are other words
    assert not any(m.phrase == "pneumonia" for m in _find(matcher, "Pneumoniae aside, bronchopneumonia."))
    # a plural is the same word
    assert any(m.phrase == "pneumonia" for m in _find(matcher, "Two pneumonias."))
    found = _find(matcher, "Bronchopneumonia and hypertensionitis.")
    assert found == []


def test_generic_single_words_are_filtered(matcher: MentionMatcher) -> None:
    assert _find(matcher, "Disease status unknown.") == []


def test_longest_match_preference_keeps_overlaps(matcher: MentionMatcher) -> None:
    text = "Lobar pneumonia and essential hypertension."
    by_phrase = {m.phrase: m for m in _find(matcher, text)}
    assert by_phrase["pneumonia"].subsumed is True
    assert by_phrase["pneumonia lobar"].subsumed is False
    assert by_phrase["hypertension"].subsumed is True
    longest = _find(matcher, text, overlapping=False)
    assert all(not m.subsumed for m in longest)
    assert "pneumonia" not in {m.phrase for m in longest}


def test_bag_match_for_reordered_phrase(matcher: MentionMatcher) -> None:
    text = "X-ray showed a fracture of the neck of the femur."
    ms = [m for m in _find(matcher, text) if m.phrase == "fracture femur neck"]
    assert len(ms) == 1
    m = ms[0]
    assert m.kind == "bag" and 0 < m.score < 1
    assert m.text == "fracture of the neck of the femur"
    assert m.payloads == ["S72.00"]


@pytest.mark.parametrize("text", ["Acute appendicitis without perforation.",
                                  "Appendicitis, acute, no signs of perforation."])
def test_bag_match_does_not_read_across_a_negation(matcher: MentionMatcher, text: str) -> None:
    """A "with X" phrase matched as a bag must not take "without X" for it."""
    assert not [m for m in _find(matcher, text) if "K35.32" in m.payloads]


def test_bag_match_with_the_words_in_another_order_still_matches(matcher: MentionMatcher) -> None:
    ms = [m for m in _find(matcher, "Perforation due to acute appendicitis.") if "K35.32" in m.payloads]
    assert ms and ms[0].kind == "bag"


def test_bag_match_does_not_cross_a_semicolon(matcher: MentionMatcher) -> None:
    """List items are separated by semicolons: the "2" of "type 2 diabetes" is no CKD stage."""
    text = "Past history: type 2 diabetes; essential hypertension; chronic kidney disease stage 3."
    assert not [m for m in _find(matcher, text) if "N18.2" in m.payloads]
    ms = [m for m in _find(matcher, "Stage 2 chronic kidney disease.") if "N18.2" in m.payloads]
    assert ms and ms[0].kind == "bag"


def test_payloads_grouped_by_normalised_phrase(matcher: MentionMatcher) -> None:
    ms = [m for m in _find(matcher, "Coronary artery disease.") if m.kind == "exact"]
    assert [m.payloads for m in ms if m.phrase == "coronary artery disease"] == [["I25.10"]]


def test_assertion_and_section_filled(matcher: MentionMatcher) -> None:
    text = "Family history: hypertension.\nAssessment: no pneumonia. Possible UTI."
    got = {m.phrase: (m.section, m.assertion) for m in _find(matcher, text)}
    assert got["hypertension"] == ("family_history", "family")
    assert got["pneumonia"] == ("assessment", "negated")
    assert got["urinary tract infection"] == ("assessment", "uncertain")


def test_save_load_round_trip(matcher: MentionMatcher, tmp_path: Path) -> None:
    p = tmp_path / "m.pkl"
    matcher.save(p)
    loaded = MentionMatcher.load(p)
    text = "HTN, CHF, fracture of the neck of the femur."
    a = [(m.start, m.end, m.phrase, m.kind) for m in _find(matcher, text)]
    b = [(m.start, m.end, m.phrase, m.kind) for m in _find(loaded, text)]
    assert a == b and a
    assert len(loaded) == len(matcher)
    # a loaded matcher keeps phrases and bag keys as one text with offsets, and the bag
    # anchors as bytes: read the same, and saved again the same
    assert list(loaded.phrases_) == list(matcher.phrases_) and loaded.phrases_[-1] == matcher.phrases_[-1]
    assert list(loaded.bag_keys_) == list(matcher.bag_keys_)
    assert {k: list(loaded.bag_anchor_[k]) for k in loaded.bag_anchor_} == \
           {k: list(v) for k, v in matcher.bag_anchor_.items()}
    assert len(loaded.bag_anchor_) == len(matcher.bag_anchor_) > 0
    assert loaded.bag_anchor_.get("\x01\x01") is None and loaded.bag_anchor_.get("\x01\x01", 5) == 5
    with pytest.raises(KeyError):
        loaded.bag_anchor_["\x01\x01"]
    with pytest.raises(IndexError):
        loaded.phrases_[len(matcher)]
    loaded.save(tmp_path / "again.pkl")
    again = MentionMatcher.load(tmp_path / "again.pkl")
    assert [(m.start, m.end, m.phrase, m.kind) for m in _find(again, text)] == a


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError):
        MentionMatcher.load(tmp_path / "missing.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ModelFormatError):
        MentionMatcher.load(bad)


def test_spelled_out_abbreviation_in_a_phrase_is_not_doubled() -> None:
    m = MentionMatcher.build([("Human immunodeficiency virus (HIV) disease", "B20"),
                              ("Computerized tomography (CT) of chest", "BW24")])
    got = {(x.text, x.phrase, x.kind) for x in m.find(analyze("HIV disease. CT of the chest."))}
    assert ("HIV disease", "human immunodeficiency virus disease", "exact") in got
    assert ("CT of the chest", "computerized tomography chest", "exact") in got


def test_mentions_do_not_cross_sentences() -> None:
    m = MentionMatcher.build([("chest pain", "R07.9")])
    assert [x.phrase for x in m.find(analyze("Chest pain.\nNothing else."))] == ["chest pain"]
    assert not any(x.phrase == "chest pain" for x in m.find(analyze("Look at the chest.\nPain.")))


def test_run_on_text_is_matched_in_units_with_correct_offsets(matcher: MentionMatcher) -> None:
    text = " ".join(["word"] * 300) + ", no pneumonia " + " ".join(["word"] * 300) + " and HTN"
    ms = _find(matcher, text)
    got = {(m.text, m.assertion) for m in ms}
    assert ("pneumonia", "negated") in got and ("HTN", "affirmed") in got
    for m in ms:
        assert text[m.start : m.end] == m.text


def test_see_references_are_cut_from_phrases() -> None:
    m = MentionMatcher.build([("Gastrectomy Partial see Excision, Stomach", "0DB6")])
    assert m.phrases_ == ["gastrectomy partial"]
    assert [x.text for x in m.find(analyze("Partial gastrectomy was performed."))] == ["Partial gastrectomy"]


def test_empty_and_all_filtered_dictionaries(tmp_path: Path) -> None:
    for entries in ([], [("", "x"), ("the", "y"), ("Disease", "R69")]):
        m = MentionMatcher.build(entries)
        assert len(m) == 0
        assert m.find(analyze("Hypertension and disease.")) == []
        m.save(tmp_path / "e.pkl")
        assert MentionMatcher.load(tmp_path / "e.pkl").find(analyze("Hypertension.")) == []


def test_unbuilt_matcher_is_an_error() -> None:
    with pytest.raises(ModelFormatError):
        MentionMatcher().find(analyze("x"))
    with pytest.raises(ModelFormatError):
        MentionMatcher().save("/nonexistent/m.pkl")


def test_custom_stop_phrases_keep_generic_words() -> None:
    m = MentionMatcher.build([("Disease", "R69"), ("Pain", "R52")], stop_phrases=())
    assert [x.phrase for x in m.find(analyze("Pain and disease."))] == ["pain", "disease"]


def test_partner_index_finds_the_same_mentions(matcher: MentionMatcher) -> None:
    """After a few notes the bag matcher indexes anchor partners; the mentions stay the same."""
    doc = analyze("Fracture of the neck of the femur, left. Femur neck fracture. Neck of femur fracture healed.")

    def key(ms: list[Mention]) -> list[tuple]:
        return [(m.start, m.end, m.phrase, m.score, m.kind, m.subsumed) for m in ms]

    m = MentionMatcher.build(TERMS)
    m.PARTNER_INDEX_AFTER = 10**9
    scan = key(m.find(doc))
    m.PARTNER_INDEX_AFTER = 0
    assert m._partners() is not None
    assert key(m.find(doc)) == scan and any(k[4] == "bag" for k in scan)


def test_exact_matches_equal_a_brute_force_search_over_a_large_vocabulary(tmp_path: Path) -> None:
    """The automaton's keys take two characters per token (id // 256, id % 256, from disjoint
    ranges); with 700 words, ids share both halves, and every whole-token occurrence of every
    phrase is still found once, at token boundaries only, before and after a save / load."""
    import random

    rng = random.Random(7)
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{'q' * (i // 676)}x" for i in range(700)]
    phrases = {" ".join(rng.sample(words, rng.randint(1, 4))) for _ in range(900)}
    phrases = sorted(phrases)
    m = MentionMatcher.build([(p, i) for i, p in enumerate(phrases)], bag=False, stop_phrases=())
    assert len(m.vocab_) > 512  # ids up to three "high" characters
    pool = words + ["unknownword", "zzz"]
    text = ". ".join(" ".join(rng.choice(pool) for _ in range(rng.randint(3, 25))) for _ in range(120)) + "."
    doc = analyze(text)

    def brute() -> set[tuple[int, int, str]]:
        found = set()
        for sent in doc.sentences:
            toks = [(mt.start() + sent.start, mt.end() + sent.start, mt.group())
                    for mt in __import__("re").finditer(r"\w+", text[sent.start:sent.end])]
            for i in range(len(toks)):
                for n in range(1, 5):
                    if i + n <= len(toks):
                        p = " ".join(t[2] for t in toks[i:i + n])
                        if p in phrases:
                            found.add((toks[i][0], toks[i + n - 1][1], p))
        return found

    want = brute()
    assert len(want) > 50
    got = {(x.start, x.end, x.phrase) for x in m.find(doc, assertion=False, attributes=False)}
    assert got == want
    m.save(tmp_path / "m.pkl")
    again = MentionMatcher.load(tmp_path / "m.pkl")
    assert {(x.start, x.end, x.phrase) for x in again.find(doc, assertion=False, attributes=False)} == want


def test_keep_filters_mentions_without_changing_the_kept_ones(matcher: MentionMatcher) -> None:
    """``keep`` drops mentions none of whose payloads pass; a kept mention (its subsumed flag,
    assertion, order) is exactly what the unfiltered search returns."""
    doc = analyze("No chest pain. Essential hypertension and coronary artery disease; CT of chest was normal.\n"
                  "Denies heart failure, congestive.")

    def key(m: Mention) -> tuple:
        return (m.start, m.end, m.phrase, tuple(m.payloads), m.subsumed, m.assertion, m.kind, m.score)

    every = matcher.find(doc)
    kept = matcher.find(doc, keep=lambda code: code.startswith("I"))
    want = [key(m) for m in every if any(c.startswith("I") for c in m.payloads)]
    assert [key(m) for m in kept] == want
    assert 0 < len(kept) < len(every)
    assert any(m.subsumed for m in kept)  # "disease" inside "coronary artery disease", and so on


def test_writers_of_one_dictionary_file_do_not_collide(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two test or batch workers on a fresh cache compile the same dictionary at once: each
    writes its own temporary file and renames it into place (they shared one temporary name,
    wrote into it together and renamed it from under each other)."""
    import threading

    m = MentionMatcher.build([(f"term number {i} of the list", f"X{i:03d}") for i in range(3000)])
    path = tmp_path / "dictionary-test.pkl"
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(5):
                m.save(path)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(MentionMatcher.load(path)) == len(m)
    assert [p.name for p in tmp_path.iterdir()] == ["dictionary-test.pkl"]


def test_coordinated_words_are_no_relating_phrase() -> None:
    """"Blood and urine tests" lists two specimens: no "blood in urine" (R31.9) as a bag of words;
    a "with" phrase still reads "and" as ICD-10-CM does ("nausea with vomiting", R11.2)."""
    m = MentionMatcher.build([("blood in urine", "R31.9"), ("nausea with vomiting", "R11.2"),
                              ("insomnia due to depression", "F51.05")])

    def codes(text: str) -> set[str]:
        return {p for x in m.find(analyze(text)) for p in x.payloads}

    assert "R31.9" not in codes("Blood and urine tests were normal.")
    assert "R31.9" not in codes("Cultures of blood, urine and sputum were negative.")
    assert "R31.9" in codes("There was blood in the urine.")
    assert "R11.2" in codes("She had nausea and vomiting.")
    assert "R11.2" in codes("Nausea, vomiting and fever.")
    assert "F51.05" not in codes("History of insomnia and depression.")
