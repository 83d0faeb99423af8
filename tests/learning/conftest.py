"""A tiny stand-in engine for learning tests that must not depend on a trained model."""

from __future__ import annotations

from typing import Any

import pytest

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext

KEYWORDS = {"diabetes": ("E11.9", "icd10cm"), "hypertension": ("I10", "icd10cm")}


class KeywordEngine:
    """Suggests E11.9 / I10 when their keyword occurs; has no incremental update."""

    name = "keyword-stub"
    manifest: dict[str, Any] = {}

    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None) -> CodingResult:
        res = CodingResult(doc_id, context=context or EncounterContext())
        for kw, (code, system) in KEYWORDS.items():
            if kw in text.lower():
                res.ranked(system).append(CodeSuggestion(code, system, kw, 0.6, selected=True))
        for sy in ("icd10cm", "icd10pcs"):
            for r, s in enumerate(res.ranked(sy), 1):
                s.rank = r
        return res


class UpdatableEngine(KeywordEngine):
    """Records the documents given to its incremental update."""

    def __init__(self) -> None:
        self.updates: list[list[Any]] = []
        self.saved: list[str] = []

    def update(self, docs: list[Any]) -> None:
        self.updates.append(list(docs))

    def save(self, out: Any) -> None:
        self.saved.append(str(out))


@pytest.fixture()
def model_dir(tmp_path):
    d = tmp_path / "m1"
    d.mkdir()
    (d / "manifest.json").write_text('{"name": "m1", "training_data_hash": "abc", "codeset": {"icd10cm": "FY2026"}}')
    return d
