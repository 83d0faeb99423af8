"""Sentence splitting with offsets: newlines, then punctuation rules that survive
abbreviations (``Dr.``, ``approx.``, ``e.g.``), initials and decimals (``3.5 mg``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from opencac.text.document import Span

__all__ = ["NON_FINAL_ABBREVIATIONS", "split_sentences"]

#: Words that, followed by a period, do not end a sentence (lower case, inner periods removed).
NON_FINAL_ABBREVIATIONS = frozenset(
    """dr drs mr mrs ms prof sr jr st mt vs approx appr eg ie cf al fig figs ref refs vol pp ca cca
    inc ltd dept univ jan feb mar apr jun jul aug sep sept oct nov dec resp hosp adm incl bilat
    prox dist""".split()
)

# A boundary match starts only at the first mark of a run and never gives back what it took
# (possessive quantifiers): a long run of periods without white space after it costs one pass,
# where the backtracking pattern tried every position of the run against its whole rest.
_BOUNDARY_RE = re.compile(r"(?<![.!?])[.!?]++[\"')\]]*+(?=\s)")
_LIST_MARKER_RE = re.compile(r"\s*(?:\d{1,2}|[a-zA-Z]|[ivxIVX]{1,4})")
_NON_SPACE_RE = re.compile(r"\S")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")


def _word_before(line: str, end: int) -> str | None:
    """The word ``[A-Za-z][A-Za-z.]*`` ending at ``end``, or None: a scan back over the word, not
    a search from the start of the line (a long line has many boundaries to check)."""
    start = end
    while start > 0 and line[start - 1] in _WORD_CHARS:
        start -= 1
    while start < end and line[start] == ".":  # the word starts with a letter
        start += 1
    return line[start:end] if start < end else None


def _is_boundary(line: str, end: int) -> bool:
    """Whether the punctuation ending at ``end`` (exclusive) in ``line`` ends a sentence.

    Every look is local to ``end`` (no copy or search of the rest of the line), so splitting
    stays linear in the length of a line however many sentences it holds."""
    nxt_m = _NON_SPACE_RE.search(line, end)
    if nxt_m is None:
        return True
    nxt = nxt_m.group()
    if nxt.islower() or nxt in ",;:)":
        return False
    punct_start = end
    while punct_start > 0 and line[punct_start - 1] in ".!?\"')]":
        punct_start -= 1
    if line[punct_start:end].startswith(("!", "?")):
        return True
    if _LIST_MARKER_RE.fullmatch(line, 0, punct_start):  # "1. Hypertension", "a. Diabetes"
        return False
    word = _word_before(line, punct_start)
    if word is None:
        return True
    key = word.lower().replace(".", "")
    if key in NON_FINAL_ABBREVIATIONS and not (word.isupper() and len(word) > 2):
        return False
    if len(word) == 1 and word.isupper():  # an initial ("J. Smith"), not a unit ("38.5 C.")
        k = punct_start - 1
        while k > 0 and line[k - 1].isspace():
            k -= 1
        if not (k > 0 and line[k - 1].isdigit()):
            return False
    if "." in word.strip("."):  # "e.g.", "i.v.", "a.m."
        return False
    return True


def split_sentences(text: str, breaks: Iterable[int] = ()) -> list[Span]:
    """Split ``text`` into sentence spans (label ``"sentence"``).

    Every line break ends a sentence (CodiEsp's English notes have one sentence per line);
    within a line, ``.``/``!``/``?`` followed by white space ends a sentence unless the
    word before is a known abbreviation, an initial or a dotted abbreviation, or the next
    word starts in lower case. ``breaks`` are extra forced boundaries (e.g. the end of an
    inline section heading).

    Args:
        text: the original text.
        breaks: offsets at which a sentence must end.

    Returns:
        Non-empty sentence spans with leading/trailing white space trimmed.
    """
    forced = sorted(set(breaks))
    cuts: list[int] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        for m in _BOUNDARY_RE.finditer(body):
            if _is_boundary(body, m.end()):
                cuts.append(pos + m.end())
        cuts.append(pos + len(body))
        pos += len(line)
    cuts.extend(b for b in forced if 0 < b < len(text))
    cuts.append(len(text))
    out: list[Span] = []
    start = 0
    for c in sorted(set(cuts)):
        if c <= start:
            continue
        seg = text[start:c]
        lead = len(seg) - len(seg.lstrip())
        s, e = start + lead, start + len(seg.rstrip())
        if e > s:
            out.append(Span(s, e, "sentence"))
        start = c
    return out
