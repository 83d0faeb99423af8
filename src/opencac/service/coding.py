"""The one door from the service to the engine and rules layers.

``run_coding(text, context)`` = ``CodingEngine.load(model).code(...)`` then
``opencac.edits.apply_rules(...)``; both are imported lazily so that the service starts (and its
tests run) whether or not those layers are installed. Tests replace the coder with
``app.dependency_overrides[get_coder] = lambda: fake`` (a ``Coder``: ``(text, context) -> CodingResult``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from opencac.coding.types import CodingResult, EncounterContext

log = logging.getLogger(__name__)

#: A coder: note text + encounter context -> coding result (rules applied when available).
Coder = Callable[[str, EncounterContext], CodingResult]

_engines: dict[str | None, Any] = {}
_lock = threading.Lock()


def _engine(model_path: str | None) -> Any:
    with _lock:
        eng = _engines.get(model_path)
        if eng is None:
            from opencac.coding.engine import CodingEngine

            eng = CodingEngine.load(model_path)
            _engines[model_path] = eng
            log.info("coding engine loaded: %s", getattr(eng, "name", type(eng).__name__))
        return eng


def run_coding(text: str, context: EncounterContext, model_path: str | None = None,
               apply_rules: bool = True, doc_id: str = "note") -> CodingResult:
    """Code one note: engine suggestions, then the rules layer (edits, DRG, queries).

    Args:
        text: the note text.
        context: the encounter context (setting, dates, age, sex).
        model_path: model for ``CodingEngine.load`` (None = out-of-the-box).
        apply_rules: also run ``opencac.edits.apply_rules`` (sets ``result.rules``).
        doc_id: id carried into the result.

    Returns:
        The ``CodingResult``; a missing rules layer adds a warning instead of failing.
    """
    result: CodingResult = _engine(model_path).code(text, doc_id=doc_id, context=context)
    if apply_rules:
        try:
            from opencac.edits import apply_rules as _apply_rules
        except ImportError:
            result.warnings.append("rules layer unavailable: no edits, DRG or query drafts")
        else:
            _apply_rules(result, text)
    return result


def make_coder(model_path: str | None = None, apply_rules: bool = True) -> Coder:
    """A ``Coder`` bound to a model path."""

    def coder(text: str, context: EncounterContext) -> CodingResult:
        return run_coding(text, context, model_path=model_path, apply_rules=apply_rules)

    return coder


def get_coder() -> Coder:
    """FastAPI dependency (overridable): the default coder (``run_coding`` with default model)."""
    return make_coder()


def get_knowledge() -> Any:
    """FastAPI dependency (overridable): the process-wide ``KnowledgeBase`` (loaded lazily)."""
    from opencac.codesets import load_knowledge

    return load_knowledge()
