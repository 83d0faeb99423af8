"""A model trained with the ICD-10-CM alphabetic index warns when the index is not loaded."""

from __future__ import annotations

from types import SimpleNamespace

from opencac.coding.engine import CodingEngine


def _engine(trained: dict[str, object], loaded: dict[str, object]) -> CodingEngine:
    return CodingEngine(SimpleNamespace(versions=loaded), matcher=None, model=SimpleNamespace(manifest={"codesets": trained}))


def test_missing_index_is_reported() -> None:
    trained = {"icd10cm-2026": {}, "icd10cm-index": {"source": "/data/icd10cm-2025-index"}}
    warn = _engine(trained, {"icd10cm-2026": object()}).setup_warnings
    assert len(warn) == 1 and "/data/icd10cm-2025-index" in warn[0] and "import-index" in warn[0]


def test_no_warning_when_the_code_sets_match_or_there_is_no_model() -> None:
    trained = {"icd10cm-2026": {}, "icd10cm-index": {"source": "x"}}
    assert _engine(trained, {"icd10cm-2026": object(), "icd10cm-index": object()}).setup_warnings == []
    assert _engine({"icd10cm-2026": {}}, {"icd10cm-2026": object()}).setup_warnings == []
    assert CodingEngine(SimpleNamespace(versions={"icd10cm-2026": 1}), matcher=None).setup_warnings == []
