"""Pre-bill claim edits in the style of the CMS Medicare Code Editor (MCE), derived from the
code sets and their notes plus small cited tables (``opencac.edits.tables``).

MCE edit names follow the *Definition of Medicare Code Edits* (CMS, v43): 1 invalid diagnosis
or procedure code, 3 duplicate of principal diagnosis, 4 age conflict, 5 sex conflict,
6 manifestation code as principal diagnosis, 7 non-specific / unacceptable principal
diagnosis, 8 questionable admission, 9 unacceptable principal diagnosis, 17 questionable
obstetric admission, 20 wrong procedure performed / procedure inconsistent with sex.
"""

from __future__ import annotations

from opencac.edits import tables as T
from opencac.edits.model import Edit
from opencac.edits.state import RulesState, undot

MCE = "CMS Definition of Medicare Code Edits (MCE v43)"
G = "ICD-10-CM Official Guidelines for Coding and Reporting FY2026"


def run_validity(state: RulesState) -> list[Edit]:
    """MCE edit 1: invalid or non-billable diagnosis code for the date of service."""
    edits: list[Edit] = []
    kb = state.kb
    for fc in state.dx:
        code = kb.find(fc.code)
        if code is None:
            edits.append(Edit("MCE-INVALID-DX", "error", f"{fc.code} is not an ICD-10-CM code.",
                              f"{MCE}, edit 1 (invalid diagnosis code)", codes=[fc.code]))
        elif not kb.is_billable(fc.code, state.as_of):
            if code.billable and not code.valid_in(state.fy):
                why = f"is not valid for a date of service in FY{state.fy}"
            else:
                why = "is a header code, not valid for billing: more characters are required"
            edits.append(Edit("MCE-INVALID-DX", "error", f"{fc.code} {why}.",
                              f"{MCE}, edit 1 (invalid diagnosis code); {G} I.B.1 (code to the highest number of characters)",
                              codes=[fc.code]))
    return edits


def run_duplicates(state: RulesState) -> list[Edit]:
    """MCE edit 3: duplicate of the principal diagnosis / duplicate codes on the claim."""
    edits: list[Edit] = []
    for lst, label in ((state.dx, "diagnosis"), (state.px, "procedure")):
        seen: set[str] = set()
        for fc in list(lst):
            u = undot(fc.code)
            if u in seen:
                first = lst[0].code if lst else ""
                what = "duplicates the principal diagnosis" if label == "diagnosis" and undot(first) == u else f"is a duplicate {label}"
                if label == "procedure":
                    continue  # repeated procedures are legitimate (B3.2b); guidelines rule flags them
                edits.append(Edit("MCE-DUPLICATE", "error" if state.mode == "claim" else "info",
                                  f"{fc.code} {what}; each code is reported once.",
                                  f"{MCE}, edit 3 (duplicate of PDX); {G} I.B.12 (each code reported once)",
                                  codes=[fc.code], fix={"remove_dup": u}))
            seen.add(u)
    return edits


def run_age(state: RulesState) -> list[Edit]:
    """MCE edit 4: age conflicts (newborn/perinatal 0, pediatric 0-17, maternity 12-55, adult 15-124)."""
    age = state.ctx.age
    if age is None:
        return []
    edits: list[Edit] = []
    for fc in state.dx:
        for lo, hi, amin, amax, label in T.AGE_RANGES:
            if T.in_ranges(fc.code, ((lo, hi),)) and not (amin <= age <= amax):
                edits.append(Edit(f"MCE-AGE-{label.upper().split('/')[0]}", "error",
                                  f"{fc.code} is a {label} diagnosis (age {amin}-{amax}) but the patient is {age}.",
                                  f"{MCE}, edit 4 (age conflict: {label} diagnoses)", codes=[fc.code]))
                break
    return edits


def _dx_sex(code: str) -> str | None:
    u = undot(code)
    if u.startswith("C50") and len(u) >= 5:
        # C50.x1x female breast, C50.x2x male breast (ICD-10-CM tabular, category C50)
        return {"1": "F", "2": "M"}.get(u[4])
    if T.in_ranges(code, T.FEMALE_DX):
        return "F"
    if T.in_ranges(code, T.MALE_DX):
        return "M"
    return None


def _px_sex(code: str) -> str | None:
    u = undot(code)
    if len(u) != 7:
        return None
    if u[0] in T.PCS_FEMALE_SECTIONS:
        return "F"
    return T.PCS_SEX_BODY_SYSTEMS.get((u[0], u[1]))


def run_sex(state: RulesState) -> list[Edit]:
    """MCE edits 5 and 20: diagnosis or procedure inconsistent with the patient's sex."""
    sex = (state.ctx.sex or "U").upper()
    if sex not in ("F", "M"):
        return []
    edits: list[Edit] = []
    for fc in state.dx:
        s = _dx_sex(fc.code)
        if s and s != sex:
            edits.append(Edit("MCE-SEX-DX", "error",
                              f"{fc.code} is a {'female' if s == 'F' else 'male'}-only diagnosis but the patient sex is {sex}.",
                              f"{MCE}, edit 5 (sex conflict)", codes=[fc.code]))
    for fc in state.px:
        s = _px_sex(fc.code)
        if s and s != sex:
            edits.append(Edit("MCE-SEX-PROC", "error",
                              f"{fc.code} is a {'female' if s == 'F' else 'male'}-only procedure "
                              f"({'obstetrics' if undot(fc.code)[0] == '1' else 'reproductive body system'}) but the patient sex is {sex}.",
                              f"{MCE}, edit 20 (procedure inconsistent with sex)", codes=[fc.code]))
    return edits


def run_principal(state: RulesState) -> list[Edit]:
    """MCE edits 6, 8, 9 and I.C.20: what may not (or should not) be the principal diagnosis."""
    if not state.dx:
        return []
    pdx = state.dx[0]
    u = undot(pdx.code)
    edits: list[Edit] = []
    code = state.kb.find(pdx.code)
    word = "principal" if state.inpatient else "first-listed"
    if code is not None and state.is_manifestation(pdx.code):
        edits.append(Edit("MCE-MANIFESTATION-PDX", "error",
                          f"{pdx.code} is a manifestation code and cannot be the {word} diagnosis; sequence the underlying condition first.",
                          f"{MCE}, edit 6 (manifestation code as principal diagnosis); {G} I.A.13", codes=[pdx.code]))
    if "V00" <= u[:3] <= "Y99":
        edits.append(Edit("MCE-ECODE-PDX", "error",
                          f"{pdx.code} is an external cause code and is never the {word} diagnosis.",
                          f"{MCE}, edit 9 (unacceptable principal diagnosis); {G} I.C.20", codes=[pdx.code]))
    elif T.in_ranges(pdx.code, T.SECONDARY_ONLY):
        edits.append(Edit("MCE-UNACCEPTABLE-PDX", "error",
                          f"{pdx.code} may only be reported as a secondary diagnosis.",
                          f"{MCE}, edit 9 (unacceptable principal diagnosis); {G} I.C.21.c.16", codes=[pdx.code]))
    if state.inpatient and T.in_ranges(pdx.code, T.QUESTIONABLE_ADMISSION):
        edits.append(Edit("MCE-QUESTIONABLE-ADMISSION", "warning",
                          f"{pdx.code} as principal diagnosis is not usually a reason for inpatient admission.",
                          f"{MCE}, edit 8 (questionable admission)", codes=[pdx.code]))
    for fc in state.dx[1:]:
        if T.in_ranges(fc.code, T.FIRST_LISTED_ONLY):
            edits.append(Edit("FIRST-LISTED-ONLY-Z", "warning",
                              f"{fc.code} may only be reported as the {word} diagnosis.",
                              f"{G} I.C.21.c.16 (Z codes that may only be principal/first-listed)", codes=[fc.code]))
    return edits


def run_poa(state: RulesState) -> list[Edit]:
    """Inpatient POA indicators: one of Y, N, U, W, 1 for every diagnosis when any is given
    (ICD-10-CM Official Guidelines Appendix I)."""
    if not state.inpatient or not state.ctx.poa:
        return []
    edits: list[Edit] = []
    valid = {"Y", "N", "U", "W", "1"}
    for fc in state.dx:
        v = fc.poa
        if v is None:
            edits.append(Edit("POA-MISSING", "warning", f"{fc.code} has no present-on-admission indicator.",
                              "ICD-10-CM Official Guidelines Appendix I (POA reporting)", codes=[fc.code]))
        elif str(v).upper() not in valid:
            edits.append(Edit("POA-INVALID", "error", f"{fc.code} has POA indicator {v!r}; expected one of Y, N, U, W, 1.",
                              "ICD-10-CM Official Guidelines Appendix I (POA reporting)", codes=[fc.code]))
    return edits
