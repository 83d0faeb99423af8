"""Candidates -> ranking -> calibrated confidence -> CodeSuggestion with evidence.

    from opencac.coding.engine import CodingEngine
    engine = CodingEngine.load(model=None)   # out of the box; or a model directory
    result = engine.code(text)

Heavy parts (the engine, models, evaluation) load lazily on first attribute access.
"""

from __future__ import annotations

from typing import Any

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence

__all__ = ["CodeSuggestion", "CodingEngine", "CodingResult", "EncounterContext", "EngineModel", "Evidence",
           "load_corpus", "mean_average_precision"]


def __getattr__(name: str) -> Any:
    if name == "CodingEngine":
        from opencac.coding.engine import CodingEngine

        return CodingEngine
    if name == "EngineModel":
        from opencac.coding.model import EngineModel

        return EngineModel
    if name == "mean_average_precision":
        import importlib

        return importlib.import_module("opencac.coding.evaluate").mean_average_precision
    if name == "load_corpus":
        from opencac.coding.corpus import load_corpus

        return load_corpus
    raise AttributeError(name)
