"""Candidate features learned from dictionary hits (HitPrecision) and title-word coverage."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from opencac.coding.candidates import FEATURES, _words, build_candidates, feature_matrix
from opencac.coding.supervised import HitPrecision


def _hit(code: str, phrase: str, sentence: int = 0) -> SimpleNamespace:
    return SimpleNamespace(code=code, phrase=phrase, sentence=sentence)


def test_hit_precision_counts_gold_below_and_phrases() -> None:
    hits = [
        [_hit("R50.9", "fever"), _hit("R22", "swelling")],
        [_hit("R50.9", "fever"), _hit("Z76.89", "patient")],
        [_hit("R50.9", "pyrexia"), _hit("Z76.89", "patient")],
    ]
    codes = [["r509", "r220"], ["r509"], []]
    hp = HitPrecision().fit(hits, codes)
    assert hp.code_stats("r509") == (3, 2, 2)
    assert hp.code_stats("r22") == (1, 0, 1)  # coded one level below the hit
    assert hp.code_stats("z7689") == (2, 0, 0)
    assert hp.code_stats("e119") == (0, 0, 0)
    assert hp.phrase_stats("fever", "r509") == (2, 2)
    assert hp.phrase_stats("pyrexia", "r509") == (1, 0)
    # one note has a hit under R22; it was coded R22.0
    assert hp.prefix_rate("r220", 3) == pytest.approx(1 / 2)
    assert math.isnan(hp.prefix_rate("e119", 3))


def test_title_words_are_stemmed_content_words() -> None:
    assert _words("Fever of the kidneys, unspecified") == {"fever", "kidney"}


def _kb() -> SimpleNamespace:
    titles = {"r22": "Localized swelling, mass and lump of skin", "r220": "Localized swelling, mass and lump, head",
              "r221": "Localized swelling, mass and lump, neck"}
    codes = {k: SimpleNamespace(code=k, description=v, billable=len(k) > 3) for k, v in titles.items()}
    return SimpleNamespace(find=lambda c: codes.get(c),
                           children=lambda c: [codes[k] for k in sorted(codes) if k.startswith(c) and len(k) == len(c) + 1])


def test_children_of_a_matched_category_become_candidates_with_title_coverage() -> None:
    hit = SimpleNamespace(code="R22", system="icd10cm", source="index", incomplete=True, score=1.0, n_tokens=1,
                          subsumed=False, sentence=0, assertion="affirmed", phrase="swelling", specified=False)
    sup = SimpleNamespace(prefix_index_={}, codes_=[], index_={}, prior_=np.zeros(0),
                          hit_precision_=HitPrecision().fit([[hit]], [["r220"]]))
    sig = {k: np.zeros((1, 0), dtype=np.float32) for k in ("kr", "knn", "lex", "lex_sum", "lex_n")}
    kb = _kb()
    cands = build_candidates("icd10cm", [hit], sup, sig, 0, kb, 10, text="A swelling of the head was seen.")
    assert {"r22", "r220", "r221"} <= set(cands)
    assert "child" in cands["r220"].via
    assert cands["r220"].feats["desc_extra_cov"] == 1.0  # "head" is in the note
    assert cands["r221"].feats["desc_extra_cov"] == 0.0  # "neck" is not
    assert cands["r220"].feats["hp_anc_below_rate"] == pytest.approx(0.5)
    assert cands["r22"].feats["hp_below_rate"] == pytest.approx(0.5)
    # without a supervised layer (out of the box) no children are added
    assert set(build_candidates("icd10cm", [hit], None, None, 0, kb, 10)) == {"r22"}
    M = feature_matrix(list(cands.values()))
    assert M.shape == (len(cands), len(FEATURES))


def test_hit_precision_update_adds_counts_like_one_fit() -> None:
    from types import SimpleNamespace

    from opencac.coding.supervised import HitPrecision

    def h(code: str, phrase: str) -> SimpleNamespace:
        return SimpleNamespace(code=code, phrase=phrase)

    a = ([[h("R50.9", "fever"), h("R52", "pain")]], [["r509"]])
    b = ([[h("R50.9", "fever")], [h("B20", "hiv")]], [["r509"], ["b20"]])
    whole = HitPrecision().fit(a[0] + b[0], a[1] + b[1])
    step = HitPrecision().fit(*a)
    assert step.code_stats("b20") == (0, 0, 0)
    step.features("b20")
    step.update(*b)  # the memo of the first look-up must not hide the new counts
    for code in ("r509", "r52", "b20"):
        assert repr(step.features(code)) == repr(whole.features(code))  # repr: nan == nan
    assert step.code_stats("b20") == (1, 1, 1)
    assert step.code_stats("r509") == (2, 2, 2)


def _injury_kb() -> SimpleNamespace:
    """V87.9 takes a 7th character after XX placeholders; T14.8 after one; S06.9 has 6-character
    subcodes (no placeholder form); R52 is complete."""
    titles = {"v879": "Person injured in collision (traffic)", "v879xxa": "..., initial encounter",
              "v879xxd": "..., subsequent encounter", "v879xxs": "..., sequela",
              "t148": "Other injury of unspecified body region", "t148xxa": "..., initial encounter",
              "s069": "Unspecified intracranial injury", "s069x": "Unspecified intracranial injury",
              "s069x0": "... without loss of consciousness", "r52": "Pain, unspecified"}
    codes = {k: SimpleNamespace(code=k, description=v, billable=len(k) == 7 or k == "r52") for k, v in titles.items()}

    def find(c: str, system: object = None) -> SimpleNamespace | None:
        return codes.get(c.rstrip("x") if c not in codes else c)  # the placeholder form reads as its code

    return SimpleNamespace(
        find=find, children=lambda c: [codes[k] for k in sorted(codes)
                                       if k.startswith(c) and len(k) > len(c) and not k[len(c):].strip("x")[:-1]])


def _hit_on(code: str) -> SimpleNamespace:
    return SimpleNamespace(code=code, system="icd10cm", source="index", incomplete=False, score=1.0, n_tokens=2,
                           subsumed=False, sentence=0, assertion="affirmed", phrase=code, specified=False)


def test_placeholder_form_of_a_code_needing_a_7th_character_is_a_trained_candidate() -> None:
    from opencac.coding.candidates import _padded

    kb = _injury_kb()
    assert _padded(kb, "v879") == "v879xx" and _padded(kb, "t148") == "t148xx"
    assert _padded(kb, "s069") is None and _padded(kb, "r52") is None and _padded(kb, "v879xxa") is None
    hits = [_hit_on("V87.9"), _hit_on("R52")]
    sup = SimpleNamespace(prefix_index_={}, codes_=[], index_={}, prior_=np.zeros(0),
                          hit_precision_=HitPrecision().fit([hits], [["v879xx"]]))
    sig = {k: np.zeros((1, 0), dtype=np.float32) for k in ("kr", "knn", "lex", "lex_sum", "lex_n")}
    cands = build_candidates("icd10cm", hits, sup, sig, 0, kb, 10, max_children=0)
    assert "pad" in cands["v879xx"].via and "r52xxx" not in cands
    assert cands["v879xx"].feats["pad_twin"] == 1.0 and cands["v879"].feats["pad_twin"] == 0.0
    assert "pad_twin" not in cands["r52"].feats  # missing: no placeholder form
    assert cands["v879xx"].feats["d_anc_best"] == 1.0  # the code it pads was matched
    # out of the box (no training labels to learn the coders' form from) there is no twin
    assert "v879xx" not in build_candidates("icd10cm", hits, None, None, 0, kb, 10)
