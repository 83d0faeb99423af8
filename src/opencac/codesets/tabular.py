"""ICD-10-CM tabular list parser (the official CMS ``icd10cm-tabular-*.xml``).

Produces plain records (``CMNode`` tuples) for chapters, blocks (sections), categories and
codes, with the notes written at each node, 7th-character definitions and the codes that
the 7th-character convention creates (with placeholder ``X``).
"""

from __future__ import annotations

import hashlib
import re
import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

from opencac.codesets.refs import parse_refs
from opencac.errors import CodeSetSourceError

#: tabular XML element -> note kind used across the knowledge layer
NOTE_TAGS: dict[str, str] = {
    "inclusionTerm": "inclusion_terms",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
}
NOTE_KINDS: tuple[str, ...] = (
    "inclusion_terms", "includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also",
)
MANIFESTATION_PHRASE = "in diseases classified elsewhere"
_ELSEWHERE_RE = re.compile(r"\bclassified elsewhere\b", re.I)
_IN_DISEASE_RE = re.compile(r"\bin (?:[\w-]+ ){0,2}(?:diseases?|conditions?)\b", re.I)


def is_manifestation(desc: str, notes: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
    """Manifestation code (italicised in the tabular; never first-listed).

    ICD-10-CM Official Guidelines I.A.13: manifestation codes mostly carry "in diseases
    classified elsewhere" in their title and a "code first" note for the underlying condition.
    Titles saying "... classified elsewhere" (".. in conditions classified elsewhere",
    ".. due to diseases classified elsewhere") count, and so do titles "X in <disease>" that
    carry a "code first underlying ..." note (D63.1 Anemia in chronic kidney disease). A
    "code first" note alone does not: the same guideline says those notes also sequence codes
    that are not manifestations (N18.-, R65.2, Z92.82), which may be principal.
    """
    if _ELSEWHERE_RE.search(desc):
        return True
    first = dict(notes).get("code_first", ())
    return bool(first) and first[0].lower().startswith("underlying") and bool(_IN_DISEASE_RE.search(desc))


class CMNode(NamedTuple):
    """One node of the ICD-10-CM hierarchy as parsed (compact, picklable)."""

    code: str  # dotted code, chapter number ("4") or block id ("E08-E13")
    kind: str  # chapter | block | category | code
    description: str
    parent: str | None
    chapter: str | None
    block: str | None
    billable: bool
    #: ((note kind, (texts...)), ...) for notes written at this node
    notes: tuple[tuple[str, tuple[str, ...]], ...]
    #: own 7th-character definitions ((char, meaning), ...)
    seventh: tuple[tuple[str, str], ...]
    manifestation: bool


def package_dir(name: str) -> Path | None:
    """Directory of an installed package, found without importing it (imports can be slow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_tabular_path() -> Path:
    """Path of the FY2026 tabular XML shipped inside the installed ``simple_icd_10_cm`` package."""
    data = package_dir("simple_icd_10_cm")
    if data is None:  # pragma: no cover - dependency missing
        raise CodeSetSourceError("package simple-icd-10-cm is not installed; pip install simple-icd-10-cm")
    data = data / "data"
    for entry in sorted(data.iterdir()):
        name = entry.name
        if name.startswith("icd10c") and "tabular" in name and name.endswith(".xml"):
            return Path(str(entry))
    raise CodeSetSourceError(f"no ICD-10-CM tabular XML found in {data}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _text(el: ET.Element | None) -> str:
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


def _notes(el: ET.Element) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out: dict[str, list[str]] = {}
    for child in el:
        kind = NOTE_TAGS.get(child.tag)
        if kind is None:
            continue
        texts = [_text(n) for n in child.findall("note")]
        out.setdefault(kind, []).extend(t for t in texts if t)
    return tuple((k, tuple(v)) for k, v in out.items() if v)


_NOT_APPLY_RE = re.compile(
    r"7th characters? ((?:[A-Z0-9](?:,\s*|\s+and\s+|\s+or\s+)?)+) do(?:es)? not apply to codes in category \S+"
    r" with 6th character (\d)(?:.*?, or (\d)\b)?", re.I)


def _seventh_exclusions(el: ET.Element) -> tuple[frozenset[str], frozenset[str]]:
    """(7th chars, 6th chars) pairs excluded by a ``sevenChrNote``.

    Tabular S06: "7th characters D and S do not apply to codes in category S06 with 6th
    character 7 ... or 8 ..." (ICD-10-CM Tabular List, category S06 note).
    """
    for n in el.findall("sevenChrNote/note") + el.findall("notes/note"):
        m = _NOT_APPLY_RE.search(_text(n))
        if m:
            chars = frozenset(re.findall(r"\b[A-Z0-9]\b", m.group(1)))
            sixth = frozenset(x for x in (m.group(2), m.group(3)) if x)
            return chars, sixth
    return frozenset(), frozenset()


def _seventh(el: ET.Element) -> tuple[tuple[str, str], ...]:
    d = el.find("sevenChrDef")
    if d is None:
        return ()
    return tuple((e.get("char", ""), _text(e)) for e in d.findall("extension"))


def with_seventh(code: str, char: str) -> str:
    """Append a 7th character, padding with the placeholder ``X`` up to 6 characters.

    ICD-10-CM Official Guidelines I.A.5 (placeholder character): "For codes less than 6
    characters that require a 7th character a placeholder X should be assigned for all
    characters less than 6."
    """
    base = code if "." in code else code + "."
    head, tail = base.split(".", 1)
    tail = tail.ljust(3, "X")
    return f"{head}.{tail}{char}"


def parse_tabular(path: Path) -> tuple[int, list[CMNode]]:
    """Parse a tabular XML into ``(fiscal year, nodes)``; nodes in document order.

    Codes that need a 7th character (a ``sevenChrDef`` on the node or an ancestor, the
    nearest one winning) are emitted as non-billable parents of generated billable codes
    ``<code><X...><char>`` whose description appends the 7th-character meaning.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CodeSetSourceError(f"cannot read ICD-10-CM tabular XML {path}: {exc}") from exc
    if root.tag != "ICD10CM.tabular":
        raise CodeSetSourceError(f"{path} is not an ICD-10-CM tabular XML (root <{root.tag}>, expected <ICD10CM.tabular>)")
    try:
        fy = int(_text(root.find("version")))
    except ValueError:
        fy = 0
    nodes: list[CMNode] = []

    def add_diag(el: ET.Element, parent: str, chapter: str, block: str,
                 inherited7: tuple[tuple[str, str], ...], parent_manif: bool,
                 excl: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())) -> None:
        code = _text(el.find("name"))
        own_excl = _seventh_exclusions(el)
        if own_excl[0]:
            excl = own_excl
        desc = _text(el.find("desc"))
        notes = _notes(el)
        own7 = _seventh(el)
        seventh = own7 or inherited7
        children = el.findall("diag")
        kind = "category" if "." not in code else "code"
        manif = is_manifestation(desc, notes) or (parent_manif and kind == "code")
        leaf = not children
        needs7 = leaf and bool(seventh)
        nodes.append(CMNode(code, kind, desc, parent, chapter, block, leaf and not needs7, notes, own7, manif))
        for child in children:
            add_diag(child, code, chapter, block, seventh, manif, excl)
        if needs7:
            plain = code.replace(".", "")
            for char, meaning in seventh:
                if char in excl[0] and len(plain) >= 6 and plain[5] in excl[1]:
                    continue
                nodes.append(CMNode(with_seventh(code, char), "code", f"{desc}, {meaning}", code, chapter, block,
                                    True, (), (), manif))

    for ch in root.findall("chapter"):
        chap = _text(ch.find("name"))
        nodes.append(CMNode(chap, "chapter", _text(ch.find("desc")), None, chap, None, False, _notes(ch), (), False))
        for sec in ch.findall("section"):
            block = sec.get("id", "")
            if "-" not in block:  # a block of one category (e.g. "B10") must not collide with it
                block = f"{block}-{block}"
            nodes.append(CMNode(block, "block", _text(sec.find("desc")), chap, chap, block, False, _notes(sec),
                                _seventh(sec), False))
            for diag in sec.findall("diag"):
                add_diag(diag, block, chap, block, _seventh(sec), False)
    if not nodes:
        raise CodeSetSourceError(f"{path} holds no ICD-10-CM chapters")
    return fy, nodes


def node_refs(node: CMNode) -> dict[str, tuple[str, ...]]:
    """Code references parsed out of a node's notes, by note kind."""
    out: dict[str, tuple[str, ...]] = {}
    for kind, texts in node.notes:
        refs: list[str] = []
        for t in texts:
            refs.extend(r for r in parse_refs(t) if r not in refs)
        if refs:
            out[kind] = tuple(refs)
    return out
