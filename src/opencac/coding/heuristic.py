"""The out-of-the-box scorer (``opencac.coding.heuristic.v3``): dictionary candidates ranked
and given a confidence with no trained model.

A candidate's score is its best dictionary match's quality (exact over word-bag matches;
longer, more specific phrases; tabular titles over index paths), with a bonus for a condition
mentioned in several sentences. It is lowered for:

- a word-bag match, by the square of its match score (a bag that finds the phrase's words
  spread over a sentence is weaker evidence than its score alone says);
- a word-bag match of a residual "other ..." title (or an index path ending "specified NEC")
  whose "other" / "specified" the note does not say ("heart failure" is not I50.89 "Other heart
  failure");
- an ICD-10-CM header that needs more characters, or its completion to the unspecified
  subcode: the billable codes beside it are what gets reported;
- an encounter-reason code (Z00-Z13) read outside the reason for the visit, the assessment
  or the diagnoses;
- matches that are only negated, family history, hypothetical or inside a longer match;
- a complete ICD-10-PCS code whose contrast (CT, MRI, fluoroscopy) or open approach only the
  code sets give, not the note: its table prefix leads; a plain film's or ultrasound's prefix
  beside its complete code; and the excision or resection reading of an "-ectomy" that the note's
  extent words do not support;
- the side of an Excludes1 pair among a note's best diagnosis candidates whose note names the
  other ("pain" R52 beside "abdominal pain" R10.9), or the weaker side of a mutual pair.

The confidence is the score mapped through a fixed monotone curve (:data:`CALIBRATION`),
fitted once on the 500 coded notes of CodiEsp's train split (CC BY 4.0) with
``bench/oob_calibration.py``, which rewrites the table below. It is the observed share of
dictionary candidates with that score that the corpus's coders coded. On another
organisation's notes it is an estimate until a model is trained on their own coded
documents (``opencac train``), which calibrates on them. The threshold that marks a
suggestion ``selected`` (:data:`THRESHOLD`) is the highest one whose micro F1 on the same notes
was within 0.005 of the best: of near-equal operating points, the more precise. A header (a
category with codes below it) is never selected out of the box.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from opencac.coding.history import HISTORY_OF

#: Component name recorded with results and in the benchmark notes.
VERSION = "opencac.coding.heuristic.v3"

#: "drug": a drug the note names, as the status of its long-term use (Z79.-): most drugs a note
#: names are no long-term therapy (an antibiotic for this infection).
_SOURCE_WEIGHT = {"tabular": 1.0, "inclusion": 0.95, "index": 0.9, "clinical": 0.85, "neoplasm": 0.75, "eindex": 0.45,
                  "pcs-index": 0.8, "pcs-table": 0.7, "imaging": 0.95, "pcs-bodypart": 0.9,
                  "drug": 0.1}
_ASSERTION_WEIGHT = {"affirmed": 1.0, "uncertain": 0.7, "historical": 0.6, "hypothetical": 0.3,
                     "negated": 0.25, "family": 0.2}
_OTHER = re.compile(r"\bothers?\b|\bspecified\b")  # the index's "specified NEC" is an "other" code

#: Factor for a header (or its completion) that needs more characters, by code system. PCS
#: table prefixes (``BW20``) are what many coders report for imaging, so they lose less.
_HEADER_FACTOR = {"icd10cm": 0.2, "icd10pcs": 0.9}
#: Factor for a word-bag match of an "other ..." title whose "other" is not in the note's words.
_OTHER_FACTOR = 0.2
#: Factor for an encounter-reason code (Z00-Z13: examinations, screening, follow-up,
#: observation) read outside the sections that state why the patient came: a narrative's
#: "at follow-up" or "laboratory tests were normal" is no reason for the encounter (Z09 and
#: Z00.00 were the out-of-the-box engine's commonest wrong codes on CodiEsp train, which codes
#: none of Z00-Z13).
_ENCOUNTER_FACTOR = 0.15
#: Factor for a diagnosis phrase inside a longer match that names a more specific form of it
#: (``DictHit.specified``: "hernia" in "inguinal hernia", "renal failure" in "chronic renal
#: failure"): a coder reports the specific code, not both. Also for a procedure phrase of the
#: clinical list ("eye fundus", both eyes, inside "right eye fundus").
_SPECIFIED_FACTOR = 0.15
_REASON_SECTIONS = frozenset({"hpi", "assessment", "diagnoses"})
#: Factor for a history code read from a past or a relative's condition (opencac.coding.history):
#: the coders of a corpus code some of them, many not. "drug" above and this factor were chosen on
#: CodiEsp train (out-of-the-box D MAP 0.4334 without either kind of hit; with them at 0.2 / 0.5,
#: 0.4337; at 0.1 / 0.2, 0.4361; lower changed less than 0.0003).
_HISTORY_FACTOR = 0.2
#: Factor for a status code (Z17 receptor status, Z90-Z99 absence, presence, transplant, dependence)
#: matched by words that do not say "status": "kidney transplant" or "bariatric surgery" in a note
#: is more often the procedure the narrative tells than a status its coders report (chosen on
#: CodiEsp train with the index's "Status" phrases read without the word).
_STATUS_FACTOR = 0.3


def _status_without_word(h: Any) -> bool:
    return (h.system == "icd10cm" and (h.code[:2] == "Z9" or h.code[:3] == "Z17")
            and "status" not in h.phrase.lower())


def _encounter_reason(code: str) -> bool:
    return code[:1] == "Z" and code[1:3].isdigit() and int(code[1:3]) <= 13


def hit_weight(h: Any) -> float:
    """The evidence one dictionary hit gives its code (its best hit makes a candidate's score)."""
    w: float = h.score * _SOURCE_WEIGHT.get(h.source, 0.5) * (1.0 + 0.25 * min(h.n_tokens - 1, 4))
    if h.score < 1.0:  # a word-bag match
        w *= h.score
        if _OTHER.search(h.phrase) and not _OTHER.search(h.text.lower()):
            w *= _OTHER_FACTOR
    if h.subsumed:
        w *= 0.85
        if h.specified and (h.system == "icd10cm" or h.source == "clinical"):
            w *= _SPECIFIED_FACTOR
    if h.incomplete:
        w *= 0.8
    if h.system == "icd10pcs" and h.source == "pcs-table" and h.n_tokens < 2:
        w *= 0.3  # a lone body part such as "lung" is no procedure
    if h.system == "icd10cm" and _encounter_reason(h.code) and h.section not in _REASON_SECTIONS:
        w *= _ENCOUNTER_FACTOR
    if HISTORY_OF in h.attributes:
        w *= _HISTORY_FACTOR
    if _status_without_word(h):
        w *= _STATUS_FACTOR
    return w * _ASSERTION_WEIGHT.get(h.assertion, 1.0)


#: Factor for a complete code whose value of an axis only the code sets give, not the note: a
#: fluoroscopy, CT or MRI code's "no contrast" (5th character Z) or a surgical code's open
#: approach that the note does not state. Its table prefix (BW20, "CT of the abdomen"; 0FT4,
#: "cholecystectomy") is what the note supports, and the rules ask the coder for the value.
#: Plain radiography and ultrasound are done without contrast as a rule, so their "ZZZ" code
#: stands (CodiEsp's coders: BW03ZZZ for a chest X-ray, BW40ZZZ for an abdominal ultrasound, but
#: BW20 for an abdominal CT, B030 for a brain MRI).
_ASSUMED_FACTOR = 0.3
#: Factor for the table prefix of a plain radiography or ultrasound study proposed with its "ZZZ" code.
_PLAIN_PREFIX_FACTOR = 0.5


def _assumed_no_contrast(c: Any) -> bool:
    """A complete fluoroscopy, CT or MRI code without contrast (BW20ZZZ) that no sentence of its
    hits says was done without contrast."""
    code = c.code.upper()
    return (len(code) == 7 and code[0] == "B" and code[2] in "123" and code[4:] == "ZZZ"
            and not any(h.attributes.get("contrast") == "none" for h in c.hits))


def _every_hit(c: Any, attribute: str, value: str) -> bool:
    """Every hit of the candidate (at least one) carries ``attributes[attribute] == value``."""
    return bool(c.hits) and all(h.attributes.get(attribute) == value for h in c.hits)


def _assumed_open(c: Any) -> bool:
    """A complete medical and surgical code whose open approach only the index gives
    ("cholecystectomy" 0FT40ZZ): its table prefix (0FT4) is what the note supports."""
    return _every_hit(c, "approach", "assumed")


def _plain_prefix(c: Any) -> bool:
    """The table prefix of a plain radiography or ultrasound study (BW03) that comes with its
    complete "ZZZ" code (BW03ZZZ, proposed unless the note says contrast was used)."""
    code = c.code.upper()
    return len(code) == 4 and code[0] == "B" and code[2] in "04" and "completed" in c.via


def _other_extent(c: Any) -> bool:
    """An excision where the note does not say that only part of the body part was removed, or a
    resection where it does (:func:`~opencac.coding.dictionary.mark_extent`)."""
    return _every_hit(c, "extent", "other")


def heuristic_score(c: Any, system: str) -> float:
    """Score of one dictionary-only candidate (higher is better; see the module notes)."""
    best = max(map(hit_weight, c.hits), default=0.0)
    n_sent = len({h.sentence for h in c.hits})
    score = best * (1.0 + 0.2 * min(n_sent - 1, 3))
    if system == "icd10pcs":
        if _assumed_no_contrast(c) or _assumed_open(c):
            score *= _ASSUMED_FACTOR
        elif _plain_prefix(c):
            score *= _PLAIN_PREFIX_FACTOR
        if _other_extent(c):
            score *= _ASSUMED_FACTOR
    if "completion" in c.via or c.feat("kb_known") and not c.feat("billable") and (c.feat("code_len") or 0) < 7:
        # a header, or a completion resting on its header's evidence, ranks after the billable
        # codes found for the same words
        score *= _HEADER_FACTOR.get(system, 0.8)
    return score


# -- calibration (written by bench/oob_calibration.py; do not edit by hand) --------------------
# BEGIN CALIBRATION
CALIBRATION: dict[str, tuple[tuple[float, float], ...]] = {
    "icd10cm": (
        (0.0006, 0.0), (0.005, 0.0), (0.0051, 0.0069), (0.0095, 0.0069),
        (0.0096, 0.0101), (0.0174, 0.0101), (0.0176, 0.0432), (0.0225, 0.0432),
        (0.0229, 0.0467), (0.0251, 0.0467), (0.0253, 0.047), (0.0316, 0.047),
        (0.0319, 0.0523), (0.0535, 0.0523), (0.0537, 0.0591), (0.062, 0.0591),
        (0.0625, 0.0864), (0.0672, 0.0864), (0.0675, 0.1429), (0.07, 0.1429),
        (0.0703, 0.1499), (0.114, 0.1499), (0.1147, 0.1814), (0.12, 0.1814),
        (0.1202, 0.1905), (0.21, 0.1905), (0.2109, 0.2322), (0.2481, 0.2322),
        (0.2494, 0.3061), (0.3099, 0.3061), (0.3125, 0.3775), (0.3563, 0.3775),
        (0.357, 0.4252), (0.4397, 0.4252), (0.443, 0.4868), (0.4781, 0.4868),
        (0.48, 0.5271), (0.5379, 0.5271), (0.54, 0.6062), (0.8032, 0.6062),
        (0.8075, 0.6344), (0.9844, 0.6344), (1.0, 0.6632), (1.1875, 0.6632),
        (1.19, 0.7086), (1.2644, 0.7086), (1.275, 0.7133), (2.45, 0.7133),
    ),
    "icd10pcs": (
        (0.0096, 0.0251), (0.109, 0.0251), (0.1094, 0.0864), (0.1742, 0.0864),
        (0.1758, 0.0877), (0.1836, 0.0877), (0.1848, 0.1116), (0.292, 0.1116),
        (0.2938, 0.1129), (0.576, 0.1129), (0.5859, 0.2418), (0.6912, 0.2418),
        (0.72, 0.5113), (0.7711, 0.5113), (0.8, 0.6759), (0.8721, 0.6759),
        (0.875, 0.712), (1.2096, 0.712), (1.224, 0.806), (1.785, 0.806),
    ),
}
THRESHOLD: dict[str, float] = {"icd10cm": 0.3775, "icd10pcs": 0.2418}
FITTED_ON = 'CodiEsp train (500 notes)'
# END CALIBRATION


@functools.lru_cache(maxsize=8)
def _curve(pts: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p[0] for p in pts], dtype=np.float64), np.array([p[1] for p in pts], dtype=np.float64)


def confidence(scores: Sequence[float] | np.ndarray, system: str) -> np.ndarray:
    """Calibrated confidences of heuristic scores: the curve of :data:`CALIBRATION` for
    ``system``, linear between its points and flat beyond its ends."""
    x, y = _curve(tuple(CALIBRATION[system]))
    return np.interp(np.asarray(scores, dtype=np.float64), x, y)


#: Factor for a diagnosis candidate whose Excludes1 note names another of the note's best
#: candidates ("pain" R52 beside "abdominal pain" R10.9: R52 Excludes1 "localized pain - code to
#: pain by site, such as abdomen pain (R10.-)"; "dyspnea" R06.00 beside acute respiratory failure
#: J96.01), or for the weaker one when each names the other (E10 / E11). ICD-10-CM Official
#: Guidelines I.A.12.a: the two are not coded together.
_EXCLUDES1_FACTOR = 0.3
#: How many of a note's best diagnosis candidates compete (the rest are too weak to matter).
_EXCLUDES1_TOP = 15


def excludes1_competition(kb: Any, cands: Sequence[Any], scores: np.ndarray) -> np.ndarray:
    """Scores with one side of every Excludes1 pair among the note's best candidates lowered by
    :data:`_EXCLUDES1_FACTOR`: the code whose note names the other, or the weaker of a pair whose
    notes name each other (out of the box, ICD-10-CM only)."""
    if kb is None or len(scores) < 2:
        return scores
    top = [int(i) for i in np.argsort(-scores, kind="stable")[:_EXCLUDES1_TOP] if scores[i] > 0]
    code_at: dict[str, int] = {}
    for i in top:
        obj = kb.find(cands[i].code)
        if obj is not None:
            code_at.setdefault(obj.code, i)
    out = scores.copy()
    pairs = {(a, b) for a, b, _text in kb.excludes1_pairs(list(code_at))}
    for a, b in pairs:
        ia, ib = code_at.get(a), code_at.get(b)
        if ia is None or ib is None:
            continue
        if (b, a) in pairs:  # each excludes the other (E10 / E11): the weaker one
            weak = ia if scores[ia] < scores[ib] else ib if scores[ib] < scores[ia] else None
        else:  # the code whose note names the other ("Pain, unspecified" R52: "localized pain - code to pain by site")
            weak = ia
        if weak is not None:
            out[weak] = scores[weak] * _EXCLUDES1_FACTOR
    return out
