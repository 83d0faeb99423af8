"""The documented side first among codes differing only in laterality (opencac.coding.laterality)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from opencac.coding.laterality import documented_side_first, side_of_title, stated_side

TITLES = {"H02.401": "Unspecified ptosis of right eyelid", "H02.402": "Unspecified ptosis of left eyelid",
          "H02.403": "Unspecified ptosis of bilateral eyelids", "H02.409": "Unspecified ptosis of unspecified eyelid",
          "H02.40": "Unspecified ptosis of eyelid", "R51.9": "Headache, unspecified", "R51.0": "Headache with "
          "orthostatic component, not elsewhere classified"}


class _KB:
    def find(self, code: str, system: object = None) -> object:
        dotted = code.upper() if "." in code else code.upper()[:3] + "." + code.upper()[3:]
        title = TITLES.get(dotted)
        return SimpleNamespace(code=dotted, description=title) if title else None


def _cand(code: str, start: int | None = None) -> SimpleNamespace:
    hits = [SimpleNamespace(start=start, end=start + 6)] if start is not None else []
    return SimpleNamespace(code=code, hits=hits)


@pytest.mark.parametrize(("title", "side"), [
    ("Unspecified ptosis of right eyelid", "right"), ("Pain in left knee", "left"),
    ("Unspecified ptosis of bilateral eyelids", "bilateral"), ("Unspecified ptosis of unspecified eyelid", "unspecified"),
    ("Headache, unspecified", None), ("Rightward gaze", None),
])
def test_side_of_title(title: str, side: str | None) -> None:
    assert side_of_title(title) == side


def test_stated_side_reads_the_eye_abbreviations_as_capitals_only() -> None:
    assert stated_side("ptosis of the RE") == "right" and stated_side("VA 0.1 in OI") == "left"
    assert stated_side("both eyes") == "bilateral" and stated_side("right and left") is None
    assert stated_side("we re-examined the lesion") is None and stated_side("no side") is None


def test_the_documented_side_takes_the_groups_best_place() -> None:
    text = "He had ptosis of the left eyelid."
    at = text.index("ptosis")
    cands = [_cand("h02401"), _cand("h02409"), _cand("h02402"), _cand("r519", 0), _cand("h0240", at)]
    scores, conf = np.array([0.9, 0.8, 0.5, 0.7, 0.6]), np.array([0.6, 0.5, 0.2, 0.4, 0.3])

    def related(code: str) -> list:
        return cands[4].hits if code.startswith("h0240") else []

    got_s, got_c = documented_side_first(_KB(), text, cands, scores, conf, related)
    # left first, then right and unspecified in their order, on the places the group held
    assert got_s.tolist() == [0.8, 0.5, 0.9, 0.7, 0.6] and got_c.tolist() == [0.5, 0.2, 0.6, 0.4, 0.3]
    assert scores.tolist() == [0.9, 0.8, 0.5, 0.7, 0.6]  # inputs untouched
    # two sides near the mention: nothing moves
    two = "Ptosis of the left eyelid and of the right one."
    assert documented_side_first(_KB(), two, cands, scores, conf, related)[0].tolist() == scores.tolist()
    # no side near the mention (one far from it does not count): the unspecified side first
    for none in ("He had ptosis of the eyelid.", "He had ptosis of the eyelid." + " " * 80 + "Left knee pain."):
        got, _ = documented_side_first(_KB(), none, cands, scores, conf, related)
        assert got.tolist() == [0.8, 0.9, 0.5, 0.7, 0.6]
    # codes without a side in their titles never move
    plain = [_cand("r510", 0), _cand("r519", 0)]
    assert documented_side_first(_KB(), "Left headache", plain, np.array([0.2, 0.9]), np.array([0.1, 0.5]))[
        0].tolist() == [0.2, 0.9]
