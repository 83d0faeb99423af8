"""Scoring helpers for the assertion classifier (used by tests and ``bench/nlp_assertion.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from opencac.nlp.assertion import ASSERTIONS, assert_span
from opencac.nlp.pipeline import analyze

__all__ = ["AssertionCase", "AssertionReport", "evaluate_assertions", "read_cases", "read_offset_cases"]


@dataclass(frozen=True, slots=True)
class AssertionCase:
    """A text (a sentence or a whole note), the target span in it, and the expected assertion."""

    sentence: str
    target: str
    expected: str
    start: int = -1
    end: int = -1
    doc_id: str = ""

    def span(self) -> tuple[int, int]:
        """The target's offsets (first occurrence of ``target`` when not given)."""
        if self.start >= 0:
            return self.start, self.end
        i = self.sentence.index(self.target)
        return i, i + len(self.target)


@dataclass(slots=True)
class AssertionReport:
    """Per-class precision/recall and the individual predictions."""

    predictions: list[tuple[AssertionCase, str, str | None]] = field(default_factory=list)

    def counts(self, label: str) -> tuple[int, int, int]:
        """(true positives, predicted, gold) for one class."""
        tp = sum(1 for c, p, _ in self.predictions if p == label and c.expected == label)
        pred = sum(1 for _, p, _ in self.predictions if p == label)
        gold = sum(1 for c, _, _ in self.predictions if c.expected == label)
        return tp, pred, gold

    def precision(self, label: str) -> float:
        tp, pred, _ = self.counts(label)
        return tp / pred if pred else 0.0

    def recall(self, label: str) -> float:
        tp, _, gold = self.counts(label)
        return tp / gold if gold else 0.0

    def accuracy(self) -> float:
        return sum(1 for c, p, _ in self.predictions if p == c.expected) / max(1, len(self.predictions))

    def errors(self) -> list[tuple[AssertionCase, str, str | None]]:
        return [x for x in self.predictions if x[0].expected != x[1]]

    def table(self) -> str:
        """A Markdown table: class, gold count, precision, recall, F1."""
        lines = ["| assertion | n | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
        for label in ASSERTIONS:
            _, _, gold = self.counts(label)
            p, r = self.precision(label), self.recall(label)
            f = 2 * p * r / (p + r) if p + r else 0.0
            lines.append(f"| {label} | {gold} | {p:.2f} | {r:.2f} | {f:.2f} |")
        lines.append(f"| **all (accuracy)** | {len(self.predictions)} | | {self.accuracy():.2f} | |")
        return "\n".join(lines)


def read_cases(path: str | Path) -> list[AssertionCase]:
    """Read a JSONL file of ``{"sentence", "target", "assertion"}`` objects."""
    out: list[AssertionCase] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(AssertionCase(d["sentence"], d["target"], d["assertion"]))
    return out


def read_offset_cases(path: str | Path, corpus_root: str | Path) -> list[AssertionCase]:
    """Read offset annotations into CodiEsp notes: ``{"split", "doc", "start", "end", "target",
    "assertion"}`` per line; the note text is read from ``corpus_root/<split>/text_files_en``.

    Raises:
        ValueError: an annotation's offsets do not cover its target text.
    """
    out: list[AssertionCase] = []
    texts: dict[tuple[str, str], str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        key = (d["split"], d["doc"])
        if key not in texts:
            texts[key] = (Path(corpus_root) / d["split"] / "text_files_en" / f"{d['doc']}.txt").read_text(
                encoding="utf-8")
        text = texts[key]
        if text[d["start"] : d["end"]] != d["target"]:
            raise ValueError(f"annotation offsets {d['start']}-{d['end']} in {d['doc']} do not cover {d['target']!r}")
        out.append(AssertionCase(text, d["target"], d["assertion"], d["start"], d["end"], d["doc"]))
    return out


def evaluate_assertions(cases: Iterable[AssertionCase]) -> AssertionReport:
    """Run :func:`assert_span` on each case's target span (texts analysed once each)."""
    report = AssertionReport()
    docs: dict[str, object] = {}
    for c in cases:
        doc = docs.get(c.sentence)
        if doc is None:
            doc = docs[c.sentence] = analyze(c.sentence)
        start, end = c.span()
        label, trigger = assert_span(doc, start, end)  # type: ignore[arg-type]
        report.predictions.append((c, label, trigger))
    return report
