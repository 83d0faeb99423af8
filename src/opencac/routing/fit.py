"""Fit a routing policy for a model on a coded validation corpus (what ``opencac thresholds fit`` runs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opencac.coding.types import CodingResult, EncounterContext
from opencac.learning.evaluation import load_documents
from opencac.learning.feedback import TrainingDocument
from opencac.routing.policy import RoutingPolicy, fit_policy, records_from_results
from opencac.routing.route import projected_automation
from opencac.routing.thresholds import DEFAULT_CONFIDENCE, DEFAULT_METHOD, DEFAULT_PRIOR_WEIGHT, fit_thresholds

#: Targets pre-computed into ``policy.projection["curve"]`` so an admin can move the target
#: precision and see the projected automation at once, without re-coding the validation set.
CURVE_TARGETS = tuple(round(0.80 + 0.01 * i, 2) for i in range(20))


def code_corpus(
    model: str | Path | None, docs: Sequence[TrainingDocument], context: EncounterContext | None = None,
    rules: bool = False,
) -> list[CodingResult]:
    """Code every document with the model (engine + feedback overlay), optionally applying the rules."""
    from opencac.learning.online import LearnedEngine

    eng = LearnedEngine.load(model)
    apply = None
    if rules:
        from opencac.edits import apply_rules as apply
    out = eng.code_many([d.text for d in docs], [d.id for d in docs], context)
    if apply is not None:
        for res, d in zip(out, docs, strict=True):
            apply(res, d.text)
    return out


def projection_curve(
    results: Sequence[CodingResult], gold: dict[str, dict[str, list[str]]], base: RoutingPolicy,
    texts: dict[str, str] | None = None, targets: Sequence[float] = CURVE_TARGETS,
    method: str = DEFAULT_METHOD, confidence: float = DEFAULT_CONFIDENCE, prior_weight: float = DEFAULT_PRIOR_WEIGHT,
) -> list[dict[str, Any]]:
    """For each target precision: thresholds, code-level recall per group, encounter automation rate
    (thresholds chosen as :func:`fit_policy` chooses them: ``method``, ``confidence``, ``prior_weight``)."""
    records, gold_counts = records_from_results(results, gold)
    curve = []
    for t in targets:
        fits = fit_thresholds(records, t, gold_counts, min_selected=5, method=method, confidence=confidence,
                              prior_weight=prior_weight)
        pol = RoutingPolicy.from_dict({**base.to_dict(), "thresholds": {k: f.threshold for k, f in fits.items()},
                                       "projection": {}, "fits": {}, "calibrators": {}})
        pol.target_precision = t
        proj = projected_automation(results, pol, texts)
        curve.append({
            "target_precision": t,
            "thresholds": {k: f.threshold for k, f in fits.items() if k.endswith(":*")},
            "recall": {k: round(f.recall, 4) for k, f in fits.items() if k.endswith(":*")},
            "straight_through_rate": round(proj["straight_through_rate"], 4),
        })
    return curve


def fit_policy_on_corpus(
    model: str | Path | None,
    validation: str | Path | Sequence[TrainingDocument],
    target_precision: float = 0.95,
    context: EncounterContext | None = None,
    base: RoutingPolicy | None = None,
    rules: bool = False,
    calibration: str | None = "isotonic",
    results: Sequence[CodingResult] | None = None,
    method: str = DEFAULT_METHOD,
    confidence: float = DEFAULT_CONFIDENCE,
    prior_weight: float | None = None,
) -> tuple[RoutingPolicy, list[CodingResult]]:
    """Code a validation corpus with ``model`` and fit a policy that meets ``target_precision``.

    Args:
        model: the model directory.
        validation: a coded corpus (CodiEsp split dir or JSONL) or its documents.
        target_precision: code-level precision target per code system and setting.
        context: encounter context for coding (setting, date of service).
        base: a policy whose non-threshold settings to keep.
        rules: apply the rules layer (edits and queries count in the projected automation).
        calibration: display calibrators to fit (``isotonic`` | ``platt`` | ``None``).
        results: already-computed results for ``validation`` (skips coding).
        method / confidence: how thresholds are chosen (see :func:`fit_policy`).
        prior_weight: weight of the engine's calibrated confidences as evidence; default
            :data:`~opencac.routing.thresholds.DEFAULT_PRIOR_WEIGHT` for a trained model and 0
            for the dictionary-only engine, whose confidences are not calibrated.

    Returns:
        ``(policy, results)``; ``policy.projection`` holds the automation projection and the
        curve over target precisions.
    """
    docs = list(validation) if not isinstance(validation, (str, Path)) else load_documents(validation)
    if results is None:
        results = code_corpus(model, docs, context, rules)
    gold = {s: {d.id: d.codes.get(s, []) for d in docs} for s in ("icd10cm", "icd10pcs")}
    records, gold_counts = records_from_results(results, gold)
    if prior_weight is None:
        calibrated = any(r.model != "dictionary-only" for r in results)
        prior_weight = DEFAULT_PRIOR_WEIGHT if calibrated else 0.0
    fit_kw: dict[str, Any] = {"method": method, "confidence": confidence, "prior_weight": prior_weight}
    pol = fit_policy(records, gold_counts, target_precision, base=base, calibration=calibration, **fit_kw)
    texts = {d.id: d.text for d in docs}
    proj = projected_automation(results, pol, texts)
    pol.projection = {**proj, "curve": projection_curve(results, gold, pol, texts, **fit_kw)}
    pol.meta.update(model=str(model) if model else None, rules_applied=rules,
                    fitted=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    return pol, list(results)


def retarget(policy: RoutingPolicy, target_precision: float) -> RoutingPolicy:
    """A copy of ``policy`` at another target precision, taken from its pre-computed curve.

    Uses the nearest curve point; per-setting thresholds are dropped (the curve holds the
    per-system ones). Raises ``PolicyError`` when the policy has no curve.
    """
    from opencac.errors import PolicyError

    curve = policy.projection.get("curve") or []
    if not curve:
        raise PolicyError("this policy has no projection curve; re-fit it with `opencac thresholds fit`.")
    point = min(curve, key=lambda p: abs(p["target_precision"] - target_precision))
    new = RoutingPolicy.from_dict(policy.to_dict())
    new.target_precision = float(point["target_precision"])
    new.thresholds = dict(point["thresholds"])
    new.projection = {**policy.projection, "straight_through_rate": point["straight_through_rate"],
                      "selected_point": point}
    return new.validate()
