"""Code references inside tabular notes: parsing ``(E08-E13)``, ``E11.-``, ``(L23.3, L27.0-L27.1)``
and deciding whether a reference covers a code.

A reference covers the code(s) it names *and their subdivisions*: an Excludes1 note that
lists ``O24.4-`` excludes every code below O24.4 (ICD-10-CM Official Guidelines I.A.12,
I.A.6: the dash means "additional characters follow"). Ranges ``A-B`` cover every code
whose leading characters fall between A and B inclusive (I.A.11 "Inclusion/exclusion of
ranges"): ``E08-E13`` covers E08 .. E13.9; ``T82.6-T82.7`` covers T82.6.. and T82.7.. .
"""

from __future__ import annotations

import re

_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?"
#: a code, optionally with a trailing ``-`` / ``.-``, optionally a range to a second code
_REF_RE = re.compile(
    rf"(?<![A-Za-z0-9])({_CODE})(\.?-(?![A-Z]\d))?(?:\s*-\s*({_CODE})(\.?-)?)?(?![0-9A-Za-z])"
)
_PAREN_RE = re.compile(r"\(([^()]*)\)")


def undot(code: str) -> str:
    """``'E11.9'`` -> ``'E119'``; strips dots, dashes and spaces, upper-cases."""
    return code.replace(".", "").replace("-", "").replace(" ", "").upper()


def parse_refs(text: str) -> tuple[str, ...]:
    """Return the code references written in a note, in order, without duplicates.

    Only parenthesised groups are read (``"... (E08-E13)"``), or the whole note when it is
    nothing but codes, so that words such as "vitamin B12" are not taken for codes.
    Results look like ``"E08-E13"``, ``"E11.-"``, ``"T81.32-"``, ``"I10"``.
    """
    chunks = _PAREN_RE.findall(text)
    stripped = text.strip().rstrip(".;,")
    if not chunks and re.fullmatch(rf"(?:{_CODE}\.?-?(?:\s*[-,]\s*|\s+and\s+|\s*$))+", stripped):
        chunks = [stripped]
    out: list[str] = []
    for chunk in chunks:
        for m in _REF_RE.finditer(chunk):
            first, dash1, second, _dash2 = m.groups()
            first = first.rstrip(".")
            if second:
                ref = f"{first}-{second.rstrip('.')}"
            elif dash1:
                ref = f"{first}.-" if "." not in first else f"{first}-"
            else:
                ref = first
            if ref not in out:
                out.append(ref)
    return tuple(out)


def ref_covers(ref: str, code: str) -> bool:
    """Whether reference ``ref`` (``'E08-E13'``, ``'E11.-'``, ``'N18.3'``) covers ``code``.

    Works on ICD-10-CM codes in any dotting; a reference covers its subdivisions.
    """
    c = undot(code)
    r = ref.strip().upper()
    m = re.fullmatch(rf"({_CODE})\s*-\s*({_CODE})", r)
    if m:
        lo, hi = undot(m.group(1)), undot(m.group(2))
        return c[: len(lo)] >= lo and c[: len(hi)] <= hi
    base = undot(r)
    return bool(base) and c.startswith(base)
