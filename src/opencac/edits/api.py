"""Public entry points: ``apply_rules`` (engine output -> final claim) and ``check_claim``
(scrub an already coded claim)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import fields
from typing import Any

from opencac.coding.types import SETTINGS, CodingResult, EncounterContext
from opencac.edits.guidelines import assign_roles
from opencac.edits.model import SEVERITIES, Edit, EvidenceSpan, FinalCode, RulesOutcome
from opencac.edits.policy import DEFAULT_POLICY, AutoApplyPolicy
from opencac.edits.registry import RuleRegistry, default_registry
from opencac.edits.state import RulesState
from opencac.errors import ClaimFormatError, OpenCACError, UnknownCodeError

log = logging.getLogger(__name__)

#: Documented defaults of the encounter context (see ``EncounterContext``).
CONTEXT_DEFAULTS: dict[str, str] = {
    "setting": "outpatient (uncertain diagnoses coded as symptoms, IV.H; no DRG)",
    "age": "unknown (age edits skipped)",
    "sex": "U (sex edits skipped; DRG grouped as F)",
    "date_of_service": "today (selects the code set)",
    "discharge_status": "01 (home)",
    "poa": "none (POA edits skipped; DRG treats every code as Y)",
}


def _kb(kb: Any) -> Any:
    if kb is not None:
        return kb
    from opencac.codesets import load_knowledge  # type: ignore[attr-defined]

    return load_knowledge()


def _defaults(ctx: EncounterContext, given: set[str] | None) -> list[str]:
    out = []
    for f in fields(EncounterContext):
        name = f.name
        if name in ("admission_date", "discharge_date"):
            continue
        if given is not None:
            if name == "date_of_service":
                if not ({"date_of_service", "discharge_date"} & given):
                    out.append(name)
            elif name not in given:
                out.append(name)
            continue
        val = getattr(ctx, name)
        if name == "date_of_service":
            if ctx.date_of_service is None and ctx.discharge_date is None:
                out.append(name)
        elif name == "poa":
            if not val:
                out.append(name)
        elif val == f.default:
            out.append(name)
    return out


def _context_dict(state: RulesState, defaults: list[str]) -> dict[str, Any]:
    d = state.ctx.to_dict()
    d["effective_date"] = state.as_of.isoformat()
    # the code set actually used: the date's fiscal year, or the newest loaded one before it
    # (a date in FY2027 is coded with the FY2026 code set until FY2027 files are loaded)
    used = state.kb.version_for(state.as_of) if callable(getattr(state.kb, "version_for", None)) else state.fy
    d["code_set"] = f"FY{used}" + (f" (date in FY{state.fy})" if used != state.fy else "")
    d["defaulted"] = {k: CONTEXT_DEFAULTS.get(k, "default") for k in defaults}
    return d


def run_rules(state: RulesState, registry: RuleRegistry | None = None, *, strict: bool = False) -> RulesOutcome:
    """Run every applicable rule on ``state`` and build the outcome.

    Args:
        state: the working state (its code set is changed in engine mode).
        registry: rules to run (default: built-ins + ``opencac.edits`` entry points).
        strict: re-raise a rule's unexpected exception instead of reporting ``RULE-FAILED``.
    """
    reg = registry or default_registry()
    edits: list[Edit] = []
    ran: list[str] = []
    for r in reg.rules():
        if not r.applies(state.ctx):
            continue
        try:
            found = list(r.run(state) or [])
        except OpenCACError:
            raise
        except Exception as exc:
            if strict:
                raise
            log.warning("rule %s failed: %s", r.name, type(exc).__name__)
            found = [Edit("RULE-FAILED", "warning", f"Rule {r.name} failed ({type(exc).__name__}); its checks were skipped.",
                          r.citation, rule=r.name)]
        for e in found:
            e.rule = e.rule or r.name
            if e.severity not in SEVERITIES:
                e.severity = "warning"
            if e.fix and state.mode == "engine" and e.auto:
                e.applied = state.apply_fix(e.fix, r.name)
            elif e.fix and state.mode != "engine":
                e.auto = False  # claim mode: every fix is proposed
        edits.extend(found)
        ran.append(r.name)
        if state.mode == "engine":
            assign_roles(state)
    assign_roles(state)
    if state.mode == "engine":
        _reconcile_proposed(state, edits)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    edits = [e for _, e in sorted(enumerate(edits), key=lambda t: (rank[t[1].severity], t[0]))]
    return RulesOutcome(final_codes=state.dx + state.px, edits=edits, queries=list(state.queries),
                        drg=state.scratch.get("drg"), rules_run=ran, mode=state.mode, changes=list(state.changes),
                        policy=state.policy.to_dict())


def _reconcile_proposed(state: RulesState, edits: list[Edit]) -> None:
    """Bring every proposed fix up to date with the final code set.

    A fix proposed by one rule can name a code that a later rule took out: COMBINATION-CODE
    proposes "remove E11.9; add E11.22", then E11.9 is dropped beside E11.65. Applied as it
    stands, it would ask the coder to remove a code that is no longer there (the workbench
    refuses such a fix as stale). Codes no longer on the claim leave ``remove`` and ``replace``,
    codes already there leave ``add``, and an anchor no longer there is dropped; a fix with
    nothing left to do is withdrawn and its message says why."""
    for e in edits:
        if not e.fix or e.applied or e.auto:
            continue
        fix = dict(e.fix)
        gone: list[str] = []
        if fix.get("remove"):
            gone += [c for c in fix["remove"] if state.find(c) is None]
            fix["remove"] = [c for c in fix["remove"] if state.find(c) is not None]
        if fix.get("replace"):
            gone += [old for old in fix["replace"] if state.find(old) is None]
            fix["replace"] = {old: new for old, new in fix["replace"].items() if state.find(old) is not None}
        if fix.get("add"):
            adds = []
            for item in fix["add"]:
                spec = {"code": item} if isinstance(item, str) else dict(item)
                if state.has(spec["code"]):
                    continue
                for k in ("after", "before"):
                    if spec.get(k) and state.find(spec[k]) is None:
                        spec.pop(k)
                adds.append(spec if not isinstance(item, str) else item)
            fix["add"] = adds
        fix = {k: v for k, v in fix.items() if v}
        if not gone and fix == {k: v for k, v in e.fix.items() if v}:
            continue
        if fix:
            e.fix = fix
        else:
            e.fix = None
            e.message = (f"{e.message.rstrip('.')}. Nothing left to propose: "
                         f"{', '.join(gone) or 'the codes it named'} changed by another rule.")


def apply_rules(result: CodingResult, text: str, kb: Any = None, *, registry: RuleRegistry | None = None,
                strict: bool = False, policy: AutoApplyPolicy | None = None,
                drg_crosscheck: bool = True) -> RulesOutcome:
    """Turn the engine's suggestions into a guideline-conformant, sequenced code set.

    The selected suggestions form the starting code set; every suggestion (selected or not)
    is available to rules as a candidate companion code. A fix is applied (engine mode) when
    its rule is certain under ``policy``; otherwise the codes stay as the engine proposed
    them and the edit carries the proposed fix for the coder (``fix_status == "proposed"``).
    Also sets ``result.rules = outcome.to_dict()``.

    Args:
        result: the engine's output; ``result.context`` is the encounter context.
        text: the note the result was computed from (offsets refer to it).
        kb: a ``KnowledgeBase`` (default ``opencac.codesets.load_knowledge()``).
        registry: rules to run (default: built-ins + entry points).
        strict: re-raise unexpected rule exceptions (tests).
        policy: the auto-apply thresholds (default ``opencac.edits.policy.DEFAULT_POLICY``).
        drg_crosscheck: inpatient: also group with the ``drg`` package and report agreement
            (loading that grouper costs ~0.5 s once per process; the CLI's ``code`` skips it
            unless asked).

    Returns:
        The RulesOutcome (final codes, edits, queries, DRG, context with defaults).
    """
    kb = _kb(kb)
    ctx = result.context or EncounterContext()
    state = RulesState(ctx=ctx, text=text or "", kb=kb, mode="engine", policy=policy or DEFAULT_POLICY,
                       candidates=list(result.diagnoses) + list(result.procedures),
                       learned=(result.model or "dictionary-only") != "dictionary-only",
                       drg_crosscheck=drg_crosscheck)
    # A code is reported once (I.B.12): when the engine selected the same code twice, the
    # best-supported mention wins (affirmed first, then confidence) and the evidence is merged.
    pref = {"affirmed": 0, "uncertain": 1, "historical": 2, "hypothetical": 3, "family": 4, "negated": 5}
    chosen: dict[tuple[str, str], Any] = {}
    extra_ev: dict[tuple[str, str], list[Any]] = {}
    for s in list(result.diagnoses) + list(result.procedures):
        if not s.selected:
            continue
        key = (s.system, s.code.replace(".", "").upper())
        best = chosen.get(key)
        if best is None:
            chosen[key] = s
        else:
            if (pref.get(s.assertion, 9), -s.confidence) < (pref.get(best.assertion, 9), -best.confidence):
                chosen[key] = s
            extra_ev.setdefault(key, []).extend(best.evidence if chosen[key] is s else s.evidence)
    for key, s in chosen.items():
        # the suggestion's own system: B020 (CT of the brain) is also the ICD-10-CM B02.0
        found = kb.find(s.code, s.system)
        code = kb.normalize(s.code, s.system) if found is not None else s.code
        state_list = state.dx if s.system == "icd10cm" else state.px
        state_list.append(FinalCode(
            code=code, system=s.system, description=s.description or (found.description if found is not None else ""),
            source="engine", confidence=s.confidence, assertion=s.assertion,
            evidence=[EvidenceSpan(e.start, e.end, e.text) for e in list(s.evidence) + extra_ev.get(key, [])],
            poa=(ctx.poa.get(code) or ctx.poa.get(code.replace(".", ""))) if s.system == "icd10cm" else None))
    defaults = _defaults(ctx, None)
    outcome = run_rules(state, registry, strict=strict)
    outcome.context = _context_dict(state, defaults)
    outcome.defaults = defaults
    result.rules = outcome.to_dict()
    return outcome


def _parse_code_item(item: Any, where: str) -> tuple[str, str | None]:
    if isinstance(item, str):
        return item.strip(), None
    if isinstance(item, dict) and isinstance(item.get("code"), str):
        poa = item.get("poa")
        return item["code"].strip(), (str(poa).upper() if poa is not None else None)
    raise ClaimFormatError(f"{where}: expected a code string or an object with a \"code\" string, got {item!r:.60}.")


def parse_context(data: Any) -> tuple[EncounterContext, set[str]]:
    """Validate a claim's ``context`` object; returns the context and the keys given."""
    if data is None:
        return EncounterContext(), set()
    if not isinstance(data, dict):
        raise ClaimFormatError(f"claim \"context\" must be an object, got {type(data).__name__}.")
    known = {f.name for f in fields(EncounterContext)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ClaimFormatError(f"unknown context field(s) {', '.join(unknown)}.", options=sorted(known))
    setting = data.get("setting")
    if setting is not None and setting not in SETTINGS:
        raise ClaimFormatError(f"context.setting {setting!r} is not a known setting.", options=SETTINGS)
    sex = data.get("sex")
    if sex is not None and str(sex).upper() not in ("F", "M", "U"):
        raise ClaimFormatError(f"context.sex {sex!r} is not valid.", options=["F", "M", "U"])
    age = data.get("age")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 124):
        raise ClaimFormatError(f"context.age {age!r} must be an integer 0-124.")
    poa = data.get("poa")
    if poa is not None and not isinstance(poa, dict):
        raise ClaimFormatError("context.poa must be an object {code: indicator}.")
    clean = dict(data)
    if sex is not None:
        clean["sex"] = str(sex).upper()
    try:
        ctx = EncounterContext.from_dict(clean)
    except (ValueError, TypeError) as exc:
        raise ClaimFormatError(f"context has an invalid date ({exc}); expected ISO dates like 2025-11-03.") from exc
    ctx.discharge_status = str(ctx.discharge_status)
    return ctx, {k for k, v in data.items() if v is not None}


def check_claim(claim: dict[str, Any], kb: Any = None, *, registry: RuleRegistry | None = None,
                strict_codes: bool = True, strict: bool = False) -> RulesOutcome:
    """Scrub an already coded claim (pre-bill edits); fixes are proposed, never applied.

    Args:
        claim: ``{"context": {...EncounterContext fields...}, "diagnoses": ["I50.9", {"code": "N17.9",
            "poa": "Y"}, ...] (first = principal / first-listed), "procedures": ["0DTJ4ZZ", ...]}``.
        kb: a ``KnowledgeBase`` (default ``load_knowledge()``).
        registry: rules to run.
        strict_codes: an unknown code raises ``UnknownCodeError`` (the CLI's behaviour); when
            False it becomes an ``MCE-INVALID-DX`` / ``PCS-INVALID`` error edit.
        strict: re-raise unexpected rule exceptions.

    Raises:
        ClaimFormatError: the claim is not in the documented shape.
        UnknownCodeError: a code is not in ICD-10-CM / ICD-10-PCS (``strict_codes``).
    """
    if not isinstance(claim, dict):
        raise ClaimFormatError(f"a claim must be a JSON object, got {type(claim).__name__}.")
    extra = sorted(set(claim) - {"context", "diagnoses", "procedures", "id", "claim_id"})
    if extra:
        raise ClaimFormatError(f"unknown claim field(s) {', '.join(extra)}.",
                               options=["context", "diagnoses", "procedures", "id"])
    dxs = claim.get("diagnoses", [])
    pxs = claim.get("procedures", [])
    if not isinstance(dxs, list) or not isinstance(pxs, list):
        raise ClaimFormatError("claim \"diagnoses\" and \"procedures\" must be lists.")
    if not dxs and not pxs:
        raise ClaimFormatError("the claim has no diagnoses and no procedures.")
    ctx, given = parse_context(claim.get("context"))
    kb = _kb(kb)
    state = RulesState(ctx=ctx, text="", kb=kb, mode="claim")
    for i, item in enumerate(dxs):
        raw, poa = _parse_code_item(item, f"diagnoses[{i}]")
        state.dx.append(_claim_code(kb, raw, "icd10cm", strict_codes))
        if poa is not None:
            ctx.poa[state.dx[-1].code] = poa
        state.dx[-1].poa = ctx.poa.get(state.dx[-1].code) or ctx.poa.get(raw)
    for i, item in enumerate(pxs):
        raw, _ = _parse_code_item(item, f"procedures[{i}]")
        fc = _claim_code(kb, raw, "icd10pcs", strict_codes)
        fc.poa = None
        state.px.append(fc)
    if state.dx and "poa" in given:
        given.add("poa")
    elif any(c.poa for c in state.dx):
        given.add("poa")
    defaults = _defaults(ctx, given)
    outcome = run_rules(state, registry, strict=strict)
    outcome.context = _context_dict(state, defaults)
    outcome.defaults = defaults
    return outcome


def _claim_code(kb: Any, raw: str, system: str, strict_codes: bool) -> FinalCode:
    code = kb.find(raw)
    if code is not None:
        sysname = str(getattr(kb.system_of(code.code), "value", kb.system_of(code.code)))
        if sysname != system:
            raise ClaimFormatError(f"{raw!r} is an {sysname} code but is listed under "
                                   f"{'diagnoses' if system == 'icd10cm' else 'procedures'}.")
        return FinalCode(code=code.code, system=system, description=code.description, source="claim")
    if strict_codes:
        raise UnknownCodeError(f"unknown {'ICD-10-CM' if system == 'icd10cm' else 'ICD-10-PCS'} code {raw!r} on the claim.")
    return FinalCode(code=raw.upper(), system=system, description="", source="claim")


def today() -> dt.date:  # pragma: no cover - indirection for tests
    return dt.date.today()
