"""Codes whose last characters are a value the note states: a body mass index, the weeks of
gestation, a Glasgow coma scale total.

The alphabetic index words these as ranges ("Body, mass index, adult, 36.0-36.9 Z68.36";
"Pregnancy, weeks of gestation, 21 weeks Z3A.21"), which no phrase matcher reaches from
"BMI 36.4" or "at week 21 of gestation": the dictionary stops at the category (Z68, Z3A),
which is not billable. :func:`value_hits` reads the stated value next to its measure and
adds a hit of the complete code, with the mention's offsets, assertion and section, source
``index`` (the index path the value selects). A trained ranker learns how often coders code
them, as for any other hit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from opencac.coding.dictionary import DictHit

# Up to four words that may stand between a measure and its value ("BMI of 22.5", "GCS was 8",
# "body mass index (BMI): 43"). Each word takes the blanks before it, so no run of blanks can be
# split two ways (the old pattern backtracked exponentially on "BMI : : : ... x").
_GAP = (r"(?:\s*(?:\((?:BMI|GCS)\)|\[(?:BMI|GCS)\]|of|was|is|=|:|~|>|<|≥|≤|around|about|approximately|approx\.|"
        r"score|total)){0,4}\s*")
_NUM = r"(\d{1,2}(?:[.,]\d{1,2})?)"

_BMI_WORD = re.compile(r"\b(?:BMI|body[ -]mass[ -]index)\b", re.IGNORECASE)
_BMI = re.compile(r"(?:BMI|body[ -]mass[ -]index)\)?" + _GAP + _NUM + r"(?![\d%])", re.IGNORECASE)  # "mass index (BMI) 41"
_BMI_PERCENTILE = re.compile(r"(?:BMI|body[ -]mass[ -]index)\b[^.;\n]{0,30}?\b(\d{1,2})(?:st|nd|rd|th)?\s+percentile",
                             re.IGNORECASE)
_WEEKS = re.compile(
    r"\b(\d{1,2})(?:[.,]\d{1,2}|\s*\+\s*\d)?(?:\s*|-)(?:weeks?|wks?)(?:'|\s+of)?\s*"
    r"(?:gestation(?:al)?|pregnan(?:cy|t)|amenorrh(?:o)?ea)\b"
    r"|\b(?:week|wk)\s+(\d{1,2})\s+of\s+(?:gestation|pregnancy)\b"
    r"|\bgestational\s+age\s+(?:of\s+|was\s+|:\s*)?(\d{1,2})(?:[.,]\d{1,2}|\s*\+\s*\d)?\s*(?:weeks?|wks?)\b"
    r"|\bpregnan(?:t|cy)\s+(?:at|of)\s+(\d{1,2})(?:[.,]\d{1,2}|\s*\+\s*\d)?\s*(?:weeks?|wks?)\b",
    re.IGNORECASE)
_NEWBORN = re.compile(r"\b(?:newborn|neonate|neonatal|born|preterm infant)\b", re.IGNORECASE)
_GCS = re.compile(r"\b(?:GCS|Glasgow(?:\s+coma)?(?:\s+(?:scale|score))?)" + _GAP + r"(\d{1,2})(?!\d|\s*(?:hours?|h)\b)",
                  re.IGNORECASE)
# ICD-10-CM R40.24-: 7th character for when the score was taken (tabular, R40.2).
_GCS_TIME = ((re.compile(r"\b(?:in the field|ambulance|EMT|pre-?hospital|paramedics?)\b", re.IGNORECASE), "1"),
             (re.compile(r"\b(?:emergenc\w*|ER|A&E|arrival)\b", re.IGNORECASE), "2"),
             (re.compile(r"\b(?:admission|admitted|on admission)\b", re.IGNORECASE), "3"))


def bmi_code(value: float, percentile: bool = False) -> str | None:
    """The Z68 code of a body mass index (adult) or of a BMI percentile for age (pediatric).

    ICD-10-CM Official Guidelines I.C.21.c.3: adult BMI codes for persons 20 or older, pediatric
    percentile codes for ages 2-19.
    """
    if percentile:
        if not 0 < value < 100:
            return None
        return "Z68.51" if value < 5 else "Z68.52" if value < 85 else "Z68.53" if value < 95 else "Z68.54"
    if not 10 <= value <= 99:
        return None
    if value < 20:
        return "Z68.1"
    if value < 40:
        return f"Z68.{int(value)}"
    return "Z68.41" if value < 45 else "Z68.42" if value < 50 else "Z68.43" if value < 60 else \
        "Z68.44" if value < 70 else "Z68.45"


def gestation_code(weeks: int) -> str | None:
    """The Z3A code of completed weeks of gestation (Z3A.01 under 8, Z3A.49 over 42)."""
    if not 4 <= weeks <= 45:
        return None
    if weeks < 8:
        return "Z3A.01"
    if weeks > 42:
        return "Z3A.49"
    return f"Z3A.{weeks:02d}"


def gcs_code(total: int, when: str = "0") -> str | None:
    """The R40.24- code of a Glasgow coma scale total (3-15) with the 7th character ``when``
    (0 unspecified time, 1 in the field, 2 at arrival to the emergency department, 3 at
    admission, 4 24 hours or more after admission). ICD-10-CM Official Guidelines I.C.18.e."""
    if not 3 <= total <= 15:
        return None
    band = "1" if total >= 13 else "2" if total >= 9 else "3"
    return f"R40.24{band}{when}"


def _value(s: str) -> float:
    return float(s.replace(",", "."))


def find_values(text: str) -> Iterator[tuple[str, int, int, str]]:
    """``(code, start, end, index path)`` for every value-coded mention of ``text``, in order
    of the text; the offsets cover the measure and its value."""
    low = text.lower()
    if "bmi" in low or "body mass" in low or "body-mass" in low:
        done = 0  # "body mass index (BMI) 43" is one mention
        for w in _BMI_WORD.finditer(text):
            if w.start() < done:
                continue
            pm = _BMI_PERCENTILE.match(text, w.start())
            vm = _BMI.match(text, w.start()) if pm is None else None
            if pm is not None:
                code = bmi_code(float(pm.group(1)), percentile=True)
                end, path = pm.end(), f"body mass index pediatric {pm.group(1)} percentile"
            elif vm is not None:
                code = bmi_code(_value(vm.group(1)))
                end, path = vm.end(), f"body mass index adult {vm.group(1)}"
            else:
                continue
            done = end
            if code:
                yield code, w.start(), end, path
    if "week" in low or "wk" in low or "gestational age" in low:
        for m in _WEEKS.finditer(text):
            weeks = next(int(g) for g in m.groups() if g is not None)
            # ICD-10-CM tabular, Z3A: for use only on the maternal record
            line_start = text.rfind("\n", 0, m.start()) + 1
            if _NEWBORN.search(text, max(line_start, m.start() - 80), m.start()):
                continue
            code = gestation_code(weeks)
            if code:
                yield code, m.start(), m.end(), f"pregnancy weeks of gestation {weeks} weeks"
    if "gcs" in low or "glasgow" in low:
        for m in _GCS.finditer(text):
            total = int(m.group(1))
            line_end = text.find("\n", m.end())
            around = text[max(text.rfind("\n", 0, m.start()) + 1, m.start() - 80):
                          min(len(text) if line_end < 0 else line_end, m.end() + 80)]
            when = next((w for rx, w in _GCS_TIME if rx.search(around)), "0")
            code = gcs_code(total, when)
            if code:
                yield code, m.start(), m.end(), f"glasgow coma scale score {total}"


def value_hits(doc: Any, kb: Any = None) -> list[DictHit]:
    """Hits of the value-coded mentions of an analysed document (``opencac.nlp.analyze``),
    with the assertion, section and sentence of the mention. Codes the knowledge base does
    not hold (an older code set) are left out."""
    from opencac.nlp.assertion import assert_span

    out: list[DictHit] = []
    for code, start, end, path in find_values(doc.text):
        if kb is not None and kb.find(code) is None:
            continue
        si = doc.sentence_index(start)
        sent = doc.sentences[si] if si >= 0 else None
        section = doc.section_at(start)
        assertion, trigger = assert_span(doc, start, end, sentence=sent, section=section)
        out.append(DictHit(code, "icd10cm", "index", False, start, end, doc.text[start:end], path, 1.0,
                           len(path.split()), False, assertion, trigger, section, si))
    return out
