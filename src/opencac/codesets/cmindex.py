"""The ICD-10-CM alphabetic index, external-cause index, neoplasm table and drug table.

Two input formats are accepted, per file:

* the official CMS XML (``ICD10CM.index`` documents; schema ``icd10cm-index-<year>.xsd``):
  ``letter > mainTerm > term[@level]`` with ``title`` (text + ``nemod``), ``see``, ``seeAlso``,
  ``code``, ``subcat``, ``manif`` and table ``cell[@col]`` columns named by ``indexHeading``;
* the flattened CSV (``RowID, Letter, Level, Term, See, SeeAlso, NonEssModif, Code`` for the
  index; table columns for drugs and neoplasms).

Rows become ``IndexEntry``-shaped tuples: the term hierarchy is expanded into full phrases
(main term + subterms), nonessential modifiers are optional words (ICD-10-CM Official
Guidelines I.A.7: "supplementary words ... do not affect the code"; the phrase is emitted
with and without them), and ``see`` / ``see also`` references are resolved to the target
term's code (Guidelines I.A.16: "see" must be followed; "see also" may be).
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencac.errors import CodeSetSourceError

KINDS = ("index", "eindex", "neoplasm", "drug")

#: table column -> (key, phrase templates; {s} = the site / substance)
#: The morphology words follow the index's "see Neoplasm, <column>, by site" entries
#: (Carcinoma / Adenocarcinoma / Sarcoma -> malignant; Metastasis -> secondary; Adenoma -> benign;
#: Tumor / Neoplasia -> unspecified behavior).
NEOPLASM_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("malignant primary", ("malignant neoplasm of {s}", "cancer of {s}", "{s} cancer", "carcinoma of {s}",
                           "{s} carcinoma", "adenocarcinoma of {s}", "{s} adenocarcinoma", "sarcoma of {s}",
                           "{s} sarcoma", "malignant tumor of {s}", "{s} malignancy")),
    ("malignant secondary", ("secondary malignant neoplasm of {s}", "metastasis to {s}", "{s} metastasis",
                             "{s} metastases", "metastases to {s}")),
    ("ca in situ", ("carcinoma in situ of {s}",)),
    ("benign", ("benign neoplasm of {s}", "benign tumor of {s}", "adenoma of {s}", "{s} adenoma")),
    ("uncertain behavior", ("neoplasm of uncertain behavior of {s}",)),
    ("unspecified behavior", ("neoplasm of unspecified behavior of {s}", "tumor of {s}", "{s} tumor",
                              "{s} neoplasm", "neoplasia of {s}")),
)
DRUG_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("poisoning accidental", ("poisoning by {s}", "{s} poisoning", "accidental poisoning by {s}", "{s} overdose")),
    ("poisoning intentional self-harm", ("intentional self-harm poisoning by {s}", "intentional {s} overdose")),
    ("poisoning assault", ("assault poisoning by {s}",)),
    ("poisoning undetermined", ("poisoning by {s} undetermined intent",)),
    ("adverse effect", ("adverse effect of {s}", "{s} adverse effect", "{s} toxicity")),
    ("underdosing", ("underdosing of {s}",)),
)
_CSV_COLS = {
    "neoplasm": ("MalignantPrimary", "MalignantSecondary", "CaInSitu", "Benign", "UncertainBehavior",
                 "UnspecifiedBehavior"),
    "drug": ("PoisoningAccidental", "PoisoningIntentionalSelfHarm", "PoisoningAssault", "PoisoningUndetermined",
             "AdverseEffect", "Underdosing"),
}
_CODE_RE = re.compile(r"^[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?-?$")


@dataclass
class Row:
    """One index row in document order (format-neutral)."""

    level: int
    title: str
    nemod: tuple[str, ...] = ()
    see: str = ""
    see_also: str = ""
    code: str = ""
    cells: list[str] = field(default_factory=list)  # table columns, in table order
    manif: str = ""


_CROSS_REF = re.compile(r"^see(?:\s+also)?\b", re.I)


def _mods(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in re.findall(r"\(([^()]*)\)", text or "") if m.strip())


def csv_title(term: str, nonessential: str) -> tuple[str, tuple[str, ...]]:
    """A flattened CSV row's title and its nonessential modifiers.

    The flattening cuts each title at its first parenthesis: ``Term`` holds the words before it
    and ``NonEssModif`` the rest, essential words included ("acute and" + "(on) chronic
    (congestive)" is "acute and (on) chronic (congestive)"; "Amnes" + "(t)ic syndrome" is
    "Amnes(t)ic syndrome"). Read together, as the XML reads a title: words outside parentheses are
    essential, each parenthesised group a nonessential modifier (``read_csv`` also restores the
    two titles whose last word the flattening lost, ``_complete_acuity``).
    """
    essential: list[str] = []
    mods: list[str] = []
    depth, group = 0, ""
    for ch in f"{term.strip()}{nonessential.strip()}":
        if ch == "(":
            group = "" if depth == 0 else group + ch
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth:
                group += ch
            else:
                mods.extend(_mods(f"({group})"))
        elif depth:
            group += ch
        else:
            essential.append(ch)
    title = " ".join("".join(essential).split())
    return re.sub(r"\s+,", ",", title), tuple(mods)


def _complete_acuity(title: str, mods: tuple[str, ...], rows: list[Row], level: int) -> str:
    """Two flattened rows lost the last word of "acute and (on) chronic": "acute and" + "(on)"
    (Failure, respiratory, J96.2-) and "and" + "(on)" under "acute" (Failure, heart, right,
    I50.813). The missing word is the other acuity of the one the title or its parent (the last
    of ``rows`` above ``level``) names."""
    if mods != ("on",) or not (title == "and" or title.endswith(" and")):
        return title
    ref = title[:-3].strip() or next((x.title for x in reversed(rows) if x.level < level), "")
    other = "chronic" if "acute" in ref.lower() else "acute" if "chronic" in ref.lower() else ""
    return f"{title} {other}" if other else title


def _clean_code(value: str) -> str:
    v = (value or "").strip()
    return v if _CODE_RE.match(v) else ""


# --------------------------------------------------------------------------- readers
def _detect_csv(header: list[str], name: str) -> str | None:
    h = set(header)
    if "MalignantPrimary" in h:
        return "neoplasm"
    if "PoisoningAccidental" in h:
        return "drug"
    if {"Level", "Term"} <= h and "Code" in h:
        return "eindex" if "extern" in name.lower() else "index"
    return None


def read_csv(path: Path) -> tuple[str, list[Row]]:
    """Read a flattened index CSV: ``(kind, rows)``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            kind = _detect_csv(list(reader.fieldnames or []), path.name)
            if kind is None:
                raise CodeSetSourceError(
                    f"{path} is not an ICD-10-CM index CSV (expected columns Level, Term, See, SeeAlso, "
                    "NonEssModif, Code, or the drug/neoplasm table columns)")
            rows = []
            for r in reader:
                try:
                    level = int(r.get("Level") or 0)
                except ValueError as exc:
                    raise CodeSetSourceError(f"{path}: bad Level {r.get('Level')!r} in row {r.get('RowID')}") from exc
                cells = [(r.get(c) or "").strip() for c in _CSV_COLS.get(kind, ())]
                title, mods = csv_title(r.get("Term") or "", r.get("NonEssModif") or "")
                title = _complete_acuity(title, mods, rows, level)
                code = _clean_code(r.get("Code") or "")
                if mods == ("o",) and " " not in title:
                    # "Cancer(o)phobia" flattened to "Cancer" + "(o)": the word after the combining
                    # vowel is lost, and "Cancer" would read as F45.29. The row stays (its place in
                    # the hierarchy) without its code.
                    code = ""
                rows.append(Row(level, title, mods,
                                (r.get("See") or "").strip(), (r.get("SeeAlso") or "").strip(), code, cells))
    except UnicodeDecodeError as exc:
        raise CodeSetSourceError(f"{path} is not UTF-8 text: {exc}") from exc
    return kind, rows


def _title(el: ET.Element | None) -> tuple[str, tuple[str, ...]]:
    if el is None:
        return "", ()
    text = el.text or ""
    mods: tuple[str, ...] = ()
    for child in el:
        if child.tag == "nemod":
            mods += _mods("".join(child.itertext()))
        elif child.tag in ("diff",):
            text += "".join(child.itertext())
        text += child.tail or ""
    return " ".join(text.split()), mods


def read_xml(path: Path) -> tuple[str, list[Row]]:
    """Read an official CMS ICD-10-CM index XML (``ICD10CM.index``): ``(kind, rows)``."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CodeSetSourceError(f"cannot read ICD-10-CM index XML {path}: {exc}") from exc
    if root.tag != "ICD10CM.index":
        raise CodeSetSourceError(f"{path} is not an ICD-10-CM index XML (root <{root.tag}>, expected <ICD10CM.index>)")
    heads = {int(h.get("col", "0")): " ".join("".join(h.itertext()).split()).lower()
             for h in root.findall("indexHeading/head")}
    title = " ".join("".join(root.find("title").itertext()).split()).lower() if root.find("title") is not None else ""
    first = heads.get(1, "")
    if first.startswith("neoplasm"):
        kind = "neoplasm"
    elif first.startswith("substance") or first.startswith("drug"):
        kind = "drug"
    elif "external" in title or "extern" in path.name.lower() or "eindex" in path.name.lower():
        kind = "eindex"
    else:
        kind = "index"
    ncols = max(heads) if heads else 0
    rows: list[Row] = []

    def walk(el: ET.Element, level: int) -> None:
        title_el = el.find("title")
        if title_el is None:
            title_el = el.find("diff")
        text, mods = _title(title_el)
        cells = [""] * max(0, ncols - 1)
        for c in el.findall("cell"):
            col = int(c.get("col", "0"))
            if 2 <= col <= ncols:
                cells[col - 2] = " ".join("".join(c.itertext()).split())
        code = _clean_code("".join(el.findtext("code") or "")) or _clean_code(el.findtext("subcat") or "")
        rows.append(Row(level, text, mods, " ".join((el.findtext("see") or "").split()),
                        " ".join((el.findtext("seeAlso") or "").split()), code, cells,
                        _clean_code(el.findtext("manif") or "")))
        for t in el.findall("term"):
            walk(t, int(t.get("level", str(level + 1))))

    for letter in root.findall("letter"):
        for mt in letter.findall("mainTerm"):
            walk(mt, 0)
    return kind, rows


# --------------------------------------------------------------------------- expansion
#: Main terms listing forms of one word that share fewer than four letters ("Tear, torn": a note's
#: "meniscus tear", "torn rotator cuff"); the stem rule of :func:`_stem_alias` would read them as a
#: term and its qualifier ("Gout, chronic"), as it must for "Constricting, congenital".
_FORMS_OF_ONE_WORD = frozenset({
    "tear, torn", "body, bodies", "fusion, fused", "virus, viral", "vision, visual", "web, webbed",
    "discitis, diskitis", "lax, laxity", "dry, dryness", "fetus, fetal", "femur, femoral", "tube, tubal, tubular",
    "pons, pontine", "sty, stye", "nanism, nanosomia", "dyshidrosis, dysidrosis"})


def _stem_alias(title: str) -> str:
    """``'Diabetes, diabetic'`` -> ``'Diabetes'``: drop comma variants sharing a stem (or listed
    in :data:`_FORMS_OF_ONE_WORD`)."""
    parts = [p.strip() for p in title.split(",")]
    if len(parts) > 1 and (all(p[:4].lower() == parts[0][:4].lower() for p in parts[1:] if p)
                           or title.strip().lower() in _FORMS_OF_ONE_WORD):
        return parts[0]
    return title


def _aliases(title: str) -> list[str]:
    """``'Cryptorchid, cryptorchism, cryptorchidism'`` -> the words of each spelling the index
    lists (comma variants sharing a stem, see :func:`_stem_alias`); ``[]`` for any other title."""
    if _stem_alias(title) == title:
        return []
    return [_words(re.sub(r"\([^)]*\)", "", p.strip())) for p in title.split(",") if p.strip()]


def _words(title: str) -> str:
    t = re.sub(r"\[[^\]]*\]", "", title)  # [ECG] abbreviations
    t = re.sub(r"\s+NEC\b|\s+NOS\b", "", t)
    t = _stem_alias(t)
    return " ".join(t.replace(",", " ").split())


_AS_CAUSE = re.compile(r",?\s*as (?:the )?cause of (?:a )?diseases? classified\s+elsewhere\s*$", re.I)
#: Levels that only say what kind of organism follows ("Infection > bacterial NOS > as cause of
#: disease classified elsewhere > Enterococcus"); the organism's name is the rest.
_ORGANISM_KINDS = frozenset({"infection", "bacterial", "virus viral", "viral", "virus"})


_UNSPECIFIED_SITE = frozenset({"unspecified site", "site unspecified"})
_STATUS_MAIN = frozenset({"status", "status post"})
#: Main terms whose second word is the default a note leaves unsaid: a fracture is traumatic unless
#: the note says otherwise (the index's "Fracture, traumatic"; "Fracture, pathological" is its own
#: main term), an injury's wound is open ("Wound, open"): "rib fracture", "wound in the thigh"
_DEFAULT_MAIN = {"fracture traumatic": "fracture", "wound open": "wound"}
#: "Status > absence, epileptic" is a state (status epilepticus), not a status post
_A_STATE = re.compile(r"epilep|convuls|asthmatic|migrain", re.I)


def _plain_form(words: list[str]) -> str:
    """A term path as notes word it without the word or level that only qualifies it: a main term
    of :data:`_DEFAULT_MAIN` without its default ("Fracture, traumatic > rib": "fracture rib"), a
    morphology without its last level "unspecified site" ("Neuroblastoma > unspecified site":
    "neuroblastoma"), or the main term "Status" before at least two words ("Status > estrogen
    receptor > positive": "estrogen receptor positive"; "Status > colostomy" stays, a bare
    procedure name is no status). Empty where none applies."""
    low = [w.lower() for w in words]
    if len(words) > 1 and low[0] in _DEFAULT_MAIN:
        return " ".join(w for w in (_DEFAULT_MAIN[low[0]], *words[1:]) if w)
    if len(words) > 1 and low[-1] in _UNSPECIFIED_SITE:
        return " ".join(w for w in words[:-1] if w)
    rest = " ".join(w for w in words[1:] if w)
    if low[0] in _STATUS_MAIN and len(rest.split()) >= 2 and not _A_STATE.search(rest):
        return rest
    return ""


def _organism_words(words: list[str]) -> str:
    """The organism a path's "as cause of disease classified elsewhere" level names, as notes
    write it: ``Staphylococcus > as cause ... > aureus`` -> ``"Staphylococcus aureus"``, ``Infection >
    Klebsiella > as cause ...`` -> ``"Klebsiella"``; ``""`` for a path without that level or whose
    organism is no more than a kind ("Virus > as cause ..." -> B97.89 would read every "virus")."""
    at = next((i for i, w in enumerate(words) if _AS_CAUSE.search(w)), None)
    if at is None:
        return ""
    head = _AS_CAUSE.sub("", words[at]).strip()  # "aeruginosa, as cause ..." -> "aeruginosa"
    parts = [*words[:at], head, *words[at + 1:]]
    if any(re.match(r"(?:other )?specified\b", w, re.I) for w in parts):
        return ""  # "Staphylococcus > as cause ... > specified NEC" (B95.7) names no organism
    kept = [w for w in parts if w and w.lower() not in _ORGANISM_KINDS]
    if not kept:
        return ""
    if words[0].lower() == "infection" and at + 1 < len(words):
        # "Infection > staphylococcal, unspecified site > as cause ... > aureus": the level before
        # "as cause" must be a bare kind, or the words after it name no organism alone ("aureus")
        before = head or (words[at - 1] if at > 1 else "")
        if before and before.lower() not in _ORGANISM_KINDS:
            return ""
    return " ".join(kept)


#: Levels of the neoplasm table that are no place of the body: a morphology ("skin > eyelid >
#: squamous cell carcinoma"), "overlapping lesion", "specified site NEC", a conjunction's remainder
#: ("intrahepatic > and extrahepatic") or a qualifier alone ("peripheral").
_NOT_A_SITE = re.compile(r"carcinoma|melanoma|sarcoma|overlapping|\bsites?\b|specified|\btype\b|^(?:and|or|with)\b"
                         r"|^(?:peripheral|other|multiple|unspecified|ill-defined|contiguous|junctional)$", re.I)


#: A drug's class, by the table's adverse-effect code, -> the status code for its long-term (current)
#: use (ICD-10-CM Z79: anticoagulants Z79.01, antithrombotics / antiplatelets Z79.02, NSAIDs
#: Z79.1, antibiotics Z79.2, systemic steroids Z79.52, aspirin Z79.82, opiate analgesics Z79.891;
#: insulin Z79.4 and oral hypoglycemic drugs Z79.84 share T38.3). A note names the drug
#: ("treated with acenocoumarol"); how often its coders code the status, a trained model learns.
LONG_TERM_USE: tuple[tuple[str, str], ...] = (
    ("T45.51", "Z79.01"), ("T45.52", "Z79.02"), ("T39.01", "Z79.82"), ("T39.3", "Z79.1"), ("T38.0", "Z79.52"),
    ("T38.3", "Z79.84"), ("T36.", "Z79.2"), ("T40.2", "Z79.891"))


def long_term_therapy(cells: list[str], substance: str) -> str:
    """The Z79 code for the long-term use of a drug table substance (:data:`LONG_TERM_USE`), or ""."""
    adverse = _clean_code(cells[4]) if len(cells) > 4 else ""
    for prefix, code in LONG_TERM_USE:
        if adverse.startswith(prefix):
            return "Z79.4" if code == "Z79.84" and "insulin" in substance.lower() else code
    return ""


def _natural_sites(levels: list[str]) -> list[str]:
    """The ways a note names a neoplasm table site besides its whole path: the table nests a site
    under its organ ("intestine, large > colon > descending"), a note names the site before the
    organ ("descending colon") or the organ then the site ("colon, descending"); and a title's
    alternatives ("salivary gland or duct") stand for the first one ("salivary gland")."""
    levels = [w for w in levels if w]
    out: list[str] = []
    firsts = [w.split(" or ")[0].strip() for w in levels]
    if firsts != levels:
        out.append(" ".join(firsts))
    if len(firsts) >= 2 and not any(_NOT_A_SITE.search(w) for w in firsts[-2:]):
        last, parent = firsts[-1], firsts[-2]
        out.extend((f"{last} {parent}", f"{parent} {last}"))
    whole = " ".join(levels)
    return [s for s in dict.fromkeys(out) if s and s != whole]


SEE_SUBTERMS, SEE_DEPTH = 40, 2  # subterms of a "see" target repeated under the referring term, and how deep


_DIABETES_REF = re.compile(r"^E08\s*-\s*E13\s+with\s+(\.[0-9A-Z]{1,3}-?)$", re.I)


def _spellings(title: str) -> list[str]:
    """Every spelling a reference may name a row by: the whole title, its first comma-listed word
    and the others that share its stem ("broncho-, bronchial" -> "broncho", "bronchial";
    "Fracture, traumatic" -> "fracture"; not "syndrome" of "Reiter's disease, syndrome, or urethritis")."""
    parts = [_key([p.strip().rstrip("-").strip()])[0] for p in title.split(",") if p.strip()]
    out = [_key([title])[0], *parts[:1], *(p for p in parts[1:] if parts and p[:4] == parts[0][:4])]
    return list(dict.fromkeys(s for s in out if s))


def _key(parts: list[str]) -> tuple[str, ...]:
    """Look-up key of a term path; NEC / NOS and [abbreviations] do not count ("see Dependence,
    drug, nicotine" names the row "Dependence > drug NEC > nicotine")."""
    return tuple(" ".join(re.sub(r"\[[^\]]*\]|\bnec\b|\bnos\b", "", p.lower()).split()) for p in parts)


#: The column a "see Neoplasm, <site>, <column>" reference names -> its index in
#: :data:`NEOPLASM_COLUMNS` ("malignant" is the primary column).
_NEOPLASM_REF_COLUMNS = {"malignant": 0, "malignant primary": 0, "primary": 0, "secondary": 1,
                         "malignant secondary": 1, "in situ": 2, "ca in situ": 2, "benign": 3,
                         "uncertain behavior": 4, "unspecified behavior": 5}


def neoplasm_sites(rows: list[Row]) -> dict[tuple[str, ...], list[str]]:
    """The neoplasm table's cells by site path below "Neoplasm, neoplastic" (each spelling of a
    comma-listed site: "abdomen, abdominal" is "abdomen" and "abdominal"), for the index's
    "see Neoplasm, <site>, <column>" references."""
    out: dict[tuple[str, ...], list[str]] = {}
    stack: list[Row] = []
    for r in rows:
        stack = stack[: r.level]
        stack.append(r)
        if r.level == 0 or not any(r.cells):
            continue
        site = [x.title for x in stack[1:]]
        for variant in (site, *([a, *site[1:]] for a in (p.strip() for p in site[0].split(",")) if a)):
            out.setdefault(_key([re.sub(r"\([^)]*\)", "", v) for v in variant]), r.cells)
    return out


def neoplasm_reference(ref: str, sites: dict[tuple[str, ...], list[str]]) -> str:
    """The code of a "Neoplasm, <site>, <column>" reference ("Chondrosarcoma - see Neoplasm,
    cartilage, malignant" -> C41.9), or "" (no such site, or "..., by site": the note's site decides)."""
    parts = [" ".join(p.split()) for p in ref.split(",") if p.strip()]
    if len(parts) < 3 or not parts[0].lower().startswith("neoplasm"):
        return ""
    col = _NEOPLASM_REF_COLUMNS.get(parts[-1].lower())
    cells = sites.get(_key(parts[1:-1])) if col is not None else None
    return _clean_code(cells[col]) if cells and col is not None and col < len(cells) else ""


def expand(kind: str, rows: list[Row],
           neoplasm: dict[tuple[str, ...], list[str]] | None = None) -> list[tuple[Any, ...]]:
    """Expand rows into term tuples ``(phrase, code, "icd10cm", source, path, nonessential, see, see_also)``.

    ``neoplasm`` (:func:`neoplasm_sites`) resolves the alphabetic index's references into the
    neoplasm table ("Leiomyosarcoma - see also Neoplasm, connective tissue, malignant": C49.9).
    """
    # pass 1: full paths and a lookup for see / see-also targets
    paths: list[list[Row]] = []
    stack: list[Row] = []
    lookup: dict[tuple[str, ...], str] = {}
    for r in rows:
        stack = stack[: r.level]
        stack.append(r)
        paths.append(list(stack))
        if r.code:
            titles = [x.title for x in stack]
            for variant in (titles, [_stem_alias(titles[0]), *titles[1:]]):
                lookup.setdefault(_key(variant), r.code)
    main_alias: dict[str, str] = {}
    for r in rows:
        if r.level == 0:
            main_alias.setdefault(r.title.lower(), r.title)
            main_alias.setdefault(_stem_alias(r.title).lower(), r.title)

    def target_keys(ref: str) -> Iterator[tuple[str, ...]]:
        """Look-up keys a "see" reference may name, longest main term first ("Dependence,
        drug, nicotine": main term "Dependence", subterms "drug" > "nicotine")."""
        parts = [p.strip() for p in ref.split(",") if p.strip()]
        for i in range(len(parts), 0, -1):
            canon = main_alias.get(", ".join(parts[:i]).lower())
            if canon is not None:
                yield _key([canon, *parts[i:]])

    # the index as a tree whose rows answer to every spelling of their title, for references the
    # path keys miss: "Pneumonia, broncho" names the row "broncho-, bronchial", "Fracture, radius"
    # the main term "Fracture, traumatic", "Ulcer, duodenum, with hemorrhage" the rows "with" > "hemorrhage"
    children: dict[int, dict[str, list[int]]] = {}
    parents: list[int] = []
    for i, r in enumerate(rows):
        parents = parents[: r.level]
        below = children.setdefault(parents[-1] if parents else -1, {})
        for spelling in _spellings(r.title):
            below.setdefault(spelling, []).append(i)
        parents.append(i)

    def step(frontier: list[int], words: str) -> list[int]:
        if words == "by type":  # "Diabetes, by type, with hyperglycemia": type unstated, type 2 (E11.65)
            words = "type 2"
        nxt = [c for f in frontier for c in children.get(f, {}).get(words, ())]
        if not nxt and words.startswith("with "):  # "with hemorrhage": the rows "with" > "hemorrhage"
            nxt = step(step(frontier, "with"), words[5:])
        elif not nxt and " with " in words:  # "Thyrotoxicosis with thyroid storm"
            head, _, tail = words.partition(" with ")
            nxt = step(step(frontier, head), "with " + tail)
        if not nxt and words.endswith("s"):  # "Complications, ..." names "Complication(s)"
            nxt = [c for f in frontier for c in children.get(f, {}).get(words[:-1], ())]
        if not nxt and frontier != [-1] and words != "with":
            # "Diabetes, amyotrophy" names "Diabetes > with > amyotrophy"
            nxt = [c for f in frontier for w in children.get(f, {}).get("with", ())
                   for c in children.get(w, {}).get(words, ())]
        if not nxt and frontier != [-1]:
            # "Tuberculosis, lymph gland" names the one row "lymph gland or node"
            longer = {c for f in frontier for k, cs in children.get(f, {}).items() if k.startswith(words + " ")
                      for c in cs}
            nxt = sorted(longer) if len(longer) == 1 else []
        return nxt

    def walk(ref: str) -> int | None:
        """The row a reference names, by the spellings of each level (None: no such row)."""
        frontier = [-1]
        parts = [_key([re.sub(r"\([^)]*\)", "", p)])[0] for p in ref.split(",") if p.strip()]
        i = 0
        while i < len(parts):
            nxt = step(frontier, parts[i])
            if not nxt and i + 1 < len(parts) and frontier != [-1]:
                # "Diverticulosis, intestine, large" names the one row "large intestine"
                nxt = step(frontier, f"{parts[i + 1]} {parts[i]}")
                i += 1 if nxt else 0
            frontier = nxt
            if not frontier:
                return None
            i += 1
        coded = [f for f in frontier if f >= 0 and rows[f].code]
        return (coded or [f for f in frontier if f >= 0] or [None])[0]

    def resolve(ref: str) -> str:
        code = next((lookup[k] for k in target_keys(ref) if lookup.get(k)), "")
        if not code:
            m = _DIABETES_REF.match(ref.strip())
            if m:
                # "E08-E13 with .22": the combination code of the documented type; unstated, E11
                # (ICD-10-CM Official Guidelines I.C.4.a.2), as for "Diabetes, by type" below
                return _clean_code("E11" + m.group(1))
            at = walk(ref)
            code = rows[at].code if at is not None else ""
        return code or (neoplasm_reference(ref, neoplasm) if neoplasm else "")

    # every row by its path key, for the subterms of a "see" target
    row_at: dict[tuple[str, ...], int] = {}
    for i, path in enumerate(paths):
        row_at.setdefault(_key([x.title for x in path]), i)

    def see_subterms(ref: str) -> tuple[int, list[int]]:
        """The level of the term a "see" reference names and the coded rows below it (at most
        SEE_SUBTERMS, down to SEE_DEPTH levels)."""
        at = next((row_at[k] for k in target_keys(ref) if k in row_at), None)
        if at is None:
            at = walk(ref)
        if at is None:
            return 0, []
        level, out = rows[at].level, []
        for j in range(at + 1, len(rows)):
            if rows[j].level <= level or len(out) >= SEE_SUBTERMS:
                break
            if rows[j].code and rows[j].level <= level + SEE_DEPTH:
                out.append(j)
        return level, out

    source = {"index": "index", "eindex": "eindex", "neoplasm": "neoplasm", "drug": "drug"}[kind]
    out: list[tuple[Any, ...]] = []
    for r, path in zip(rows, paths):
        path_text = " > ".join(x.title + (" " + " ".join(f"({m})" for m in x.nemod) if x.nemod else "")
                               for x in path)
        mods = tuple(m for x in path for m in x.nemod)
        words = [_words(x.title) for x in path]
        if kind in ("neoplasm", "drug"):
            site_words = words[1:] if kind == "neoplasm" and len(words) > 1 else words
            site = " ".join(w for w in site_words if w)
            if kind == "neoplasm" and site == "lymph" and "channel" in path[-1].title.lower():
                # "lymph, lymphatic channel NEC" (C49.9, connective tissue) is the channel: a note's
                # "lymph" is its nodes ("lymph nodes infiltrated by carcinoma"), the row "gland" below
                site = "lymphatic channel"
            sites = [site]
            if kind == "neoplasm":
                sites.extend(_natural_sites(site_words))
            if kind == "neoplasm" and site.startswith("lymph gland"):
                # "lymph, lymphatic channel NEC > gland > inguina, inguinal" (C77.4 secondary): notes
                # say "inguinal lymph node" (the last spelling of a stem alias; "epigastric, inferior"
                # is one site, not an alias)
                sites.append(" ".join(["lymph node", *((_aliases(x.title) or [_words(x.title)])[-1]
                                                       for x in path[3:])]).strip())
            cols = NEOPLASM_COLUMNS if kind == "neoplasm" else DRUG_COLUMNS
            for (_col, templates), cell in zip(cols, r.cells):
                code = _clean_code(cell)
                if not code or not site:
                    continue
                for tpl in templates:
                    for one in sites:
                        out.append((tpl.format(s=one), code, "icd10cm", source, f"{path_text} [{_col}]", mods,
                                    r.see, r.see_also))
            if kind == "drug" and len(path) == 1 and site:
                therapy = long_term_therapy(r.cells, site)
                if therapy:
                    # matched although the drug table's poisoning phrases are not
                    # (opencac.coding.dictionary.DEFAULT_SOURCES)
                    out.append((site, therapy, "icd10cm", source, f"{path_text} [long-term use]", mods, "", ""))
            if r.see:
                target = resolve(r.see)
                if target:
                    out.append((site, target, "icd10cm", source, path_text, mods, r.see, r.see_also))
            continue
        base = " ".join(w for w in words if w)
        variants = [base]
        # every spelling of a term with comma variants ("Cryptorchid, cryptorchism,
        # cryptorchidism"; the first one is in `base`)
        for li, x in enumerate(path):
            for a in _aliases(x.title)[1:3]:
                variants.append(" ".join(w for w in (*words[:li], a, *words[li + 1:]) if w))
        # nonessential modifiers: with each one placed after (and, for the last level, before) its term
        for li, x in enumerate(path):
            for m in x.nemod[:4]:
                m = m.lstrip("-").strip()
                if not m or _CROSS_REF.match(m):
                    # "(see Anorexia)", "(see also Neoplasm, skin, malignant)" is a reference, not
                    # a word a note may add: placed before the term, the matcher cut the phrase at
                    # "see" and "Loss (of) appetite" became "Loss" -> R63.0
                    continue
                after = words[: li + 1] + [m] + words[li + 1:]
                variants.append(" ".join(w for w in after if w))
                if li == len(path) - 1:
                    before = words[:li] + [m] + words[li:]
                    variants.append(" ".join(w for w in before if w))
        if (kind == "index" and len(words) >= 3 and words[1].lower() == "joint"
                and _key([path[0].title, path[2].title]) not in row_at):
            # "Pain > joint > ankle" (M25.57-), "Effusion > joint > knee": a note's "ankle pain",
            # "knee effusion" names the joint alone (where the main term has no subterm of its own for it)
            variants.insert(1, " ".join(w for w in (words[0], *words[2:]) if w))
        plain = _plain_form(words) if kind == "index" else ""
        if plain and not r.code.startswith("C80"):
            # "rib fracture", "neuroblastoma", "estrogen receptor positive" (second, so that the cap
            # below keeps it). Not a bare "carcinoma" / "malignancy" (C80.1): its tabular inclusion
            # term reads it already, and as an index term too it outranked the site the note names
            variants.insert(1, plain)
        organism = _organism_words(words) if kind == "index" else ""
        if organism:
            # "Staphylococcus > as cause of disease classified elsewhere > aureus" (B95.61): notes name
            # the organism alone ("cultures positive for Staphylococcus aureus"), or by the
            # abbreviation the index gives ("Escherichia coli [E. coli]"); first, so that the cap
            # below keeps them
            abbrevs = [a for x in path for a in re.findall(r"\[([^\]]+)\]", x.title) if "." in a]
            variants[1:1] = [organism, *abbrevs]
        variants = list(dict.fromkeys(v for v in variants if v))[:10]
        targets: list[tuple[str, str, str]] = []
        if r.code:
            targets.append((r.code, "", r.see_also))
        if r.manif:
            targets.append((r.manif, "", r.see_also))
        if r.see:
            code = resolve(r.see)
            if code:
                targets.append((code, r.see, r.see_also))
        if r.see_also and not r.code:
            code = resolve(r.see_also)
            if code:
                targets.append((code, "", r.see_also))
        for code, see, see_also in targets:
            for v in variants:
                out.append((v, code, "icd10cm", source, path_text, mods, see, see_also))
        if r.see and not r.code:
            # "Lithiasis - see Calculus": the target's subterms under this term's words too
            # ("lithiasis kidney" -> N20.0, as "calculus kidney")
            target_level, below = see_subterms(r.see)
            for j in below:
                sub = [_words(x.title) for x in paths[j][target_level + 1:]]
                phrase = " ".join(w for w in (base, *sub) if w)
                target_path = " > ".join(x.title for x in paths[j])
                out.append((phrase, rows[j].code, "icd10cm", source, f"{path_text} (see {target_path})", mods,
                            r.see, r.see_also))
    return out


def index_files(directory: Path) -> list[Path]:
    """The index files (``*.csv`` / ``*.xml``) in a directory, official XML preferred per kind."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix.lower() in (".csv", ".xml") and p.is_file())


def load_index_dir(directory: Path) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """Load every index/table file in ``directory``; where a kind exists as XML and CSV,
    the official XML wins. Returns ``(term tuples, info)``."""
    files = index_files(directory)
    if not files:
        raise CodeSetSourceError(f"no ICD-10-CM index files (*.csv, *.xml) in {directory}")
    by_kind: dict[str, tuple[Path, list[Row]]] = {}
    fy = 0
    for p in files:
        if p.suffix.lower() == ".xml":
            try:
                head = p.read_bytes()[:400].decode("utf-8", "replace")
            except OSError:
                continue
            if "ICD10CM.index" not in head:
                continue
            kind, rows = read_xml(p)
            m = re.search(r"<version>(\d{4})</version>", head)
            fy = fy or (int(m.group(1)) if m else 0)
            by_kind[kind] = (p, rows)
    for p in files:
        if p.suffix.lower() != ".csv":
            continue
        try:
            kind, rows = read_csv(p)
        except CodeSetSourceError:
            continue
        if kind not in by_kind:
            by_kind[kind] = (p, rows)
            m = re.search(r"(20\d\d)", p.name)
            fy = fy or (int(m.group(1)) if m else 0)
    if not by_kind:
        raise CodeSetSourceError(f"no readable ICD-10-CM index files in {directory} "
                                 "(expected CMS index XML or the flattened CSV)")
    terms: list[tuple[Any, ...]] = []
    extra: dict[str, str] = {}
    sites = neoplasm_sites(by_kind["neoplasm"][1]) if "neoplasm" in by_kind else None
    for kind in KINDS:
        if kind in by_kind:
            path, rows = by_kind[kind]
            t = expand(kind, rows, sites if kind == "index" else None)
            terms += t
            extra[kind] = f"{path.name} ({len(rows)} rows, {len(t)} phrases)"
    return terms, {"fy": fy, "extra": extra}
