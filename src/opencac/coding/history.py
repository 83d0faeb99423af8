"""History codes for conditions the patient had, or a relative has.

A note's "history of breast cancer" or "his father died of colon cancer" names a condition the
dictionary finds (C50.9, C18.9) with the assertion *historical* or *family*; the code a coder
assigns is the personal or family history code (Z85.3, Z80.0). The tabular says which: each
history code lists the conditions it stands for as an inclusion term ("Z80.0 Family history of
malignant neoplasm of digestive organs: Conditions classifiable to C15-C26"; ICD-10-CM Official
Guidelines I.C.21.c.4). :func:`history_hits` adds, for every such hit, a hit of the history code
on the same words, from the knowledge base's own inclusion terms; where the matching history code
needs more characters (Z86.7 "diseases of the circulatory system") the hit is incomplete and a
trained model ranks the codes below it (Z86.73 for a stroke).

Whether the coders of a corpus code the history (many code the condition itself, or nothing) is
for the ranker to learn, as for every other dictionary source.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from opencac.codesets.refs import parse_refs, ref_covers, undot
from opencac.coding.candidates import _kb_memo

__all__ = ["HISTORY_OF", "history_code", "history_hits", "history_ranges"]

#: The categories whose inclusion terms name the conditions they stand for, by assertion.
CATEGORIES = {"family": ("Z80", "Z81", "Z82", "Z83", "Z84"), "historical": ("Z85", "Z86", "Z87")}
#: Conditions a history code may stand for: diseases (chapters A-Q), not injuries, findings or
#: factors (a past fracture is Z87.81, which lists no conditions; "history of pain" is no code).
_CONDITION = re.compile(r"^[A-Q]")
_CLASSIFIABLE = re.compile(r"classifiable\s+(?:elsewhere\s+)?(?:to|in)\s+(.*)$", re.I)

#: The attribute of a history-code hit naming the condition's code it was read from; the words
#: keep their own assertion for everything else (:func:`opencac.coding.engine._assertion_at`).
HISTORY_OF = "history_of"

_MEMO: dict[int, tuple[Any, dict[str, Any]]] = {}


def _refs(text: str) -> tuple[str, ...]:
    """``'Conditions classifiable to C00-C14, C40-C49'`` -> ``('C00-C14', 'C40-C49')`` (code
    references as :func:`opencac.codesets.refs.parse_refs` reads them). Words after "except" or
    "that" restrict the conditions: such a term is not read."""
    m = _CLASSIFIABLE.search(text)
    if not m or re.search(r"\b(?:except|that)\b", m.group(1), re.I):
        return ()
    return parse_refs(f"({m.group(1)})")


def _bounds(ref: str) -> tuple[str, str]:
    """The undotted first and last code of a reference (``'C50.-'`` -> ``('C50', 'C50')``)."""
    lo, _, hi = ref.rstrip("-").rstrip(".").partition("-")
    return undot(lo), undot(hi or lo)


def history_ranges(kb: Any) -> dict[str, list[tuple[str, str]]]:
    """``{assertion: [(code reference, history code), ...]}`` from the inclusion terms of the codes
    in :data:`CATEGORIES`, the most specific history code first (memoised per knowledge base)."""
    memo = _kb_memo(_MEMO, kb)
    if "ranges" in memo:
        return memo["ranges"]  # type: ignore[no-any-return]
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, cats in CATEGORIES.items():
        rows: list[tuple[str, str]] = []
        stack = [c for c in cats if kb.find(c) is not None]
        while stack:
            code = stack.pop()
            obj = kb.find(code)
            if obj is None:
                continue
            for term in obj.inclusion_terms:
                rows.extend((ref, obj.code) for ref in _refs(term))
            stack.extend(k.code for k in kb.children(code) if k.code != code)
        # a deeper history code first; among equals, the narrower range
        rows.sort(key=lambda r: (-len(undot(r[1])), -len(_bounds(r[0])[0]), _bounds(r[0])))
        out[kind] = rows
    memo["ranges"] = out
    return out


def history_code(kb: Any, code: str, assertion: str) -> str | None:
    """The personal (``assertion`` "historical") or family ("family") history code whose inclusion
    terms cover the ICD-10-CM ``code``, or None."""
    if assertion not in CATEGORIES or not _CONDITION.match(code.upper()):
        return None
    return next((z for ref, z in history_ranges(kb)[assertion] if ref_covers(ref, code)), None)


def history_hits(kb: Any, hits: list[Any]) -> list[Any]:
    """The history-code hits of a note's ICD-10-CM dictionary hits (:func:`history_code`): one per
    historical or family-history hit not inside a longer match, on its words, affirmed (the history
    is the patient's), from the ``inclusion`` source, with the condition's code as attribute
    :data:`HISTORY_OF`; incomplete where the history code has codes below it."""
    out: list[Any] = []
    seen: set[tuple[str, int, int]] = set()
    for h in hits:
        if h.system != "icd10cm" or h.subsumed or h.assertion not in CATEGORIES:
            continue
        z = history_code(kb, h.code, h.assertion)
        if z is None or (z, h.start, h.end) in seen:
            continue
        seen.add((z, h.start, h.end))
        obj = kb.find(z)
        out.append(replace(h, code=z, source="inclusion", incomplete=obj is not None and not obj.billable,
                           assertion="affirmed", trigger=None, attributes={**h.attributes, HISTORY_OF: h.code}))
    return out
