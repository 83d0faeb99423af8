"""Build engine-shaped ``CodingResult`` objects from compact specs for the rules tests."""

from __future__ import annotations

from typing import Any

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence


def suggestion(text: str, spec: Any, system: str, rank: int, kb: Any) -> CodeSuggestion:
    """``spec`` is a code string or ``{"code", "conf", "ev", "assertion", "selected"}``;
    ``ev`` is a phrase found in ``text`` (its first occurrence becomes the evidence)."""
    if isinstance(spec, str):
        spec = {"code": spec}
    code = spec["code"]
    ev = []
    phrase = spec.get("ev")
    if phrase:
        i = text.lower().find(phrase.lower())
        assert i >= 0, f"evidence {phrase!r} not in text"
        ev.append(Evidence(i, i + len(phrase), text[i:i + len(phrase)]))
    found = kb.find(code)
    return CodeSuggestion(code=code, system=system, description=found.description if found else "",
                          confidence=float(spec.get("conf", 0.9)), evidence=ev,
                          assertion=spec.get("assertion", "affirmed"), rank=rank,
                          selected=bool(spec.get("selected", True)))


def make_result(text: str, dx: list[Any] | None = None, px: list[Any] | None = None,
                context: dict[str, Any] | None = None, kb: Any = None,
                model: str = "dictionary-only") -> CodingResult:
    """A CodingResult with the given diagnoses / procedures (in rank order); ``model`` names the
    engine that produced it (a trained one's confidences carry the organisation's practice)."""
    return CodingResult(
        doc_id="t",
        model=model,
        diagnoses=[suggestion(text, s, "icd10cm", i + 1, kb) for i, s in enumerate(dx or [])],
        procedures=[suggestion(text, s, "icd10pcs", i + 1, kb) for i, s in enumerate(px or [])],
        context=EncounterContext.from_dict(context or {}),
    )
