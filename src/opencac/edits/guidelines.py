"""ICD-10-CM / ICD-10-PCS Official Guidelines and tabular conventions as rules.

Each ``run_*`` function is the ``run`` of one built-in ``Rule`` (see ``opencac.edits.rules``):
it reads the ``RulesState`` and returns ``Edit`` objects whose ``fix`` the runner applies in
engine mode and only proposes in claim mode. Every function cites the clause it implements.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from opencac.coding.completion import unspecified_leaf
from opencac.coding.values import bmi_code
from opencac.edits import tables as T
from opencac.edits.model import Edit, EvidenceSpan, FinalCode
from opencac.edits.policy import conf_text, decide
from opencac.edits.state import RulesState, undot

_V = TypeVar("_V")

G = "ICD-10-CM Official Guidelines for Coding and Reporting FY2026"

#: Explicit statements of the episode of care (I.C.19.a), checked first.
_EPISODE_STRONG = (
    ("S", re.compile(r"\bsequela(e)?\b|\blate effects?\b", re.I)),
    ("D", re.compile(r"\bsubsequent encounter\b|\broutine healing\b|\bcast (check|change)\b|"
                     r"\bremoval of (the )?(cast|sutures|staples)\b|\brecovery phase\b", re.I)),
    ("A", re.compile(r"\binitial encounter\b|\bactive treatment\b", re.I)),
)
#: Weaker cues, used only outside inpatient/emergency settings (where active treatment = A).
_EPISODE_WEAK = (
    ("D", re.compile(r"\bfollow[- ]?up (visit|appointment|encounter)\b|\bhealing\b", re.I)),
    ("A", re.compile(r"\bemergency department\b|\bED\b|\bpresent(s|ed|ing)? (to|with)\b|\bsustained\b|\btoday\b", re.I)),
)
#: The note states that a past condition is over (I.C.21.c.4: history codes are for conditions
#: that no longer exist and are not receiving treatment). Read in the mention's sentence.
_RESOLVED = re.compile(r"\b(s/p|status post|resected|excised|removed|eradicated|cured|resolved|in remission|"
                       r"no (evidence|sign)s? of (recurrence|disease|residual)|without (residual|recurrence|sequelae)|"
                       r"completed (treatment|therapy|chemotherapy|radiotherapy|anticoagulation)|remote|healed|"
                       r"no longer|free of disease)\b", re.I)
_UNRELATED = re.compile(r"\b(not (due to|related to|caused by|secondary to)|unrelated to|due to (another|other) cause)\b", re.I)


#: The note states the link between diabetes and a condition in words (not only presumed by
#: the "with" convention, I.A.15): "diabetic X", "X due to / secondary to diabetes", "diabetes
#: with / complicated by X" in the condition's sentence; for hyperglycemia also "poorly
#: controlled" / "uncontrolled" diabetes (ICD-10-CM Index: Diabetes, poorly controlled - code to
#: the type, with hyperglycemia).
_DM = r"(?:diabet\w*|t[12]dm|dm)"
_DM_LINKED = re.compile(
    r"\bdiabetic\s+(?!(?:patient|patients|male|female|man|woman|boy|girl|subject|and|or|with|who|since)\b)[a-z]"
    r"|\b(?:due to|secondary to|caused by|related to|because of)\s+(?:[\w-]+\s+){0,3}" + _DM + r"\b"
    r"|\b" + _DM + r"(?:\s+mellitus)?(?:,?\s*type\s*(?:1|2|i|ii))?,?\s+(?:with|complicated by)\b"
    r"|\b(?:(?:poorly|inadequately|badly) controlled|uncontrolled|decompensated)\s+(?:[\w-]+\s+){0,3}" + _DM + r"\b"
    r"|\b" + _DM + r"\b[^.;]{0,30}\b(?:(?:poorly|inadequately|badly) controlled|uncontrolled|out of control|decompensated)\b",
    re.I)
#: Same for hypertension and heart / kidney disease (I.C.9.a): "hypertensive heart / kidney /
#: renal ...", "X due to / secondary to hypertension", "hypertension with X", (arterio)nephrosclerosis.
_HTN = r"(?:hypertension|htn|high blood pressure)"
_HTN_LINKED = re.compile(
    r"\bhypertensive\s+(?:\w+\s+){0,2}(?:heart|cardi\w*|kidney|renal|nephro\w*)"
    r"|\b(?:due to|secondary to|caused by|related to|because of)\s+(?:[\w-]+\s+){0,3}" + _HTN + r"\b"
    r"|\b" + _HTN + r",?\s+(?:with|complicated by)\b|nephrosclerosis\b", re.I)


def _linked(state: RulesState, rx: re.Pattern[str], *codes: FinalCode) -> bool:
    """Whether the note states the link in the sentences holding any of ``codes``' evidence."""
    return any(rx.search(state.window_for(c)) for c in codes)


def _ev(fc: FinalCode) -> list[EvidenceSpan]:
    return list(fc.evidence)


def _distinct(spans: list[EvidenceSpan]) -> list[EvidenceSpan]:
    """``spans`` without repeats of the same offsets, in order."""
    seen: set[tuple[int, int]] = set()
    return [e for e in spans if (e.start, e.end) not in seen and not seen.add((e.start, e.end))]


def _score(state: RulesState, *codes: str) -> float | None:
    """The engine's highest confidence among ``codes`` (selected or not); None when the engine
    scored none of them (``AutoApplyPolicy.engine_agrees`` then leaves the decision to the note)."""
    found = [s.confidence for s in (state.candidate(c) for c in codes) if s is not None]
    return max(found) if found else None


# -------------------------------------------------------------------------------------------
# Assertions: negated, family history, personal history, hypothetical (I.C.21.c.4, IV.H, II.H)
# -------------------------------------------------------------------------------------------
def run_assertions(state: RulesState) -> list[Edit]:
    """Negated / hypothetical mentions are never coded; history and family history become
    Z85-Z87 / Z80-Z84 codes (I.C.21.c.4), an old MI becomes I25.2 (I.C.9.e.4).

    Applied automatically: negated / hypothetical / family-history codes (never the patient's
    current condition) and a personal history the note states is over (``_RESOLVED``); any
    other personal history is proposed."""
    edits: list[Edit] = []
    for fc in list(state.dx):
        a = fc.assertion
        if a in ("negated", "hypothetical"):
            # Guidelines II.H / IV.H: do not code conditions that were ruled out or only planned for.
            edits.append(Edit("ASSERTION-NOT-CODED", "warning",
                              f"{fc.code} is documented as {a}; a {a} condition is not coded.",
                              f"{G} II.H, IV.H (ruled out / possible conditions)",
                              codes=[fc.code], evidence=_ev(fc), fix={"remove": [fc.code]}))
        elif a in ("family", "historical"):
            edits.extend(_history_edit(state, fc, a))
    # History / family mentions the engine did not select still earn a Z code when documented.
    for s in state.candidates:
        if s.system != "icd10cm" or s.selected or s.assertion not in ("family", "historical"):
            continue
        if s.confidence < state.policy.history_candidate_min or state.has(s.code):
            continue
        fc = FinalCode(s.code, "icd10cm", s.description, evidence=[EvidenceSpan(e.start, e.end, e.text) for e in s.evidence],
                       confidence=s.confidence, assertion=s.assertion)
        for e in _history_edit(state, fc, s.assertion, present=False):
            edits.append(e)
    return edits


def _history_edit(state: RulesState, fc: FinalCode, assertion: str, present: bool = True) -> list[Edit]:
    table = T.FAMILY_HISTORY if assertion == "family" else T.PERSONAL_HISTORY
    target = T.longest_prefix(fc.code, table)
    if undot(fc.code).startswith("Z8") or undot(fc.code) == "I252":
        return []  # already a history code
    if assertion == "historical" and target is None:
        # A chronic condition listed in the past history (hypertension, diabetes, COPD...) usually
        # still exists; I.C.21.c.4 history codes are for conditions that no longer exist.
        if not present:
            return []
        return [Edit("HISTORY-CHRONIC", "info",
                     f"{fc.code} is documented in the history; coded as a current condition - if it no longer "
                     "exists, report the matching Z86-Z87 personal-history code instead.",
                     f"{G} I.C.21.c.4 (history codes: conditions that no longer exist); III.B (previous conditions)",
                     codes=[fc.code], evidence=_ev(fc))]
    kind = "family history" if assertion == "family" else "personal history"
    cite = f"{G} I.C.21.c.4 (history of; Z80-Z84 family, Z85-Z87 personal)"
    if target and undot(fc.code).startswith(("I21", "I22")) and assertion == "historical":
        cite = f"{G} I.C.9.e.4 (old myocardial infarction I25.2)"
    # Family history is never the patient's own condition: always applied. A personal history
    # is applied when the note says the condition is over (_RESOLVED in the mention's sentence);
    # otherwise the condition may still exist or be under treatment, so the Z code is proposed.
    over = assertion == "family" or bool(_RESOLVED.search(state.window_for(fc)))
    if target and state.kb.is_billable(target, state.as_of):
        fix: dict[str, Any] = {"add": [{"code": target, "evidence": _ev(fc), "after": fc.code}]}
        if present:
            fix["remove"] = [fc.code]
        edit = Edit("HISTORY-Z-CODE", "warning" if present else "info",
                    f"{fc.code} is documented as {kind}; report {target} instead of an active-condition code.",
                    cite, codes=[fc.code, target], evidence=_ev(fc), fix=fix)
        return [decide(edit, over, "the note does not say the condition no longer exists", escalate=present)]
    if present:
        edit = Edit("HISTORY-Z-CODE", "warning",
                    f"{fc.code} is documented as {kind}; an active-condition code is not reported - "
                    f"assign the matching {'Z80-Z84' if assertion == 'family' else 'Z85-Z87'} code.",
                    cite, codes=[fc.code], evidence=_ev(fc), fix={"remove": [fc.code]})
        return [decide(edit, over, "the note does not say the condition no longer exists")]
    return []


def run_uncertain(state: RulesState) -> list[Edit]:
    """Uncertain diagnoses: outpatient -> code the symptoms (IV.H); inpatient at discharge ->
    code as if established (II.H, III.C). The outpatient switch applies by itself only when the
    engine doubts the code (``policy.may_drop``); otherwise it is proposed."""
    edits: list[Edit] = []
    for fc in list(state.dx):
        if fc.assertion != "uncertain":
            continue
        if state.inpatient:
            # ICD-10-CM Official Guidelines II.H / III.C: uncertain diagnosis at discharge coded as if it existed.
            edits.append(Edit("UNCERTAIN-INPATIENT", "info",
                              f"{fc.code} is documented as uncertain (probable/suspected); coded as if established "
                              "because the encounter is inpatient.",
                              f"{G} II.H, III.C (uncertain diagnosis, inpatient)", codes=[fc.code], evidence=_ev(fc)))
            continue
        # ICD-10-CM Official Guidelines IV.H: outpatient - code the signs/symptoms instead.
        symptoms = [s for s in state.candidates
                    if s.system == "icd10cm" and undot(s.code).startswith("R") and s.assertion == "affirmed"
                    and s.confidence >= state.policy.candidate_min and not state.has(s.code)]
        have_symptom = any(undot(c.code).startswith("R") for c in state.dx if c is not fc)
        fix: dict[str, Any] = {"remove": [fc.code]}
        if symptoms:
            fix["add"] = [{"code": s.code, "confidence": s.confidence,
                           "evidence": [EvidenceSpan(e.start, e.end, e.text) for e in s.evidence]} for s in symptoms[:3]]
        msg = (f"{fc.code} is documented as uncertain; in the {state.ctx.setting} setting code the signs/symptoms"
               + (f" ({', '.join(s.code for s in symptoms[:3])})." if symptoms else
                  " documented for the encounter instead." if not have_symptom else " already coded instead."))
        # Applied when the engine doubts the code too; a code the engine still believes despite the
        # hedge words (its confidence already weighs the assertion) may be established elsewhere
        # in the record, so the switch to symptoms is proposed.
        edits.append(decide(Edit("UNCERTAIN-OUTPATIENT", "warning", msg,
                                 f"{G} IV.H (uncertain diagnosis, outpatient)",
                                 codes=[fc.code] + [s.code for s in symptoms[:3]], evidence=_ev(fc), fix=fix),
                            state.policy.may_drop(fc.confidence),
                            f"the engine scored {fc.code} {conf_text(fc.confidence)} despite the uncertainty"))
    return edits


# -------------------------------------------------------------------------------------------
# Completion: 7th characters, placeholder X, header codes (I.A.4-I.A.5, I.B.1, I.C.19.a)
# -------------------------------------------------------------------------------------------
def episode_from_text(text: str, strong_only: bool = False) -> str | None:
    """7th-character episode from a sentence: A initial, D subsequent, S sequela (I.C.19.a)."""
    for char, rx in _EPISODE_STRONG + (() if strong_only else _EPISODE_WEAK):
        if rx.search(text):
            return char
    return None


def with_seventh(code: str, char: str) -> str:
    """Add a 7th character, padding with placeholder X to six characters (I.A.5)."""
    u = undot(code)
    while len(u) < 6:
        u += "X"
    u += char
    return f"{u[:3]}.{u[3:]}"


def run_completion(state: RulesState) -> list[Edit]:
    """Codes that are not valid as given: add the 7th character (with placeholder X) from the
    episode of care, or complete a header code to its unspecified leaf.

    Applied automatically (engine mode) only when certain: the note states the episode of
    care explicitly (``_EPISODE_STRONG``), the encounter is an emergency-department one (an ED
    encounter is active treatment, 7th character A, I.C.19.a), the header's subcode is one the
    engine confidently suggests, or the header sits beside its own coded subcode. An episode
    inferred from weaker cues or assumed for an inpatient stay, and a header completed to its
    unspecified subcode, are proposed (warning with the fix); the header stays flagged (MCE edit 1).
    """
    edits: list[Edit] = []
    kb = state.kb
    for fc in list(state.dx):
        code = kb.find(fc.code)
        if code is None or kb.is_billable(fc.code, state.as_of):
            continue
        u = undot(fc.code)
        deeper = [c.code for c in state.dx if c is not fc and undot(c.code).startswith(u) and len(undot(c.code)) > len(u)]
        if deeper:
            # I.B.1: the more specific code(s) already on the claim make the header redundant.
            sure = state.policy.engine_agrees(_score(state, fc.code), _score(state, *deeper))
            edits.append(decide(Edit("HEADER-REDUNDANT", "info",
                                     f"{fc.code} is a header code and the more specific {', '.join(deeper[:3])} is already "
                                     f"coded; {fc.code} is {'dropped' if sure else 'not reported'}.",
                                     f"{G} I.B.1 (code to the highest number of characters)",
                                     codes=[fc.code] + deeper[:3], evidence=_ev(fc), fix={"remove": [fc.code]}),
                                sure, f"the engine is more confident in {fc.code} than in {', '.join(deeper[:3])}"))
            continue
        sevenths = dict(kb.seventh_characters(fc.code))
        if sevenths and len(undot(fc.code)) < 7:
            window = state.window_for(fc, pad=80) or ""
            acute_setting = state.ctx.setting in ("inpatient", "emergency")
            episode = episode_from_text(window, strong_only=acute_setting)
            stated = episode is not None and episode_from_text(window, strong_only=True) == episode
            cite = f"{G} I.A.5 (placeholder X), I.C.19.a (7th characters for injuries)"
            if episode is None and acute_setting:
                episode, assumed = "A", True
                # I.C.19.a lists the emergency department encounter among active treatment (A).
                stated = state.ctx.setting == "emergency"
            else:
                assumed = False
            if episode is None or episode not in sevenths:
                options = ", ".join(f"{k}={v.split('/')[0]}" for k, v in list(sevenths.items())[:4])
                edits.append(Edit("SEVENTH-CHARACTER-REQUIRED", "error",
                                  f"{fc.code} requires a 7th character ({options}); the episode of care is not documented.",
                                  cite, codes=[fc.code], evidence=_ev(fc)))
                continue
            new = with_seventh(fc.code, episode)
            if not kb.is_billable(new, state.as_of):
                edits.append(Edit("SEVENTH-CHARACTER-REQUIRED", "error",
                                  f"{fc.code} needs more characters before a 7th character can be added.",
                                  cite, codes=[fc.code], evidence=_ev(fc)))
                continue
            why = ("assumed initial encounter (active treatment in this setting)" if assumed
                   else f"episode documented: {sevenths[episode].split('/')[0]}")
            verb = "completed to" if stated else "should be completed to"
            edits.append(decide(Edit("SEVENTH-CHARACTER", "warning" if assumed else "info",
                                     f"{fc.code} {verb} {new}: {why}.", cite, codes=[fc.code, new],
                                     evidence=_ev(fc), fix={"replace": {fc.code: new}}),
                                stated, "the note does not state the episode of care"))
            continue
        sub = _best_candidate(state, "icd10cm", lambda c: undot(c).startswith(u) and len(undot(c)) > len(u)
                              and kb.is_billable(c, state.as_of))
        if sub is not None:
            best = kb.normalize(sub.code)
            sure = (state.policy.is_confident(sub.confidence)
                    and state.policy.engine_agrees(_score(state, fc.code), sub.confidence))
            edits.append(decide(Edit("HEADER-CODE-COMPLETED", "warning",
                                     f"{fc.code} is a header (non-billable) code; {'completed' if sure else 'complete it'} "
                                     f"to {best}, the subcode the note supports best.",
                                     f"{G} I.B.1-I.B.2 (code to the highest number of characters available)",
                                     codes=[fc.code, best], evidence=_ev(fc), fix={"replace": {fc.code: best}}),
                                sure, f"the engine's confidence in {best} is {conf_text(sub.confidence)}"))
            continue
        leaf = unspecified_leaf(state.kb, fc.code, state.as_of)
        if leaf:
            # Choosing the unspecified subcode is the coder's call (the record may support more).
            edits.append(decide(Edit("HEADER-CODE-COMPLETED", "warning",
                                     f"{fc.code} is a header (non-billable) code; complete it, e.g. to its unspecified "
                                     f"subcode {leaf} - code to the highest specificity documented.",
                                     f"{G} I.B.1-I.B.2 (code to the highest number of characters available)",
                                     codes=[fc.code, leaf], evidence=_ev(fc), fix={"replace": {fc.code: leaf}}),
                                False, "the note does not say which subcode applies"))
    return edits


# -------------------------------------------------------------------------------------------
# Specificity: laterality / acuity / type from the note (I.B.13, I.C.9.a.1, III.B)
# -------------------------------------------------------------------------------------------
_ATTRS = {
    "right": r"\bright\b", "left": r"\bleft\b", "bilateral": r"\bbilateral(ly)?\b|\bboth\b",
    "acute": r"\bacute\b|\bacutely\b", "chronic": r"\bchronic\b",
    "acute on chronic": r"\bacute on chronic\b|\bacute[- ]on[- ]chronic\b",
    "systolic": r"\bsystolic\b|\bhfref\b|\breduced ejection\b", "diastolic": r"\bdiastolic\b|\bhfpef\b|\bpreserved ejection\b",
    "combined": r"\bcombined\b|\bsystolic and diastolic\b",
    "recurrent": r"\brecurrent\b", "single": r"\bsingle episode\b",
    "with hyperglycemia": r"\bhyperglyc", "intractable": r"\bintractable\b",
}
_ATTR_RX = {k: re.compile(v, re.I) for k, v in _ATTRS.items()}
_STOP = {"unspecified", "side", "of", "and", "or", "the", "with", "without", "a", "an", "in", "type", "ear",
         "eye", "congestive", "unilateral", "nos", "site", "episode", "severity", "to", "due"}
_LATERALITY = ("right", "left", "bilateral")


def _attrs(desc: str) -> set[str]:
    d = desc.lower()
    found = {k for k, rx in _ATTR_RX.items() if rx.search(d)}
    if "acute on chronic" in found:
        found |= {"acute", "chronic"}
    return found


def _core(desc: str) -> set[str]:
    words = set(re.findall(r"[a-z]+", desc.lower()))
    attr_words = set()
    for k in _ATTRS:
        attr_words |= set(k.split())
    attr_words |= {"hfref", "hfpef", "reduced", "ejection", "preserved", "both", "bilaterally", "acutely"}
    return words - attr_words - _STOP


def _near_mention(state: RulesState, fc: FinalCode) -> str:
    """Lower-cased words of the mention plus ``policy.attribute_window`` characters either side,
    within its sentence (where a side / acuity / type qualifies the mention itself)."""
    w = state.policy.attribute_window
    parts = []
    for ev in fc.evidence:
        lo, hi = state.sentence_around(ev.start, ev.end)
        parts.append(state.lower[max(lo, ev.start - w):min(hi, ev.end + w)])
    return " ".join(parts)


def run_specificity(state: RulesState) -> list[Edit]:
    """An unspecified code while the note documents laterality, acuity or type: propose the
    more specific sibling (I.B.13 laterality; III.B / I.C.9.a.1 type and acuity of heart failure).

    Applied automatically when the documented attribute qualifies the mention itself (within
    ``policy.attribute_window`` characters of its words) or the CKD stage is stated; an
    attribute found elsewhere in the sentence may describe another condition, so the more
    specific code is proposed."""
    edits: list[Edit] = []
    kb = state.kb
    ckd = [c for c in state.dx if undot(c.code) in ("N189", "N1830")]
    if ckd:
        found = ckd_stage_from_text(state)
        if found and undot(found[0]) != undot(ckd[0].code) and (undot(ckd[0].code) == "N189" or undot(found[0]).startswith("N183")):
            # ICD-10-CM Official Guidelines I.C.14.a: the CKD stage is coded from the documented stage.
            edits.append(decide(Edit("UNSPECIFIED-WHEN-DOCUMENTED", "warning",
                                     f"{ckd[0].code} does not give the CKD stage but the note documents it; use {found[0]}.",
                                     f"{G} I.C.14.a (stages of chronic kidney disease)", codes=[ckd[0].code, found[0]],
                                     evidence=[found[1]], fix={"replace": {ckd[0].code: found[0]}}),
                                state.policy.engine_agrees(_score(state, ckd[0].code), _score(state, found[0])),
                                f"the engine scored {found[0]} below {ckd[0].code}"))
    for fc in list(state.dx):
        code = kb.find(fc.code)
        if code is None or "unspecified" not in code.description.lower():
            continue
        window = state.window_for(fc)
        if not window:
            continue
        documented = {k for k, rx in _ATTR_RX.items() if rx.search(window)}
        if "acute on chronic" in documented:
            documented |= {"acute", "chronic"}
        have = _attrs(code.description)
        if not (documented - have):
            continue
        documented |= have  # what the code already states is established (COPD is chronic)
        core = _core(code.description)
        best: list[tuple[int, str, str]] = []
        for sib in _family(kb, fc.code):
            if sib.code == code.code or not kb.is_billable(sib.code, state.as_of):
                continue
            sattrs = _attrs(sib.description)
            if not sattrs or not sattrs <= documented or len(sattrs) <= len(have):
                continue
            extra = _core(sib.description) - core
            if any(w not in window for w in extra):
                continue
            best.append((len(sattrs), sib.code, sib.description))
        if best:
            best.sort(key=lambda t: (-t[0], t[1]))
            top = [b for b in best if b[0] == best[0][0]]
            if len(top) == 1:
                new = top[0][1]
                gained = _attrs(top[0][2]) - have
                what = ", ".join(sorted(gained))
                near = _near_mention(state, fc)
                at_mention = all(_ATTR_RX[a].search(near) for a in gained if a in _ATTR_RX)
                agrees = (state.policy.engine_agrees(_score(state, fc.code), _score(state, new))
                          and state.policy.may_drop(fc.confidence))
                # the proposed code is itself its subdivision's unspecified code and a code of that
                # subdivision is already on the claim (I48.20 "Chronic atrial fibrillation,
                # unspecified" beside I48.21 "Permanent"): drop the unspecified code instead of
                # adding a third
                sub = undot(new)[:-1] if len(undot(new)) > 4 else undot(new)
                already = [o for o in state.dx if o is not fc and undot(o.code) != undot(new)
                           and undot(o.code).startswith(sub) and not _unspecified(o)] \
                    if "unspecified" in top[0][2].lower() else []
                msg, fix = (f"{fc.code} is unspecified but the note documents {what}; use {new}.",
                            {"replace": {fc.code: new}})
                if already:
                    msg, fix = (f"{fc.code} is unspecified but the note documents {what}, which {already[0].code} "
                                f"({already[0].description}) already reports; remove {fc.code}.",
                                {"remove": [fc.code]})
                edits.append(decide(Edit("UNSPECIFIED-WHEN-DOCUMENTED", "warning", msg,
                                         f"{G} I.B.13 (laterality), III.B / I.C.9.a.1 (type and acuity); "
                                         "code to the highest degree of specificity",
                                         codes=[fc.code, new] + [o.code for o in already[:1]], evidence=_ev(fc), fix=fix),
                                    at_mention and agrees,
                                    f"'{what}' is documented in the sentence, not at the mention itself" if not at_mention
                                    else f"the engine scored {fc.code} {conf_text(fc.confidence)}"))
                continue
        lat = documented & set(_LATERALITY)
        if lat and not (have & set(_LATERALITY)) and re.search(r"unspecified (side|ear|eye|knee|hip|shoulder|"
                                                                  r"upper|lower|hand|foot|arm|leg|kidney|lung|breast)",
                                                                  code.description.lower()):
            edits.append(Edit("UNSPECIFIED-LATERALITY", "warning",
                              f"{fc.code} has unspecified laterality but the note documents {', '.join(sorted(lat))}.",
                              f"{G} I.B.13 (laterality)", codes=[fc.code], evidence=_ev(fc)))
    return edits


def _family(kb: Any, code: str) -> list[Any]:
    """Billable codes under the code's parent and grandparent (siblings and cousins)."""
    anc = kb.ancestors(code)
    out: dict[str, Any] = {}
    for a in anc[:2]:
        if a.kind in ("chapter", "block"):
            break
        stack = [a.code]
        depth = 0
        while stack and depth < 3:
            nxt = []
            for c in stack:
                for k in kb.children(c):
                    out[k.code] = k
                    nxt.append(k.code)
            stack, depth = nxt, depth + 1
    return list(out.values())


# -------------------------------------------------------------------------------------------
# Combination codes (I.B.9, I.A.15 "with", I.C.4.a, I.C.9.a)
# -------------------------------------------------------------------------------------------
#: Diabetes type documented in the note -> its category. E08-E13 Excludes1 one another
#: (ICD-10-CM Tabular, E08-E13 Excludes1 notes; OG I.C.4.a): the type decides the category.
_DM_TYPE_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("E10", re.compile(r"\b(?:type\s*(?:1|i|one)|t1)\s*(?:diabetes|dm)\b|\bt1dm\b|\biddm\b"
                       r"|\bjuvenile(?:[- ]onset)? diabetes\b|\bdiabetes(?: mellitus)?,?\s*type\s*(?:1|i|one)\b"
                       r"|\bdm\s*(?:type\s*)?(?:1|i)\b", re.I)),
    ("E11", re.compile(r"\b(?:type\s*(?:2|ii|two)|t2)\s*(?:diabetes|dm)\b|\bt2dm\b|\bniddm\b"
                       r"|\badult[- ]onset diabetes\b|\bdiabetes(?: mellitus)?,?\s*type\s*(?:2|ii|two)\b"
                       r"|\bdm\s*(?:type\s*)?(?:2|ii)\b", re.I)),
    ("E13", re.compile(r"\b(?:secondary|other specified|post-?pancreatectomy)\s+diabetes\b"
                       r"|\bdiabetes(?: mellitus)?,?\s*(?:secondary to|(?:due to|after|following) pancreatectomy"
                       r"|post-?pancreatectomy)\b", re.I)),
    ("E08", re.compile(r"\bdiabetes(?: mellitus)? due to (?:an? )?underlying (?:condition|disease)\b", re.I)),
    ("E09", re.compile(r"\b(?:drug|steroid|chemical|medication)[- ]induced (?:diabetes|hyperglycemia)\b", re.I)),
)


def documented_diabetes_types(state: RulesState) -> set[str]:
    """Diabetes categories (E08/E09/E10/E11/E13) whose type the note documents (negated mentions skipped)."""
    return {cat for cat, rx in _DM_TYPE_CUES if state.mentions(rx)}


def run_diabetes_combination(state: RulesState) -> list[Edit]:
    """Diabetes + a complication the "with" convention links -> the combination code
    (I.A.15, I.C.4.a), keeping the complication code where the tabular asks for it.

    The diabetes types are mutually exclusive (E08-E13 Excludes1 one another): when the note
    documents the type, codes of another diabetes category are moved to (or dropped for) the
    documented one, and combination codes are built only in the documented category.

    Applied automatically: the move to the documented type (stated in the note), and a
    combination code when both the diabetes and the complication are confidently coded
    (``policy.confident``); otherwise the combination is proposed.
    """
    edits: list[Edit] = []
    dm = [c for c in state.dx if undot(c.code)[:3] in T.DIABETES_CATEGORIES]
    if not dm:
        return edits
    # working view of each category's diabetes codes: (code, evidence)
    view: dict[str, list[tuple[str, list[EvidenceSpan]]]] = {}
    sure_dm: dict[str, bool] = {}  # category -> a confidently coded diabetes code
    for c in dm:
        view.setdefault(undot(c.code)[:3], []).append((c.code, _ev(c)))
        sure_dm[undot(c.code)[:3]] = sure_dm.get(undot(c.code)[:3], False) or state.policy.is_confident(c.confidence)
    documented = documented_diabetes_types(state)
    foreign = [c for c in dm if documented and undot(c.code)[:3] not in documented]
    if foreign and documented:
        # ICD-10-CM Tabular E08-E13 Excludes1 (types mutually exclusive); OG I.C.4.a.1-3: code the documented type
        only = sorted(documented)[0] if len(documented) == 1 else None
        replace: dict[str, str] = {}
        remove: list[str] = []
        for c in foreign:
            view.pop(undot(c.code)[:3], None)
            target = f"{only}.{c.code.split('.', 1)[1]}" if only and "." in c.code else None
            if only and not (target and state.kb.is_billable(target, state.as_of)) and not view.get(only):
                target = f"{only}.9"  # keep the diagnosis: the documented type without complications
            if only and target and state.kb.is_billable(target, state.as_of):
                replace[c.code] = target
                sure_dm[only] = sure_dm.get(only, False) or state.policy.is_confident(c.confidence)
                lst = view.setdefault(only, [])
                if not any(undot(x) == undot(target) for x, _ in lst):
                    lst.append((target, _ev(c)))
            else:
                remove.append(c.code)
        fix: dict[str, Any] = {}
        if replace:
            fix["replace"] = replace
        if remove:
            fix["remove"] = remove
        pol = state.policy
        kept_dm = _score(state, *[c.code for c in dm if undot(c.code)[:3] in documented])
        type_sure = (all(pol.engine_agrees(_score(state, o), _score(state, n)) for o, n in replace.items())
                     and all(pol.engine_agrees(_score(state, r), kept_dm) for r in remove))
        edits.append(decide(Edit("DIABETES-TYPE", "warning",
                                 f"The note documents {', '.join(sorted(documented))} diabetes; "
                                 + "; ".join([f"{o} -> {n}" for o, n in replace.items()] + [f"{o} removed" for o in remove])
                                 + " (diabetes categories E08-E13 exclude one another).",
                                 f"{G} I.C.4.a (type of diabetes as documented); ICD-10-CM Tabular E08-E13 Excludes1",
                                 codes=[c.code for c in foreign] + list(replace.values()),
                                 evidence=[e for c in foreign for e in c.evidence], fix=fix),
                            type_sure, "the engine is more confident in the code of the other diabetes type"))
        if not type_sure:
            # the combinations below assume the documented type: they are proposed too
            sure_dm = {k: False for k in sure_dm}
    for cat in sorted(view):
        base = view[cat]
        plain = [code for code, _ in base if undot(code) in (cat + "9", cat + "8")]
        present = {undot(code) for code, _ in base}
        base_ev = base[0][1] if base else []
        added: list[str] = []
        for comp in list(state.dx):
            spec = _longest(comp.code, T.DIABETES_COMPLICATIONS)
            if spec is None:
                continue
            suffix, keep, label = spec
            target = f"{cat}.{suffix}"
            if undot(target) in present or target in added:
                continue
            if not state.kb.is_billable(target, state.as_of):
                continue
            if _UNRELATED.search(state.window_for(comp)):
                edits.append(Edit("COMBINATION-NOT-LINKED", "info",
                                  f"{comp.code} is documented as not due to diabetes; no combination code.",
                                  f"{G} I.A.15 (\"with\": unless the documentation clearly states the conditions are unrelated)",
                                  codes=[comp.code], evidence=_ev(comp)))
                continue
            fix = {"add": [{"code": target, "evidence": _ev(comp) + list(base_ev),
                            "before": (plain[0] if plain else comp.code)}]}
            rm = [] if keep else [comp.code]
            rm += list(plain)
            if rm:
                fix["remove"] = rm
            sure = (sure_dm.get(cat, False) and state.policy.is_confident(comp.confidence)
                    and state.policy.engine_agrees(_score(state, *(([] if keep else [comp.code]) + list(plain))),
                                                   _score(state, target)))
            backed = state.policy.presumption_backed(state.learned, _linked(state, _DM_LINKED, comp),
                                                     _score(state, target))
            added.append(target)
            edits.append(decide(Edit("COMBINATION-CODE", "warning",
                                     f"Diabetes with {label}: the \"with\" convention links them; report {target}"
                                     + (f" with {comp.code} as an additional code." if keep else f" instead of {comp.code}.")
                                     + (f" {', '.join(plain)} (without complications) no longer applies." if plain else ""),
                                     f"{G} I.A.15 (\"with\"), I.C.4.a (diabetes: as many codes as needed to describe complications)",
                                     codes=[c for c in [target, comp.code] + list(plain)], evidence=_ev(comp), fix=fix),
                                sure and backed,
                                (f"the diabetes or {comp.code} (confidence {conf_text(comp.confidence)}) is not "
                                 "confidently coded") if not sure else
                                (f"the link is presumed, not stated in the note, and the trained engine did not "
                                 f"score {target} (its coded notes report the conditions separately)")))
    return edits


def _longest(code: str, table: dict[str, _V]) -> _V | None:
    """The value of the longest undotted prefix of ``code`` in ``table``."""
    c = undot(code)
    best = None
    for k, v in table.items():
        ku = undot(k)
        if c.startswith(ku) and (best is None or len(ku) > len(best[0])):
            best = (ku, v)
    return best[1] if best else None


def ckd_stage_from_text(state: RulesState) -> tuple[str, EvidenceSpan] | None:
    """The CKD stage documented in the note -> (N18 code, span)."""
    rx = re.compile(r"\b(?:ckd|chronic kidney disease|chronic renal (?:disease|failure|insufficiency))[, ]*"
                    r"(?:\(?\s*(?:ckd\s*)?)?stage\s*(5d|[1-5][ab]?|v|iv|iii[ab]?|ii|i)\b"
                    r"|\bstage\s*(5d|[1-5][ab]?|v|iv|iii[ab]?|ii|i)\s*(?:ckd|chronic kidney disease)\b"
                    r"|\bckd\s*(5d|[1-5][ab]?)\b"
                    r"|\b(esrd|end[- ]stage (?:renal|kidney) disease)\b", re.I)
    roman = {"i": "1", "ii": "2", "iii": "3", "iiia": "3a", "iiib": "3b", "iv": "4", "v": "5"}
    for sp in state.search(rx, limit=5):
        m = rx.fullmatch(sp.text) or rx.search(sp.text)
        assert m is not None
        val = next(g for g in m.groups() if g)
        v = val.lower()
        if v.startswith("esrd") or v.startswith("end") or v == "5d":
            key = "esrd"
        else:
            key = roman.get(v, v)
        code = T.CKD_STAGE_CODES.get(key)
        if code:
            return code, sp
    return None


_HTN_COMBINED = ("I11", "I12", "I13", "I15", "I16")


def run_hypertension_combination(state: RulesState) -> list[Edit]:
    """Hypertension with heart disease and/or CKD: presumed linked -> I11/I12/I13 with the
    heart failure and CKD stage codes added (I.C.9.a.1-3); I10 is never reported beside a
    hypertensive combination or secondary/crisis code (I11-I16), whoever proposed it.

    Applied automatically only when the hypertension and the heart / CKD condition that decide
    the combination are confidently coded (``policy.confident``) or the CKD stage is stated in
    the note, and I10 is dropped beside I11-I16 only when that code is confidently coded;
    otherwise the change is proposed."""
    edits = _hypertension_combination(state)
    # ICD-10-CM OG I.C.9.a.1-3 (I11/I12/I13 replace I10: I10 Excludes1 I11-I13, I15-I16)
    going: set[str] = set()
    for e in edits:
        if e.fix:
            going.update(undot(k) for k in (e.fix.get("replace") or {}))
            going.update(undot(k) for k in (e.fix.get("remove") or []))
    i10 = [c for c in state.dx if undot(c.code)[:3] == "I10" and undot(c.code) not in going]
    combo = [c for c in state.dx if undot(c.code)[:3] in _HTN_COMBINED and undot(c.code) not in going]
    if i10 and combo:
        sure = (any(state.policy.is_confident(c.confidence) for c in combo)
                and state.policy.engine_agrees(_score(state, *[c.code for c in i10]), _score(state, *[c.code for c in combo])))
        edits.append(decide(Edit("COMBINATION-CODE", "warning",
                                 f"{', '.join(c.code for c in i10)} (essential hypertension) is not reported with "
                                 f"{', '.join(c.code for c in combo)}: the combination code already includes the hypertension.",
                                 f"{G} I.C.9.a.1-3 (hypertension with heart disease / CKD: combination codes I11-I13 "
                                 "replace I10; I10 Excludes1 I11-I16)",
                                 codes=[c.code for c in i10 + combo], evidence=[e for c in i10 for e in c.evidence],
                                 fix={"remove": [c.code for c in i10]}),
                            sure, f"{combo[0].code} is not confidently coded "
                                  f"(confidence {conf_text(combo[0].confidence)}); the coder keeps one"))
    return edits


def _hypertension_combination(state: RulesState) -> list[Edit]:
    edits: list[Edit] = []
    htn = [c for c in state.dx if undot(c.code)[:3] in ("I10", "I11", "I12", "I13")]
    if not htn:
        return edits
    heart = [c for c in state.dx if T.has_prefix(c.code, T.HYPERTENSIVE_HEART)]
    hf = [c for c in heart if undot(c.code).startswith("I50")]
    ckd = [c for c in state.dx if undot(c.code).startswith("N18")]
    stage_from_note = None
    if not ckd and (any(undot(c.code)[:3] in ("I12", "I13") for c in htn) or state.mentions(r"\bckd\b|chronic kidney disease|\besrd\b")):
        stage_from_note = ckd_stage_from_text(state)
    late = any(T.has_prefix(c.code, T.CKD_LATE) for c in ckd) or (stage_from_note is not None and stage_from_note[0] in T.CKD_LATE)
    has_ckd = bool(ckd) or stage_from_note is not None
    for c in heart + ckd:
        if _UNRELATED.search(state.window_for(c)):
            edits.append(Edit("COMBINATION-NOT-LINKED", "info",
                              f"{c.code} is documented as not due to hypertension; the I.C.9.a presumption does not apply.",
                              f"{G} I.C.9.a (unless the documentation clearly states the condition is unrelated)",
                              codes=[c.code], evidence=_ev(c)))
            return edits
    if heart and has_ckd:
        target = ("I13.2" if late else "I13.0") if hf else ("I13.11" if late else "I13.10")
        clause = "I.C.9.a.3 (hypertensive heart and chronic kidney disease)"
    elif heart:
        target = "I11.0" if hf else "I11.9"
        clause = "I.C.9.a.1 (hypertension with heart disease)"
    elif has_ckd:
        target = "I12.0" if late else "I12.9"
        clause = "I.C.9.a.2 (hypertensive chronic kidney disease)"
    else:
        return edits
    current = [c for c in htn]
    fix: dict[str, Any] = {}
    if not any(undot(c.code) == undot(target) for c in current):
        if not state.kb.is_billable(target, state.as_of):
            return edits
        fix["replace"] = {current[0].code: target}
        if len(current) > 1:
            fix["remove"] = [c.code for c in current[1:]]
    adds = []
    if stage_from_note is not None:
        adds.append({"code": stage_from_note[0], "evidence": [stage_from_note[1]]})
    if adds:
        fix["add"] = adds
    if not fix:
        return edits
    conf = state.policy.is_confident
    backed = ("replace" not in fix or state.policy.presumption_backed(
        state.learned, _linked(state, _HTN_LINKED, *(heart + ckd)), _score(state, target)))
    sure = (any(conf(c.confidence) for c in current)
            and (not heart or any(conf(c.confidence) for c in heart))
            and (not has_ckd or stage_from_note is not None or any(conf(c.confidence) for c in ckd))
            and ("replace" not in fix or state.policy.engine_agrees(_score(state, current[0].code), _score(state, target))))
    ev = [e for c in current + heart + ckd for e in c.evidence]
    parts = [f"report {target}" + (f" (replacing {', '.join(c.code for c in current)})" if "replace" in fix else "")]
    if hf:
        parts.append(f"with {', '.join(c.code for c in hf)} for the type of heart failure")
    if has_ckd:
        stage = ckd[0].code if ckd else stage_from_note[0]  # type: ignore[index]
        parts.append(f"with {stage} for the CKD stage" + (" (stage documented in the note)" if stage_from_note else ""))
    edits.append(decide(Edit("COMBINATION-CODE", "warning",
                             "Hypertension with " + ("heart disease and CKD" if heart and has_ckd else "heart disease" if heart else "CKD")
                             + " is presumed linked: " + "; ".join(parts) + ".",
                             f"{G} {clause}", codes=[target] + [c.code for c in current + heart + ckd]
                             + ([stage_from_note[0]] if stage_from_note else []), evidence=ev, fix=fix),
                        sure and backed,
                        "the hypertension or the heart / kidney condition is not confidently coded" if not sure else
                        f"the link is presumed, not stated in the note, and the trained engine did not score {target} "
                        "(its coded notes report the conditions separately)"))
    return edits


# -------------------------------------------------------------------------------------------
# Acute on chronic: one combination code for both (I.B.8, I.B.9)
# -------------------------------------------------------------------------------------------
_ACUTE_CHRONIC = re.compile(r"\b(?:acute on chronic|acute and chronic)\b", re.I)
_ACUTE_WITH_CHRONIC = re.compile(r"acute (.+) with chronic \1")
_PARTS_MEMO: dict[tuple[int, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _title_key(desc: str) -> str:
    return " ".join(desc.lower().split())


_COMBOS_MEMO: dict[tuple[int, str], tuple[tuple[Any, tuple[str, ...], tuple[str, ...]], ...]] = {}


def _combinations_near(kb: Any, code: str) -> tuple[tuple[Any, tuple[str, ...], tuple[str, ...]], ...]:
    """The acute-on-chronic combination codes among ``code``'s siblings and cousins
    (:func:`_family`), with their acute and chronic codes (most families have none)."""
    key = (id(kb), undot(code))
    got = _COMBOS_MEMO.get(key)
    if got is None:
        found = []
        for o in _family(kb, code):
            t = _title_key(o.description or "")
            if _ACUTE_CHRONIC.search(t) or _ACUTE_WITH_CHRONIC.fullmatch(t):
                acute, chronic = acuity_parts(kb, o.code)
                if acute and chronic:
                    found.append((o, acute, chronic))
        if len(_COMBOS_MEMO) > 10_000:
            _COMBOS_MEMO.clear()
        got = _COMBOS_MEMO[key] = tuple(found)
    return got


def acuity_parts(kb: Any, code: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The acute and the chronic codes that an "acute on chronic" (or "acute and chronic")
    combination code reports together: its siblings and cousins (:func:`_family`) whose title is
    the combination's title read with "acute" or with "chronic" alone (I50.23 -> I50.21, I50.22; J96.21 -> J96.01,
    J96.11; K80.12 -> K80.00, K80.10; K81.2 "acute cholecystitis with chronic cholecystitis" ->
    K81.0, K81.1). Empty for any other code."""
    key = (id(kb), undot(code))
    got = _PARTS_MEMO.get(key)
    if got is None:
        obj = kb.find(code)
        title = _title_key(obj.description) if obj is not None else ""
        got = ((), ())
        both = _ACUTE_WITH_CHRONIC.fullmatch(title)
        if both or _ACUTE_CHRONIC.search(title):
            if both:  # "acute cholecystitis with chronic cholecystitis" (K81.2)
                acute, chronic = f"acute {both.group(1)}", f"chronic {both.group(1)}"
            else:
                acute, chronic = _ACUTE_CHRONIC.sub("acute", title, 1), _ACUTE_CHRONIC.sub("chronic", title, 1)
            by_title: dict[str, list[str]] = {}
            for o in _family(kb, code):
                by_title.setdefault(_title_key(o.description), []).append(o.code)
            got = (tuple(by_title.get(acute, ())), tuple(by_title.get(chronic, ())))
        if len(_PARTS_MEMO) > 10_000:
            _PARTS_MEMO.clear()
        _PARTS_MEMO[key] = got
    return got


def run_acute_on_chronic(state: RulesState) -> list[Edit]:
    """A condition documented as acute on chronic is reported with its combination code alone
    (I50.23, J96.21, K80.12): its acute and chronic codes beside it are taken out.

    - the combination code beside its acute / chronic code: the part is fully reported by the
      combination (I.B.9); removed when the engine doubts the part (``policy.may_drop``) and does
      not believe it more than the combination, otherwise proposed;
    - the acute and the chronic code of one condition without the combination code: both are
      documented (I.B.8), and where a combination code exists it is the one reported; the
      replacement is proposed to the coder (the two mentions may describe different episodes).
    """
    edits: list[Edit] = []
    pol = state.policy
    cite = (f"{G} I.B.8 (acute and chronic conditions), I.B.9 (combination code: assign only the "
            f"combination code when it fully identifies the conditions)")
    present = {undot(fc.code): fc for fc in state.dx if fc.system == "icd10cm"}
    combos_seen: set[str] = set()
    for fc in list(state.dx):
        if fc.system != "icd10cm":
            continue
        acute, chronic = acuity_parts(state.kb, fc.code)
        parts = [present[undot(p)] for p in acute + chronic if undot(p) in present]
        if not parts:
            continue
        combos_seen.add(undot(fc.code))
        names = ", ".join(p.code for p in parts)
        sure = all(pol.may_drop(p.confidence) and pol.engine_agrees(_score(state, p.code), _score(state, fc.code))
                   for p in parts)
        doubted = [p for p in parts if not pol.may_drop(p.confidence)]
        edits.append(decide(Edit("ACUTE-ON-CHRONIC", "warning",
                                 f"{fc.code} ({fc.description}) reports the acute and the chronic condition together; "
                                 f"{names} {'is' if len(parts) == 1 else 'are'} not coded beside it"
                                 f"{' (removed)' if sure else ''}.",
                                 cite, codes=[fc.code] + [p.code for p in parts],
                                 evidence=_distinct(_ev(fc) + [e for p in parts for e in p.evidence]),
                                 fix={"remove": [p.code for p in parts]}),
                            sure, "the engine scored " + ", ".join(f"{p.code} {conf_text(p.confidence)}" for p in doubted)
                                  if doubted else f"the engine believes {names} more than {fc.code}"))
    # both parts without the combination: find the combination among the acute code's relatives
    for a in list(state.dx):
        if a.system != "icd10cm" or undot(a.code) in combos_seen or "acute" not in (a.description or "").lower():
            continue
        for o, acute, chronic in _combinations_near(state.kb, a.code):
            if undot(o.code) in present or undot(a.code) not in {undot(x) for x in acute}:
                continue
            ch = [present[undot(x)] for x in chronic if undot(x) in present]
            if not ch or not state.kb.is_billable(o.code, state.as_of):
                continue
            c0 = ch[0]
            combos_seen.add(undot(o.code))
            edits.append(decide(Edit("ACUTE-ON-CHRONIC", "warning",
                                     f"The note documents {a.code} ({a.description}) and {c0.code} ({c0.description}): "
                                     f"as acute on chronic they are reported together as {o.code} ({o.description}).",
                                     cite, codes=[o.code, a.code, c0.code], evidence=_distinct(_ev(a) + _ev(c0)),
                                     fix={"add": [{"code": o.code, "evidence": _ev(a) + _ev(c0), "before": a.code}],
                                          "remove": [a.code, c0.code]}),
                                False, "the acute and the chronic mention may describe different episodes; "
                                       "the coder confirms"))
            break
    return edits


# -------------------------------------------------------------------------------------------
# The same words read twice: a shorter reading inside another code's longer one (I.B.2, I.A.9)
# -------------------------------------------------------------------------------------------
def _asks_for(state: RulesState, owner: FinalCode, other: FinalCode) -> bool:
    """Whether ``owner``'s tabular notes ask for ``other`` beside it (code first / use additional /
    code also): I11.0 asks for the type of heart failure, E11.22 for the CKD stage."""
    for kind in ("code_first", "use_additional", "code_also"):
        for _, _, refs in state.notes(owner.code).get(kind, []):
            if any(state.kb.ref_matches(r, other.code) for r in refs):
                return True
    return False


def run_subsumed_mentions(state: RulesState) -> list[Edit]:
    """A diagnosis whose every mention lies inside a longer mention that another code of the
    claim reads in full is the same words read twice: K37 ("appendicitis") inside K35.80 ("acute
    appendicitis"), N28.9 ("kidney disease") inside N18.30 ("chronic kidney disease stage 3").
    Code to the highest degree of detail the words support (I.B.2): the shorter reading is removed
    when the engine doubts it and does not believe it more than the longer one, else the removal
    is proposed.

    Left alone: codes of one category (UNSPECIFIED-WITH-SPECIFIC and ACUTE-ON-CHRONIC weigh
    those), a code the other's tabular notes ask for or that asks for the other (I11.0 and the
    I50.- type of heart failure, E11.22 and the N18.- stage), codes a rule added, and codes whose
    assertions differ."""
    edits: list[Edit] = []
    pol = state.policy
    dx = [c for c in state.dx if c.system == "icd10cm" and c.evidence]
    for x in dx:
        if x.source != "engine":
            continue
        owners = [y for y in dx if y is not x and undot(y.code)[:3] != undot(x.code)[:3]
                  and y.assertion == x.assertion
                  and all(any(s.start <= e.start and e.end <= s.end and s.end - s.start > e.end - e.start
                              for s in y.evidence) for e in x.evidence)]
        owners = [y for y in owners if not _asks_for(state, y, x) and not _asks_for(state, x, y)]
        if not owners:
            continue
        # the tightest reading names the owner ("ischemic heart disease" for "heart disease", not a
        # word bag of "hypertension ... ischemic heart disease" that also contains it)
        def width(o: FinalCode) -> int:
            return sum(min(s.end - s.start for s in o.evidence if s.start <= e.start and e.end <= s.end)
                       for e in x.evidence)
        y = min(owners, key=lambda o: (width(o), -(o.confidence if o.confidence is not None else 1.0)))
        sure = pol.may_drop(x.confidence) and pol.engine_agrees(_score(state, x.code), _score(state, y.code))
        words = ", ".join(sorted({f'"{e.text}"' for e in x.evidence}))
        edits.append(decide(Edit("SUBSUMED-MENTION", "info",
                                 f"{x.code} ({x.description}) reads only part of the words that {y.code} "
                                 f"({y.description}) reads in full ({words}); {'removed' if sure else 'remove'} {x.code}.",
                                 f"{G} I.B.2 (code to the highest degree of detail documented), I.A.9 (the more "
                                 f"specific reading of the same documentation)",
                                 codes=[x.code, y.code], evidence=_ev(x), fix={"remove": [x.code]}),
                            sure, f"the engine scored {x.code} {conf_text(x.confidence)}"))
    return edits


# -------------------------------------------------------------------------------------------
# Unspecified code beside a more specific code of the same category (I.A.9, I.B.2)
# -------------------------------------------------------------------------------------------
def _unspecified(fc: FinalCode) -> bool:
    """An unspecified code: "unspecified" in its title, or the category-level ``.9`` code."""
    desc = (fc.description or "").lower()
    u = undot(fc.code)
    return "unspecified" in desc or (len(u) == 4 and u.endswith("9") and not desc.startswith("other"))


def _uncomplicated(fc: FinalCode) -> bool:
    """A code whose title says the condition has no complication (E11.9 "... without
    complications", F10.20 "Alcohol dependence, uncomplicated")."""
    desc = (fc.description or "").lower()
    return "without complication" in desc or desc.endswith("uncomplicated")


def _refines(spec: FinalCode, uns: FinalCode) -> bool:
    """``spec`` is a more specific code of the same subdivision as the unspecified ``uns``.

    The subdivision is the unspecified code less its last character (N18.9 -> N18, N18.30 ->
    N18.3); a category-level code (R32, R52) is its own subdivision: R30.0 does not refine R32.
    """
    s, u = undot(spec.code), undot(uns.code)
    if s == u or not s.startswith(u[:-1] if len(u) > 3 else u) or u.startswith(s):
        return False  # (a header is never more specific than its own subcode)
    # both unspecified: the one leaving fewer axes unspecified is the more specific (J96.91
    # "Respiratory failure, unspecified with hypoxia" refines J96.90 "..., unspecified, unspecified
    # whether with hypoxia or hypercapnia")
    return not _unspecified(spec) or len(s) > len(u) or _n_unspecified(spec) < _n_unspecified(uns)


def _n_unspecified(fc: FinalCode) -> int:
    return (fc.description or "").lower().count("unspecified")


def _reads_more_of(spec: FinalCode, uns: FinalCode) -> bool:
    """Every mention of ``uns`` lies inside a mention of ``spec`` and ``spec`` reads more words
    there ("chronic kidney disease stage 3" vs "chronic kidney disease"): one mention, whose
    longer reading is the specific code."""
    if not uns.evidence or not spec.evidence:
        return False
    longer = False
    for u in uns.evidence:
        outer = [s for s in spec.evidence if s.start <= u.start and u.end <= s.end]
        if not outer:
            return False
        longer = longer or any(s.end - s.start > u.end - u.start for s in outer)
    return longer


def run_unspecified_with_specific(state: RulesState) -> list[Edit]:
    """Drop an unspecified code that sits beside a more specific code of the same category
    (e.g. N18.9 with N18.30): the specific code is kept, the change is logged.

    Applied automatically when the unspecified code has no evidence of its own, or when its
    words lie inside the specific code's longer reading of the same mention (longest match);
    the same words read both ways, or a separately documented mention (perhaps a second
    condition), leave the choice to the coder: the removal is proposed."""
    edits: list[Edit] = []
    # ICD-10-CM OG I.A.9.b (unspecified codes only when the information does not permit a more
    # specific code) and I.B.2 (code to the highest level of detail documented): with a more
    # specific code of the same category present, the unspecified one is a conflicting duplicate.
    for fc in list(state.dx):
        if fc.system != "icd10cm" or not (_unspecified(fc) or _uncomplicated(fc)):
            continue
        better = [o for o in state.dx if o is not fc and o.system == "icd10cm" and _refines(o, fc)]
        if not better:
            continue
        if _uncomplicated(fc):
            # "without complications" / "uncomplicated" contradicts a code of its subdivision that
            # reports a complication (E11.9 beside E11.65): not a judgement, the titles exclude
            # each other; the coder decides only when the engine believes fc more
            sure = state.policy.engine_agrees(_score(state, fc.code), _score(state, *[o.code for o in better]))
            edits.append(decide(Edit("UNSPECIFIED-WITH-SPECIFIC", "info",
                                     f"{fc.code} ({fc.description}) contradicts {', '.join(o.code for o in better)} of "
                                     f"the same category, which reports a complication; "
                                     f"{'removed' if sure else 'remove'} {fc.code}.",
                                     f"{G} I.A.9.b, I.B.2 (code to the highest degree of detail documented); "
                                     f"I.C.4.a (diabetes: as many codes as needed to describe its complications)",
                                     codes=[fc.code] + [o.code for o in better], evidence=_ev(fc),
                                     fix={"remove": [fc.code]}),
                                sure, f"the engine believes {fc.code} ({conf_text(fc.confidence)}) more than "
                                      f"{', '.join(o.code for o in better)}"))
            continue
        longer = [o for o in better if not fc.evidence or _reads_more_of(o, fc)]
        sure = (bool(longer) and state.policy.engine_agrees(_score(state, fc.code), _score(state, *[o.code for o in longer]))
                and state.policy.may_drop(fc.confidence))
        edits.append(decide(Edit("UNSPECIFIED-WITH-SPECIFIC", "info",
                                 f"{fc.code} ({fc.description}) is unspecified while the more specific "
                                 f"{', '.join(o.code for o in better)} of the same category is reported; "
                                 f"{'removed' if sure else 'remove'} {fc.code}.",
                                 f"{G} I.A.9.b, I.B.2 (unspecified codes only when a more specific code is not supported)",
                                 codes=[fc.code] + [o.code for o in better], evidence=_ev(fc), fix={"remove": [fc.code]}),
                            sure, f"{fc.code} is documented in other words of the note" if not longer
                                  else f"the engine scored {fc.code} {conf_text(fc.confidence)}"))
    return edits


# -------------------------------------------------------------------------------------------
# Signs and symptoms (I.B.4-I.B.5, I.C.18.a-b)
# -------------------------------------------------------------------------------------------
def run_integral_symptoms(state: RulesState) -> list[Edit]:
    """Signs/symptoms routinely associated with a confirmed diagnosis are not coded separately
    (I.B.5, I.C.18.b); R codes in the same body system as a confirmed diagnosis are flagged.

    The symptom is dropped automatically only when the diagnosis that absorbs it is confidently
    coded (``policy.confident``); otherwise its removal is proposed."""
    edits: list[Edit] = []
    confirmed = [c for c in state.dx if not undot(c.code).startswith("R") and c.assertion in ("affirmed", "uncertain")
                 and not (c.assertion == "uncertain" and not state.inpatient)]
    for sym in list(state.dx):
        su = undot(sym.code)
        if not (su.startswith("R") or su.startswith("H920")):
            continue
        owner = None
        for c in confirmed:
            integral = _longest(c.code, T.INTEGRAL_SYMPTOMS)
            if integral and T.has_prefix(sym.code, integral):
                owner = c
                break
        if owner is not None and not (state.policy.is_confident(owner.confidence)
                                      and state.policy.engine_agrees(_score(state, sym.code), _score(state, owner.code))
                                      and state.policy.may_drop(sym.confidence)):
            # The diagnosis is not confidently coded, or the engine is more confident in the
            # symptom than in the diagnosis: keep the symptom, propose the removal.
            edits.append(decide(Edit("SYMPTOM-INTEGRAL", "warning",
                                     f"{sym.code} is routinely associated with {owner.code}; if {owner.code} is confirmed, "
                                     f"{sym.code} is not coded separately.",
                                     f"{G} I.B.5, I.C.18.b (signs and symptoms integral to a definitive diagnosis)",
                                     codes=[sym.code, owner.code], evidence=_ev(sym), fix={"remove": [sym.code]}),
                                False, f"the engine scored {sym.code} {conf_text(sym.confidence)} and {owner.code} "
                                       f"{conf_text(owner.confidence)}"))
            continue
        if owner is not None:
            edits.append(Edit("SYMPTOM-INTEGRAL", "warning",
                              f"{sym.code} ({state.describe(sym.code) or 'symptom'}) is routinely associated with "
                              f"{owner.code} and is not coded separately.",
                              f"{G} I.B.5, I.C.18.b (signs and symptoms integral to a definitive diagnosis)",
                              codes=[sym.code, owner.code], evidence=_ev(sym), fix={"remove": [sym.code]}))
            continue
        for lo, hi, chapters in T.SYMPTOM_BODY_SYSTEM:
            if lo <= su[:3] <= hi:
                same = [c for c in confirmed if undot(c.code)[:1] in chapters]
                if same:
                    edits.append(Edit("SYMPTOM-SAME-SYSTEM", "info",
                                      f"{sym.code} is a symptom in the same body system as confirmed {same[0].code}; "
                                      "code it only if it is not routinely associated with that diagnosis.",
                                      f"{G} I.B.4-I.B.5, I.C.18.a-b", codes=[sym.code, same[0].code], evidence=_ev(sym)))
                break
    return edits


# -------------------------------------------------------------------------------------------
# Excludes1 (I.A.12.a)
# -------------------------------------------------------------------------------------------
def run_excludes1(state: RulesState) -> list[Edit]:
    """Two codes in an Excludes1 relation are never reported together (I.A.12.a): resolved by
    evidence and confidence in engine mode when certain (``_weaker``), else both kept with a
    warning proposing to drop the less confident one; a conflicting-code error on a claim."""
    edits: list[Edit] = []
    seen: set[frozenset[str]] = set()
    for a, b, note in state.kb.excludes1_pairs([c.code for c in state.dx if state.kb.find(c.code) is not None]):
        key = frozenset((undot(a), undot(b)))
        if key in seen or len(key) < 2:
            continue
        seen.add(key)
        fa, fb = state.find(a), state.find(b)
        if fa is None or fb is None:
            continue
        cite = f"{G} I.A.12.a (Excludes1: the two conditions cannot occur together)"
        note_txt = note.strip().rstrip(".")
        if state.mode == "claim":
            edits.append(Edit("EXCLUDES1", "error",
                              f"{fa.code} and {fb.code} are an Excludes1 pair (\"{note_txt}\"); report only one "
                              "unless the conditions are documented as unrelated.",
                              cite, codes=[fa.code, fb.code]))
            continue
        drop = _weaker(fa, fb, state.policy)
        if drop is None:
            ca, cb = fa.confidence, fb.confidence
            symptom = [x for x in (fa, fb) if _symptom(x)]
            if len(symptom) == 1:
                # a sign or symptom beside the definitive diagnosis that excludes it: the symptom goes
                # (I.B.5), however confidently the engine read it
                lower, why = symptom[0], f"; {symptom[0].code} is the symptom (I.B.5: not coded with its definitive diagnosis)."
            else:
                lower = (fa if (ca or 0) < (cb or 0) else fb) if ca != cb else None
                why = f"; {lower.code} is the less confident." if lower else "."
            edits.append(decide(Edit("EXCLUDES1", "warning",
                                     f"{fa.code} and {fb.code} are an Excludes1 pair (\"{note_txt}\"), each with its own "
                                     "support; the coder must choose one (both are reported only when the conditions "
                                     "are unrelated)" + why,
                                     cite, codes=[fa.code, fb.code], evidence=_ev(fa) + _ev(fb),
                                     fix={"remove": [lower.code]} if lower else None),
                                False, "each code has its own support and neither is far less confident"))
        else:
            keep = fb if drop is fa else fa
            edits.append(Edit("EXCLUDES1", "warning",
                              f"{fa.code} and {fb.code} are an Excludes1 pair (\"{note_txt}\"); kept {keep.code} "
                              f"(stronger evidence/confidence), removed {drop.code}.",
                              cite, codes=[fa.code, fb.code], evidence=_ev(drop), fix={"remove": [drop.code]}))
    return _one_removal_each(edits)


def _symptom(fc: FinalCode) -> bool:
    """A sign or symptom code (ICD-10-CM chapter 18, R00-R99)."""
    return fc.system == "icd10cm" and undot(fc.code).startswith("R")


def _one_removal_each(edits: list[Edit]) -> list[Edit]:
    """One Excludes1 edit per code it removes, with the final status.

    A code in two Excludes1 pairs (R73.9 beside both E11.65 and a derived E11.22) gave two edits
    removing it: one proposed (the first pair left to the coder) and one applied (the second pair
    certain), so the coder was asked about a removal the rules had already made. The certain
    removal wins and the other pairs join its ``codes``; two proposed removals of one code merge.
    """
    def removed(e: Edit) -> str | None:
        rm = (e.fix or {}).get("remove") or []
        return undot(rm[0]) if len(rm) == 1 and len(e.fix or {}) == 1 else None

    keep: dict[str, Edit] = {}
    for e in edits:
        code = removed(e)
        if code is not None and (e.auto or code not in keep):
            if code not in keep or not keep[code].auto:
                keep[code] = e
    out: list[Edit] = []
    for e in edits:
        code = removed(e)
        if code is None or keep[code] is e:
            out.append(e)
            continue
        winner = keep[code]  # fold this pair into the edit that removes the same code
        winner.codes += [c for c in e.codes if c not in winner.codes]
        if not winner.auto:
            winner.evidence += [sp for sp in e.evidence if sp not in winner.evidence]
    return out


def _weaker(a: FinalCode, b: FinalCode, policy: Any = None) -> FinalCode | None:
    """Which code of an Excludes1 pair to drop automatically, or None to leave it to the coder.

    Dropped automatically (the decision is certain): a negated / hypothetical code; a raw code
    against one a rule derived by an applied, certain change; a code without evidence against
    one with evidence; the far less confident one (gap >= ``policy.confidence_gap``) when the
    other is confidently coded (``policy.confident``). Anything else (e.g. two readings of the
    same words with close confidences, or two separately documented conditions, which may be
    unrelated: I.A.12.a exception) is left in place and flagged with the proposed removal.
    """
    from opencac.edits.policy import DEFAULT_POLICY

    policy = policy or DEFAULT_POLICY
    for x, y in ((a, b), (b, a)):
        if x.assertion in ("negated", "hypothetical") and y.assertion not in ("negated", "hypothetical"):
            return x
    if a.source == "rule" and b.source != "rule":
        return b  # a code a rule derived (combination, completion) outranks the raw one
    if b.source == "rule" and a.source != "rule":
        return a
    if bool(a.evidence) != bool(b.evidence):
        return a if not a.evidence else b
    ca = a.confidence if a.confidence is not None else 0.5
    cb = b.confidence if b.confidence is not None else 0.5
    if policy.far_less(min(ca, cb), max(ca, cb)):
        weak = a if ca < cb else b
        return weak if policy.may_drop(weak.confidence) else None
    return None


# -------------------------------------------------------------------------------------------
# Code first / use additional code / code also (I.A.13, I.B.7, I.B.8, I.A.17)
# -------------------------------------------------------------------------------------------
def run_companions(state: RulesState) -> list[Edit]:
    """Etiology/manifestation and multiple-coding notes: propose the companion code when the
    engine suggested one; flag when a required companion is missing.

    Applied automatically: a companion the engine suggested (confidence >= ``policy.candidate_min``)
    or the note documents (``_NOTE_COMPANIONS``, a stated CKD stage) is added; additions
    complete, never contradict, the engine's codes."""
    edits: list[Edit] = []
    kb = state.kb
    noted: set[tuple[str, str]] = set()
    for fc in list(state.dx):
        code = kb.find(fc.code)
        if code is None:
            continue
        notes = state.notes(fc.code)
        current = [c.code for c in state.dx]
        for kind in ("code_first", "use_additional", "code_also"):
            for src, text, refs in _grouped(notes.get(kind, [])):
                if not refs or (src, kind) in noted:
                    continue
                noted.add((src, kind))
                if any(kb.ref_matches(r, c) for r in refs for c in current if undot(c) != undot(fc.code)):
                    continue
                cand = _candidate_for(state, refs, fc.code)
                label = {"code_first": "Code first", "use_additional": "Use additional code",
                         "code_also": "Code also"}[kind]
                cite = {"code_first": f"{G} I.A.13 (etiology/manifestation: code first the underlying condition)",
                        "use_additional": f"{G} I.A.13, I.B.7 (multiple coding for a single condition: use additional code)",
                        "code_also": f"{G} I.A.17 (code also)"}[kind]
                short = " ".join(text.split())[:140]
                if cand is not None:
                    spec: dict[str, Any] = {"code": cand.code, "confidence": cand.confidence,
                                            "evidence": [EvidenceSpan(e.start, e.end, e.text) for e in cand.evidence]}
                    spec["before" if kind == "code_first" else "after"] = fc.code
                    edits.append(Edit(f"{kind.upper().replace('_', '-')}", "warning",
                                      f"{label} note at {fc.code} ({short}): the note supports {cand.code}; added.",
                                      cite, codes=[fc.code, cand.code], evidence=spec["evidence"], fix={"add": [spec]}))
                elif kind != "code_first" and (found_in_note := _note_companion(state, refs)) is not None:
                    ncode, nspan = found_in_note
                    edits.append(Edit(f"{kind.upper().replace('_', '-')}", "warning",
                                      f"{label} note at {fc.code}: the note documents it (\"{nspan.text}\"); added {ncode}.",
                                      cite, codes=[fc.code, ncode], evidence=[nspan],
                                      fix={"add": [{"code": ncode, "evidence": [nspan], "after": fc.code}]}))
                elif kind == "code_first" and state.is_manifestation(fc.code):
                    edits.append(Edit("CODE-FIRST-REQUIRED", "error",
                                      f"{fc.code} is a manifestation code: the underlying condition ({', '.join(refs[:6])}) "
                                      "must be coded and sequenced first.",
                                      cite, codes=[fc.code], evidence=_ev(fc)))
                elif kind == "use_additional" and _ckd_stage_required(refs):
                    found = ckd_stage_from_text(state)
                    if found:
                        edits.append(Edit("USE-ADDITIONAL", "warning",
                                          f"{label} note at {fc.code}: the CKD stage is documented; added {found[0]}.",
                                          cite, codes=[fc.code, found[0]], evidence=[found[1]],
                                          fix={"add": [{"code": found[0], "evidence": [found[1]], "after": fc.code}]}))
                    else:
                        edits.append(Edit("USE-ADDITIONAL-REQUIRED", "warning",
                                          f"{fc.code} needs an additional code for the CKD stage (N18.-); stage not documented.",
                                          cite, codes=[fc.code], evidence=_ev(fc)))
                elif kb.find(src) is not None and kb.find(src).kind not in ("chapter", "block"):
                    # block/chapter-wide notes (e.g. tobacco exposure at I10-I1A) are left out as noise
                    edits.append(Edit(f"{kind.upper().replace('_', '-')}-NOTE", "info",
                                      f"{label} note at {fc.code}: {short} - add it if documented.",
                                      cite, codes=[fc.code]))
    return edits


def _grouped(notes: list[tuple[str, str, tuple[str, ...]]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """One instruction per (source node): a note's lines and their references merged."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for src, text, refs in notes:
        texts, rs = out.setdefault(src, ([], []))
        texts.append(text.strip())
        rs.extend(r for r in refs if r not in rs)
    return [(src, "; ".join(t), tuple(r)) for src, (t, r) in out.items()]


#: Companion codes the note itself can support: (code, pattern). Used for "use additional
#: code" notes when the engine did not suggest the companion (I.B.7; I.C.4.a.3 insulin and
#: oral hypoglycemics; I.C.21.c.3 status Z codes; I.C.5.b.1 tobacco).
_NOTE_COMPANIONS: tuple[tuple[str, str], ...] = (
    ("Z79.4", r"\b(insulin|lantus|glargine|humalog|novolog|lispro|aspart|detemir|degludec)\b"),
    ("Z79.84", r"\b(metformin|glipizide|glyburide|glimepiride|sitagliptin|pioglitazone|empagliflozin|"
               r"dapagliflozin|oral (hypoglycemic|antidiabetic)s?)\b"),
    ("Z79.85", r"\b(semaglutide|liraglutide|dulaglutide|exenatide|tirzepatide|glp-1)\b"),
    ("Z87.891", r"\b(former smoker|ex-?smoker|quit smoking|history of (smoking|tobacco))\b"),
    ("F17.210", r"\b(current smoker|smokes \d+|\d+ pack[- ]years?,? (current|still smok))\b"),
)


def _note_companion(state: RulesState, refs: Any) -> tuple[str, EvidenceSpan] | None:
    """A companion code (covered by ``refs``) that the note documents, with its span."""
    kb = state.kb
    for code, pattern in _NOTE_COMPANIONS:
        if any(kb.ref_matches(r, code) for r in refs) and not state.has(code):
            hit = state.search(pattern, limit=1)
            if hit and kb.is_billable(code, state.as_of):
                return code, hit[0]
    if any(kb.ref_matches(r, "Z68.41") for r in refs) and (state.ctx.age is None or state.ctx.age >= 20):
        # I.B.14 / I.C.21.c.3: BMI from any clinician, reported with the associated diagnosis.
        for sp in state.search(r"\bbmi\b[^.\n\d]{0,12}(\d{2}(\.\d)?)", limit=1):
            m = re.search(r"(\d{2}(\.\d)?)", sp.text)
            code = bmi_code(float(m.group(1))) if m else None
            if code and kb.is_billable(code, state.as_of) and not state.has(code):
                return code, sp
    return None


def _ckd_stage_required(refs: tuple[str, ...] | list[str]) -> bool:
    return any(undot(r).startswith("N18") for r in refs) and len(refs) <= 2


def _best_candidate(state: RulesState, system: str, keep: Callable[[str], bool]) -> Any:
    """The engine's most confident affirmed suggestion of ``system`` (selected or not, scored at
    least ``policy.candidate_min``) whose code ``keep`` accepts; None when there is none."""
    return max((c for c in state.candidates if c.system == system and c.assertion == "affirmed"
                and c.confidence >= state.policy.candidate_min and keep(c.code)),
               key=lambda c: c.confidence, default=None)


def _candidate_for(state: RulesState, refs: Any, owner: str) -> Any:
    return _best_candidate(state, "icd10cm", lambda c: undot(c) != undot(owner) and not state.has(c)
                           and state.kb.is_billable(c, state.as_of)
                           and any(state.kb.ref_matches(r, c) for r in refs))


# -------------------------------------------------------------------------------------------
# Sequencing: principal (Section II) / first-listed (IV.A); manifestation never first (I.A.13)
# -------------------------------------------------------------------------------------------
_PDX_HEADERS = re.compile(r"^\s*(principal diagnos[ie]s|primary diagnos[ie]s|discharge diagnos[ie]s|final diagnos[ie]s|"
                          r"reason for (admission|visit|encounter)|chief complaint|admitting diagnos[ie]s|"
                          r"diagn[oó]stico principal|motivo de (consulta|ingreso))\b", re.I | re.M)


#: Assessment / impression sections: their numbered problem list is the physician's own order
#: of the conditions treated, the first usually the reason for the encounter.
_ASSESSMENT_HEADERS = re.compile(r"^\s*(assessment(?:\s*(?:and|&|/)\s*plan)?|a/p|impression(?:\s*(?:and|&|/)\s*plan)?|"
                                 r"clinical impression|diagnos[ie]s|problem list|juicio cl[ií]nico)\b", re.I | re.M)


def _header_regions(rx: re.Pattern[str], text: str, tail: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of each section ``rx`` heads: up to the next blank line, else to the end
    of the note (at most ``tail`` characters past the header when given)."""
    out = []
    for m in rx.finditer(text):
        end = text.find("\n\n", m.end())
        if end < 0:
            end = len(text) if tail is None else min(len(text), m.end() + tail)
        out.append((m.start(), end))
    return out


def _assessment_pos(fc: FinalCode, regions: list[tuple[int, int]]) -> float:
    """Offset of the code's first evidence inside an assessment section (inf when none)."""
    pos = [e.start for e in fc.evidence for lo, hi in regions if lo <= e.start < hi]
    return float(min(pos)) if pos else float("inf")


#: A statement of the diagnosis established after study, in narrative notes without a
#: diagnosis header ("With the diagnosis of penile neoplasia, partial penectomy was performed",
#: "the final diagnosis was ...", "was diagnosed with ..."): what Section II calls the condition
#: established after study. Not a differential diagnosis, nor a diagnosis of exclusion.
_DX_STATEMENT = re.compile(
    r"(?<!differential )(?<!no )(?<!without )\b(?:(?:definitive|final|established|confirmed|histological|"
    r"pathological|anatomopathological|histopathological)\s+)?diagnos[ie]s\s+(?:of|was|is|:)\s+"
    r"|\bdiagnosed\s+(?:with|as|of)\s+", re.I)
_CLAUSE_END = re.compile(r"[.;\n]|, (?:which|who|and|but|with|so|then)\b")


def _statement_regions(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each diagnosis statement's object: to the end of its clause."""
    out = []
    for m in _DX_STATEMENT.finditer(text):
        stop = _CLAUSE_END.search(text, m.end(), m.end() + 120)
        out.append((m.end(), stop.start() if stop else min(len(text), m.end() + 120)))
    return out


def _pdx_regions(text: str) -> list[tuple[int, int]]:
    """Where the note states why the patient came: diagnosis headers (principal, discharge,
    final, reason for admission) and, when it has none, its diagnosis statements."""
    return _header_regions(_PDX_HEADERS, text, tail=400) or _statement_regions(text)


def sequence_key(state: RulesState, fc: FinalCode, regions: list[tuple[int, int]]) -> int:
    """Lower = earlier. Tiers: 0 must be first, 1 documented as reason for admission, 2 other,
    3 symptom with a related confirmed diagnosis, or a condition known only from the past history
    beside a current one, 4 never principal."""
    u = undot(fc.code)
    code = state.kb.find(fc.code)
    if (code is not None and state.is_manifestation(fc.code)) or "V00" <= u[:3] <= "Y99" or T.in_ranges(fc.code, T.SECONDARY_ONLY):
        return 4  # I.A.13, I.C.20, I.C.21.c.16
    if T.in_ranges(fc.code, T.FIRST_LISTED_ONLY):
        return 0  # I.C.21.c.16 first-listed-only Z codes
    if u.startswith("O"):
        return 0  # I.C.15.a.1 obstetric codes sequenced first
    if T.has_prefix(fc.code, T.SEPSIS_CODES) and any(undot(c.code)[0] in "JNKL" for c in state.dx):
        return 0  # I.C.1.d.4 sepsis present on admission with a localized infection: sepsis first
    if re.match(r"T(3[6-9]|4\d|50)\.?\w{3}[1-4]", u):
        return 0  # I.C.19.e.5.b poisoning first, then its manifestations
    if u.startswith("R") and any(not undot(c.code).startswith(("R", "Z")) for c in state.dx):
        return 3  # II.A symptom codes not principal when a related diagnosis is established
    if fc.assertion == "historical" and any(c.assertion != "historical" for c in state.dx):
        return 3  # II / IV.A: a condition known only from the past history did not occasion this encounter
    if any(lo <= e.start < hi for e in fc.evidence for lo, hi in regions):
        return 1
    return 2


def run_sequencing(state: RulesState) -> list[Edit]:
    """Principal diagnosis (Section II) / first-listed diagnosis (IV.A), and etiology before
    manifestation (I.A.13). Tiers first (:func:`sequence_key`), then, within a tier, the order
    of the assessment / impression section's problem list (the physician's own order), then the
    engine's. The order is always applied (it changes no code)."""
    if len(state.dx) == 0:
        return []
    regions = _pdx_regions(state.text)
    assessment = _header_regions(_ASSESSMENT_HEADERS, state.text)
    before = [c.code for c in state.dx]
    # within a tier, the assessment's order (the physician's problem list) before the engine's
    order = sorted(range(len(state.dx)), key=lambda i: (sequence_key(state, state.dx[i], regions),
                                                        _assessment_pos(state.dx[i], assessment), i))
    seq = [state.dx[i].code for i in order]
    # I.A.13: etiology ("code first" target) immediately before its manifestation.
    code_first: dict[str, str] = {}  # etiology moved up -> the code whose note asked for it
    for fc in list(state.dx):
        for _src, _t, refs in _grouped(state.notes(fc.code).get("code_first", [])):
            etiol = [c for c in seq if c != fc.code and any(state.kb.ref_matches(r, c) for r in refs)]
            if etiol and seq.index(etiol[0]) > seq.index(fc.code):
                seq.remove(etiol[0])
                seq.insert(seq.index(fc.code), etiol[0])
                code_first[etiol[0]] = fc.code
    edits: list[Edit] = []
    word = "principal" if state.inpatient else "first-listed"
    clause = "Section II (selection of principal diagnosis)" if state.inpatient else "Section IV.A (first-listed condition)"
    if seq != before:
        severity = "warning" if seq[0] != before[0] else "info"
        if seq[0] != before[0]:
            new_first, old_first = state.find(seq[0]), state.find(before[0])
            if seq[0] in code_first:
                reason = f"the tabular note at {code_first[seq[0]]} says to code first {seq[0]}, I.A.13"
            elif (new_first is not None and old_first is not None
                    and sequence_key(state, new_first, regions) >= sequence_key(state, old_first, regions)):
                # same tier: the physician's problem list put it first
                reason = (f"the assessment lists {seq[0]} before {before[0]}: the physician's order of the "
                          "problems treated")
            else:
                reason = _reason(state, old_first, regions, new_first)
        else:
            reason = "secondary order"
        edits.append(Edit("SEQUENCING", severity,
                          f"Sequenced {seq[0]} as the {word} diagnosis" + (f" instead of {before[0]} ({reason})." if seq[0] != before[0] else
                                                                          "; secondary codes reordered (sequencing priorities, etiology before manifestation)."),
                          f"{G} {clause}, I.A.13", codes=[seq[0], before[0]], fix={"sequence": seq}))
    if state.inpatient and all(c.assertion == "historical" for c in state.dx):
        # Section II: the principal diagnosis occasioned the admission; a condition known only
        # from the past history did not. Nothing current was coded: the coder must find it.
        edits.append(Edit("PRINCIPAL-NOT-CURRENT", "warning",
                          f"The principal diagnosis {seq[0]} is documented only in the past history, and no current "
                          "condition is coded: find the condition that occasioned this admission in the note, or "
                          "query the physician.",
                          f"{G} Section II (selection of principal diagnosis)", codes=[seq[0]]))
    return edits


def _reason(state: RulesState, fc: FinalCode | None, regions: list[tuple[int, int]],
            first: FinalCode | None = None) -> str:
    """Why ``fc`` (the engine's first diagnosis) is no longer first, ahead of ``first``."""
    if fc is None:
        return "sequencing rules"
    k = sequence_key(state, fc, regions)
    u = undot(fc.code)
    code = state.kb.find(fc.code)
    if k == 4:
        if code is not None and state.is_manifestation(fc.code):
            return "a manifestation code is never principal, I.A.13"
        if "V00" <= u[:3] <= "Y99":
            return "external cause codes are never principal, I.C.20"
        return "this Z code is reported only as a secondary code, I.C.21.c.16"
    if k == 3:
        if fc.assertion == "historical":
            return "a condition documented only in the past history did not occasion this encounter, II / IV.A"
        return "a symptom is not principal when a related diagnosis is established, II.A"
    if k == 2 and first is not None and sequence_key(state, first, regions) == 1:
        return (f"the note documents {first.code} as the reason for the encounter or as the diagnosis "
                "established after study, II")
    return "higher sequencing priority"


def assign_roles(state: RulesState) -> None:
    """Mark the first diagnosis principal (inpatient) / first-listed (other settings)."""
    for i, c in enumerate(state.dx):
        c.role = ("principal" if state.inpatient else "first-listed") if i == 0 else "secondary"
    for c in state.px:
        c.role = "procedure"


# -------------------------------------------------------------------------------------------
# ICD-10-PCS: valid codes from the tables (A.2, B1-B6) and multiple procedures (B3.2)
# -------------------------------------------------------------------------------------------
_PCS_RX = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")


def _pcs_difference(kb: Any, code: str, other: str) -> str:
    """What sets a valid PCS code apart from ``other`` (a deleted code of its row, or a prefix it
    completes): the meanings of its axes from the first character where the two differ
    ("Anesthetic Agent"), or its description when ``other`` is a prefix of it."""
    axes = kb.pcs_axes(code)
    at = next((i for i, (a, b) in enumerate(zip(code, other)) if a != b), len(axes))
    parts = [meaning for _, _, meaning in axes[at:] if meaning and meaning != "None"]
    return ", ".join(parts) or kb.find(code).description


def _pcs_incomplete_edit(state: RulesState, fc: FinalCode, u: str, P: str) -> Edit:
    """PCS-INCOMPLETE for a table prefix with no complete code of its row on the claim. When
    the engine found a complete code under it in the note, replacing the prefix with that code
    is proposed; otherwise the message names the choices left: the valid codes when there are
    a few, else the values of the next axis (0BH1 -> approach Via Natural or Artificial Opening,
    Via Natural or Artificial Opening Endoscopic, ...)."""
    cite = f"{P} A.2-A.3 (all seven characters must be specified)"
    kb = state.kb
    msg = f"{fc.code} is an incomplete ICD-10-PCS code ({len(u)} of 7 characters)"
    done = [c for c in kb.billable_descendants(u, "icd10pcs") if kb.is_billable(c, state.as_of)]
    valid = set(done)
    found = _best_candidate(state, "icd10pcs", lambda c: undot(c) in valid)
    if found is not None:
        best = undot(found.code)
        return decide(Edit("PCS-INCOMPLETE", "error", f"{msg}; the note supports {best} "
                           f"({_pcs_difference(kb, best, u)}): complete it to that code.", cite,
                           codes=[fc.code, best], evidence=_ev(fc), fix={"replace": {fc.code: best}}),
                      False, f"confirm the remaining axes (the engine's confidence in {best} is "
                             f"{conf_text(found.confidence)})")
    if not done:
        return Edit("PCS-INCOMPLETE", "error", f"{msg}: complete the remaining axes from the PCS table.", cite,
                    codes=[fc.code], evidence=_ev(fc))
    if len(done) <= 4:
        choices = ", ".join(f"{c} ({_pcs_difference(kb, c, u)})" for c in done)
        return Edit("PCS-INCOMPLETE", "error", f"{msg}: complete it to one of {choices}.", cite,
                    codes=[fc.code, *done], evidence=_ev(fc))
    axis, values = "", {}
    for c in done:
        name, value, meaning = kb.pcs_axes(c)[len(u)]
        axis = name.lower()
        values.setdefault(value, meaning or value)
    shown = ", ".join(f"{m} ({v})" for v, m in list(values.items())[:6])
    more = f" and {len(values) - 6} more" if len(values) > 6 else ""
    return Edit("PCS-INCOMPLETE", "error", f"{msg}: complete the remaining axes from the PCS table "
                f"({len(done)} valid codes); the {axis} is one of {shown}{more}.", cite, codes=[fc.code],
                evidence=_ev(fc))


def _pcs_invalid_edit(state: RulesState, fc: FinalCode, u: str, P: str) -> Edit:
    """PCS-INVALID for a well-formed code not in the tables of the date of service (3E0T3CZ,
    "Regional Anesthetic", in CodiEsp's 2018 gold; the tables now have "Anesthetic Agent"). The
    codes of the same table row that are valid now (the longest shared prefix, body part at
    least) are named; when the engine found one of them in the note, replacing the code with it
    is proposed, never applied: the old code's meaning is not in the loaded tables, so the coder
    confirms it."""
    cite = f"{P} A.2; CMS Definition of Medicare Code Edits, edit 1 (invalid procedure code)"
    kb = state.kb
    row: list[str] = []
    if kb.find(u[:4], "icd10pcs") is not None:
        valid = [c for c in kb.billable_descendants(u[:4], "icd10pcs") if kb.is_billable(c, state.as_of)]
        row = next((r for r in ([c for c in valid if c.startswith(u[:n])] for n in (6, 5, 4)) if r), [])
    found = _best_candidate(state, "icd10pcs", lambda c: undot(c) in row)
    msg = f"{fc.code} is not valid in the ICD-10-PCS tables for the date of service (FY{state.fy})"
    if found is not None:
        best = undot(found.code)
        return decide(Edit("PCS-INVALID", "error", f"{msg}; {best} ({kb.find(best).description}), of the same table "
                           "row, is supported by the note: replace it.", cite, codes=[fc.code, best],
                           evidence=_ev(fc), fix={"replace": {fc.code: best}}),
                      False, f"confirm that {best} is what was done (the engine's confidence in it is "
                             f"{conf_text(found.confidence)})")
    if row:
        shown = ", ".join(f"{c} ({_pcs_difference(kb, c, u)})" for c in row[:4])
        more = f" and {len(row) - 4} more" if len(row) > 4 else ""
        return Edit("PCS-INVALID", "error", f"{msg}; choose the current code. Valid codes of the same table row: "
                    f"{shown}{more}.", cite, codes=[fc.code, *row[:4]], evidence=_ev(fc))
    return Edit("PCS-INVALID", "error", f"{msg}; choose the current code.", cite, codes=[fc.code], evidence=_ev(fc))


def run_pcs(state: RulesState) -> list[Edit]:
    """Every procedure must be a valid 7-character code from the PCS tables (ICD-10-PCS
    Guidelines A.2-A.3); multiple procedures are coded separately per B3.2. A malformed code is
    removed automatically; incomplete and no-longer-valid codes are flagged and kept."""
    edits: list[Edit] = []
    P = "ICD-10-PCS Official Guidelines FY2026"
    seen: dict[str, int] = {}
    for fc in list(state.px):
        u = undot(fc.code)
        seen[u] = seen.get(u, 0) + 1
        if len(u) < 7 and state.kb.find(u, "icd10pcs") is not None:
            full = [o for o in state.px if len(undot(o.code)) == 7 and undot(o.code).startswith(u)]
            done = [o.code for o in full]
            if done:
                # The same table row is already reported as a complete code: the prefix adds nothing
                # that can be billed. Proposed, not applied: it may stand for a second procedure of
                # that row (another approach or device) that the coder should complete instead -
                # unless the dictionary-only engine read both from the same words (no coding
                # practice to keep; a trained engine may carry one that reports such prefixes).
                same_words = bool(fc.evidence) and all(
                    any(s.start <= e.start and e.end <= s.end for o in full for s in o.evidence) for e in fc.evidence)
                sure = not state.learned and same_words
                edits.append(decide(Edit("PCS-INCOMPLETE", "warning",
                                         f"{fc.code} is an incomplete ICD-10-PCS code ({len(u)} of 7 characters) and "
                                         f"{', '.join(done)}, which completes it, is reported; "
                                         f"{'removed' if sure else 'remove'} {fc.code}.",
                                         f"{P} A.2-A.3 (all seven characters must be specified)", codes=[fc.code, *done],
                                         evidence=_ev(fc), fix={"remove": [fc.code]}),
                                    sure, f"complete {fc.code} instead if it is a second procedure of that table row"))
            else:
                # A table / row prefix: keep it as the coder's starting point, but it cannot be billed.
                edits.append(_pcs_incomplete_edit(state, fc, u, P))
        elif not _PCS_RX.match(u):
            edits.append(Edit("PCS-INVALID", "error", f"{fc.code} is not a 7-character ICD-10-PCS code (letters O and I are not used).",
                              f"{P} A.2-A.3 (all seven characters must be specified)", codes=[fc.code], evidence=_ev(fc),
                              fix={"remove": [fc.code]} if state.mode == "engine" else None))
        elif state.kb.find(u) is None or not state.kb.is_billable(u, state.as_of):
            # A well-formed code not valid on the date of service (e.g. deleted since): flagged and
            # kept for the coder to replace, like an invalid diagnosis code (MCE edit 1).
            edits.append(_pcs_invalid_edit(state, fc, u, P))
    for u, n in seen.items():
        if n > 1:
            edits.append(Edit("PCS-REPEATED", "info",
                              f"{u} is reported {n} times: correct only when the same root operation is repeated at "
                              "different body sites that share one body-part value (B3.2b).",
                              f"{P} B3.2b (multiple procedures)", codes=[u]))
    if state.text:
        conv = state.search(r"convert(ed|ion)? to (an )?open|open conversion", limit=1)
        if conv:
            # B3.2d: intended root operation attempted with one approach, converted to a different approach.
            approaches = {undot(c.code)[4] for c in state.px if len(undot(c.code)) == 7}
            if not ({"0"} <= approaches and ({"4"} & approaches or any(undot(c.code)[2] == "J" for c in state.px))):
                edits.append(Edit("PCS-MULTIPLE-CONVERSION", "warning",
                                  "The note documents a conversion to open: code the open procedure and the "
                                  "laparoscopic/endoscopic inspection (root operation Inspection) separately.",
                                  f"{P} B3.2d (procedure converted to a different approach)",
                                  codes=[c.code for c in state.px], evidence=conv))
        sites = state.search(r"\b(also|additionally|then|second|separate(ly)?)\b[^.\n]{0,60}\b(excis|resect|biops|repair|"
                             r"drain|remov|releas|fusion|replac)", limit=3)
        if sites and len(state.px) == 1:
            edits.append(Edit("PCS-MULTIPLE-POSSIBLE", "info",
                              "The note may describe more than one procedure (different body part, repeated at another "
                              "site, or a different objective); each is coded separately.",
                              f"{P} B3.2a-c (multiple procedures)", codes=[c.code for c in state.px], evidence=sites))
    return edits
