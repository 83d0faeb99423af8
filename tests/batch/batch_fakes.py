"""A light, deterministic stand-in engine for batch-machinery tests (no code sets needed).

Importable by spawned worker processes (pytest puts this directory on ``sys.path`` and
``spawn`` children inherit it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence

KEYWORDS = {
    "diabetes": ("E11.9", "icd10cm", 0.95),
    "hypertension": ("I10", "icd10cm", 0.92),
    "fever": ("R50.9", "icd10cm", 0.6),
    "pain": ("R52", "icd10cm", 0.5),
    "x-ray": ("BW03ZZZ", "icd10pcs", 0.91),
}


class FakeEngine:
    """Suggests a code per keyword found; raises on the word EXPLODE."""

    name = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None) -> CodingResult:
        if self.delay:
            time.sleep(self.delay)
        if "EXPLODE" in text:
            raise RuntimeError("engine blew up")
        if "HANG" in text:
            time.sleep(30)
        low = text.lower()
        dx, px = [], []
        for word, (code, system, conf) in KEYWORDS.items():
            i = low.find(word)
            if i < 0:
                continue
            s = CodeSuggestion(code=code, system=system, description=word, confidence=conf,
                               evidence=[Evidence(i, i + len(word), text[i:i + len(word)])],
                               selected=conf >= 0.5)
            (dx if system == "icd10cm" else px).append(s)
        for lst in (dx, px):
            lst.sort(key=lambda s: -s.confidence)
            for r, s in enumerate(lst, 1):
                s.rank = r
        return CodingResult(doc_id=doc_id, diagnoses=dx, procedures=px, model="fake",
                            context=context or EncounterContext())


@dataclass(frozen=True)
class FakeFactory:
    """Picklable factory: a ``FakeEngine`` per worker."""

    delay: float = 0.0

    def __call__(self) -> FakeEngine:
        return FakeEngine(self.delay)


@dataclass(frozen=True)
class CountingFactory:
    """Like ``FakeFactory``, but appends one line per engine load to ``log`` (to count loads)."""

    log: str

    def __call__(self) -> FakeEngine:
        import os

        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        return FakeEngine(0.0)


class CrashingEngine(FakeEngine):
    """Kills its own process (as a segfault or the OOM killer would) on the word CRASH."""

    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None) -> CodingResult:
        if "CRASH" in text:
            import os

            os._exit(139)
        return super().code(text, doc_id, context)


@dataclass(frozen=True)
class CrashingFactory:
    """Picklable factory of ``CrashingEngine``."""

    def __call__(self) -> CrashingEngine:
        return CrashingEngine(0.0)


class LeakyEngine(FakeEngine):
    """Raises an exception whose message quotes the note (as a KeyError on a phrase would)."""

    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None) -> CodingResult:
        if "secret" in text:
            raise KeyError(text)
        return super().code(text, doc_id, context)


@dataclass(frozen=True)
class LeakyFactory:
    def __call__(self) -> LeakyEngine:
        return LeakyEngine(0.0)
