"""Coded training corpora: the CodiEsp directory layout and JSONL.

A *split directory* (CodiEsp layout) holds ``text_files_en/*.txt`` (or ``text_files/``) and
``*D.tsv`` / ``*P.tsv`` files of ``doc_id<TAB>code`` rows. A *JSONL file* holds one object per
line: ``{"id": ..., "text": ..., "codes": [...]}`` where each code is a string (system inferred
from its form, see :func:`infer_system`) or ``{"code": ..., "system": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opencac.errors import CorpusError

CM = "icd10cm"
PCS = "icd10pcs"
SYSTEMS = (CM, PCS)

_CM_RE = re.compile(r"^[a-z][0-9][0-9a-z](\.[0-9a-z]{0,4})?$")


def canon(code: str) -> str:
    """Canonical comparison key of a code: lowercase, no dots, no spaces (``E11.9`` -> ``e119``)."""
    return code.strip().lower().replace(".", "").replace(" ", "")


def dotted(code: str, system: str) -> str:
    """The usual printed form: ICD-10-CM upper-case with a dot after the category, PCS upper-case."""
    c = canon(code).upper()
    if system == CM and len(c) > 3:
        return c[:3] + "." + c[3:]
    return c


def infer_system(code: str) -> str:
    """Infer the code system of a code written in its usual form.

    Dotted codes and 3-character codes are ICD-10-CM; dotless codes of 4-7 characters are
    ICD-10-PCS (complete 7-character codes or CodiEsp-style 4-character prefixes). A dotless
    4-6 character ICD-10-CM code is therefore read as PCS: write ICD-10-CM codes with their dot
    or pass ``{"code": ..., "system": "icd10cm"}``.
    """
    c = code.strip().lower()
    if "." in c or len(c) == 3:
        if not _CM_RE.match(c if "." in c else c):
            raise CorpusError(f"code {code!r} is not a valid ICD-10-CM form (e.g. 'E11.9').")
        return CM
    if 4 <= len(c) <= 7 and c.isalnum():
        return PCS
    raise CorpusError(f"cannot tell the code system of {code!r}: expected 'E11.9' (ICD-10-CM) or '0DTJ4ZZ' (ICD-10-PCS).")


@dataclass(slots=True)
class CodedDocument:
    """A document with its gold codes (canonical keys, see :func:`canon`), per system.

    Attributes:
        id: document id.
        text: the note text.
        codes: ``{"icd10cm": [...], "icd10pcs": [...]}`` canonical codes in file order, unique.
        evidence: where coders found each code, ``{system: {code: [(start, end), ...]}}``
            character offsets into ``text`` (empty when the corpus does not say).
    """

    id: str
    text: str
    codes: dict[str, list[str]] = field(default_factory=lambda: {CM: [], PCS: []})
    evidence: dict[str, dict[str, list[tuple[int, int]]]] = field(default_factory=dict)


def _add(doc: CodedDocument, system: str, code: str) -> None:
    key = canon(code)
    if key and key not in doc.codes[system]:
        doc.codes[system].append(key)


def read_utf8(path: Path, error: type[Exception] = CorpusError, binary_error: type[Exception] | None = None,
              expected: str = "UTF-8 text") -> str:
    """A file's text as a text-mode read gives it (``\\r\\n`` and ``\\r`` read as ``\\n``; a
    byte-order mark dropped), or one ``error`` naming the file when it cannot be read and one
    ``binary_error`` (default ``error``) when it is binary or not UTF-8."""
    from opencac.text.document import decode_utf8

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror or exc}).") from None
    text = decode_utf8(data, str(path), expected, binary_error or error)
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _lines(path: Path) -> list[str]:
    """The lines of a corpus file (see :func:`read_utf8`), without their ends."""
    return read_utf8(path).split("\n")


def parse_code_lines(lines: Iterable[str], name: str, error: type[Exception] = CorpusError) -> dict[str, list[str]]:
    """``doc_id<TAB>code[<TAB>...]`` lines into ``{doc_id: [canonical codes, in order, once each]}``;
    ``error`` for a line with fewer than two columns (``name`` says which file)."""
    out: dict[str, list[str]] = {}
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n\r")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise error(f"{name} line {n}: expected 'doc_id<TAB>code', got {len(parts)} column(s).")
        lst = out.setdefault(parts[0].strip(), [])
        key = canon(parts[1])
        if key not in lst:
            lst.append(key)
    return out


def read_code_tsv(path: Path) -> dict[str, list[str]]:
    """Read a ``doc_id<TAB>code[<TAB>...]`` file into ``{doc_id: [canonical codes, in order]}``."""
    return parse_code_lines(_lines(path), path.name)


def _add_evidence(doc: CodedDocument, system: str, code: str, spans: Sequence[tuple[int, int]]) -> None:
    have = doc.evidence.setdefault(system, {}).setdefault(canon(code), [])
    have.extend(sp for sp in spans if sp not in have)


def read_evidence_tsv(path: Path) -> dict[str, list[tuple[str, str, list[tuple[int, int]]]]]:
    """Read a CodiEsp ``*X.tsv`` file (``doc_id, DIAGNOSTICO|PROCEDIMIENTO, code, text, "s e[;s e]"``)
    into ``{doc_id: [(system, canonical code, [(start, end), ...]), ...]}``."""
    out: dict[str, list[tuple[str, str, list[tuple[int, int]]]]] = {}
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n\r").split("\t")
        if len(parts) < 5:
            raise CorpusError(f"{path.name} line {n}: expected 5 tab-separated columns "
                              f"(doc_id, type, code, text, offsets), got {len(parts)}.")
        kind = parts[1].strip().upper()
        system = PCS if kind.startswith("PROC") else CM
        try:
            spans = [(int(a), int(b)) for a, b in (seg.split() for seg in parts[4].split(";") if seg.strip())]
        except ValueError:
            raise CorpusError(f"{path.name} line {n}: offsets {parts[4]!r} are not 'start end[;start end]'.") from None
        out.setdefault(parts[0].strip(), []).append((system, canon(parts[2]), spans))
    return out


def _text_dir(split: Path) -> Path:
    for name in ("text_files_en", "text_files"):
        if (split / name).is_dir():
            return split / name
    raise CorpusError(f"{split} has no text_files_en/ (or text_files/) folder; expected the CodiEsp layout.")


def load_split(split: Path) -> list[CodedDocument]:
    """Load a CodiEsp split directory (``text_files_en/`` + ``*D.tsv`` + ``*P.tsv``)."""
    tdir = _text_dir(split)
    d_files = sorted(split.glob("*D.tsv"))
    p_files = sorted(split.glob("*P.tsv"))
    if not d_files and not p_files:
        raise CorpusError(f"{split} has no *D.tsv or *P.tsv code files; expected the CodiEsp layout.")
    dcodes: dict[str, list[str]] = {}
    pcodes: dict[str, list[str]] = {}
    for f in d_files:
        for k, v in read_code_tsv(f).items():
            dcodes.setdefault(k, []).extend(c for c in v if c not in dcodes.get(k, []))
    for f in p_files:
        for k, v in read_code_tsv(f).items():
            pcodes.setdefault(k, []).extend(c for c in v if c not in pcodes.get(k, []))
    # evidence: X files give offsets into the original notes (text_files/); with a translation
    # (text_files_en/) being read, they are carried over sentence by sentence (opencac.coding.align)
    from opencac.coding.align import align_sentences

    evidence: dict[str, list[tuple[str, str, list[tuple[int, int]]]]] = {}
    original = split / "text_files"
    for f in sorted(split.glob("*X.tsv")):
        for k, v in read_evidence_tsv(f).items():
            evidence.setdefault(k, []).extend(v)
    docs = []
    for p in sorted(tdir.glob("*.txt")):
        doc = CodedDocument(p.stem, read_utf8(p))
        doc.codes[CM] = list(dcodes.get(p.stem, []))
        doc.codes[PCS] = list(pcodes.get(p.stem, []))
        rows = evidence.get(p.stem)
        if rows:
            if tdir.name == "text_files":
                for system, code, spans in rows:
                    _add_evidence(doc, system, code, spans)
            elif (original / p.name).is_file():
                al = align_sentences(read_utf8(original / p.name), doc.text)
                for system, code, spans in rows:
                    _add_evidence(doc, system, code, [t for a, b in spans for t in al.target_spans(a, b)])
        docs.append(doc)
    if not docs:
        raise CorpusError(f"{tdir} holds no .txt notes.")
    return docs


def load_jsonl(path: Path) -> list[CodedDocument]:
    """Load a JSONL corpus (``{"id", "text", "codes"}`` per line)."""
    docs = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path.name} line {n}: not valid JSON ({exc.msg}).") from None
        if not isinstance(obj, dict) or "text" not in obj:
            raise CorpusError(f"{path.name} line {n}: expected an object with 'id', 'text' and 'codes'.")
        doc = CodedDocument(str(obj.get("id", f"{path.stem}-{n}")), str(obj["text"]))
        for c in obj.get("codes", []) or []:
            if isinstance(c, dict):
                code = str(c.get("code", ""))
                system = str(c.get("system") or infer_system(code)).lower().replace("-", "")
                if system not in SYSTEMS:
                    raise CorpusError(f"{path.name} line {n}: unknown system {system!r}.", options=SYSTEMS)
                spans = c.get("spans") or []
                try:
                    pairs = [(int(a), int(b)) for a, b in spans]
                except (TypeError, ValueError):
                    raise CorpusError(f"{path.name} line {n}: 'spans' of {code!r} must be [[start, end], ...] "
                                      "character offsets into 'text'.") from None
                bad = [sp for sp in pairs if not 0 <= sp[0] < sp[1] <= len(doc.text)]
                if bad:
                    raise CorpusError(f"{path.name} line {n}: span {list(bad[0])} of {code!r} lies outside "
                                      f"the text ({len(doc.text)} characters).")
                if pairs:
                    _add_evidence(doc, system, code, pairs)
            else:
                code = str(c)
                system = infer_system(code)
            _add(doc, system, code)
        docs.append(doc)
    if not docs:
        raise CorpusError(f"{path} holds no documents.")
    return docs


def load_corpus(paths: Sequence[str | Path] | str | Path) -> list[CodedDocument]:
    """Load and concatenate corpora (split directories and/or JSONL files).

    Raises:
        CorpusError: a path is missing or in neither format.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[CodedDocument] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(load_split(p))
        elif p.is_file() and p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            out.extend(load_jsonl(p))
        elif p.exists():
            raise CorpusError(f"{p} is neither a CodiEsp split directory nor a .jsonl file.")
        else:
            raise CorpusError(f"corpus {p} does not exist.")
    return out


def corpus_hash(docs: Iterable[CodedDocument]) -> str:
    """SHA-256 over ids, texts and codes: identifies the training data in a model manifest."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.id.encode())
        h.update(b"\0")
        h.update(d.text.encode())
        for s in SYSTEMS:
            h.update(("|".join(d.codes[s]) + "\n").encode())
            ev = d.evidence.get(s)
            if ev:  # corpora without evidence keep the hash they always had
                h.update(json.dumps(sorted((k, sorted(v)) for k, v in ev.items())).encode())
    return h.hexdigest()
