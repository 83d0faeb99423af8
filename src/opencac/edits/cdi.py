"""Clinical documentation integrity: documentation gaps -> compliant physician queries.

A query follows the AHIMA/ACDIS *Guidelines for Achieving a Compliant Query Practice* (2022
update): it presents the clinical indicators quoted from the record (with offsets), asks an
open question or offers multiple-choice options that are all clinically reasonable and
include "Other (please specify)" and "Clinically undetermined", does not lead toward one
answer, and never mentions reimbursement, DRGs or the impact of an answer. The option
``code`` is metadata for the coder and is never part of the physician text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opencac.edits.model import Edit, EvidenceSpan, Query, QueryOption
from opencac.edits.state import RulesState, undot

OTHER = QueryOption("Other (please specify)")
UNDETERMINED = QueryOption("Clinically undetermined")


@dataclass(frozen=True)
class GapSpec:
    """One documentation gap: when the condition is documented (``trigger``) but none of the
    ``specified`` terms is, ask the question with these options (label, code)."""

    id: str
    topic: str
    trigger: str
    specified: str | tuple[str, ...]
    question: str
    options: tuple[tuple[str, str | None], ...]
    indicators: str
    codes: tuple[str, ...] = ()  # unspecified codes this query would refine
    min_indicators: int = 0


GAPS: tuple[GapSpec, ...] = (
    GapSpec("CDI-HF-TYPE", "heart failure type and acuity",
            r"\b(heart failure|chf|cardiac failure|hfref|hfpef)\b",
            (r"\b(systolic|diastolic|combined)\b[^.\n]{0,30}\b(heart failure|hf|chf|dysfunction)\b"
             r"|\b(hfref|hfpef|reduced ejection fraction|preserved ejection fraction)\b",
             r"\b(acute|chronic|decompensated|exacerbation)\b[^.\n]{0,40}\b(heart failure|hf|chf|hfref|hfpef)\b"
             r"|\b(heart failure|chf|hfref|hfpef)\b[^.\n]{0,20}\b(exacerbation|decompensat\w*)"),
            "Heart failure is documented. Based on your clinical judgment, can the type and acuity of the heart "
            "failure be further specified?",
            (("Acute systolic (HFrEF) heart failure", "I50.21"), ("Chronic systolic (HFrEF) heart failure", "I50.22"),
             ("Acute on chronic systolic (HFrEF) heart failure", "I50.23"),
             ("Acute diastolic (HFpEF) heart failure", "I50.31"), ("Chronic diastolic (HFpEF) heart failure", "I50.32"),
             ("Acute on chronic diastolic (HFpEF) heart failure", "I50.33"),
             ("Combined systolic and diastolic heart failure, acuity as documented", "I50.40")),
            r"\b(ef|ejection fraction|lvef)\b[^.\n]{0,15}\d{1,2}\s*%|\b(bnp|nt-probnp)\b[^.\n]{0,20}\d+|"
            r"\b(furosemide|lasix|bumetanide|torsemide|diuresis|diuretic)\b|\b(edema|orthopnea|rales|crackles|jvd)\b",
            ("I50.9",)),
    GapSpec("CDI-ANEMIA-TYPE", "anemia type",
            r"\banemi(a|c)\b|\banaemi(a|c)\b",
            r"\b(iron[- ]deficiency|blood loss|chronic disease|chronic kidney|b12|folate|pernicious|aplastic|"
            r"hemolytic|sickle|thalass|macrocytic|microcytic|neoplastic|chemotherapy[- ]induced|sideroblastic)\b",
            "Anemia is documented. Based on your clinical judgment, can the type or cause of the anemia be further specified?",
            (("Acute blood loss anemia", "D62"), ("Iron deficiency anemia", "D50.9"),
             ("Anemia in chronic kidney disease", "D63.1"), ("Anemia in neoplastic disease", "D63.0"),
             ("Anemia of other chronic disease", "D63.8")),
            r"\b(hgb|hemoglobin|hb|hct|hematocrit)\b[^.\n]{0,15}\d+(\.\d+)?|\btransfus\w*|\b(ferritin|mcv|iron)\b[^.\n]{0,15}\d+|"
            r"\b(melena|hematochezia|bleed\w*)\b",
            ("D64.9",)),
    GapSpec("CDI-SEPSIS-ORGAN", "sepsis and organ dysfunction",
            r"\bsep(sis|tic)\b",
            r"\bsevere sepsis\b|\bseptic shock\b|\b(acute )?(kidney injury|renal failure|respiratory failure|"
            r"encephalopathy|liver failure|dic)\b[^.\n]{0,40}\b(due to|from|secondary to)\b[^.\n]{0,20}sep",
            "Sepsis is documented. Based on your clinical judgment, is there an associated acute organ dysfunction?",
            (("Sepsis with acute organ dysfunction (please specify the organ dysfunction)", "R65.20"),
             ("Sepsis with septic shock", "R65.21"), ("Sepsis without acute organ dysfunction", None)),
            r"\blactate\b[^.\n]{0,15}\d+(\.\d+)?|\b(map|blood pressure|bp)\b[^.\n]{0,15}\d+/?\d*|\bhypotensi\w+|"
            r"\b(creatinine|cr)\b[^.\n]{0,15}\d+(\.\d+)?|\bplatelets?\b[^.\n]{0,15}\d+|\b(altered mental status|confus\w+|"
            r"vasopressor\w*|norepinephrine|levophed)\b",
            ("A41.9",), min_indicators=1),
    GapSpec("CDI-PNEUMONIA-ORGANISM", "pneumonia organism",
            r"\bpneumonia\b",
            r"\b(pneumococc\w*|streptococc\w*|staphylococc\w*|mrsa|mssa|pseudomonas|klebsiella|haemophilus|h\.? influenzae|"
            r"e\.? coli|legionella|mycoplasma|chlamydi\w*|viral|influenza|covid|sars-cov-2|rsv|aspiration|fungal|"
            r"gram[- ]negative|anaerob\w*|pneumocystis)\b",
            "Pneumonia is documented. Based on your clinical judgment, can the causative organism or type of pneumonia be specified?",
            (("Pneumonia due to a specific bacterial organism (please specify)", "J15.9"),
             ("Viral pneumonia (please specify the virus)", "J12.9"), ("Aspiration pneumonia", "J69.0"),
             ("Pneumonia, organism not identified", "J18.9")),
            r"\b(sputum|blood) cultures?\b[^.\n]{0,60}|\b(gram stain|urinary antigen)\b[^.\n]{0,40}|"
            r"\b(chest x-?ray|cxr|ct chest)\b[^.\n]{0,60}|\b(ceftriaxone|azithromycin|vancomycin|piperacillin|"
            r"levofloxacin|cefepime|meropenem)\b",
            ("J18.9", "J18.1", "J18.8")),
    GapSpec("CDI-CKD-STAGE", "chronic kidney disease stage",
            r"\b(ckd|chronic kidney disease|chronic renal (insufficiency|failure|disease))\b",
            r"\bstage\s*(5d|[1-5][ab]?|v|iv|iii[ab]?|ii|i)\b|\bckd\s*(5d|[1-5][ab]?)\b|\besrd\b|\bend[- ]stage (renal|kidney)\b",
            "Chronic kidney disease is documented. Based on your clinical judgment, can the stage be specified?",
            (("CKD stage 1", "N18.1"), ("CKD stage 2", "N18.2"), ("CKD stage 3a", "N18.31"), ("CKD stage 3b", "N18.32"),
             ("CKD stage 4", "N18.4"), ("CKD stage 5", "N18.5"), ("End-stage renal disease", "N18.6")),
            r"\b(e?gfr)\b[^.\n]{0,20}\d+|\b(creatinine|cr)\b[^.\n]{0,15}\d+(\.\d+)?|\b(dialysis|nephrolog\w+)\b",
            ("N18.9",)),
    GapSpec("CDI-BMI-WEIGHT", "BMI without an associated weight diagnosis",
            r"\bbmi\b[^.\n]{0,10}(4\d|[5-9]\d|3\d|1[0-8])(\.\d)?\b",
            r"\b(obes\w+|overweight|underweight|malnutrition|morbid\w*|cachexi\w*|thin|emaciat\w*)\b",
            "A body mass index is recorded. Based on your clinical judgment, is there an associated diagnosis?",
            (("Obesity (please specify class/cause)", "E66.9"), ("Morbid (severe) obesity", "E66.01"),
             ("Overweight", "E66.3"), ("Underweight", "R63.6"), ("No associated diagnosis", None)),
            r"\bbmi\b[^.\n]{0,10}\d+(\.\d)?|\b(weight|wt)\b[^.\n]{0,15}\d+(\.\d)?\s*(kg|lb|lbs)\b",
            ()),
    GapSpec("CDI-MALNUTRITION", "malnutrition indicators",
            r"\b(weight loss|poor (oral )?intake|decreased (oral )?intake|cachectic|temporal wasting|muscle wasting|"
            r"loss of subcutaneous fat|albumin\b[^.\n]{0,10}[0-2]\.\d|prealbumin)\b",
            r"\bmalnutrition\b|\bmalnourish\w*|\bcachexia\b|\bkwashiorkor\b|\bmarasmus\b",
            "Clinical indicators of nutritional status are documented. Based on your clinical judgment, can a "
            "related diagnosis be documented?",
            (("Severe protein-calorie malnutrition", "E43"), ("Moderate protein-calorie malnutrition", "E44.0"),
             ("Mild protein-calorie malnutrition", "E44.1"), ("Cachexia", "R64"),
             ("No malnutrition", None)),
            r"\b(weight loss|lost \d+\s*(kg|lb|lbs|pounds)|poor (oral )?intake|decreased (oral )?intake|cachectic|"
            r"temporal wasting|muscle wasting|loss of subcutaneous fat|albumin\b[^.\n]{0,10}\d\.\d|prealbumin\b[^.\n]{0,10}\d+|"
            r"dietitian|tube feed\w*|tpn)\b",
            (), min_indicators=2),
    GapSpec("CDI-RESP-FAILURE", "respiratory status",
            r"\b(bipap|cpap|high[- ]flow|intubat\w*|mechanical(ly)? ventilat\w*|non-?invasive ventilation)\b"
            r"|\b(spo2|o2 sat\w*|oxygen saturation|sats?)\b[^.\n]{0,15}\b([5-8]\d)\s*%",
            r"\brespiratory (failure|insufficiency)\b",
            "Clinical indicators of respiratory compromise are documented. Based on your clinical judgment, can the "
            "respiratory condition be further specified?",
            (("Acute respiratory failure with hypoxia", "J96.01"), ("Acute respiratory failure with hypercapnia", "J96.02"),
             ("Acute on chronic respiratory failure with hypoxia", "J96.21"),
             ("Hypoxemia without respiratory failure", "R09.02")),
            r"\b(spo2|o2 sat\w*|oxygen saturation|sats?)\b[^.\n]{0,15}\d{2}\s*%|\b(respiratory rate|rr)\b[^.\n]{0,10}\d{2}|"
            r"\b(pao2|pco2|paco2|abg)\b[^.\n]{0,20}\d+|\b(tachypne\w*|accessory muscle\w*|bipap|cpap|high[- ]flow|"
            r"intubat\w*|\d+\s*l(/min)? (nasal cannula|nc|o2))\b",
            (), min_indicators=2),
    GapSpec("CDI-ENCEPHALOPATHY", "altered mental status",
            r"\b(altered mental status|acute(ly)? confus\w*|disoriented|obtunded|delirious)\b",
            r"\b(encephalopathy|delirium|dementia|psychosis|intoxicat\w*)\b",
            "An altered mental status is documented. Based on your clinical judgment, can the underlying condition "
            "be further specified?",
            (("Metabolic encephalopathy", "G93.41"), ("Toxic encephalopathy", "G92.8"),
             ("Delirium due to a known physiological condition", "F05"),
             ("Altered mental status without further specification", "R41.82")),
            r"\b(ammonia|sodium|na|glucose|bun)\b[^.\n]{0,15}\d+(\.\d+)?|\b(gcs|glasgow)\b[^.\n]{0,10}\d+|"
            r"\b(altered mental status|confus\w*|disoriented|obtunded|lethargic|somnolent)\b",
            ("R41.82",), min_indicators=1),
)

_LATERALITY_RX = re.compile(r"unspecified (side|ear|eye|knee|hip|shoulder|upper limb|lower limb|hand|foot|arm|leg|"
                            r"kidney|lung|breast|ovary|femur|tibia|fibula|humerus|radius|ulna|wrist|ankle|elbow)", re.I)


def run_cdi(state: RulesState) -> list[Edit]:
    """Detect documentation gaps and draft queries (stored on ``state.queries``); each query
    also yields an info edit so that reports count it."""
    if not state.text:
        return []
    edits: list[Edit] = []
    n = len(state.queries)
    for gap in GAPS:
        trig = state.search(gap.trigger, limit=3)
        if not trig:
            continue
        specs = (gap.specified,) if isinstance(gap.specified, str) else gap.specified
        if all(re.search(sp, state.text, re.I) for sp in specs):
            continue
        inds = state.search(gap.indicators, limit=6)
        if len(inds) < gap.min_indicators:
            continue
        if gap.id == "CDI-MALNUTRITION" and len(inds) < 2:
            continue
        if gap.id == "CDI-BMI-WEIGHT":
            m = re.search(r"\d+(\.\d)?", trig[0].text[3:])
            bmi = float(m.group(0)) if m else 25.0
            if 19 <= bmi < 25:
                continue
        spans = _dedupe(trig[:1] + inds)
        n += 1
        qid = f"Q{n}"
        opts = [QueryOption(label, code) for label, code in gap.options] + [OTHER, UNDETERMINED]
        codes = [c for c in gap.codes if state.has(c)]
        state.queries.append(Query(qid, gap.topic, gap.question, opts, spans, codes=codes, rule="opencac.cdi.v1"))
        edits.append(Edit("CDI-QUERY", "info", f"Documentation gap ({gap.topic}): physician query {qid} drafted.",
                          "AHIMA/ACDIS Guidelines for Achieving a Compliant Query Practice (2022 update)",
                          codes=codes, evidence=spans[:1]))
    for fc in state.dx:
        code = state.kb.find(fc.code)
        if code is None or not _LATERALITY_RX.search(code.description):
            continue
        window = state.window_for(fc) if fc.evidence else ""
        if re.search(r"\b(right|left|bilateral)\b", window):
            continue  # documented: the specificity rule handles it
        n += 1
        qid = f"Q{n}"
        spans = list(fc.evidence[:2])
        opts = [QueryOption("Right"), QueryOption("Left"), QueryOption("Bilateral"), OTHER, UNDETERMINED]
        state.queries.append(Query(qid, "laterality", f"The documentation describes a condition reported as "
                                   f"\"{code.description}\". Based on your clinical judgment, can the laterality be specified?",
                                   opts, spans, codes=[fc.code], rule="opencac.cdi.v1"))
        edits.append(Edit("CDI-QUERY", "info", f"Documentation gap (laterality of {fc.code}): physician query {qid} drafted.",
                          "AHIMA/ACDIS Guidelines for Achieving a Compliant Query Practice (2022 update); "
                          "ICD-10-CM Official Guidelines I.B.13", codes=[fc.code], evidence=spans[:1]))
    return edits


def _dedupe(spans: list[EvidenceSpan]) -> list[EvidenceSpan]:
    out: list[EvidenceSpan] = []
    for s in sorted(spans, key=lambda s: s.start):
        if out and s.start < out[-1].end:
            continue
        out.append(s)
    return out


def query_target_codes(state: RulesState, q: Query) -> list[str]:
    """The codes in the working set a query's answer would replace (for DRG impact)."""
    return [c for c in q.codes if state.has(c)] or [c.code for c in state.dx if undot(c.code) in {undot(x) for x in q.codes}]
