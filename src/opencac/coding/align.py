"""Carry evidence spans from an original note to its translation, sentence by sentence.

CodiEsp's coders marked their evidence (``*X.tsv``: code, quoted text, character offsets) in the
Spanish originals; the English notes are a sentence-by-sentence machine translation. The two
texts are aligned the way parallel corpora are (Gale & Church 1993): a dynamic programme over
sentence pairs that prefers one-to-one pairs of matching length, allows one-to-two, two-to-one
and the like at a cost, and rewards numbers and shared word stems (medical terms are mostly
cognates: "hepática" / "hepatic", "brucelosis" / "brucellosis"). An evidence span then maps to the
translated sentence(s) aligned with the original sentence that holds it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from opencac.nlp.sentences import split_sentences

__all__ = ["SentenceAlignment", "align_sentences"]

#: (original sentences, translated sentences, penalty) of each alignment step.
_MOVES = ((1, 1, 0.0), (1, 2, 2.3), (2, 1, 2.3), (1, 0, 4.6), (0, 1, 4.6), (2, 2, 4.6), (1, 3, 4.6), (3, 1, 4.6))
_VARIANCE = 6.8  # Gale & Church's variance of translated length per original character
_ANCHOR_BONUS = 1.0
_BAND = 20  # sentences either side of the diagonal searched (plus the two texts' difference in sentences)
_WORD_RE = re.compile(r"\w+")


def _anchors(text: str) -> set[str]:
    """Numbers and 5-letter stems of longer words (accents removed) of one sentence."""
    out = set()
    for w in _WORD_RE.findall(text):
        f = unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode().lower()
        if any(ch.isdigit() for ch in f):
            out.add(f)
        elif len(f) >= 5:
            out.add(f[:5])
    return out


class SentenceAlignment:
    """Sentence alignment of ``source`` and its translation ``target``.

    Attributes:
        source_sentences / target_sentences: ``(start, end)`` offsets of each sentence.
        pairs: aligned groups, ``(source sentence indices, target sentence indices)``, in order.
    """

    def __init__(self, source: str, target: str) -> None:
        S = [(s.start, s.end) for s in split_sentences(source)]
        T = [(s.start, s.end) for s in split_sentences(target)]
        self.source_sentences, self.target_sentences = S, T
        self.pairs = _align(source, target, S, T) if S and T else []
        self._of_source = {i: tj for si, tj in self.pairs for i in si}

    def target_spans(self, start: int, end: int) -> list[tuple[int, int]]:
        """Target sentence offsets aligned with the source sentences that ``[start, end)`` touches."""
        out: list[tuple[int, int]] = []
        for i, (a, b) in enumerate(self.source_sentences):
            if a < max(end, start + 1) and start < b:
                for j in self._of_source.get(i, ()):
                    if self.target_sentences[j] not in out:
                        out.append(self.target_sentences[j])
        return out


def _align(source: str, target: str, S: Sequence[tuple[int, int]],
           T: Sequence[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    ls = [b - a for a, b in S]
    lt = [b - a for a, b in T]
    ratio = sum(lt) / max(1, sum(ls))
    aS = [_anchors(source[a:b]) for a, b in S]
    aT = [_anchors(target[a:b]) for a, b in T]
    n, m = len(S), len(T)
    # a band around the diagonal (translations keep the order and most pairs are one-to-one):
    # long notes stay linear; the band is wide enough for every skew the moves could reach
    width = _BAND + abs(n - m)
    cost: dict[tuple[int, int], float] = {(0, 0): 0.0}
    back: dict[tuple[int, int], tuple[int, int]] = {}
    for i in range(n + 1):
        mid = i * m / n
        for j in range(max(0, int(mid) - width), min(m, int(mid) + width + 1) + 1):  # the end can reach (n, m)
            d = cost.get((i, j))
            if d is None:
                continue
            for di, dj, pen in _MOVES:
                ii, jj = i + di, j + dj
                if ii > n or jj > m:
                    continue
                c = pen
                if di and dj:
                    x = sum(ls[i:ii])
                    y = sum(lt[j:jj])
                    delta = (y - x * ratio) / math.sqrt(max(x, 1) * _VARIANCE * ratio)
                    c += delta * delta / 2
                    shared = set().union(*aS[i:ii]) & set().union(*aT[j:jj])
                    c -= _ANCHOR_BONUS * len(shared)
                if d + c < cost.get((ii, jj), math.inf):
                    cost[ii, jj] = d + c
                    back[ii, jj] = (i, j)
    pairs: list[tuple[list[int], list[int]]] = []
    i, j = n, m
    while (i, j) != (0, 0):
        pi, pj = back[i, j]
        pairs.append((list(range(pi, i)), list(range(pj, j))))
        i, j = pi, pj
    return pairs[::-1]


def align_sentences(source: str, target: str) -> SentenceAlignment:
    """Align the sentences of ``source`` with those of its translation ``target``."""
    return SentenceAlignment(source, target)
