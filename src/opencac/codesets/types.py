"""Frozen, plain-data knowledge: codes, index entries and code systems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum

from opencac.errors import UnknownCodeSystemError


class CodeSystem(str, Enum):
    """The supported code systems."""

    ICD10CM = "icd10cm"
    ICD10PCS = "icd10pcs"

    @classmethod
    def parse(cls, value: str | CodeSystem) -> CodeSystem:
        """Parse a user-supplied system name (``icd10cm``, ``ICD-10-CM``, ``cm``, ``pcs``...)."""
        if isinstance(value, CodeSystem):
            return value
        key = value.strip().lower().replace("-", "").replace("_", "")
        aliases = {"icd10cm": cls.ICD10CM, "cm": cls.ICD10CM, "d": cls.ICD10CM, "diagnosis": cls.ICD10CM,
                   "icd10pcs": cls.ICD10PCS, "pcs": cls.ICD10PCS, "p": cls.ICD10PCS, "procedure": cls.ICD10PCS}
        if key not in aliases:
            raise UnknownCodeSystemError(f"unknown code system {value!r}.", options=[c.value for c in cls])
        return aliases[key]


def fiscal_year(day: dt.date) -> int:
    """Return the US federal fiscal year of a date of service (FY N runs Oct 1 N-1 .. Sep 30 N)."""
    return day.year + 1 if day.month >= 10 else day.year


@dataclass(frozen=True, slots=True)
class Code:
    """One code of ICD-10-CM (dotted, e.g. ``E11.9``) or ICD-10-PCS (7 characters) or a
    non-code node of the hierarchy (a chapter ``"4"`` or a block ``"E08-E13"``).

    Notes (``excludes1`` ...) hold the tabular text as written; ``*_codes`` fields hold the
    code references parsed out of those notes (codes or ranges such as ``"E08-E13"``).
    Notes are the ones written at this node; use ``KnowledgeBase.inherited_notes`` for the
    notes that apply through the hierarchy.
    """

    system: CodeSystem
    code: str
    description: str
    kind: str = "code"  # "chapter" | "block" | "category" | "code" (PCS: "code")
    billable: bool = False
    parent: str | None = None
    chapter: str | None = None
    block: str | None = None
    inclusion_terms: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes1: tuple[str, ...] = ()
    excludes2: tuple[str, ...] = ()
    code_first: tuple[str, ...] = ()
    use_additional: tuple[str, ...] = ()
    code_also: tuple[str, ...] = ()
    excludes1_codes: tuple[str, ...] = ()
    excludes2_codes: tuple[str, ...] = ()
    code_first_codes: tuple[str, ...] = ()
    use_additional_codes: tuple[str, ...] = ()
    code_also_codes: tuple[str, ...] = ()
    #: 7th-character definitions that apply at this node: ((char, meaning), ...)
    seventh_characters: tuple[tuple[str, str], ...] = ()
    #: Fiscal years the code is valid (billable) in, inclusive; None = open-ended.
    valid_from_fy: int | None = None
    valid_to_fy: int | None = None
    #: PCS only: the axis values, ((axis name, value char, meaning), ...)
    axes: tuple[tuple[str, str, str], ...] = ()
    #: Manifestation code (italicised / "in diseases classified elsewhere"): never principal.
    manifestation: bool = False

    def valid_in(self, fy: int) -> bool:
        """Whether the code is valid in fiscal year ``fy``."""
        lo = self.valid_from_fy if self.valid_from_fy is not None else -1
        hi = self.valid_to_fy if self.valid_to_fy is not None else 10**6
        return lo <= fy <= hi


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A term that leads to a code: an alphabetic-index path, a tabular description or
    inclusion term, a drug/neoplasm/external-cause table cell, or a PCS index entry.

    Attributes:
        phrase: the full phrase (main term + subterms, nonessential modifiers removed).
        code: the code it leads to (may be incomplete, e.g. an index code ending in ``-``).
        system: the code system.
        source: ``"index"``, ``"drug"``, ``"neoplasm"``, ``"eindex"``, ``"tabular"``,
            ``"inclusion"``, ``"pcs-index"``, ``"pcs-table"``.
        path: the index path as written (``"Diabetes > type 2 > with > nephropathy"``).
        nonessential: nonessential modifiers (optional words).
        see: a ``see`` cross-reference, if any.
        see_also: a ``see also`` cross-reference, if any.
    """

    phrase: str
    code: str
    system: CodeSystem
    source: str
    path: str = ""
    nonessential: tuple[str, ...] = ()
    see: str = ""
    see_also: str = ""


@dataclass(frozen=True, slots=True)
class CodeSetVersion:
    """Identifies a compiled code set: system, fiscal year and where it came from."""

    system: CodeSystem
    fiscal_year: int
    source: str
    sha256: str = ""
    extra: dict[str, str] = field(default_factory=dict)
