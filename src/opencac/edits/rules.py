"""The built-in rules, registered through the same hook as any custom rule.

Run order (``Rule.order``): 110 assertions, 120 uncertain diagnoses, 200 completion
(7th character / header codes), 210 specificity, 300-320 combination codes, 350 integral
symptoms, 380 the same words read twice, 400 Excludes1, 450 companions (code first / use additional / code also),
500 ICD-10-PCS, 590 unspecified beside specific, 600 sequencing, 700-760 claim edits (MCE), 800 CDI queries, 900 MS-DRG.
A custom rule picks any order (e.g. 650 to see the sequenced claim before the MCE edits).

In engine mode a built-in rule applies its fix only when the decision is certain
(``opencac.edits.policy``: named thresholds, one place); otherwise the fix is proposed to the
coder on a warning/error edit and the engine's codes stay. A custom rule does the same by
setting ``Edit.auto = False`` (or ``opencac.edits.policy.decide``) on an edit it is not sure of.
"""

from __future__ import annotations

from opencac.coding.types import EncounterContext
from opencac.edits import cdi, claim_edits as ce, guidelines as gl
from opencac.edits.model import Edit
from opencac.edits.registry import Rule, RuleRegistry
from opencac.edits.state import RulesState, undot
from opencac.errors import GrouperError

G = "ICD-10-CM Official Guidelines for Coding and Reporting FY2026"
MCE = ce.MCE


def _inpatient(ctx: EncounterContext) -> bool:
    return ctx.setting == "inpatient"


def run_drg(state: RulesState) -> list[Edit]:
    """Group the final code set (inpatient) and the DRG impact of each suggestion and query."""
    from opencac.edits import drg as drgmod

    if not state.dx:
        return []
    ctx = state.ctx
    day = ctx.discharge_date or state.as_of
    dx, px = state.codes("icd10cm"), state.codes("icd10pcs")
    kw = {"day": day, "sex": ctx.sex, "age": ctx.age, "discharge_status": ctx.discharge_status, "poa": ctx.poa}
    try:
        base = drgmod.group_codes(dx, px, crosscheck=state.drg_crosscheck, **kw)
    except GrouperError as exc:
        return [Edit("DRG-NOT-GROUPED", "warning", f"MS-DRG not assigned: {exc.message}", "CMS MS-DRG Definitions Manual")]
    changes: list[tuple[str, str, list[str], list[str]]] = []
    cands = sorted((s for s in state.candidates if s.system == "icd10cm" and s.assertion == "affirmed"
                    and not state.has(s.code) and state.kb.is_billable(s.code, state.as_of)
                    and not any(undot(r) == undot(s.code) for r, _ in state.removed)),
                   key=lambda s: -s.confidence)
    for s in cands[:8]:
        changes.append((f"add {s.code}", "suggestion", dx + [s.code], px))
    for c in dx[1:12]:
        changes.append((f"remove {c}", "final", [x for x in dx if x != c], px))
    for q in state.queries:
        targets = [c for c in q.codes if state.has(c)]
        for o in q.options:
            if not o.code:
                continue
            same = [t for t in targets if undot(t)[:3] == undot(o.code)[:3]]
            new = [o.code if x in same else x for x in dx] if same else dx + [o.code]
            changes.append((f"query {q.id}: {o.label}", q.id, list(dict.fromkeys(new)), px))
    base.impacts = drgmod.impact(base, changes, **kw)
    state.scratch["drg"] = base
    edits = []
    if base.drg in ("000", "999", "998"):
        edits.append(Edit("DRG-UNGROUPABLE", "error", f"The claim groups to MS-DRG {base.drg} (ungroupable).",
                          "CMS MS-DRG Definitions Manual", codes=dx[:1]))
    # The second grouper's answer stays in ``drg.crosscheck`` (shown beside the DRG) and is not an
    # edit: the ``drg`` package covers a small part of the MDC logic and differs on ~80 % of
    # claims, so an edit for it would tell the coder nothing about the claim (bench/RESULTS-edits.md).
    return edits


BUILTINS: tuple[Rule, ...] = (
    Rule("opencac.assertions.v1", f"{G} I.C.21.c.4, I.C.9.e.4, II.H, IV.H", gl.run_assertions, order=110,
         description="negated/hypothetical not coded; history and family history -> Z80-Z87"),
    Rule("opencac.uncertain.v1", f"{G} II.H, III.C, IV.H", gl.run_uncertain, order=120,
         description="uncertain diagnoses: symptoms outpatient, as established inpatient"),
    Rule("opencac.completion.v1", f"{G} I.A.5, I.B.1, I.C.19.a", gl.run_completion, order=200,
         description="7th character and placeholder X; header codes completed"),
    Rule("opencac.specificity.v1", f"{G} I.B.13, III.B", gl.run_specificity, order=210,
         description="laterality/acuity/type from the note"),
    Rule("opencac.combination.diabetes.v1", f"{G} I.A.15, I.C.4.a", gl.run_diabetes_combination, order=300,
         description="diabetes + complication -> combination code"),
    Rule("opencac.combination.hypertension.v1", f"{G} I.C.9.a.1-3", gl.run_hypertension_combination, order=310,
         description="hypertension + heart disease / CKD -> I11/I12/I13 + stage"),
    Rule("opencac.combination.acuity.v1", f"{G} I.B.8, I.B.9", gl.run_acute_on_chronic, order=320,
         description="acute on chronic: the combination code, not its acute and chronic codes"),
    Rule("opencac.symptoms.v1", f"{G} I.B.4-I.B.5, I.C.18.a-b", gl.run_integral_symptoms, order=350,
         description="signs/symptoms integral to a confirmed diagnosis"),
    Rule("opencac.subsumed.v1", f"{G} I.B.2, I.A.9", gl.run_subsumed_mentions, order=380,
         description="a shorter reading of words another code reads in full"),
    Rule("opencac.excludes1.v1", f"{G} I.A.12.a", gl.run_excludes1, order=400,
         description="Excludes1 pairs resolved or flagged"),
    Rule("opencac.companions.v1", f"{G} I.A.13, I.A.17, I.B.7", gl.run_companions, order=450,
         description="code first / use additional code / code also"),
    Rule("opencac.pcs.v1", "ICD-10-PCS Official Guidelines FY2026 A.2, B3.2", gl.run_pcs, order=500,
         description="valid PCS codes; multiple procedures"),
    Rule("opencac.unspecified.v1", f"{G} I.A.9.b, I.B.2", gl.run_unspecified_with_specific, order=590,
         description="unspecified code beside a more specific code of the same category dropped"),
    Rule("opencac.sequencing.v1", f"{G} Section II, IV.A, I.A.13", gl.run_sequencing, order=600,
         description="principal / first-listed selection and sequencing"),
    Rule("opencac.mce.validity.v1", f"{MCE} edit 1", ce.run_validity, order=700,
         description="invalid or non-billable code for the date of service"),
    Rule("opencac.mce.duplicates.v1", f"{MCE} edit 3", ce.run_duplicates, order=710, description="duplicate codes"),
    Rule("opencac.mce.age.v1", f"{MCE} edit 4", ce.run_age, order=720, description="age conflicts"),
    Rule("opencac.mce.sex.v1", f"{MCE} edits 5, 20", ce.run_sex, order=730, description="sex conflicts"),
    Rule("opencac.mce.principal.v1", f"{MCE} edits 6, 8, 9", ce.run_principal, order=740,
         description="manifestation / unacceptable principal, questionable admission"),
    Rule("opencac.mce.poa.v1", "ICD-10-CM Official Guidelines Appendix I", ce.run_poa, order=750, applies=_inpatient,
         description="POA indicators"),
    Rule("opencac.cdi.v1", "AHIMA/ACDIS Guidelines for Achieving a Compliant Query Practice (2022)", cdi.run_cdi,
         order=800, description="documentation gaps -> compliant physician queries"),
    Rule("opencac.drg.v1", "CMS MS-DRG Definitions Manual", run_drg, order=900, applies=_inpatient,
         description="MS-DRG and the DRG impact of suggestions and queries"),
)


def register_builtins(registry: RuleRegistry) -> None:
    """Register every built-in rule on ``registry``."""
    for r in BUILTINS:
        registry.register(r, replace=True)
