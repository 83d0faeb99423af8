"""The knowledge base: ICD-10-CM and ICD-10-PCS codes, notes, hierarchy, terms, versions.

Built from compiled artifacts (see ``build.py``); ``Code`` objects are created lazily and
memoised. ICD-10-PCS and the term list are read on first use.

Versions by date of service: every loaded ICD-10-CM fiscal year is a snapshot. For a date of
service the snapshot that applies is the latest loaded fiscal year on or before the date's
fiscal year (or the oldest loaded one for earlier dates: with only FY2026 loaded, FY2026
answers for every date, since nothing says otherwise). ``Code.valid_from_fy`` /
``valid_to_fy`` follow the same rule: ``None`` = open-ended as far as the loaded data knows.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import pickle
import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from opencac.codesets.packed import PackedMap
from opencac.codesets.refs import parse_refs, ref_covers, undot
from opencac.codesets.types import Code, CodeSetVersion, CodeSystem, IndexEntry, fiscal_year
from opencac.errors import CodeSetSourceError, CodeSetVersionError, UnknownCodeError

NOTE_KINDS: tuple[str, ...] = (
    "includes", "inclusion_terms", "excludes1", "excludes2", "code_first", "use_additional", "code_also",
)
_PCS_RE = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")
_CM_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:[0-9A-Z]{1,4})?$")
_TOKEN_RE = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset("of the and or in on with without to for by a an as at from due other unspecified nos nec".split())


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens with a light plural strip (used by ``search``)."""
    out = []
    for t in _TOKEN_RE.findall(text.lower()):
        if len(t) > 4 and t.endswith("s") and not t.endswith("ss"):
            t = t[:-1]
        out.append(t)
    return out


def _fy_of(as_of: dt.date | int | str) -> int:
    """Fiscal year of a date of service (date, datetime, ISO string) or a fiscal year itself."""
    if isinstance(as_of, int):
        return as_of
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of.strip()[:10])
        except ValueError as exc:
            raise CodeSetVersionError(f"bad date of service {as_of!r}: expected YYYY-MM-DD.") from exc
    return fiscal_year(as_of)


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise CodeSetSourceError(f"cannot read compiled knowledge base {path}: {exc}; delete it to recompile") from exc


class KnowledgeBase:
    """ICD-10-CM + ICD-10-PCS knowledge. Create with ``opencac.codesets.load_knowledge()``."""

    def __init__(self, paths: dict[str, Path], fy: int | None = None) -> None:
        self.paths = paths
        cm = _load(paths["cm"])
        self._cm: Mapping[str, tuple[Any, ...]] = cm["cm"]  # a PackedMap: entries decoded on first use
        self._present: dict[int, frozenset[str]] = cm["present"]
        self._billable: dict[int, frozenset[str]] = cm["billable"]
        self._newest: int = cm["newest"]
        self._versions_raw: dict[str, tuple[Any, ...]] = cm["versions"]
        self.cm_fiscal_years: tuple[int, ...] = tuple(sorted(self._present))
        if fy is not None and fy not in self._present:
            raise CodeSetVersionError(f"ICD-10-CM fiscal year {fy} is not loaded.",
                                      options=[str(y) for y in self.cm_fiscal_years])
        self.fy: int = fy if fy is not None else self._newest
        self._children: Mapping[str, list[str]] = cm["children"]  # stored by the build (a PackedMap)
        self._codes: dict[str, Code] = {}
        self._pcs: PackedMap | None = None  # code -> (description, axes), read on first use
        self._pcs_nodes: dict[str, str] | None = None
        self._pcs_node_kids: dict[str, list[str]] | None = None
        self._terms: list[tuple[Any, ...]] | None = None
        self._postings: dict[str, array] | None = None
        self._term_len: array | None = None
        self._pcs_present: dict[int, frozenset[str]] = {}
        self.pcs_fiscal_years: tuple[int, ...] = ()

    # ------------------------------------------------------------------ versions
    @property
    def versions(self) -> dict[str, CodeSetVersion]:
        """Loaded code sets by name (``icd10cm-2026``, ``icd10pcs-2025``, ``icd10cm-index`` ...)."""
        return {name: CodeSetVersion(CodeSystem(v[0]), v[1], v[2], v[3], dict(v[4]))
                for name, v in self._versions_raw.items()}

    def version_for(self, as_of: dt.date | int | None) -> int:
        """The loaded ICD-10-CM fiscal year that applies to a date (or fiscal year)."""
        if as_of is None:
            return self.fy
        fy = _fy_of(as_of)
        earlier = [y for y in self.cm_fiscal_years if y <= fy]
        return max(earlier) if earlier else self.cm_fiscal_years[0]

    def _validity(self, code: str, pcs: bool = False) -> tuple[int | None, int | None]:
        present = self._pcs_present if pcs else self._present
        fys = tuple(sorted(present))
        if len(fys) == 1:
            return None, None
        flags = [code in present[y] for y in fys]
        if not any(flags):
            return None, None
        last = max(i for i, f in enumerate(flags) if f)
        first = last
        while first > 0 and flags[first - 1]:
            first -= 1
        lo = None if first == 0 else fys[first]
        hi = None if last == len(fys) - 1 else fys[last + 1] - 1
        return lo, hi

    def info(self) -> dict[str, Any]:
        """Versions, counts and cache files, as plain data (``opencac codes info``)."""
        bill = self._billable[self.fy]
        return {
            "versions": {k: {"system": v.system.value, "fiscal_year": v.fiscal_year, "source": v.source,
                             "sha256": v.sha256, **v.extra} for k, v in self.versions.items()},
            "default_fiscal_year": self.fy,
            "counts": {"icd10cm_nodes": len(self._present[self.fy]), "icd10cm_billable": len(bill),
                       "icd10pcs_codes": len(self._pcs_data()), "terms": len(self._term_rows())},
            "cache": str(self.paths["cm"].parent),
            "files": {k: str(p) for k, p in self.paths.items()},
        }

    # ------------------------------------------------------------------ lazy parts
    def _pcs_data(self) -> PackedMap:
        if self._pcs is None:
            data = _load(self.paths["pcs"])
            self._pcs, self._pcs_nodes = data["codes"], data["nodes"]
            self._pcs_present = data.get("present") or {data.get("newest", 0): frozenset(self._pcs)}
            self.pcs_fiscal_years = tuple(sorted(self._pcs_present))
        return self._pcs

    def pcs_version_for(self, as_of: dt.date | int | None) -> int:
        """The loaded ICD-10-PCS fiscal year that applies to a date (same rule as ICD-10-CM)."""
        self._pcs_data()
        fys = self.pcs_fiscal_years
        if as_of is None:
            return fys[-1]
        fy = _fy_of(as_of)
        earlier = [y for y in fys if y <= fy]
        return max(earlier) if earlier else fys[0]

    def _pcs_node_data(self) -> dict[str, str]:
        self._pcs_data()
        assert self._pcs_nodes is not None
        return self._pcs_nodes

    def _pcs_node_children(self) -> dict[str, list[str]]:
        """PCS prefix node -> its child nodes one character longer, sorted (built once)."""
        if self._pcs_node_kids is None:
            kids: dict[str, list[str]] = defaultdict(list)
            for k in self._pcs_node_data():
                if len(k) > 1:
                    kids[k[:-1]].append(k)
            self._pcs_node_kids = {p: sorted(v) for p, v in kids.items()}
        return self._pcs_node_kids

    def _children_map(self) -> Mapping[str, list[str]]:
        return self._children

    def _term_rows(self) -> list[tuple[Any, ...]]:
        if self._terms is None:
            data = _load(self.paths["terms"])
            self._terms = data["terms"]
            self._postings = data.get("postings")
            self._term_len = data.get("term_len")
        return self._terms

    # ------------------------------------------------------------------ codes
    def normalize(self, code: str, system: CodeSystem | str | None = None) -> str:
        """Canonical form: ``'e119'`` -> ``'E11.9'``, ``'bw03zzz'`` -> ``'BW03ZZZ'``.

        Undotted strings that are both an ICD-10-CM code and an ICD-10-PCS prefix (``'B020'``:
        B02.0 zoster encephalitis / B020 CT of the brain) are read as ICD-10-CM unless
        ``system`` says otherwise.

        Raises:
            UnknownCodeError: when ``code`` is not shaped like any ICD-10-CM/PCS code.
        """
        raw = (code or "").strip().upper()
        if raw.endswith("-") and raw.count("-") == 1:  # index style "C79.8-" / "E11.-": the code itself
            raw = raw[:-1].rstrip(".")
        want = CodeSystem.parse(system) if system is not None else None
        plain = raw.replace(".", "").replace(" ", "")
        dotted = plain[:3] + ("." + plain[3:] if len(plain) > 3 else "")
        if want is CodeSystem.ICD10PCS:
            if re.fullmatch(r"[0-9A-HJ-NP-Z]{1,7}", plain) and "." not in raw:
                return plain
            raise UnknownCodeError(f"{code!r} is not an ICD-10-PCS code (expected 7 characters such as '0DTJ4ZZ', "
                                   "or a 1-6 character prefix such as '0DTJ').")
        if want is CodeSystem.ICD10CM:
            if raw in self._cm and "-" in raw or raw.isdigit() and raw in self._cm:
                return raw
            if _CM_RE.match(plain):
                return dotted
            raise UnknownCodeError(f"{code!r} is not an ICD-10-CM code (expected e.g. 'E11.9' or 'e119').")
        if raw in self._cm:
            return raw
        if "." in raw or dotted in self._cm:
            if _CM_RE.match(plain):
                return dotted
        if _PCS_RE.match(plain) or (plain and plain[0].isdigit() and 1 <= len(plain) <= 7):
            return plain
        if 1 <= len(plain) <= 6 and re.fullmatch(r"[0-9A-HJ-NP-Z]+", plain) and plain in self._pcs_node_data():
            return plain
        if _CM_RE.match(plain):
            return dotted
        raise UnknownCodeError(f"{code!r} is not an ICD-10-CM or ICD-10-PCS code "
                               "(expected e.g. 'E11.9', 'e119' or a 7-character PCS code such as '0DTJ4ZZ').")

    def system_of(self, code: str) -> CodeSystem:
        """The code system a code belongs to (by lookup, then by shape)."""
        obj = self.find(code)
        if obj is not None:
            return obj.system
        c = self.normalize(code)
        return CodeSystem.ICD10PCS if _PCS_RE.match(c) or c[:1].isdigit() else CodeSystem.ICD10CM

    def find(self, code: str, system: CodeSystem | str | None = None) -> Code | None:
        """The code, or ``None`` when unknown (any loaded version); ``system`` disambiguates."""
        try:
            c = self.normalize(code, system)
        except UnknownCodeError:
            return None
        want = CodeSystem.parse(system) if system is not None else None
        hit = self._codes.get(c)
        if hit is not None and (want is None or hit.system is want):
            return hit
        obj: Code | None
        if c in self._cm and want is not CodeSystem.ICD10PCS:
            obj = self._make_cm(c)
        elif want is not CodeSystem.ICD10PCS and "." in c and c.endswith("X") and c.rstrip("X").rstrip(".") in self._cm:
            # placeholder X written without the 7th character (CodiEsp's "W19.XXX"): the category
            return self.find(c.rstrip("X").rstrip("."), CodeSystem.ICD10CM)
        elif want is not CodeSystem.ICD10CM:
            obj = self._make_pcs(c)
        else:
            obj = None
        if obj is not None and (obj.system is CodeSystem.ICD10CM or c not in self._cm):
            # a key both code sets spell (F07: a CM category and a PCS table) is memoised for
            # ICD-10-CM only, what a look-up without a system returns
            self._codes[c] = obj
        return obj

    def _make_cm(self, c: str) -> Code:
        kind, desc, parent, chapter, block, billable, notes, seventh, manif, refs = self._cm[c]
        n = dict(notes)
        r = dict(refs)
        lo, hi = self._validity(c)
        if c not in self._present[self._newest]:
            billable = any(c in b for b in self._billable.values())
        return Code(
            system=CodeSystem.ICD10CM, code=c, description=desc, kind=kind, billable=billable, parent=parent,
            chapter=chapter, block=block,
            inclusion_terms=n.get("inclusion_terms", ()), includes=n.get("includes", ()),
            excludes1=n.get("excludes1", ()), excludes2=n.get("excludes2", ()), code_first=n.get("code_first", ()),
            use_additional=n.get("use_additional", ()), code_also=n.get("code_also", ()),
            excludes1_codes=r.get("excludes1", ()), excludes2_codes=r.get("excludes2", ()),
            code_first_codes=r.get("code_first", ()), use_additional_codes=r.get("use_additional", ()),
            code_also_codes=r.get("code_also", ()), seventh_characters=seventh,
            valid_from_fy=lo, valid_to_fy=hi, manifestation=manif,
        )

    def _make_pcs(self, c: str) -> Code | None:
        pcs = self._pcs_data()
        if c in pcs:
            title, axes = pcs[c]
            lo, hi = self._validity(c, pcs=True)
            return Code(system=CodeSystem.ICD10PCS, code=c, description=title, kind="code",
                        billable=c in self._pcs_present[self.pcs_fiscal_years[-1]],
                        parent=c[:4], chapter=c[:1], block=c[:3], axes=axes, valid_from_fy=lo, valid_to_fy=hi)
        nodes = self._pcs_node_data()
        if c in nodes:
            kinds = {1: "section", 2: "body_system", 3: "table", 4: "body_part"}
            return Code(system=CodeSystem.ICD10PCS, code=c, description=nodes[c], kind=kinds.get(len(c), "code"),
                        billable=False, parent=c[:-1] or None, chapter=c[:1], block=c[:3] if len(c) >= 3 else None)
        return None

    def get(self, code: str, as_of: dt.date | None = None, system: CodeSystem | str | None = None) -> Code:
        """The code; with ``as_of``, it must be valid on that date of service.

        Raises:
            UnknownCodeError: the code is in no loaded code set.
            CodeSetVersionError: the code exists but not in the code set in effect on ``as_of``.
        """
        obj = self.find(code, system)
        if obj is None:
            raise UnknownCodeError(f"unknown code {code!r}: not in ICD-10-CM FY{self._newest} "
                                   f"or ICD-10-PCS (loaded: {', '.join(sorted(self._versions_raw))}).")
        if as_of is not None and obj.system is CodeSystem.ICD10CM:
            v = self.version_for(as_of)
            if obj.code not in self._present[v]:
                raise CodeSetVersionError(
                    f"{obj.code} is not in ICD-10-CM FY{v}, the code set in effect on {as_of} "
                    f"(valid FY{obj.valid_from_fy or '?'}-{obj.valid_to_fy or 'now'}).")
        if as_of is not None and obj.system is CodeSystem.ICD10PCS and len(obj.code) == 7:
            v = self.pcs_version_for(as_of)
            if obj.code not in self._pcs_present[v]:
                raise CodeSetVersionError(
                    f"{obj.code} is not in ICD-10-PCS FY{v}, the code set in effect on {as_of} "
                    f"(valid FY{obj.valid_from_fy or '?'}-{obj.valid_to_fy or 'now'}).")
        return obj

    def is_billable(self, code: str, as_of: dt.date | None = None, system: CodeSystem | str | None = None) -> bool:
        """Whether the code is a valid, complete (leaf) code on that date of service."""
        obj = self.find(code, system)
        if obj is None:
            return False
        if obj.system is CodeSystem.ICD10PCS:
            return len(obj.code) == 7 and obj.code in self._pcs_present[self.pcs_version_for(as_of)]
        return obj.code in self._billable[self.version_for(as_of)]

    def children(self, code: str, system: CodeSystem | str | None = None) -> list[Code]:
        """Direct children (CM hierarchy; PCS: prefix nodes then 7-character codes)."""
        obj = self.get(code, system=system)
        if obj.system is CodeSystem.ICD10CM:
            return [self.find(c, obj.system) for c in self._children_map().get(obj.code, [])]  # type: ignore[misc]
        c = obj.code
        if len(c) >= 7:
            return []
        if len(c) < 4:
            keys = self._pcs_node_children().get(c, [])
        else:
            keys = sorted(k for k in self._pcs_data() if k.startswith(c))
        return [self.find(k, obj.system) for k in keys]  # type: ignore[misc]

    def ancestors(self, code: str, system: CodeSystem | str | None = None) -> list[Code]:
        """Ancestors, nearest first, up to the chapter (PCS: up to the section)."""
        obj = self.get(code, system=system)
        out: list[Code] = []
        p = obj.parent
        seen = {obj.code}
        while p and p not in seen:
            seen.add(p)
            a = self.find(p, obj.system)
            if a is None:
                break
            out.append(a)
            p = a.parent
        return out

    def inherited_notes(self, code: str) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
        """Notes that apply to a code through the hierarchy, nearest first.

        Instructional notes at a category/block/chapter level apply to all codes below it
        (ICD-10-CM Official Guidelines I.A.12-I.A.13, I.B.7 and the tabular conventions).
        Returns ``{kind: [(code where written, note text, referenced code refs)]}``.
        """
        obj = self.get(code)
        out: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
        if obj.system is not CodeSystem.ICD10CM:
            return out
        for node in [obj, *self.ancestors(obj.code)]:
            for kind in NOTE_KINDS:
                for text in getattr(node, kind):
                    out.setdefault(kind, []).append((node.code, text, _refs(text)))
        return out

    def seventh_characters(self, code: str) -> tuple[tuple[str, str], ...]:
        """7th-character definitions that apply to a code (the nearest definition wins)."""
        obj = self.get(code)
        if obj.system is not CodeSystem.ICD10CM:
            return ()
        for node in [obj, *self.ancestors(obj.code)]:
            if node.seventh_characters:
                return node.seventh_characters
        return ()

    def ref_matches(self, ref: str, code: str) -> bool:
        """Whether a note reference (``'E08-E13'``, ``'E11.-'``, ``'N18.3'``) covers ``code``."""
        return ref_covers(ref, code)

    def excludes1_pairs(self, codes: Iterable[str]) -> list[tuple[str, str, str]]:
        """Pairs that violate an Excludes1 note: ``(code, excluded code, note text)``.

        ICD-10-CM Official Guidelines I.A.12.a: an Excludes1 note means the two conditions
        are never coded together (exceptions need clinical judgement; the caller decides).
        """
        found: list[tuple[str, str, str]] = []
        norm = []
        for c in codes:
            obj = self.find(c)
            if obj is not None and obj.system is CodeSystem.ICD10CM:
                norm.append(obj.code)
        for a in norm:
            notes = self.inherited_notes(a).get("excludes1", [])
            for b in norm:
                if a == b or undot(b).startswith(undot(a)) or undot(a).startswith(undot(b)):
                    continue
                for _src, text, refs in notes:
                    if any(ref_covers(r, b) for r in refs):
                        found.append((a, b, text))
                        break
        return found

    def codes(self, system: CodeSystem | str = CodeSystem.ICD10CM, billable_only: bool = False) -> Iterator[Code]:
        """All codes of a system (CM: every hierarchy node of the newest data; PCS: 7-char codes)."""
        system = CodeSystem.parse(system)
        if system is CodeSystem.ICD10CM:
            bill = self._billable[self.fy]
            for c in self._cm:
                if billable_only and c not in bill:
                    continue
                obj = self.find(c)
                if obj is not None:
                    yield obj
        else:
            current = self._pcs_present[self.pcs_version_for(None)] if self._pcs_data() is not None else frozenset()
            for c in self._pcs_data():
                if c not in current:
                    continue
                obj = self.find(c, CodeSystem.ICD10PCS)
                if obj is not None:
                    yield obj

    def pcs_axes(self, code: str) -> list[tuple[str, str, str]]:
        """``[(axis name, char, meaning)]`` for a 7-character PCS code."""
        obj = self.get(code, system=CodeSystem.ICD10PCS if len(code.strip()) == 7 else None)
        if obj.system is not CodeSystem.ICD10PCS or not obj.axes:
            raise UnknownCodeError(f"{code!r} is not a complete 7-character ICD-10-PCS code.")
        return list(obj.axes)

    # ------------------------------------------------------------------ equivalents
    def billable_descendants(self, code: str, system: CodeSystem | str | None = None) -> list[str]:
        """Billable codes at or below a code in the newest data, "unspecified"/initial first."""
        obj = self.find(code, system)
        if obj is None:
            return []
        if obj.system is CodeSystem.ICD10PCS:
            c = obj.code
            current = self._pcs_present[self.pcs_version_for(None)]
            return [k for k in self._pcs_data().keys_with_prefix(c) if k in current]
        bill = self._billable[self._newest]
        out: list[str] = []
        stack = [obj.code]
        chmap = self._children_map()
        seen: set[str] = set()
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            if c in bill:
                out.append(c)
            stack.extend(chmap.get(c, []))

        def rank(c: str) -> tuple[int, str]:
            d = self._cm[c][1].lower()
            return (0 if ("unspecified" in d or c.endswith("A") and "initial" in d) else 1, c)

        return sorted(out, key=rank)

    def current_equivalents(self, code: str, system: CodeSystem | str | None = None) -> list[str]:
        """FY-newest billable code(s) for a code from an older code set.

        A code still billable -> ``[code]``; a code that became a category (7th character
        left off, or split since, e.g. R51 -> R51.0/R51.9, M54.5 -> M54.50/.51/.59) -> its
        billable descendants, ones titled "unspecified" (or "initial encounter") first; a code
        not in the newest data -> ``[]`` (no replacement is guessed).
        """
        obj = self.find(code, system)
        if obj is None:
            return []
        if obj.system is CodeSystem.ICD10PCS and len(obj.code) == 7:
            return [obj.code] if self.is_billable(obj.code, system=CodeSystem.ICD10PCS) else []
        if obj.system is CodeSystem.ICD10CM and obj.code not in self._present[self._newest]:
            return []
        return self.billable_descendants(obj.code, obj.system)

    def as_of_equivalent(self, code: str, day: dt.date | int, system: CodeSystem | str | None = None) -> str | None:
        """The code that was valid on ``day`` for a (newer) code: itself if billable then,
        else its nearest ancestor that was a billable code in that day's code set.

        E.g. ``M54.50`` -> ``M54.5`` for a 2019 date when FY2021 (or older) data is loaded.
        Returns ``None`` when the loaded data has no code valid then (nothing is guessed):
        with only FY2026 loaded, FY2026 answers for every date.
        """
        obj = self.find(code, system)
        if obj is None:
            return None
        if obj.system is CodeSystem.ICD10PCS:
            if len(obj.code) < 7:
                return obj.code
            return obj.code if self.is_billable(obj.code, day, CodeSystem.ICD10PCS) else None
        v = self.version_for(day)
        bill = self._billable[v]
        if obj.code in bill:
            return obj.code
        for a in self.ancestors(obj.code):
            if a.code in bill:
                return a.code
        return None

    # ------------------------------------------------------------------ terms and search
    def terms(self, system: CodeSystem | str | None = None) -> Iterator[IndexEntry]:
        """Every phrase that leads to a code: tabular titles, inclusion terms, index paths,
        drug/neoplasm/external-cause table cells, PCS index and table phrases."""
        want = CodeSystem.parse(system).value if system is not None else None
        for t in self._term_rows():
            if want is None or t[2] == want:
                yield IndexEntry(t[0], t[1], CodeSystem(t[2]), t[3], t[4], tuple(t[5]), t[6], t[7])

    def _search_index(self) -> tuple[dict[str, array], array]:
        rows = self._term_rows()
        if self._postings is None or self._term_len is None:
            self._postings, self._term_len = build_postings(rows)
        return self._postings, self._term_len

    def search(self, text: str, system: CodeSystem | str | None = None, limit: int = 20) -> list[tuple[Code, float]]:
        """Codes whose terms best match ``text``, best first, with a 0..1 score.

        Score of a term = (share of the query's IDF weight it matches) x sqrt(share of the
        term's words matched); a code takes its best term; an exact code gets 1.0.
        """
        want = CodeSystem.parse(system).value if system is not None else None
        out: dict[str, float] = {}
        rows_system: dict[str, str] = {}
        exact = self.find(text.strip(), want) if len(text.strip()) <= 8 else None
        if exact is not None and (want is None or exact.system.value == want):
            out[exact.code] = 1.0
            rows_system[exact.code] = exact.system.value
        q = [t for t in dict.fromkeys(tokenize(text)) if t not in STOPWORDS]
        if q:
            postings, tlen = self._search_index()
            rows = self._term_rows()
            n = len(rows)
            idf = {t: math.log(1 + n / (1 + len(postings.get(t, ())))) for t in q}
            total = sum(idf.values())
            acc: dict[int, float] = defaultdict(float)
            cnt: dict[int, int] = defaultdict(int)
            for t in q:
                for tid in postings.get(t, ()):
                    acc[tid] += idf[t]
                    cnt[tid] += 1
            for tid, s in acc.items():
                row = rows[tid]
                if want is not None and row[2] != want:
                    continue
                score = (s / total) * math.sqrt(cnt[tid] / max(1, tlen[tid])) * 0.99
                code = row[1]
                if score > out.get(code, 0.0):
                    out[code] = score
                    rows_system[code] = row[2]
        ranked = sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))
        result: list[tuple[Code, float]] = []
        seen: set[str] = set()
        for code, score in ranked:
            sys_hint = CodeSystem.ICD10PCS if rows_system.get(code) == "icd10pcs" else CodeSystem.ICD10CM
            obj = self.find(code, sys_hint)
            if obj is None:
                base = code.rstrip("-").rstrip(".")
                obj = self.find(base, sys_hint) if base else None
            if obj is None or obj.code in seen:
                continue
            seen.add(obj.code)
            result.append((obj, round(score, 4)))
            if len(result) >= limit * 3:
                break
        # equal scores: billable codes first
        result.sort(key=lambda r: (-r[1], not r[0].billable, r[0].code))
        return result[:limit]


@functools.lru_cache(maxsize=65536)
def _refs(text: str) -> tuple[str, ...]:
    return parse_refs(text)


def build_postings(rows: list[tuple[Any, ...]]) -> tuple[dict[str, array], array]:
    """Inverted index over term phrases: token -> term ids; and each term's token count."""
    postings: dict[str, array] = {}
    tlen = array("H")
    for i, row in enumerate(rows):
        toks = [t for t in dict.fromkeys(tokenize(row[0])) if t not in STOPWORDS]
        tlen.append(min(len(toks), 65535))
        for t in toks:
            p = postings.get(t)
            if p is None:
                p = postings[t] = array("I")
            p.append(i)
    return postings, tlen


def describe(kb: KnowledgeBase, code: str, as_of: dt.date | None = None,
             system: CodeSystem | str | None = None) -> dict[str, Any]:
    """Everything a coder looks up about a code, as plain data (used by ``opencac codes lookup``).

    Raises:
        UnknownCodeError: the code is in no loaded code set.
    """
    obj = kb.get(code, system=system)
    v = kb.version_for(as_of)
    out: dict[str, Any] = {
        "code": obj.code,
        "system": obj.system.value,
        "description": obj.description,
        "kind": obj.kind,
        "billable": kb.is_billable(obj.code, as_of, obj.system),
        "as_of": as_of.isoformat() if as_of else None,
        "hierarchy": [{"code": a.code, "kind": a.kind, "description": a.description}
                      for a in reversed(kb.ancestors(obj.code, obj.system))],
        "children": [{"code": c.code, "description": c.description}
                     for c in kb.children(obj.code, obj.system)[:200]],
    }
    if obj.system is CodeSystem.ICD10CM:
        out["fiscal_year"] = v
        out["valid_in_fiscal_year"] = obj.code in kb._present[v]
        out["valid_fiscal_years"] = {"from": obj.valid_from_fy, "to": obj.valid_to_fy,
                                     "loaded": [y for y in kb.cm_fiscal_years if obj.code in kb._present[y]]}
        out["manifestation"] = obj.manifestation
        out["notes"] = {kind: [{"at": src, "text": text, "refs": list(refs)} for src, text, refs in items]
                        for kind, items in kb.inherited_notes(obj.code).items()}
        out["seventh_characters"] = [{"char": c, "meaning": m} for c, m in kb.seventh_characters(obj.code)]
        if not out["billable"]:
            out["billable_codes"] = kb.current_equivalents(obj.code)[:50]
    else:
        if not obj.axes:
            out["billable_codes"] = kb.current_equivalents(obj.code, obj.system)[:50]
        out["axes"] = [{"axis": a, "char": c, "meaning": m} for a, c, m in obj.axes]
    return out
