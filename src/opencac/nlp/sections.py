"""Section detection from heading patterns, with normalised labels.

A heading is a known heading phrase at the start of a line, followed by a colon (inline
content may follow: ``"Assessment and Plan: ..."``) or standing alone on its line. Text
before the first heading is labelled ``"other"``. Each section span runs from its heading
to the next heading (trailing whitespace trimmed).
"""

from __future__ import annotations

import re

from opencac.text.document import Span

__all__ = ["HEADINGS", "LINE_SCOPED", "SECTION_LABELS", "find_headings", "find_sections", "heading_label"]

#: The normalised section labels.
SECTION_LABELS = (
    "history", "hpi", "past_history", "family_history", "social_history", "medications", "allergies",
    "exam", "labs", "imaging", "assessment", "plan", "procedures", "diagnoses", "hospital_course",
    "discharge", "other",
)

_H: dict[str, tuple[str, ...]] = {
    "history": ("history", "clinical history", "anamnesis", "clinical case", "case report", "case presentation",
                "medical history and physical", "history and physical", "h&p", "presentation"),
    "hpi": ("history of present illness", "history of the present illness", "hpi", "present illness",
            "current illness", "chief complaint", "cc", "reason for admission", "reason for consultation",
            "reason for visit", "reason for referral", "presenting complaint", "subjective", "interval history",
            "current disease", "current history"),
    "past_history": ("past medical history", "pmh", "past history", "medical history", "past surgical history",
                     "psh", "surgical history", "personal history", "personal background", "medical background",
                     "background", "antecedents", "personal antecedents", "previous history", "past medical and surgical history",
                     "pathological history", "past illnesses", "prior history", "obstetric history", "past psychiatric history"),
    "family_history": ("family history", "fh", "fhx", "family background", "family medical history",
                       "family antecedents", "family and social history"),
    "social_history": ("social history", "sh", "shx", "habits", "toxic habits", "social", "lifestyle",
                       "substance use", "tobacco use", "occupational history"),
    "medications": ("medications", "medication", "current medications", "meds", "home medications",
                    "medications on admission", "admission medications", "discharge medications",
                    "outpatient medications", "current treatment", "usual treatment", "usual medication",
                    "chronic treatment", "home treatment", "drugs"),
    "allergies": ("allergies", "allergy", "drug allergies", "allergies and intolerances", "adverse reactions"),
    "exam": ("physical exam", "physical examination", "examination", "exam", "pe", "review of systems", "ros",
             "vital signs", "vitals", "objective", "on examination", "general examination", "clinical examination",
             "examination on admission", "physical examination on admission", "neurological examination",
             "mental status examination"),
    "labs": ("laboratory", "labs", "lab", "laboratory data", "laboratory results", "laboratory tests",
             "laboratory findings", "blood tests", "analytical", "analysis", "laboratory studies",
             "complementary tests", "complementary examinations", "additional tests", "investigations",
             "diagnostic tests", "pathology", "microbiology", "histology", "results", "test results", "data"),
    "imaging": ("imaging", "radiology", "imaging studies", "radiological findings", "radiological studies",
                "imaging tests", "imaging findings", "x-ray", "chest x-ray", "ct", "ct scan", "mri", "ultrasound",
                "echocardiogram", "echocardiography", "radiography"),
    "assessment": ("assessment", "impression", "assessment and plan", "a/p", "a&p", "assessment/plan",
                   "clinical impression", "diagnostic impression", "impression and plan", "differential diagnosis",
                   "differential diagnoses", "summary", "discussion", "comment", "comments", "conclusion",
                   "conclusions", "medical decision making", "mdm", "judgment", "diagnostic judgment"),
    "plan": ("plan", "recommendations", "recommendation", "treatment", "treatment plan", "therapeutic plan",
             "disposition", "follow up", "follow-up", "plan of care", "management", "therapy", "instructions"),
    "procedures": ("procedures", "procedure", "operations", "operation", "surgery", "surgical procedure",
                   "procedure performed", "procedures performed", "operative procedure", "interventions",
                   "intervention", "operative findings", "operative report", "surgical treatment",
                   "name of procedure", "operation performed"),
    "diagnoses": ("diagnosis", "diagnoses", "final diagnosis", "final diagnoses", "discharge diagnosis",
                  "discharge diagnoses", "principal diagnosis", "secondary diagnoses", "secondary diagnosis",
                  "admission diagnosis", "admitting diagnosis", "primary diagnosis", "problem list",
                  "active problems", "problems", "preoperative diagnosis", "postoperative diagnosis",
                  "pre-operative diagnosis", "post-operative diagnosis", "main diagnosis"),
    "hospital_course": ("hospital course", "clinical course", "course", "evolution", "course in hospital",
                        "brief hospital course", "ed course", "clinical evolution", "progress", "outcome",
                        "evolution and treatment", "hospital stay"),
    "discharge": ("discharge", "discharge instructions", "discharge condition", "condition on discharge",
                  "discharge disposition", "discharge summary", "condition at discharge", "discharge plan",
                  "discharge status"),
}
#: heading phrase (lower case, single spaces) -> label
HEADINGS: dict[str, str] = {h: label for label, hs in _H.items() for h in hs}
# Headings that are common words: accepted only with a colon, or when written in capitals.
_NEEDS_COLON = {"cc", "fh", "sh", "pe", "ct", "lab", "data", "results", "social", "drugs", "course", "progress",
                "outcome", "summary", "comment", "comments", "therapy", "management", "problems", "presentation",
                "background", "analysis", "pathology", "objective", "subjective", "discharge", "treatment",
                "surgery", "operation", "history", "diagnosis", "impression", "plan", "ultrasound", "mri",
                "intervention", "instructions", "evolution", "exam", "examination", "habits"}

_HEADING_RE = re.compile(
    r"^[ \t]*(?:\d{1,2}[.)][ \t]*|[-*\u2022][ \t]*)?"
    r"(?P<h>[A-Za-z][A-Za-z/&' -]{0,60}?)[ \t]*(?P<colon>:|$)",
    re.MULTILINE,
)


def heading_label(heading: str) -> str | None:
    """Return the normalised label of a heading phrase (``"Assessment and Plan"`` -> ``"assessment"``)."""
    key = " ".join(heading.lower().replace("\u2019", "'").split())
    return HEADINGS.get(key)


def find_headings(text: str) -> list[tuple[int, int, str]]:
    """Find section headings.

    Args:
        text: the original note text.

    Returns:
        ``(start, end, label)`` per heading, ``end`` just past its colon (or the heading
        words when there is no colon), in text order.
    """
    heads: list[tuple[int, int, str]] = []
    for m in _HEADING_RE.finditer(text):
        h = m.group("h")
        label = heading_label(h)
        if label is None:
            continue
        key = " ".join(h.lower().split())
        has_colon = m.group("colon") == ":"
        if not has_colon:
            # a heading alone on its line: short, and capitalised like a heading
            if key in _NEEDS_COLON and not h.isupper():
                continue
            if not (h.isupper() or h.istitle() or h[0].isupper()):
                continue
        heads.append((m.start("h"), m.end("colon"), label))
    return heads


#: Labels whose inline heading ("Family history: mother with diabetes.") covers only its own
#: line (and continuation lines): in case reports the next sentence is back in the story, and
#: these labels change the assertion of what they contain.
LINE_SCOPED = frozenset({"family_history", "past_history", "social_history", "allergies", "medications"})

_CONTINUATION_RE = re.compile(r"[ \t]+\S|[-*\u2022]|\d{1,2}[.)]\s|[a-z]")


def find_sections(text: str, headings: list[tuple[int, int, str]] | None = None) -> list[Span]:
    """Split ``text`` into labelled sections.

    A heading alone on its line opens a section that runs to the next heading. An inline
    heading (text after the colon) does the same, except for the labels in
    :data:`LINE_SCOPED`, whose section ends with its line (plus continuation lines: indented,
    bulleted, numbered or starting in lower case); the text after it returns to the
    enclosing section.

    Args:
        text: the original note text.
        headings: the result of :func:`find_headings`, if already computed.

    Returns:
        Section spans in order, covering every non-blank part of the text; labels from
        :data:`SECTION_LABELS`.
    """
    heads = find_headings(text) if headings is None else headings
    head_starts = {h[0] for h in heads}
    bounds: list[tuple[int, str]] = [(0, "other")]
    block = "other"
    for hs, he, label in heads:
        line_end = text.find("\n", he)
        line_end = len(text) if line_end < 0 else line_end
        inline = bool(text[he:line_end].strip())
        bounds.append((hs, label))
        if inline and label in LINE_SCOPED:
            end = line_end
            while end < len(text):
                nxt = end + 1
                nxt_end = text.find("\n", nxt)
                nxt_end = len(text) if nxt_end < 0 else nxt_end
                line = text[nxt:nxt_end]
                first = nxt + len(line) - len(line.lstrip())
                if not line.strip() or first in head_starts or not _CONTINUATION_RE.match(line):
                    break
                end = nxt_end
            bounds.append((end, block))
        else:
            block = label
    merged: dict[int, str] = {}
    for start, label in bounds:
        merged[start] = label  # a later boundary at the same offset wins
    ordered = sorted(merged.items())
    spans: list[Span] = []
    for i, (start, label) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else len(text)
        seg = text[start:end]
        stripped_end = start + len(seg.rstrip())
        lead = len(seg) - len(seg.lstrip())
        if stripped_end > start + lead:
            spans.append(Span(start + lead, stripped_end, label))
    return spans
