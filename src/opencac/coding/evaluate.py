"""CodiEsp evaluation: MAP exactly as the shared task defines it, micro P/R/F1, per-chapter.

MAP (CodiEsp tasks D and P, computed by the organisers with trectools): for every gold
document, the average precision of its ranked predicted codes (no cut-off; a code predicted
twice keeps its first rank; codes compared lowercase): ``AP = 1/|gold| * sum_k P@k * rel_k``;
MAP is the mean over gold documents, a gold document with no predictions scoring 0 and
predictions for documents not in the gold ignored.

Differences from the official script (TeMU-BSC/codiesp-evaluation-script, read not copied):
it also drops predicted codes that are not in the task's list of valid codes before ranking
(so an invalid code does not push valid ones down). That list is not shipped with the corpus;
pass ``valid_codes`` to reproduce it. Codes here are compared without dots as well, which
only matters for malformed predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opencac.coding.corpus import canon, parse_code_lines, read_utf8
from opencac.errors import BinaryInputError, EmptyInputError, InputError

# ICD-10-CM chapters by code range (ICD-10-CM Tabular List, chapter headings FY2026).
_CM_CHAPTERS: tuple[tuple[str, str, str], ...] = (
    ("A00", "B99", "1 Infectious"), ("C00", "D49", "2 Neoplasms"), ("D50", "D89", "3 Blood/immune"),
    ("E00", "E89", "4 Endocrine"), ("F01", "F99", "5 Mental"), ("G00", "G99", "6 Nervous"),
    ("H00", "H59", "7 Eye"), ("H60", "H95", "8 Ear"), ("I00", "I99", "9 Circulatory"),
    ("J00", "J99", "10 Respiratory"), ("K00", "K95", "11 Digestive"), ("L00", "L99", "12 Skin"),
    ("M00", "M99", "13 Musculoskeletal"), ("N00", "N99", "14 Genitourinary"),
    ("O00", "O9A", "15 Pregnancy"), ("P00", "P96", "16 Perinatal"), ("Q00", "Q99", "17 Congenital"),
    ("R00", "R99", "18 Symptoms/signs"), ("S00", "T88", "19 Injury/poisoning"),
    ("U00", "U85", "22 Special purposes"), ("V00", "Y99", "20 External causes"), ("Z00", "Z99", "21 Factors/Z"),
)
_PCS_SECTIONS = {
    "0": "0 Medical/Surgical", "1": "1 Obstetrics", "2": "2 Placement", "3": "3 Administration",
    "4": "4 Measurement/Monitoring", "5": "5 Extracorporeal assist", "6": "6 Extracorporeal therapies",
    "7": "7 Osteopathic", "8": "8 Other procedures", "9": "9 Chiropractic", "b": "B Imaging",
    "c": "C Nuclear medicine", "d": "D Radiation therapy", "f": "F Rehabilitation",
    "g": "G Mental health", "h": "H Substance abuse", "x": "X New technology",
}


def code_system(codes: Iterable[str]) -> str | None:
    """The code system of a set of codes, from their shapes: ``"icd10pcs"`` when one of them
    starts with a digit or has a letter second (0DJ08ZZ, BW03), ``"icd10cm"`` when all are a
    letter and a digit (B99.9, C67.9), None for no codes."""
    seen = False
    for code in codes:
        c = canon(code)
        if not c:
            continue
        seen = True
        if c[0].isdigit() or (len(c) > 1 and not c[1].isdigit()):
            return "icd10pcs"
    return "icd10cm" if seen else None


def chapter_of(code: str, system: str | None = None) -> str:
    """ICD-10-CM chapter or ICD-10-PCS section label of a code (``"?"`` if unknown).

    Args:
        code: the code, dotted or canonical.
        system: the code system of the file it comes from (:func:`code_system`). Without it, a
            dotted or 3-character code is ICD-10-CM and a dotless 4- or 7-character code that
            starts with a PCS section character ICD-10-PCS - which misreads canonical ICD-10-CM
            codes such as ``b999`` (B99.9) as PCS section B.
    """
    c = canon(code)
    if not c:
        return "?"
    if system is not None:
        is_pcs = system == "icd10pcs"
    else:
        is_pcs = "." not in code and len(c) in (4, 7) and c[0] in _PCS_SECTIONS
    if not is_pcs:
        cat = c[:3].upper()
        for lo, hi, name in _CM_CHAPTERS:
            if lo <= cat <= hi:
                return name
        return "?"
    return _PCS_SECTIONS.get(c[0], "?")


def average_precision(ranked: Sequence[str], gold: Iterable[str]) -> float:
    """Average precision of one ranked list against a gold set (codes in canonical form).

    Duplicates in ``ranked`` keep their first position. Returns 0 for an empty gold set.
    """
    g = set(gold)
    if not g:
        return 0.0
    seen: set[str] = set()
    hits = 0
    total = 0.0
    k = 0
    for code in ranked:
        if code in seen:
            continue
        seen.add(code)
        k += 1
        if code in g:
            hits += 1
            total += hits / k
    return total / len(g)


def mean_average_precision(
    gold: Mapping[str, Iterable[str]],
    pred: Mapping[str, Sequence[str]],
    valid_codes: set[str] | None = None,
) -> float:
    """CodiEsp MAP: mean over gold documents of :func:`average_precision`.

    Args:
        gold: ``{doc_id: gold codes}`` (any case / dotted form).
        pred: ``{doc_id: ranked codes, best first}``.
        valid_codes: if given, predicted codes not in it are dropped first (official behaviour).
    """
    if not gold:
        raise InputError("the gold standard holds no documents.")
    vc = {canon(c) for c in valid_codes} if valid_codes is not None else None
    total = 0.0
    for doc_id, g in gold.items():
        ranked = [canon(c) for c in pred.get(doc_id, [])]
        if vc is not None:
            ranked = [c for c in ranked if c in vc]
        total += average_precision(ranked, {canon(c) for c in g})
    return total / len(gold)


@dataclass(slots=True)
class Prediction:
    """One predicted row: code, optional confidence, optional selected flag."""

    code: str
    confidence: float | None = None
    selected: bool | None = None


def _tsv_lines(p: Path, what: str) -> list[str]:
    """The lines of a gold or predictions file, with one clear error for a missing, unreadable,
    binary, non-UTF-8 or empty file."""
    if not p.is_file():
        raise InputError(f"{what} {p} does not exist." if not p.exists() else f"{what} {p} is not a file.")
    text = read_utf8(p, InputError, BinaryInputError, expected="'doc_id<TAB>code' lines")
    if not text.strip():
        raise EmptyInputError(f"{what} {p.name} is empty; expected 'doc_id<TAB>code' lines.")
    return text.split("\n")


def read_gold(path: str | Path) -> dict[str, list[str]]:
    """Read a gold ``doc_id<TAB>code`` file into ``{doc_id: [canonical codes]}``."""
    p = Path(path)
    return parse_code_lines(_tsv_lines(p, "gold file"), p.name, InputError)


def read_predictions(path: str | Path) -> dict[str, list[Prediction]]:
    """Read a predictions file: ``doc_id<TAB>code[<TAB>confidence[<TAB>selected]]``, best first."""
    p = Path(path)
    out: dict[str, list[Prediction]] = {}
    for n, line in enumerate(_tsv_lines(p, "predictions file"), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise InputError(f"{p.name} line {n}: expected 'doc_id<TAB>code[<TAB>confidence]'.")
        conf: float | None = None
        sel: bool | None = None
        if len(parts) >= 3 and parts[2].strip():
            try:
                conf = float(parts[2])
            except ValueError:
                raise InputError(f"{p.name} line {n}: confidence {parts[2]!r} is not a number.") from None
        if len(parts) >= 4 and parts[3].strip():
            sel = parts[3].strip().lower() in ("1", "true", "yes", "y", "selected")
        out.setdefault(parts[0].strip(), []).append(Prediction(canon(parts[1]), conf, sel))
    return out


@dataclass(slots=True)
class EvaluationReport:
    """Result of :func:`evaluate`.

    Attributes:
        map: CodiEsp MAP.
        precision / recall / f1: micro-averaged over gold documents at the selection rule.
        selection: how the predicted set was chosen (``selected column``, ``confidence >= t``,
            ``top-k``).
        n_gold_docs / n_gold_codes / n_pred_docs: counts.
        chapters: ``{chapter: {"gold", "tp", "fp", "fn", "precision", "recall", "f1"}}``.
    """

    map: float
    precision: float
    recall: float
    f1: float
    selection: str
    n_gold_docs: int
    n_gold_codes: int
    n_pred_docs: int
    chapters: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "map": self.map, "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "selection": self.selection, "n_gold_docs": self.n_gold_docs,
            "n_gold_codes": self.n_gold_codes, "n_pred_docs": self.n_pred_docs, "chapters": self.chapters,
        }


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate(
    gold: Mapping[str, Sequence[str]],
    pred: Mapping[str, Sequence[Prediction]],
    threshold: float = 0.5,
    valid_codes: set[str] | None = None,
) -> EvaluationReport:
    """MAP plus micro P/R/F1 and a per-chapter breakdown.

    The predicted *set* for P/R/F1: the ``selected`` column when the file has one; else the
    codes with ``confidence >= threshold`` when it has confidences; else the top-k codes of
    each document, k = the gold standard's average number of codes per document (rounded).
    """
    ranked = {d: [p.code for p in ps] for d, ps in pred.items()}
    m = mean_average_precision(gold, ranked, valid_codes)
    n_gold_codes = sum(len(set(map(canon, g))) for g in gold.values())
    rows = [p for ps in pred.values() for p in ps]
    if rows and all(p.selected is not None for p in rows):
        selection = "selected column"
        chosen = {d: [p.code for p in ps if p.selected] for d, ps in pred.items()}
    elif rows and all(p.confidence is not None for p in rows):
        selection = f"confidence >= {threshold:g}"
        chosen = {d: [p.code for p in ps if (p.confidence or 0.0) >= threshold] for d, ps in pred.items()}
    else:
        k = max(1, round(n_gold_codes / max(1, len(gold))))
        selection = f"top-{k} (gold average codes per document)"
        chosen = {d: list(dict.fromkeys(c for c in codes))[:k] for d, codes in ranked.items()}
    tp = fp = fn = 0
    chapters: dict[str, dict[str, float]] = {}
    # the gold file's codes (canonical, without their dots) tell the system of the whole file
    system = code_system(c for g in gold.values() for c in g)

    def bump(ch: str, key: str) -> None:
        chapters.setdefault(ch, {"gold": 0, "tp": 0, "fp": 0, "fn": 0})[key] += 1

    for doc_id, g in gold.items():
        gs = {canon(c) for c in g}
        ps = set(chosen.get(doc_id, []))
        for c in gs:
            bump(chapter_of(c, system), "gold")
        for c in ps & gs:
            tp += 1
            bump(chapter_of(c, system), "tp")
        for c in ps - gs:
            fp += 1
            bump(chapter_of(c, system), "fp")
        for c in gs - ps:
            fn += 1
            bump(chapter_of(c, system), "fn")
    p, r, f = _prf(tp, fp, fn)
    for ch in chapters.values():
        ch["precision"], ch["recall"], ch["f1"] = _prf(int(ch["tp"]), int(ch["fp"]), int(ch["fn"]))
    return EvaluationReport(m, p, r, f, selection, len(gold), n_gold_codes, len(pred),
                            dict(sorted(chapters.items(), key=lambda kv: -kv[1]["gold"])))
