"""Curated tables the rules use, each with its source. Codes are written dotted; prefixes are
matched on undotted codes (``"N18"`` covers N18.1 .. N18.9). Keep entries small and cited."""

from __future__ import annotations

# --- I.A.15 "With" / I.C.4.a: diabetes combination codes ----------------------------------
#: complication code prefix -> (combination suffix for E08/E09/E10/E11/E13, keep the
#: complication code as an additional code?, short label). The link is presumed by the
#: "with" convention unless the provider documents another cause.
DIABETES_COMPLICATIONS: dict[str, tuple[str, bool, str]] = {
    "N18": ("22", True, "chronic kidney disease"),  # use additional code for the CKD stage
    "G62.9": ("42", False, "polyneuropathy"),
    "G60.9": ("42", False, "polyneuropathy"),
    "G63": ("42", False, "polyneuropathy"),
    "G90.09": ("43", False, "autonomic neuropathy"),
    "G90.9": ("43", False, "autonomic neuropathy"),
    "K31.84": ("43", True, "gastroparesis"),
    "H35.00": ("319", False, "retinopathy"),
    "H35.09": ("319", False, "retinopathy"),
    "H26.9": ("36", False, "cataract"),
    "H25.9": ("36", False, "cataract"),
    "I73.9": ("51", False, "peripheral angiopathy"),
    "L97": ("621", True, "foot ulcer"),  # use additional code to identify site of ulcer
    "L98.4": ("622", True, "skin ulcer"),
    "E16.2": ("649", False, "hypoglycemia"),
    "R73.9": ("65", False, "hyperglycemia"),
    "R73.09": ("65", False, "hyperglycemia"),
}
DIABETES_CATEGORIES = ("E08", "E09", "E10", "E11", "E13")

# --- I.C.9.a: hypertension with heart disease / CKD ----------------------------------------
#: Heart conditions that I.C.9.a.1 links to hypertension (I50.-, I51.4-I51.7, I51.89, I51.9).
HYPERTENSIVE_HEART = ("I50", "I51.4", "I51.5", "I51.6", "I51.7", "I51.89", "I51.9")
CKD_LATE = ("N18.5", "N18.6")  # stage 5 / ESRD -> I12.0, I13.2
#: CKD stage documented in the note -> N18 code (FY2021+: stage 3 split into N18.30-N18.32)
CKD_STAGE_CODES = {"1": "N18.1", "2": "N18.2", "3": "N18.30", "3a": "N18.31", "3b": "N18.32",
                   "4": "N18.4", "5": "N18.5", "esrd": "N18.6"}

# --- I.B.4-5 / I.C.18.a-b: signs and symptoms integral to a confirmed diagnosis ------------
#: confirmed-diagnosis prefix -> symptom codes (prefixes) routinely associated with it.
INTEGRAL_SYMPTOMS: dict[str, tuple[str, ...]] = {
    "J12": ("R05", "R50", "R06.0", "R09.1"), "J13": ("R05", "R50", "R06.0", "R09.1"),
    "J14": ("R05", "R50", "R06.0"), "J15": ("R05", "R50", "R06.0", "R09.1"),
    "J16": ("R05", "R50", "R06.0"), "J18": ("R05", "R50", "R06.0", "R09.1", "R09.3"),
    "J10": ("R05", "R50", "R52", "R51"), "J11": ("R05", "R50", "R52", "R51"),
    "U07.1": ("R05", "R50", "R06.0"),
    "J00": ("R05", "R09.81", "R07.0"), "J02": ("R07.0", "R50"), "J03": ("R07.0", "R50"),
    "J06": ("R05", "R50", "R09.81", "R07.0"),
    "J20": ("R05", "R06.2", "R50"), "J40": ("R05", "R06.2"),
    "J44": ("R06.0", "R06.2", "R05"), "J45": ("R06.2", "R06.0", "R05"),
    "I50": ("R06.0", "R60", "R06.01"),
    "I20": ("R07",), "I21": ("R07",), "I24": ("R07",),
    "K35": ("R10", "R11", "R50"), "K37": ("R10", "R11", "R50"),
    "K80": ("R10", "R11"), "K81": ("R10", "R11"), "K85": ("R10", "R11"),
    "K21": ("R12", "R10.1"), "K25": ("R10.1", "R11"), "K26": ("R10.1", "R11"), "K29": ("R10.1", "R11"),
    "K57": ("R10",), "A09": ("R19.7", "R11", "R10"), "A08": ("R19.7", "R11", "R10"),
    "K52": ("R19.7", "R11", "R10"),
    "N39.0": ("R30", "R35", "R39.15", "R50"), "N30": ("R30", "R35", "R39.15"),
    "N10": ("R50", "R10", "R30"), "N20": ("R10", "R31"),
    "G43": ("R51", "R11"), "A40": ("R50", "R00.0"), "A41": ("R50", "R00.0"),
    "E10": ("R35", "R63.1"), "E11": ("R35", "R63.1"),
    "H66": ("H92.0",), "H65": ("H92.0",),
}
#: R-chapter block -> ICD-10-CM chapter letters of the same body system (I.B.4, I.C.18).
SYMPTOM_BODY_SYSTEM: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("R00", "R09", ("I", "J")),
    ("R10", "R19", ("K",)),
    ("R20", "R23", ("L",)),
    ("R25", "R29", ("G", "M")),
    ("R30", "R39", ("N",)),
    ("R40", "R46", ("F", "G")),
)

# --- I.C.21.c.4: history codes --------------------------------------------------------------
#: active-condition prefix -> family-history code (Z80-Z84); longest prefix wins.
FAMILY_HISTORY: dict[str, str] = {
    "C15": "Z80.0", "C16": "Z80.0", "C17": "Z80.0", "C18": "Z80.0", "C19": "Z80.0", "C20": "Z80.0",
    "C21": "Z80.0", "C22": "Z80.0", "C25": "Z80.0", "C34": "Z80.1", "C32": "Z80.2", "C50": "Z80.3",
    "C56": "Z80.41", "C53": "Z80.49", "C54": "Z80.49", "C61": "Z80.42", "C62": "Z80.43",
    "C64": "Z80.51", "C67": "Z80.52", "C81": "Z80.7", "C82": "Z80.7", "C83": "Z80.7", "C85": "Z80.7",
    "C90": "Z80.7", "C91": "Z80.6", "C92": "Z80.6", "C43": "Z80.8", "C71": "Z80.8", "C73": "Z80.8",
    "C": "Z80.9", "I21": "Z82.49", "I25": "Z82.49", "I10": "Z82.49", "I63": "Z82.3", "I64": "Z82.3",
    "E10": "Z83.3", "E11": "Z83.3", "E13": "Z83.3", "J45": "Z82.5", "G40": "Z82.0", "N18": "Z84.1",
    "F10": "Z81.1", "F17": "Z81.2", "F11": "Z81.3", "F14": "Z81.3", "F": "Z81.8",
    "E78": "Z83.438", "G30": "Z82.0", "D57": "Z83.2", "H40": "Z83.511",
}
#: active-condition prefix -> personal-history code (Z85-Z87, or I25.2 for old MI per I.C.9.e.4).
PERSONAL_HISTORY: dict[str, str] = {
    "C18": "Z85.038", "C19": "Z85.048", "C20": "Z85.048", "C16": "Z85.028", "C25": "Z85.07",
    "C34": "Z85.118", "C50": "Z85.3", "C53": "Z85.41", "C54": "Z85.42", "C56": "Z85.43",
    "C61": "Z85.46", "C62": "Z85.47", "C64": "Z85.528", "C67": "Z85.51", "C73": "Z85.850",
    "C43": "Z85.820", "C44": "Z85.828", "C71": "Z85.841", "C81": "Z85.71", "C91": "Z85.6",
    "C92": "Z85.6", "C": "Z85.9",
    "I21": "I25.2", "I22": "I25.2", "I63": "Z86.73", "G45": "Z86.73", "I26": "Z86.711",
    "I82.4": "Z86.718", "I82": "Z86.718", "J18": "Z87.01", "J15": "Z87.01", "N39.0": "Z87.440",
    "N20": "Z87.442", "A15": "Z86.11", "K25": "Z87.11", "K26": "Z87.11", "F17": "Z87.891",
    "S": "Z87.81", "T74": "Z91.419", "O14": "Z87.59", "L89": "Z87.2", "D05": "Z86.000",
    "D06": "Z86.001", "A41": "Z86.19", "B20": "Z21",
}

# --- Claim edits (Medicare Code Editor style) ------------------------------------------------
#: (first, last) undotted prefixes, inclusive, of age-restricted diagnoses -> (lo, hi, edit label)
AGE_RANGES: tuple[tuple[str, str, int, int, str], ...] = (
    ("P00", "P96", 0, 0, "newborn/perinatal"),
    ("Z38", "Z38", 0, 0, "newborn"),
    ("Z00.1", "Z00.1", 0, 17, "pediatric"),
    ("R62.0", "R62.0", 0, 17, "pediatric"),
    ("E30.0", "E30.0", 0, 17, "pediatric"),
    ("O00", "O9A", 12, 55, "maternity"),
    ("Z33", "Z34", 12, 55, "maternity"),
    ("Z36", "Z37", 12, 55, "maternity"),
    ("Z3A", "Z3A", 12, 55, "maternity"),
    ("Z00.0", "Z00.0", 15, 124, "adult"),
    ("R54", "R54", 15, 124, "adult"),
    ("N95.1", "N95.1", 15, 124, "adult"),
)
#: female-only diagnosis ranges (undotted prefixes, inclusive)
FEMALE_DX: tuple[tuple[str, str], ...] = (
    ("O00", "O9A"), ("N70", "N98"), ("C51", "C58"), ("D06", "D06"), ("D25", "D28"),
    ("D39.1", "D39.1"), ("E28", "E28"), ("Q50", "Q52"), ("R87", "R87"), ("Z01.4", "Z01.4"),
    ("Z12.4", "Z12.4"), ("Z32", "Z37"), ("Z39", "Z39"), ("Z3A", "Z3A"), ("Z87.5", "Z87.5"),
    ("Z97.5", "Z97.5"),
)
#: male-only diagnosis ranges
MALE_DX: tuple[tuple[str, str], ...] = (
    ("N40", "N53"), ("C60", "C63"), ("D07.4", "D07.6"), ("D29", "D29"), ("D40", "D40"),
    ("E29", "E29"), ("Q53", "Q55"), ("R86", "R86"), ("Z12.5", "Z12.5"),
)
#: ICD-10-PCS: (section, body system) -> sex; section 1 (obstetrics) is female.
PCS_SEX_BODY_SYSTEMS = {("0", "U"): "F", ("0", "V"): "M"}
PCS_FEMALE_SECTIONS = ("1",)

#: I.C.21.c.16 / MCE "unacceptable principal diagnosis": Z codes that are secondary-only.
SECONDARY_ONLY: tuple[tuple[str, str], ...] = (
    ("Z14", "Z15"), ("Z16", "Z16"), ("Z17", "Z17"), ("Z18", "Z18"), ("Z19", "Z19"), ("Z21", "Z22"),
    ("Z28.3", "Z28.3"), ("Z33.0", "Z33.0"), ("Z37", "Z37"), ("Z3A", "Z3A"), ("Z66", "Z66"),
    ("Z67", "Z68"), ("Z77", "Z78"), ("Z79", "Z79"), ("Z80", "Z84"), ("Z85", "Z85"), ("Z86", "Z87"),
    ("Z88", "Z89"), ("Z90", "Z99"),
)
#: MCE "questionable admission" style: encounter-for-examination / screening codes as principal.
QUESTIONABLE_ADMISSION: tuple[tuple[str, str], ...] = (
    ("Z00", "Z00"), ("Z01", "Z01"), ("Z02", "Z02"), ("Z11", "Z13"),
)
#: I.C.21.c.16: Z codes that may only be principal/first-listed.
FIRST_LISTED_ONLY: tuple[tuple[str, str], ...] = (
    ("Z00", "Z02"), ("Z04", "Z04"), ("Z33.2", "Z33.2"), ("Z31.81", "Z31.81"), ("Z31.83", "Z31.84"),
    ("Z34", "Z34"), ("Z38", "Z39"), ("Z40", "Z40"), ("Z42", "Z42"), ("Z51.0", "Z51.1"),
    ("Z52", "Z52"), ("Z76.1", "Z76.2"), ("Z99.12", "Z99.12"),
)

# --- Section II / IV.A sequencing -----------------------------------------------------------
#: I.C.1.d.4: sepsis codes sequenced before the localized infection when present on admission.
SEPSIS_CODES = ("A40", "A41", "A02.1", "A22.7", "A26.7", "A32.7", "A42.7", "A54.86", "B37.7", "R65.2")
#: I.C.15.a.1: obstetric codes have sequencing priority.
OBSTETRIC = ("O",)

# --- CDI: documented terms ---------------------------------------------------------------------
QUERY_FORBIDDEN_WORDS = ("drg", "reimburse", "payment", "pay ", "revenue", "cc/mcc", "mcc", " cc ",
                         "severity of illness", "case mix", "financial", "dollar", "$")


def _key(code: str, n: int) -> str:
    return code.replace(".", "").upper()[:n]


def in_ranges(code: str, ranges: tuple[tuple[str, str], ...]) -> bool:
    """Whether ``code`` falls in any (first, last) prefix range (inclusive on prefixes)."""
    c = code.replace(".", "").upper()
    for lo, hi in ranges:
        lo_u, hi_u = lo.replace(".", ""), hi.replace(".", "")
        if c[: len(lo_u)] >= lo_u and c[: len(hi_u)] <= hi_u:
            return True
    return False


def longest_prefix(code: str, table: dict[str, str]) -> str | None:
    """The value of the longest undotted prefix of ``code`` in ``table``."""
    c = code.replace(".", "").upper()
    best = None
    for k, v in table.items():
        ku = k.replace(".", "")
        if c.startswith(ku) and (best is None or len(ku) > len(best[0])):
            best = (ku, v)
    return best[1] if best else None


def has_prefix(code: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    c = code.replace(".", "").upper()
    return any(c.startswith(p.replace(".", "")) for p in prefixes)
