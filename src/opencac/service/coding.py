"""The one door from the service to the engine and rules layers.

``run_coding(text, context)`` = ``CodingEngine.load(model).code(...)`` then
``opencac.edits.apply_rules(...)``; both are imported lazily so that the service starts (and its
tests run) whether or not those layers are installed. Tests replace the coder with
``app.dependency_overrides[get_coder] = lambda: fake`` (a ``Coder``: ``(text, context) -> CodingResult``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opencac.coding.types import CodingResult, EncounterContext
from opencac.errors import GrouperError

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


def production_model_path(registry_root: str | None = None) -> str | None:
    """The model directory of the model registry's production version (``None`` when there is none).

    Args:
        registry_root: the registry directory (default ``$OPENCAC_MODEL_REGISTRY``, else the
            user data dir's ``models/``; see :class:`opencac.learning.registry.ModelRegistry`).
    """
    from pathlib import Path

    from opencac.errors import OpenCACError
    from opencac.learning.registry import ModelRegistry

    try:
        mv = ModelRegistry(registry_root or None).production()
    except OpenCACError as exc:  # an unreadable registry: serve the configured / default engine
        log.warning("model registry unreadable: %s", type(exc).__name__)
        return None
    if mv is None or not Path(mv.path).is_dir():
        return None
    return mv.path


def resolve_model_path(model_path: str | None, registry_root: str | None = None) -> str | None:
    """``model_path`` (``--model`` / ``$OPENCAC_MODEL``) when given, else the registry's production model.

    Read on every coding run, so a promotion or rollback takes effect for the next run (the engine
    of each model path is loaded once, lazily).
    """
    return model_path or production_model_path(registry_root)


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


def _code_items(codes: Sequence[Mapping[str, Any] | str]) -> tuple[list[str], list[str], dict[str, str]]:
    dx: list[str] = []
    px: list[str] = []
    poa: dict[str, str] = {}
    for c in codes:
        if isinstance(c, Mapping):
            code = str(c.get("code") or "").strip().upper()
            system = str(c.get("system") or "")
            if c.get("poa"):
                poa[code] = str(c["poa"]).upper()
        else:
            code, system = str(c).strip().upper(), ""
        if not code:
            continue
        if not system:
            # ICD-10-PCS codes are always 7 characters without a dot; ICD-10-CM codes as the
            # workbench stores them are dotted past 3 characters.
            system = "icd10pcs" if len(code) == 7 and "." not in code else "icd10cm"
        (px if system == "icd10pcs" else dx).append(code)
    return dx, px, poa


def regroup(codes: Sequence[Mapping[str, Any] | str], context: EncounterContext,
            poa: Mapping[str, str] | None = None) -> dict[str, Any]:
    """MS-DRG of a code set, grouped by the rules layer's grouper (``opencac.edits.drg.group_codes``).

    Args:
        codes: principal diagnosis first; ``{"system", "code", "poa"}`` dicts (final-code-set form)
            or plain code strings (a 7-character undotted code is taken as ICD-10-PCS).
        context: the encounter context (setting, discharge date, sex, age, discharge status, POA).
        poa: POA indicators per diagnosis code; they win over the codes' own and the context's.

    Returns:
        ``DrgResult.to_dict()`` (``drg``, ``description``, ``weight``, ``mdc``, ``version``, ``drivers`` ...)
        plus ``"source": "regrouped"``; for a setting other than inpatient ``{"drg": None, "weight": None,
        "source": "not_applicable"}`` (MS-DRGs group inpatient stays only).

    Raises:
        GrouperError: no diagnosis, no discharge date, or no MS-DRG version for the date.
    """
    if context.setting != "inpatient":
        return {"drg": None, "weight": None, "source": "not_applicable"}
    dx, px, own_poa = _code_items(codes)
    day = context.discharge_date or context.date_of_service
    if day is None:
        raise GrouperError("cannot group an inpatient stay without a discharge date.")
    merged = {**{k.upper(): v for k, v in (context.poa or {}).items()}, **own_poa,
              **{k.upper(): str(v).upper() for k, v in (poa or {}).items()}}
    from opencac.edits.drg import group_codes

    res = group_codes(dx, px, day=day, sex=context.sex or "U", age=context.age,
                      discharge_status=context.discharge_status or "01",
                      poa={k: v for k, v in merged.items() if v}, crosscheck=False)
    out = res.to_dict()
    out.pop("impacts", None)
    out["source"] = "regrouped"
    return out
