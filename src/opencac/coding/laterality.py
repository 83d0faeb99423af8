"""The documented side first among codes that differ only in laterality.

ICD-10-CM codes the side of many conditions in the last character (H02.401 / H02.402 / H02.403 /
H02.409 "ptosis of right / left / bilateral / unspecified eyelid"); the Official Guidelines
(I.B.13) ask for the side the provider documents. A ranker learns little about sides from a few
hundred notes (each side of each code is rare), so after ranking, among the candidates that
differ only in their last character and whose titles each name a side, the code of the side the
note states around the mention is moved to the best rank the group holds, and the codes it
passes move down one of the group's places each (scores and confidences go with the places).
Where the note states no side near the mention, the code for the unspecified side takes that
place ("If the side is not identified in the medical record, assign the code for the unspecified
side", I.B.13); where it states more than one, nothing moves.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from opencac.coding.candidates import _find
from opencac.coding.completion import _SIDES

__all__ = ["SIDE_WINDOW", "side_of_title", "stated_side", "documented_side_first"]

#: Characters either side of a mention searched for the side it has.
SIDE_WINDOW = 60

_TITLE_SIDES = (("bilateral", re.compile(r"\bbilateral\b", re.I)), ("right", re.compile(r"\bright\b", re.I)),
                ("left", re.compile(r"\bleft\b", re.I)))
#: The eye's abbreviations, as capitals only (RE / OD right eye, LE / OI / OS left eye, OU / AO
#: both eyes: Spanish "ojo derecho / izquierdo" keeps OD / OI in translation); the side words
#: themselves are those the header completion reads (:data:`opencac.coding.completion._SIDES`).
_EYES = {"bilateral": re.compile(r"\b(?:OU|AO)\b"), "right": re.compile(r"\b(?:RE|OD)\b"),
         "left": re.compile(r"\b(?:LE|OI|OS)\b")}


@functools.lru_cache(maxsize=65536)
def side_of_title(title: str) -> str | None:
    """``right`` / ``left`` / ``bilateral`` when a code title names that side, ``unspecified``
    when it names an unspecified side ("unspecified eye", "unspecified side"), else None."""
    for side, rx in _TITLE_SIDES:
        if rx.search(title):
            return side
    if re.search(r"\bunspecified\s+(?:side|eye|ear|eyelid|limb|arm|leg|hand|foot|knee|hip|shoulder|elbow|"
                 r"wrist|ankle|kidney|breast|lung|ovary|testis|orbit|upper limb|lower limb|thigh|"
                 r"lower leg|upper arm|forearm|finger|toe|fallopian tube)\b", title, re.I):
        return "unspecified"
    return None


def _sides(text: str) -> list[str]:
    """Every side ``text`` states."""
    return [side for side, rx in _SIDES.items() if rx.search(text) or _EYES[side].search(text)]


def stated_side(text: str) -> str | None:
    """The one side ``text`` states, or None when it states none or more than one."""
    found = _sides(text)
    return found[0] if len(found) == 1 else None


def _group_sides(kb: Any, cands: Sequence[Any], members: list[int]) -> dict[int, str] | None:
    """The side each member's title names, or None when one names none (no laterality group)."""
    sides: dict[int, str] = {}
    for i in members:
        obj = _find(kb, cands[i].code, "icd10cm")
        side = side_of_title(obj.description) if obj is not None else None
        if side is None:
            return None
        sides[i] = side
    return sides


def documented_side_first(kb: Any, text: str, cands: Sequence[Any], scores: np.ndarray, conf: np.ndarray,
                          related: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores and confidences with the documented side's code first in each laterality group.

    Args:
        kb: the knowledge base (code titles).
        text: the note.
        cands: one note's ICD-10-CM candidates (canonical keys in ``.code``, dictionary hits in ``.hits``).
        scores / conf: their ranker scores and calibrated confidences (not changed in place).
        related: a callable giving, for a code, the hits of the matched codes above or below it
            (the mention a code found only through the hierarchy stands on); None: own hits only.
    """
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cands):
        if len(c.code) >= 4:
            groups.setdefault(c.code[:-1], []).append(i)
    scores, conf = np.array(scores, dtype=np.float64), np.array(conf, dtype=np.float64)
    for members in groups.values():
        sides = _group_sides(kb, cands, members) if len(members) > 1 else None
        if sides is None:
            continue
        hits = [h for i in members for h in (cands[i].hits or (related(cands[i].code) if related else []))]
        windows = [text[max(0, h.start - SIDE_WINDOW):h.end + SIDE_WINDOW] for h in hits]
        found = [_sides(w) for w in windows]
        said = {f[0] for f in found if len(f) == 1}
        if not said and hits and not any(found):
            said = {"unspecified"}
        want = [i for i in members if len(said) == 1 and sides[i] in said]
        if not want:
            continue
        w = max(want, key=lambda i: scores[i])
        ranked = sorted(members, key=lambda i: -scores[i])
        if ranked[0] != w:
            # the documented side takes the group's best place; the others keep their order
            # below it, each in the next place the group holds
            moved = [w, *(i for i in ranked if i != w)]
            scores[moved], conf[moved] = scores[ranked], conf[ranked]
    return scores, conf
