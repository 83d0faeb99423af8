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

__all__ = ["SIDE_WINDOW", "side_of_title", "stated_side", "documented_side_first"]

#: Characters either side of a mention searched for the side it has.
SIDE_WINDOW = 60

_TITLE_SIDES = (("bilateral", re.compile(r"\bbilateral\b", re.I)), ("right", re.compile(r"\bright\b", re.I)),
                ("left", re.compile(r"\bleft\b", re.I)))
#: Side words of a note; the eye's abbreviations only as capitals (RE / OD right eye, LE / OI / OS
#: left eye, OU both eyes: Spanish "ojo derecho / izquierdo" keeps OD / OI in translation).
_NOTE_SIDES = (("bilateral", re.compile(r"\b(?:[Bb]ilateral(?:ly)?|[Bb]oth|OU|AO)\b")),
               ("right", re.compile(r"\b(?:[Rr]ight|RE|OD)\b")), ("left", re.compile(r"\b(?:[Ll]eft|LE|OI|OS)\b")))


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


def stated_side(text: str) -> str | None:
    """The one side ``text`` states, or None when it states none or more than one."""
    found = [side for side, rx in _NOTE_SIDES if rx.search(text)]
    return found[0] if len(found) == 1 else None


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
        if len(members) < 2:
            continue
        sides: dict[int, str] = {}
        for i in members:
            obj = _find(kb, cands[i].code, "icd10cm")
            side = side_of_title(obj.description) if obj is not None else None
            if side is None:
                break
            sides[i] = side
        else:
            hits = [h for i in members for h in (cands[i].hits or (related(cands[i].code) if related else []))]
            windows = [text[max(0, h.start - SIDE_WINDOW):h.end + SIDE_WINDOW] for h in hits]
            said = {stated_side(w) for w in windows}
            said.discard(None)
            if not said and hits and not any(rx.search(w) for w in windows for _, rx in _NOTE_SIDES):
                said = {"unspecified"}
            if len(said) != 1:
                continue
            side = said.pop()
            want = [i for i in members if sides[i] == side]
            if not want:
                continue
            w = max(want, key=lambda i: scores[i])
            ranked = sorted(members, key=lambda i: -scores[i])
            if ranked[0] == w:
                continue
            # the documented side takes the group's best place; the others keep their order
            # below it, each in the next place the group holds
            moved = [w, *(i for i in ranked if i != w)]
            scores[moved], conf[moved] = scores[ranked], conf[ranked]
    return scores, conf
