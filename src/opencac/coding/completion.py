"""Completing a header code the dictionary matched to a billable code below it.

The index and the tabular often lead to a category that needs more characters ("Neoplasm,
kidney, malignant C64.-"; "Pain, limb M79.60-"). A coder completes it from what the note says
- the side it documents (ICD-10-CM Official Guidelines I.B.13) - or, when the note says no
more, with the code for "unspecified" (I.B.1-2). :func:`complete_code` makes that choice
for the out-of-the-box engine; a trained model ranks the header's children itself, and the
rules layer completes what is left in the final code set.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from opencac.codesets.types import CodeSystem

_SIDES = {"right": re.compile(r"\bright\b", re.I), "left": re.compile(r"\bleft\b", re.I),
          "bilateral": re.compile(r"\bbilateral(?:ly)?\b|\bboth\b", re.I)}
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset({"of", "and", "or", "the", "with", "without", "a", "an", "in", "to", "due", "other", "nos", "site",
                   "unspecified", "side", "right", "left", "bilateral", "except", "not", "elsewhere", "classified",
                   "specified", "unilateral", "part", "region"})
_UNSPECIFIED = re.compile(r"\b(?:unspecified|not specified)\b", re.I)
_WITH_UNSPECIFIED = re.compile(r"\bwith(?:out)? unspecified\b", re.I)
#: Most descendants a header may have for a side to choose among them (a chapter-wide header
#: such as D49 would have a side word somewhere far from the mention's sense).
MAX_DESCENDANTS = 40


def stated_side(window: str) -> str | None:
    """The one laterality ``window`` states (right, left, bilateral), or None when it states
    none or more than one."""
    found = [side for side, rx in _SIDES.items() if rx.search(window)]
    return found[0] if len(found) == 1 else None


def _leaf_rank(k: Any, ptitle: str) -> tuple[bool, bool, bool, bool, int, str]:
    """Sort key of a child for :func:`unspecified_leaf` (smallest first)."""
    title = k.description.lower()
    says_unspecified = bool(_UNSPECIFIED.search(title)) and not _WITH_UNSPECIFIED.search(title)
    return (title != ptitle + ", unspecified", "other" in title.split(), not says_unspecified,
            not k.code.endswith("9"), len(k.code), k.code)


def unspecified_leaf(kb: Any, code: str, as_of: dt.date | None = None) -> str | None:
    """The billable code for "unspecified" below a header code, at most three levels down
    (I.B.1-2), among its children not titled "other": the one titled "<header>, unspecified"
    (K59.0 -> K59.00), else one whose title says the header's concept is unspecified
    (Z3A.0 -> Z3A.00 "not specified", C64 -> C64.9; not "with unspecified complications"),
    else one ending in 9 (E11 -> E11.9)."""
    frontier = [code]
    for _ in range(3):
        nxt = []
        for c in frontier:
            parent = kb.find(c)
            ptitle = parent.description.lower() if parent is not None else ""
            uns = [k for k in kb.children(c) if k.code != c
                   and (_UNSPECIFIED.search(k.description) or k.code.endswith("9"))]
            for k in sorted(uns, key=lambda k: _leaf_rank(k, ptitle))[:1]:
                if kb.is_billable(k.code, as_of):
                    return k.code
                nxt.append(k.code)
        frontier = nxt
    return None


def complete_code(kb: Any, code: str, window: str = "", as_of: dt.date | None = None) -> tuple[str, str] | None:
    """``(billable code, reason)`` completing the ICD-10-CM header ``code`` from ``window`` (the
    text around its mention), or None when ``code`` is billable, unknown, takes a 7th
    character (the rules layer decides the episode of care) or has no unspecified leaf.

    A side the window states picks the descendant titled with that side whose other title
    words the window shares most (M79.60 "pain in limb" + "right leg" -> M79.604); otherwise
    the unspecified leaf.
    """
    obj = kb.find(code)
    if obj is None or obj.system is not CodeSystem.ICD10CM or kb.is_billable(code, as_of):
        return None
    if kb.seventh_characters(obj.code):
        return None
    side = stated_side(window) if window else None
    if side is not None:
        desc = kb.billable_descendants(obj.code)
        if len(desc) <= MAX_DESCENDANTS:
            words = set(_WORD.findall(window.lower()))
            base = set(_WORD.findall(obj.description.lower()))
            best: tuple[int, int, str] | None = None
            for d in desc:
                title = kb.find(d).description.lower()
                if not _SIDES[side].search(title) or not kb.is_billable(d, as_of):
                    continue
                extra = set(_WORD.findall(title)) - base - _STOP
                key = (-len(extra & words), len(extra - words), d)
                if best is None or key < best:
                    best = key
            if best is not None and best[1] == 0:
                return best[2], f"completed from the documented side ({side})"
    leaf = unspecified_leaf(kb, obj.code, as_of)
    return (leaf, "completed to the unspecified code (the note says no more)") if leaf else None
