"""Coder decisions -> labelled examples tied to their evidence; finalised encounters -> training documents.

Every accept, reject, modify and added code becomes a :class:`LabelledExample`:

* ``accept`` -> the code is a positive example;
* ``reject`` -> the code is a negative example;
* ``modify`` (``code`` -> ``new_code``) -> ``code`` negative, ``new_code`` positive;
* ``add`` -> the code is a positive example (one the engine missed).

A finalised encounter (its note plus its final code set) becomes a :class:`TrainingDocument`,
the unit both the incremental update and the full retrain consume.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.coding.corpus import canon  # re-exported: the one comparison key of a code
from opencac.errors import FeedbackError

ACCEPT, REJECT, MODIFY, ADD = "accept", "reject", "modify", "add"
ACTIONS = (ACCEPT, REJECT, MODIFY, ADD)
SYSTEMS = ("icd10cm", "icd10pcs")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class Decision:
    """A coder's decision on one code of one encounter.

    Attributes:
        doc_id: the encounter's document id.
        code: the code decided on (for ``modify``, the engine's original code).
        system: ``icd10cm`` | ``icd10pcs``.
        action: one of :data:`ACTIONS`.
        new_code: the replacement code for ``modify``.
        evidence: the supporting spans (``{"start", "end", "text", "section"}``) the coder saw.
        confidence: the engine's confidence when the decision was taken.
        user: who decided (an id, never a name in logs).
        reason: the coder's reason (required on reject/modify in the workbench).
        org: the organisation (per-organisation priors).
        at: ISO timestamp.
    """

    doc_id: str
    code: str
    system: str
    action: str
    new_code: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    user: str = ""
    reason: str = ""
    org: str = "default"
    at: str = field(default_factory=_now)

    def validate(self) -> Decision:
        """Check the action, system and codes; returns ``self``.

        Raises:
            FeedbackError: unknown action/system, empty code, ``modify`` without ``new_code``.
        """
        if self.action not in ACTIONS:
            raise FeedbackError(f"unknown decision action {self.action!r}.", options=ACTIONS)
        if self.system not in SYSTEMS:
            raise FeedbackError(f"unknown code system {self.system!r} in a decision.", options=SYSTEMS)
        if not canon(self.code):
            raise FeedbackError("a decision needs a code; got an empty one.")
        if self.action == MODIFY and not (self.new_code and canon(self.new_code)):
            raise FeedbackError(f"a 'modify' decision on {self.code} needs new_code (the replacement code).")
        return self


@dataclass(slots=True)
class LabelledExample:
    """One labelled (document, code) pair learnt from a decision.

    Attributes:
        doc_id: the document.
        code: canonical code (see :func:`canon`).
        system: its system.
        label: ``True`` = belongs on the encounter, ``False`` = does not.
        action: the decision that produced it.
        evidence: the spans tied to it.
        confidence: the engine's confidence at the time (for calibration monitoring).
        org / user / at: provenance.
    """

    doc_id: str
    code: str
    system: str
    label: bool
    action: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    org: str = "default"
    user: str = ""
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def examples_from_decision(decision: Decision) -> list[LabelledExample]:
    """The labelled examples one decision yields (two for ``modify``).

    Raises:
        FeedbackError: an invalid decision.
    """
    d = decision.validate()
    common = {"doc_id": d.doc_id, "system": d.system, "evidence": list(d.evidence), "confidence": d.confidence,
              "org": d.org, "user": d.user, "at": d.at}
    if d.action in (ACCEPT, ADD):
        return [LabelledExample(code=canon(d.code), label=True, action=d.action, **common)]
    if d.action == REJECT:
        return [LabelledExample(code=canon(d.code), label=False, action=d.action, **common)]
    assert d.new_code is not None
    neg = LabelledExample(code=canon(d.code), label=False, action=d.action, **common)
    common["confidence"] = None
    pos = LabelledExample(code=canon(d.new_code), label=True, action=d.action, **common)
    return [neg, pos]


def examples_from_decisions(decisions: Iterable[Decision]) -> list[LabelledExample]:
    """All labelled examples of a sequence of decisions, in order."""
    out: list[LabelledExample] = []
    for d in decisions:
        out.extend(examples_from_decision(d))
    return out


@dataclass(slots=True)
class TrainingDocument:
    """A coded document: the note and its final codes (canonical keys) per system.

    Attributes:
        id: the document id.
        text: the note text.
        codes: ``{"icd10cm": [...], "icd10pcs": [...]}`` positive codes.
        rejected: codes coders rejected on this document (negative examples), per system.
        org: the organisation.
        evidence: where the coder found each positive code, ``{system: {code: [(start, end)]}}``
            (the sentence lexicon learns from it; empty when not known).
    """

    id: str
    text: str
    codes: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SYSTEMS})
    rejected: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SYSTEMS})
    org: str = "default"
    evidence: dict[str, dict[str, list[tuple[int, int]]]] = field(default_factory=dict)


def finalised_document(
    doc_id: str,
    text: str,
    final_codes: Iterable[tuple[str, str]],
    decisions: Iterable[Decision] = (),
    org: str = "default",
) -> TrainingDocument:
    """Build the training document of a finalised encounter.

    Args:
        doc_id: the document id.
        text: the note.
        final_codes: ``(code, system)`` pairs of the final code set.
        decisions: the encounter's decisions (rejected codes become negatives; the evidence of
            accepted and modified ones tells where each final code was found).
        org: the organisation.
    """
    doc = TrainingDocument(doc_id, text, org=org)
    for code, system in final_codes:
        if system not in SYSTEMS:
            raise FeedbackError(f"unknown code system {system!r} in final codes.", options=SYSTEMS)
        c = canon(code)
        if c and c not in doc.codes[system]:
            doc.codes[system].append(c)
    for ex in examples_from_decisions(decisions):
        if not ex.label:
            if ex.code not in doc.codes[ex.system] and ex.code not in doc.rejected[ex.system]:
                doc.rejected[ex.system].append(ex.code)
            continue
        if ex.code not in doc.codes[ex.system]:
            continue
        for ev in ex.evidence or ():  # where the coder found a final code (accepted, added, modified to)
            try:
                span = (int(ev["start"]), int(ev["end"]))
            except (KeyError, TypeError, ValueError):
                continue
            if 0 <= span[0] < span[1] <= len(text):
                have = doc.evidence.setdefault(ex.system, {}).setdefault(ex.code, [])
                if span not in have:
                    have.append(span)
    return doc


def documents_as_decisions(doc: TrainingDocument, user: str = "corpus") -> list[Decision]:
    """A coded document seen as the coder accepting each of its codes (the ``opencac learn`` path)."""
    out = [Decision(doc.id, c, s, ACCEPT, user=user, org=doc.org) for s in SYSTEMS for c in doc.codes[s]]
    out += [Decision(doc.id, c, s, REJECT, user=user, org=doc.org) for s in SYSTEMS for c in doc.rejected[s]]
    return out


def from_coded(doc: Any, org: str = "default") -> TrainingDocument:
    """Convert an engine ``CodedDocument`` (``id``, ``text``, ``codes`` per system) to a TrainingDocument."""
    codes: Mapping[str, Iterable[str]] = getattr(doc, "codes", {}) or {}
    td = TrainingDocument(str(doc.id), str(doc.text), org=org)
    for s in SYSTEMS:
        td.codes[s] = [canon(c) for c in codes.get(s, [])]
    for s, by_code in (getattr(doc, "evidence", None) or {}).items():
        td.evidence[s] = {canon(c): [tuple(sp) for sp in spans] for c, spans in by_code.items()}
    return td


class ExampleLog:
    """An append-only JSONL log of labelled examples (the file form of the decisions table).

    Args:
        path: the ``.jsonl`` file (created on first append).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, examples: Iterable[LabelledExample]) -> int:
        """Append examples; returns how many were written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with open(self.path, "a", encoding="utf-8") as fh:
            for ex in examples:
                fh.write(json.dumps(ex.to_dict(), sort_keys=True) + "\n")
                n += 1
        return n

    def __iter__(self) -> Iterator[LabelledExample]:
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield LabelledExample(**json.loads(line))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise FeedbackError(f"{self.path.name} line {n}: not a labelled example ({exc}).") from None

    def __len__(self) -> int:
        return sum(1 for _ in self)
