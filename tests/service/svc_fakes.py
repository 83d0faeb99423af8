"""Tiny stand-ins for the engine and the knowledge base (the real ones are used in tests/e2e)."""

from __future__ import annotations

import re

from opencac.codesets.types import Code, CodeSystem
from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence
from opencac.errors import UnknownCodeError

CM, PCS = CodeSystem.ICD10CM, CodeSystem.ICD10PCS
CODES = {
    "E11.9": Code(CM, "E11.9", "Type 2 diabetes mellitus without complications", billable=True),
    "E11.65": Code(CM, "E11.65", "Type 2 diabetes mellitus with hyperglycemia", billable=True),
    "E11": Code(CM, "E11", "Type 2 diabetes mellitus", kind="category", billable=False),
    "I10": Code(CM, "I10", "Essential (primary) hypertension", billable=True),
    "J18.9": Code(CM, "J18.9", "Pneumonia, unspecified organism", billable=True),
    "R05.9": Code(CM, "R05.9", "Cough, unspecified", billable=True),
    "0DTJ4ZZ": Code(PCS, "0DTJ4ZZ", "Resection of Appendix, Percutaneous Endoscopic Approach", billable=True),
}


class FakeKB:
    """The subset of ``KnowledgeBase`` the service uses."""

    def normalize(self, code: str, system: object = None) -> str:
        c = code.strip().upper().replace(".", "")
        return c if len(c) == 7 and c[0].isdigit() else (c[:3] + "." + c[3:] if len(c) > 3 else c)

    def find(self, code: str, system: object = None) -> Code | None:
        return CODES.get(self.normalize(code))

    def get(self, code: str, as_of: object = None) -> Code:
        c = self.find(code)
        if c is None:
            raise UnknownCodeError(f"unknown code {code!r}.")
        return c

    def is_billable(self, code: str, as_of: object = None) -> bool:
        c = self.find(code)
        return bool(c and c.billable)

    def search(self, text: str, system: CodeSystem | None = None, limit: int = 20) -> list[tuple[Code, float]]:
        words = text.lower().split()
        hits = [(c, 0.5) for c in CODES.values()
                if (system is None or c.system == system) and all(w in c.description.lower() for w in words)]
        return hits[:limit]


RULES = [
    ("diabetes", "E11.9", 0.92, True),
    ("hypertension", "I10", 0.64, True),
    ("pneumonia", "J18.9", 0.41, False),
    ("appendectomy", "0DTJ4ZZ", 0.88, True),
    ("diabetic", "E11", 0.55, True),  # a header code the engine proposes: must be fixed before finalising
]


def fake_coder(text: str, context: EncounterContext) -> CodingResult:
    """Suggest codes for a few trigger words, with evidence offsets into the text."""
    res = CodingResult(doc_id="note", model="fake-1", codeset={"icd10cm": "FY2026", "icd10pcs": "FY2026"},
                       context=context)
    for word, code, conf, sel in RULES:
        m = re.search(word, text, re.IGNORECASE)
        if not m:
            continue
        c = CODES[code]
        s = CodeSuggestion(code=code, system=c.system.value, description=c.description, confidence=conf,
                           evidence=[Evidence(m.start(), m.end(), m.group(0), "assessment")],
                           rationale=[f"matched '{word}'"], selected=sel)
        (res.procedures if c.system == PCS else res.diagnoses).append(s)
    for i, s in enumerate(res.diagnoses, 1):
        s.rank = i
    for i, s in enumerate(res.procedures, 1):
        s.rank = i
    edits = []
    if "pneumonia" in text.lower():
        edits.append({"id": "cdi.specificity", "severity": "warning", "message": "organism not documented",
                      "citation": "ICD-10-CM I.C.10", "codes": ["J18.9"]})
    res.rules = {"edits": edits, "drg": {"drg": "638", "title": "Diabetes w CC", "weight": 0.83}
                 if context.setting == "inpatient" else None,
                 "queries": [{"kind": "specificity", "text": "Please clarify the organism.", "codes": ["J18.9"]}]
                 if edits else []}
    return res
