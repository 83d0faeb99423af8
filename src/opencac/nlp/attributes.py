"""Attributes that decide code specificity, read around a mention within its sentence.

* ``laterality``: ``left`` | ``right`` | ``bilateral``
* ``acuity``: ``acute`` | ``chronic`` | ``acute_on_chronic`` | ``subacute``
* ``episode`` (injuries, ICD-10-CM 7th character): ``initial`` | ``subsequent`` | ``sequela``
  - "initial" while the patient receives active treatment (ICD-10-CM Official Guidelines
    I.C.19.a: surgical treatment, emergency department encounter, evaluation and continuing
    treatment by the same or a different physician); "subsequent" for routine healing or
    recovery phase care (cast change, follow-up, removal of fixation, rehabilitation);
    "sequela" for complications or conditions that arise as a direct result of an injury
    (late effects, scars, residuals).
* ``stage``: ``1``..``5`` / ``3a`` / ``3b`` / ``esrd`` for CKD (N18.x); ``0``..``4`` for
  cancer stage (roman numerals folded, sub-letter kept: ``2b``); pressure ulcer ``1``..``4``,
  ``unstageable``, ``deep_tissue``.
* ``type``: diabetes ``1`` | ``2`` | ``gestational`` | ``secondary``; heart failure
  ``systolic`` | ``diastolic`` | ``combined``.

The window is the mention itself plus ``WINDOW`` characters either side, clipped to the
sentence; when a value occurs several times the occurrence nearest the mention wins.
"""

from __future__ import annotations

import re

from opencac.text.document import Document, Span

__all__ = ["WINDOW", "extract_attributes"]

#: Characters either side of the mention that are searched.
WINDOW = 80

_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "0": "0"}

_LATERALITY = re.compile(
    r"\b(?P<bilateral>bilateral(?:ly)?|both (?:sides|lungs|eyes|ears|kidneys|breasts|legs|arms|knees|hips|feet|hands|lower limbs|upper limbs|lower extremities|upper extremities)|"
    r"on both sides)\b|\b(?P<left>left|lt\.?|izquierd[oa])\b|\b(?P<right>right|rt\.?|derech[oa])\b",
    re.IGNORECASE,
)
_ACUITY = re.compile(
    r"\b(?P<acute_on_chronic>acute[- ]on[- ]chronic|acute exacerbation of chronic|acutely decompensated chronic|"
    r"decompensated chronic)\b|\b(?P<subacute>subacute|sub-acute)\b|\b(?P<acute>acute|acutely|sudden onset|"
    r"decompensated|exacerbation|exacerbated)\b|\b(?P<chronic>chronic|chronically|long[- ]standing|longstanding)\b",
    re.IGNORECASE,
)
_EPISODE = re.compile(
    r"\b(?P<sequela>sequela|sequelae|late effects?|residual|residuals|as a result of (?:a |an )?(?:previous|old|prior)|"
    r"scar(?:ring)? (?:from|due to|after)|post-?traumatic (?:deformity|arthritis))\b|"
    r"\b(?P<subsequent>follow[- ]up|healing|healed|routine care|cast (?:change|removal)|removal of (?:the )?"
    r"(?:cast|hardware|fixat\w+|sutures|osteosynthesis)|recovery phase|rehabilitation|physiotherapy|physical therapy|"
    r"subsequent (?:encounter|visit|care)|delayed healing|nonunion|non-union|malunion|mal-union)\b|"
    r"\b(?P<initial>emergency|admitted|admission|presented|presents|acute|surgery|surgical|reduction|"
    r"osteosynthesis|fixation|debridement|sutured?|immobili[sz]ation|splint|initial)\b",
    re.IGNORECASE,
)
_INJURY_WORDS = re.compile(
    r"\b(?:fractur\w*|injur\w*|wound\w*|laceration\w*|burn\w*|contusion\w*|dislocat\w*|sprain\w*|strain\w*|"
    r"trauma\w*|poison\w*|overdose\w*|bite\w*|concussion\w*|crush\w*|amputation\w*|avulsion\w*|abrasion\w*|"
    r"hematoma\w*|haematoma\w*|rupture\w*|tear\w*|foreign body|toxic effect|intoxication)\b",
    re.IGNORECASE,
)
_ESRD = re.compile(r"\b(?:esrd|end[- ]stage (?:renal|kidney)|stage 5d|on (?:hemo)?dialysis)\b", re.IGNORECASE)
_STAGE = re.compile(
    r"\b(?:stage|stadium|estadio|grade)\s*(?P<v>[0-5]|iv|v|i{1,3})(?P<sub>[abc])?\b|"
    r"\b(?P<v2>[0-5]|iv|v|i{1,3})(?P<sub2>[abc])?\s+stage\b",
    re.IGNORECASE,
)
_ULCER_CONTEXT = re.compile(r"\b(?:pressure|decubitus|bed ?sore|pressure injur)\w*", re.IGNORECASE)
_ULCER_SPECIAL = re.compile(r"\b(?P<unstageable>unstageable)\b|\b(?P<deep_tissue>deep tissue (?:injury|damage))\b",
                            re.IGNORECASE)
_DM_TYPE = re.compile(
    r"\b(?:type|tipo)\s*(?P<t>1|2|i{1,2}|one|two)\b|\b(?P<t1>t1dm|dm1|dm ?type ?1|iddm|juvenile)\b|"
    r"\b(?P<t2>t2dm|dm2|dm ?type ?2|niddm)\b|\b(?P<gest>gestational)\b|"
    r"\b(?P<sec>(?:secondary|drug[- ]induced|steroid[- ]induced|due to (?:an )?underlying condition))\b",
    re.IGNORECASE,
)
_HF_TYPE = re.compile(
    r"\b(?P<combined>combined systolic and diastolic|systolic and diastolic|diastolic and systolic|combined)\b|"
    r"\b(?P<systolic>systolic|hfref|reduced ejection fraction|reduced ef|hfr?ef|low ejection fraction)\b|"
    r"\b(?P<diastolic>diastolic|hfpef|preserved ejection fraction|preserved ef|hfpef)\b",
    re.IGNORECASE,
)
_DM_CONTEXT = re.compile(r"\b(?:diabet\w*|dm|t[12]dm|dm[12]|iddm|niddm|mellitus)\b", re.IGNORECASE)
_HF_CONTEXT = re.compile(r"\b(?:heart failure|cardiac failure|hf|chf|hfref|hfpef|cardiac insufficiency|"
                         r"heart insufficiency|ventricular failure)\b", re.IGNORECASE)


_QUALIFIER = re.compile(
    r"\s*(?:stage|grade|left|right|bilateral|both|acute|chronic|subacute|initial|subsequent|sequela|type|"
    r"unstageable|systolic|diastolic|combined)\b",
    re.IGNORECASE,
)


def _nearest(pattern: re.Pattern[str], text: str, s: int, e: int) -> re.Match[str] | None:
    """The match nearest the target ``[s, e)`` (inside it counts as distance 0)."""
    best: re.Match[str] | None = None
    best_d = 10**9
    for m in pattern.finditer(text):
        d = 0 if (m.start() < e and s < m.end()) else (s - m.end() if m.end() <= s else m.start() - e)
        if d < best_d:
            best, best_d = m, d
    return best


def _sentence_span(doc: Document, start: int) -> Span:
    sent = doc.sentence_at(start)
    return sent if sent is not None else doc.line_at(start)


def extract_attributes(doc: Document, start: int, end: int, *, sentence: Span | None = None) -> dict[str, str]:
    """Read laterality, acuity, episode, stage and type around ``doc.text[start:end]``.

    Args:
        doc: the analysed document.
        start: mention start offset.
        end: mention end offset.
        sentence: the sentence containing the mention, if known.

    Returns:
        Only the attributes found, e.g. ``{"laterality": "left", "acuity": "acute"}``.
    """
    sent = sentence if sentence is not None else _sentence_span(doc, start)
    lo = max(sent.start, start - WINDOW)
    hi = min(max(sent.end, end), end + WINDOW)
    text = doc.text[lo:hi]
    s, e = start - lo, end - lo
    # the clause around the mention: cut at the nearest comma / semicolon either side
    c_lo = max(text.rfind(",", 0, s), text.rfind(";", 0, s)) + 1
    cut = [i for i in (text.find(",", e), text.find(";", e)) if i >= 0]
    c_hi = min(cut) if cut else len(text)
    # a short trailing clause qualifies the mention: "ulcer of the sacrum, stage 2", "femur, left"
    if c_hi < len(text):
        nxt = [i for i in (text.find(",", c_hi + 1), text.find(";", c_hi + 1)) if i >= 0]
        n_hi = min(nxt) if nxt else len(text)
        if len(text[c_hi + 1 : n_hi].split()) <= 3 and _QUALIFIER.match(text, c_hi + 1):
            c_hi = n_hi
    clause = text[c_lo:c_hi]
    cs, ce = s - c_lo, e - c_lo
    near = text[max(0, s - 12) : e + 12]
    out: dict[str, str] = {}

    m = _nearest(_LATERALITY, clause, cs, ce)
    if m is not None and m.lastgroup:
        out["laterality"] = m.lastgroup

    m = _nearest(_ACUITY, clause[max(0, cs - 30) : ce + 15], min(cs, 30), min(cs, 30) + ce - cs)
    if m is not None and m.lastgroup:
        out["acuity"] = m.lastgroup

    # Episode of care, injuries only (ICD-10-CM Official Guidelines I.C.19.a).
    if _INJURY_WORDS.search(near):
        m = _nearest(_EPISODE, text, s, e)
        out["episode"] = m.lastgroup if m is not None and m.lastgroup else "initial"

    stage = _stage(clause, cs, ce)
    if stage:
        out["stage"] = stage

    typ = _type(clause, cs, ce, doc.text[start:end])
    if typ:
        out["type"] = typ
    return out


def _stage(text: str, s: int, e: int) -> str | None:
    if _ESRD.search(text):
        return "esrd"
    if _ULCER_CONTEXT.search(text):
        sp = _nearest(_ULCER_SPECIAL, text, s, e)
        if sp is not None and sp.lastgroup:
            return sp.lastgroup
    m = _nearest(_STAGE, text, s, e)
    if m is None:
        return None
    v = (m.group("v") or m.group("v2") or "").lower()
    sub = (m.group("sub") or m.group("sub2") or "").lower()
    return _ROMAN.get(v, v) + sub


def _type(text: str, s: int, e: int, mention: str) -> str | None:
    if _DM_CONTEXT.search(mention):
        m = _nearest(_DM_TYPE, text, s, e)
        if m is not None:
            if m.group("t"):
                v = m.group("t").lower()
                return {"i": "1", "ii": "2", "one": "1", "two": "2"}.get(v, v)
            if m.group("t1"):
                return "1"
            if m.group("t2"):
                return "2"
            if m.group("gest"):
                return "gestational"
            if m.group("sec"):
                return "secondary"
    if _HF_CONTEXT.search(mention):
        m = _nearest(_HF_TYPE, text, s, e)
        if m is not None and m.lastgroup:
            return m.lastgroup
    return None
