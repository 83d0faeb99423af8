"""A small stand-in for ``opencac.codesets.KnowledgeBase`` with the agreed methods.

ICD-10-CM comes from the ``simple_icd_10_cm`` package (the CMS tabular, with its notes);
ICD-10-PCS is a tiny hand-written table of the codes the tests use. It lets the rules be
tested fast and independently of the compiled code-set artifact.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import simple_icd_10_cm as cm

from opencac.codesets.types import Code, CodeSetVersion, CodeSystem, fiscal_year
from opencac.errors import UnknownCodeError

_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?"
_REF = re.compile(rf"({_CODE})\s*-\s*({_CODE})|({_CODE})(\.?-)?")

PCS: dict[str, str] = {
    "0DTJ4ZZ": "Resection of Appendix, Percutaneous Endoscopic Approach",
    "0DTJ0ZZ": "Resection of Appendix, Open Approach",
    "0T9B30Z": "Drainage of Bladder with Drainage Device, Percutaneous Approach",
    "0FT44ZZ": "Resection of Gallbladder, Percutaneous Endoscopic Approach",
    "0FT40ZZ": "Resection of Gallbladder, Open Approach",
    "0FJ44ZZ": "Inspection of Gallbladder, Percutaneous Endoscopic Approach",
    "0VT04ZZ": "Resection of Prostate, Percutaneous Endoscopic Approach",
    "0UT94ZZ": "Resection of Uterus, Percutaneous Endoscopic Approach",
    "10D00Z1": "Extraction of Products of Conception, Low, Open Approach",
    "02703ZZ": "Dilation of Coronary Artery, One Artery, Percutaneous Approach",
    "5A1955Z": "Respiratory Ventilation, Greater than 96 Consecutive Hours",
    "0SR90J9": "Replacement of Right Hip Joint with Synthetic Substitute, Cemented, Open Approach",
    "30233N1": "Transfusion of Nonautologous Red Blood Cells into Peripheral Vein, Percutaneous Approach",
    "0HBT0ZZ": "Excision of Right Breast, Open Approach",
    "0HBU0ZZ": "Excision of Left Breast, Open Approach",
}
#: code -> (first valid fiscal year, last valid fiscal year); others valid in every year.
VALIDITY: dict[str, tuple[int | None, int | None]] = {"U09.9": (2022, None), "U07.1": (2020, None)}
PCS_AXES = ("Section", "Body System", "Root Operation", "Body Part", "Approach", "Device", "Qualifier")


def undot(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


def ref_covers(ref: str, code: str) -> bool:
    c = undot(code)
    m = re.fullmatch(rf"({_CODE})\s*-\s*({_CODE})", ref.strip().upper())
    if m:
        lo, hi = undot(m.group(1)), undot(m.group(2))
        return c[: len(lo)] >= lo and c[: len(hi)] <= hi
    base = undot(ref).rstrip("-")
    return bool(base) and c.startswith(base)


def parse_refs(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for chunk in re.findall(r"\(([^()]*)\)", text):
        for m in _REF.finditer(chunk):
            a, b, single, dash = m.groups()
            ref = f"{a}-{b}" if a else (single + (dash or ""))
            if ref not in out:
                out.append(ref)
    return tuple(out)


def _as_list(v: object) -> list[str]:
    if not v:
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]  # type: ignore[union-attr]


class FakeKB:
    """The agreed KnowledgeBase surface, backed by simple_icd_10_cm + a tiny PCS table."""

    versions = {"icd10cm": CodeSetVersion(CodeSystem.ICD10CM, 2025, "simple_icd_10_cm"),
                "icd10pcs": CodeSetVersion(CodeSystem.ICD10PCS, 2025, "tests/edits/fakekb.py")}

    def normalize(self, code: str, system: str | None = None) -> str:
        u = undot(code)
        if u in PCS or system == "icd10pcs" or not re.match(r"^[A-Z]\d", u):
            return u
        return cm.add_dot(u) if len(u) > 3 else u

    def system_of(self, code: str) -> CodeSystem:
        return CodeSystem.ICD10PCS if undot(code) in PCS or re.match(r"^[0-9]", code) else CodeSystem.ICD10CM

    @lru_cache(maxsize=None)  # noqa: B019 - test helper
    def find(self, code: str, system: str | None = None) -> Code | None:
        u = undot(code)
        if u in PCS:
            return Code(CodeSystem.ICD10PCS, u, PCS[u], billable=True,
                        axes=tuple((PCS_AXES[i], u[i], "") for i in range(7)))
        if 3 <= len(u) < 7 and any(k.startswith(u) for k in PCS) and not re.match(r"^[A-Z]\d", u):
            return Code(CodeSystem.ICD10PCS, u, f"PCS table node {u}", kind="block", billable=False)
        if not re.match(r"^[A-Z]\d", u):
            return None
        c = cm.add_dot(u) if len(u) > 3 else u
        if not cm.is_valid_item(c):
            return None
        kind = ("chapter" if cm.is_chapter(c) else "block" if cm.is_block(c)
                else "category" if cm.is_category(c) else "code")
        desc = cm.get_description(c)
        anc = cm.get_ancestors(c)
        return Code(CodeSystem.ICD10CM, c, desc, kind=kind, billable=cm.is_leaf(c) and kind in ("code", "category"),
                    parent=cm.get_parent(c) or None, chapter=anc[-1] if anc else None,
                    manifestation="in diseases classified elsewhere" in desc.lower(),
                    valid_from_fy=VALIDITY.get(c, (None, None))[0], valid_to_fy=VALIDITY.get(c, (None, None))[1],
                    seventh_characters=tuple(sorted((cm.get_seven_chr_def(c) or {}).items())))

    def get(self, code: str, as_of: dt.date | None = None) -> Code:
        c = self.find(code)
        if c is None:
            raise UnknownCodeError(f"unknown code {code!r}.")
        return c

    def is_billable(self, code: str, as_of: dt.date | None = None) -> bool:
        c = self.find(code)
        if c is None or not c.billable:
            return False
        return as_of is None or c.valid_in(fiscal_year(as_of))

    def children(self, code: str) -> list[Code]:
        c = self.find(code)
        if c is None or c.system is CodeSystem.ICD10PCS:
            return []
        return [k for k in (self.find(x) for x in cm.get_children(c.code)) if k is not None]

    def ancestors(self, code: str) -> list[Code]:
        c = self.find(code)
        if c is None or c.system is CodeSystem.ICD10PCS:
            return []
        return [k for k in (self.find(x) for x in cm.get_ancestors(c.code)) if k is not None]

    def inherited_notes(self, code: str) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
        c = self.find(code)
        out: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
        if c is None or c.system is CodeSystem.ICD10PCS:
            return out
        getters = {"excludes1": cm.get_excludes1, "excludes2": cm.get_excludes2, "code_first": cm.get_code_first,
                   "use_additional": cm.get_use_additional_code, "code_also": cm.get_code_also}
        for node in [c.code] + cm.get_ancestors(c.code):
            for kind, fn in getters.items():
                for text in _as_list(fn(node)):
                    out.setdefault(kind, []).append((node, text, parse_refs(text)))
        return out

    def seventh_characters(self, code: str) -> tuple[tuple[str, str], ...]:
        c = self.find(code)
        if c is None or c.system is CodeSystem.ICD10PCS:
            return ()
        for node in [c.code] + cm.get_ancestors(c.code):
            d = cm.get_seven_chr_def(node)
            if d:
                return tuple(sorted(d.items()))
        return ()

    def ref_matches(self, ref: str, code: str) -> bool:
        return ref_covers(ref, code)

    def excludes1_pairs(self, codes: Iterable[str]) -> list[tuple[str, str, str]]:
        cs = [self.normalize(c) for c in codes]
        out = []
        for a in cs:
            for _src, text, refs in self.inherited_notes(a).get("excludes1", []):
                for b in cs:
                    if b != a and any(ref_covers(r, b) for r in refs):
                        out.append((a, b, text))
        return out

    def pcs_axes(self, code: str) -> list[tuple[str, str, str]]:
        c = self.find(code)
        if c is None or c.system is not CodeSystem.ICD10PCS:
            raise UnknownCodeError(f"unknown PCS code {code!r}.")
        return list(c.axes)

    def billable_descendants(self, code: str, system: str | None = None) -> list[str]:
        c = self.find(code)
        if c is None:
            return []
        if c.system is CodeSystem.ICD10PCS:
            return sorted(k for k in PCS if k.startswith(c.code))
        return [k.code for k in self.codes(CodeSystem.ICD10CM, billable_only=True)
                if undot(k.code).startswith(undot(c.code))]

    def codes(self, system: CodeSystem, billable_only: bool = False) -> Iterator[Code]:
        if system is CodeSystem.ICD10PCS:
            yield from (self.find(c) for c in PCS)  # type: ignore[misc]
            return
        for c in cm.get_all_codes(with_dots=True):
            k = self.find(c)
            if k is not None and (k.billable or not billable_only):
                yield k


FAKE_KB = FakeKB()
