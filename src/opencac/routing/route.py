"""Complexity and the route decision: straight-through, coder review (with priority) or CDI query."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from opencac.coding.types import CodeSuggestion, CodingResult
from opencac.routing.policy import RoutingPolicy, norm_code

#: The routes, in order of how much human work they ask for.
STRAIGHT_THROUGH = "straight_through"
CODER_REVIEW = "coder_review"
CDI_QUERY = "cdi_query"
ROUTES = (STRAIGHT_THROUGH, CODER_REVIEW, CDI_QUERY)

#: Priorities of the review queues: 1 = work first.
PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW = 1, 2, 3

# Assertions that make a code uncertain for coding purposes. Outpatient uncertain diagnoses
# are not coded as established (ICD-10-CM Official Guidelines IV.H); inpatient ones are coded
# as if established at discharge (II.H / III.C), which a coder must confirm.
_UNCERTAIN = {"uncertain", "hypothetical"}
_NEGATIVE = {"negated", "family"}
_RESOLVED_EDIT_STATUS = {"resolved", "overridden", "closed", "dismissed", "accepted"}

#: Signal of a suggestion the rules layer added to the claim with no engine confidence (the
#: workbench's ``source="rules"`` rows, ``opencac.service.routers.learning.result_from_rows``).
#: Such a code fails its threshold: it never makes an encounter straight-through on its own, a
#: coder confirms it. (A code the rules took from the engine's candidates, or wrote in place of an
#: engine code, keeps that engine confidence and is judged by it like any other.)
RULES_ADDED = "rules_added"

#: Caps that map each raw factor value onto [0, 1].
_CAPS: dict[str, float] = {
    "conditions": 12.0,
    "interactions": 5.0,
    "uncertain_assertions": 3.0,
    "rare_procedures": 2.0,
    "low_confidence": 4.0,
    "edits_and_gaps": 3.0,
    "note_length": 1.0,
    "section_coverage": 5.0,
}


@dataclass(slots=True)
class Complexity:
    """An encounter's complexity score with the factors that make it up.

    Attributes:
        score: weighted sum of the capped factors, in [0, 1].
        factors: factor name -> ``{"value", "normalized", "weight", "contribution", "detail"}``.
    """

    score: float
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def top(self, n: int = 3) -> list[str]:
        """Names of the ``n`` largest contributing factors (non-zero only)."""
        ranked = sorted(self.factors.items(), key=lambda kv: -kv[1]["contribution"])
        return [k for k, v in ranked[:n] if v["contribution"] > 0]


@dataclass(slots=True)
class RouteDecision:
    """Where an encounter goes and why.

    Attributes:
        doc_id: the encounter's document id.
        route: one of :data:`ROUTES`.
        priority: 1 (work first) .. 3; straight-through encounters get 3.
        reasons: human-readable reasons, most important first.
        factors: the complexity factors (see :class:`Complexity`).
        complexity: the complexity score.
        audit_sample: a straight-through encounter drawn for audit.
        failing_codes: proposed codes below their threshold (``code`` -> ``(confidence, threshold)``).
    """

    doc_id: str
    route: str
    priority: int
    reasons: list[str] = field(default_factory=list)
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)
    complexity: float = 0.0
    audit_sample: bool = False
    failing_codes: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failing_codes"] = {k: list(v) for k, v in self.failing_codes.items()}
        return d


def _all(result: CodingResult) -> Iterable[tuple[str, CodeSuggestion]]:
    for s in result.diagnoses:
        yield "icd10cm", s
    for s in result.procedures:
        yield "icd10pcs", s


def _open_edits(result: CodingResult) -> list[dict[str, Any]]:
    rules = result.rules or {}
    out = []
    for e in rules.get("edits") or []:
        if isinstance(e, dict):
            status = str(e.get("status", "open")).lower()
            if status in _RESOLVED_EDIT_STATUS or e.get("resolved"):
                continue
            out.append(e)
        else:
            out.append({"id": str(e), "severity": "warning", "message": str(e)})
    return out


def _open_queries(result: CodingResult) -> list[dict[str, Any]]:
    rules = result.rules or {}
    out = []
    for q in rules.get("queries") or []:
        if isinstance(q, dict):
            if str(q.get("status", "open")).lower() in _RESOLVED_EDIT_STATUS:
                continue
            out.append(q)
        else:
            out.append({"id": str(q), "question": str(q)})
    return out


def _blocking_edits(result: CodingResult, policy: RoutingPolicy) -> list[dict[str, Any]]:
    """Open edits that keep an encounter from straight-through: a blocking severity
    (``policy.blocking_edit_severities``) whose fix the rules did not apply, and any edit whose
    fix is proposed to the coder (``fix_status == "proposed"``), whatever its severity: the rules
    left a decision to a person, so one must see it."""
    blocking = {x.lower() for x in policy.blocking_edit_severities}
    # An edit whose fix the rules layer already applied to the final codes does not block.
    return [e for e in _open_edits(result) if not e.get("applied") and (
        e.get("fix_status") == "proposed" or str(e.get("severity", "warning")).lower() in blocking)]


def _prior(s: CodeSuggestion) -> float | None:
    for k in ("prior", "prior_freq", "code_prior", "train_freq"):
        if k in s.signals:
            return float(s.signals[k])
    return None


def assess_complexity(result: CodingResult, policy: RoutingPolicy, text: str | None = None) -> Complexity:
    """Score how complex an encounter is, with each factor shown.

    Factors: number of conditions (selected diagnoses) and their interactions (distinct
    ICD-10-CM chapters, multi-code edits), conflicting or uncertain assertions, rare or
    unusual procedures, low-confidence codes, open edits and documentation gaps (CDI
    queries), note length and section coverage (sections the evidence comes from).

    Args:
        result: the engine's result (with ``rules`` filled when the rules layer ran).
        policy: the routing policy (thresholds, weights, caps).
        text: the note text (for its length); without it the last evidence offset is used.

    Returns:
        A :class:`Complexity`.
    """
    setting = result.context.setting
    selected_dx = [s for s in result.diagnoses if s.selected]
    selected_px = [s for s in result.procedures if s.selected]
    detail: dict[str, Any] = {}
    values: dict[str, float] = {}

    values["conditions"] = float(len(selected_dx))
    detail["conditions"] = [s.code for s in selected_dx]

    chapters = sorted({s.code[:1].upper() for s in selected_dx if s.code})
    multi_code_edits = [e for e in _open_edits(result) if len(e.get("codes") or []) >= 2]
    values["interactions"] = float(max(0, len(chapters) - 1) + len(multi_code_edits))
    detail["interactions"] = {"chapters": chapters, "multi_code_edits": [e.get("id") for e in multi_code_edits]}

    # Uncertain: proposed or borderline codes whose mention is uncertain/hypothetical.
    # Conflicting: one code (or one 3-character category) both affirmed and negated/family.
    uncertain = [
        s.code
        for _, s in _all(result)
        if s.assertion in _UNCERTAIN and (s.selected or s.confidence >= policy.low_confidence_floor)
    ]
    by_cat: dict[str, set[str]] = {}
    for s in result.diagnoses:
        by_cat.setdefault(norm_code(s.code)[:3], set()).add(
            "neg" if s.assertion in _NEGATIVE else "pos" if s.assertion == "affirmed" else "unc"
        )
    conflicts = sorted(c for c, kinds in by_cat.items() if {"neg", "pos"} <= kinds)
    values["uncertain_assertions"] = float(len(uncertain) + len(conflicts))
    detail["uncertain_assertions"] = {"uncertain": uncertain, "conflicting_categories": conflicts}

    rare = []
    for s in selected_px:
        p = _prior(s)
        if policy.code_counts:
            if policy.code_counts.get(norm_code(s.code), 0) < policy.rare_count:
                rare.append(s.code)
        elif p is not None and p <= 0.0:
            rare.append(s.code)
    values["rare_procedures"] = float(len(rare))
    detail["rare_procedures"] = rare

    low = []
    for system, s in _all(result):
        t = policy.threshold_for(system, setting)
        if s.selected and not policy.passes(system, setting, s.confidence):
            low.append(s.code)
        elif not s.selected and t is not None and policy.low_confidence_floor <= s.confidence < t:
            low.append(s.code)
    values["low_confidence"] = float(len(low))
    detail["low_confidence"] = low

    blocking = {x.lower() for x in policy.blocking_edit_severities}
    edits = _open_edits(result)
    queries = _open_queries(result)
    weight_edits = sum(1.0 if str(e.get("severity", "warning")).lower() in blocking else 0.5 for e in edits)
    values["edits_and_gaps"] = weight_edits + len(queries)
    detail["edits_and_gaps"] = {
        "edits": [e.get("id") for e in edits],
        "queries": [q.get("id") or q.get("question") for q in queries],
    }

    length = len(text) if text is not None else max((ev.end for _, s in _all(result) for ev in s.evidence), default=0)
    values["note_length"] = length / max(1, policy.long_note_chars)
    detail["note_length"] = length

    sections = sorted({ev.section for _, s in _all(result) if s.selected for ev in s.evidence if ev.section})
    values["section_coverage"] = float(len(sections))
    detail["section_coverage"] = sections

    factors: dict[str, dict[str, Any]] = {}
    total = 0.0
    for name, cap in _CAPS.items():
        w = float(policy.weights.get(name, 0.0))
        norm = min(1.0, values[name] / cap) if cap else 0.0
        contrib = w * norm
        total += contrib
        factors[name] = {
            "value": round(values[name], 4),
            "normalized": round(norm, 4),
            "weight": w,
            "contribution": round(contrib, 4),
            "detail": detail[name],
        }
    return Complexity(score=round(min(1.0, total), 4), factors=factors)


def audit_draw(doc_id: str, rate: float, seed: int = 0) -> bool:
    """Reproducible draw: whether ``doc_id`` is sampled for audit at ``rate`` under ``seed``.

    The same (seed, document) always gives the same answer, on any machine.
    """
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    h = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    return u < rate


def claim_result(result: CodingResult) -> CodingResult:
    """The result as it would be billed: its selection made the rules layer's final claim.

    Routing judges the codes an encounter would go out with. When the rules layer ran
    (``result.rules["final_codes"]``), that is its final claim, not the engine's selection: an
    engine suggestion on the claim counts as selected (at its engine confidence), one the rules
    removed or replaced does not, and a claim code with no engine suggestion joins at the
    confidence the rules layer carried over (a code written in place of an engine code keeps
    that code's confidence) or, for a pure addition, with the :data:`RULES_ADDED` signal (a
    coder confirms it). The workbench stores runs the same way
    (``opencac.service.worker.align_with_rules``). Without a final claim the result is returned
    unchanged; otherwise a copy (the engine's ranked lists are never modified).
    """
    final = (result.rules or {}).get("final_codes") if isinstance(result.rules, dict) else None
    if not isinstance(final, list) or not all(isinstance(f, dict) and f.get("code") for f in final):
        return result
    out = CodingResult(result.doc_id, context=result.context, rules=result.rules, model=result.model)
    for attr in ("codeset", "warnings"):
        if hasattr(result, attr):
            setattr(out, attr, getattr(result, attr))
    for system in ("icd10cm", "icd10pcs"):
        claim = [f for f in final if str(f.get("system") or "icd10cm") == system]
        keys = {norm_code(str(f["code"])): f for f in claim}
        ranked = out.ranked(system)
        seen: set[str] = set()
        for s in result.ranked(system):
            k = norm_code(s.code)
            seen.add(k)
            ranked.append(replace(s, selected=k in keys, signals=dict(s.signals or {})))
        for f in claim:
            k = norm_code(str(f["code"]))
            if k in seen:
                continue
            conf = f.get("confidence")
            signals = {} if conf is not None else {RULES_ADDED: 1.0}
            ranked.append(CodeSuggestion(str(f["code"]), system, str(f.get("description") or ""),
                                         float(conf or 0.0), [], str(f.get("assertion") or "affirmed"),
                                         [f"added by the rules layer: {f.get('added_by') or 'final claim'}"],
                                         signals, len(ranked) + 1, True))
    return out


def route(result: CodingResult, policy: RoutingPolicy, text: str | None = None) -> RouteDecision:
    """Decide where an encounter goes.

    * ``cdi_query`` when the rules layer left an open documentation query (and the policy
      sends those to CDI);
    * ``straight_through`` when at least one code is proposed, every proposed code passes
      its threshold, no blocking edit is open and the complexity is within the limit; such
      encounters are still drawn for audit at ``policy.audit_sample_rate``;
    * ``coder_review`` otherwise, with priority 1-3 from complexity, blocking edits and the
      share of codes below threshold.

    Args:
        result: the engine's result (``rules`` filled when the rules layer ran).
        policy: the routing policy.
        text: the note text (for complexity); optional.

    Returns:
        A :class:`RouteDecision` with its reasons and complexity factors.
    """
    setting = result.context.setting
    cx = assess_complexity(result, policy, text)
    reasons: list[str] = []
    failing: dict[str, tuple[float, float | None]] = {}
    proposed = [(sy, s) for sy, s in _all(result) if s.selected]
    unscored: set[str] = set()
    for system, s in proposed:
        if s.signals.get(RULES_ADDED):
            unscored.add(s.code)
            failing[s.code] = (round(s.confidence, 4), policy.threshold_for(system, setting))
        elif not policy.passes(system, setting, s.confidence):
            failing[s.code] = (round(s.confidence, 4), policy.threshold_for(system, setting))
    blocking_edits = _blocking_edits(result, policy)
    queries = _open_queries(result)

    if queries and policy.cdi_on_queries:
        reasons.append(f"{len(queries)} open documentation quer{'y' if len(queries) == 1 else 'ies'} for the physician")
        if failing:
            reasons.append(f"{len(failing)} proposed code(s) below threshold")
        drg = (result.rules or {}).get("drg") or {}
        impacts = drg.get("impacts") if isinstance(drg, dict) else None
        moves_drg = any((i or {}).get("weight_delta") for i in impacts or [])
        prio = PRIORITY_HIGH if moves_drg or cx.score > policy.complexity_limit else PRIORITY_MEDIUM
        return RouteDecision(result.doc_id, CDI_QUERY, prio, reasons, cx.factors, cx.score, False, failing)

    if not proposed:
        reasons.append("no code proposed by the engine")
    for code, (conf, thr) in failing.items():
        if code in unscored:
            reasons.append(f"{code} added by the rules layer without an engine confidence: a coder confirms it")
            continue
        reasons.append(
            f"{code} confidence {conf:.2f} below threshold "
            + (f"{thr:.2f}" if thr is not None else "(no threshold meets the target precision)")
        )
    for e in blocking_edits:
        what = " with a proposed fix" if e.get("fix_status") == "proposed" else ""
        reasons.append(f"open {e.get('severity', 'warning')} edit {e.get('id', '')}{what}: "
                       f"{e.get('message', '')}".strip())
    if queries:
        reasons.append(f"{len(queries)} open documentation query(ies)")
    if cx.score > policy.complexity_limit:
        reasons.append(
            f"complexity {cx.score:.2f} above limit {policy.complexity_limit:.2f} ({', '.join(cx.top())})"
        )

    if not reasons:
        sample = audit_draw(result.doc_id, policy.audit_sample_rate, policy.seed)
        reasons.append(
            f"all {len(proposed)} code(s) pass their thresholds, no open edit or query, "
            f"complexity {cx.score:.2f} <= {policy.complexity_limit:.2f}"
        )
        if sample:
            reasons.append(f"sampled for audit (rate {policy.audit_sample_rate:.0%}, seed {policy.seed})")
        return RouteDecision(result.doc_id, STRAIGHT_THROUGH, PRIORITY_LOW, reasons, cx.factors, cx.score, sample, failing)

    share_failing = len(failing) / len(proposed) if proposed else 1.0
    if blocking_edits and any(str(e.get("severity")).lower() == "error" for e in blocking_edits):
        prio = PRIORITY_HIGH
    elif cx.score > 2 * policy.complexity_limit or share_failing > 0.5:
        prio = PRIORITY_HIGH
    elif cx.score > policy.complexity_limit or blocking_edits:
        prio = PRIORITY_MEDIUM
    else:
        prio = PRIORITY_LOW
    return RouteDecision(result.doc_id, CODER_REVIEW, prio, reasons, cx.factors, cx.score, False, failing)


def projected_automation(
    results: Iterable[CodingResult], policy: RoutingPolicy, texts: dict[str, str] | None = None
) -> dict[str, Any]:
    """Route every result and report the share per route (the projected automation rate).

    Args:
        results: coding results (e.g. of a validation set).
        policy: the policy to project.
        texts: doc id -> text (optional, for note length).

    Returns:
        ``{"encounters", "straight_through_rate", "routes": {route: count}, "audit_sampled"}``.
    """
    counts = dict.fromkeys(ROUTES, 0)
    sampled = 0
    n = 0
    for r in results:
        d = route(r, policy, (texts or {}).get(r.doc_id))
        counts[d.route] += 1
        sampled += int(d.audit_sample)
        n += 1
    return {
        "encounters": n,
        "straight_through_rate": counts[STRAIGHT_THROUGH] / n if n else 0.0,
        "routes": counts,
        "audit_sampled": sampled,
    }
