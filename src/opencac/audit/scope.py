"""Audit scope: which encounters an audit covers (its population)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from opencac.audit.records import CODED_BY, EncounterRecord
from opencac.errors import AuditInputError


def _family_match(code: str, family: str) -> bool:
    """True when ``code`` falls in ``family``: a prefix ('I50', 'E11.') or a range 'E08-E13'."""
    c = code.replace(".", "").upper()
    f = family.replace(".", "").replace("-", "-").upper().rstrip("-")
    if "-" in f:
        lo, hi = f.split("-", 1)
        head = c[: max(len(lo), len(hi))]
        return lo <= head <= hi
    return c.startswith(f)


@dataclass(frozen=True)
class AuditScope:
    """The population of an audit. Every criterion left as None (or empty) matches all.

    Attributes:
        date_from, date_to: Inclusive service-date range.
        settings: Allowed settings (e.g. ``("inpatient",)``).
        coded_by: Allowed ways of coding, from :data:`~opencac.audit.records.CODED_BY`.
        model_versions: Allowed model versions.
        coders: Allowed coder ids.
        confidence_min, confidence_max: Confidence band, ``min <= c < max``.
        drgs: Allowed MS-DRGs (exact).
        code_families: Code prefixes or ranges ('I50', 'E08-E13'); an encounter matches
            when any of its codes falls in any family.
        payers: Allowed payers.
        name: Optional label shown in reports.
    """

    date_from: date | None = None
    date_to: date | None = None
    settings: tuple[str, ...] = ()
    coded_by: tuple[str, ...] = ()
    model_versions: tuple[str, ...] = ()
    coders: tuple[str, ...] = ()
    confidence_min: float | None = None
    confidence_max: float | None = None
    drgs: tuple[str, ...] = ()
    code_families: tuple[str, ...] = ()
    payers: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        bad = [c for c in self.coded_by if c not in CODED_BY]
        if bad:
            raise AuditInputError(f"scope coded_by {bad[0]!r} is not known", options=CODED_BY)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise AuditInputError(f"scope date_from {self.date_from} is after date_to {self.date_to}")
        for v in (self.confidence_min, self.confidence_max):
            if v is not None and not 0.0 <= v <= 1.0:
                raise AuditInputError(f"scope confidence bound {v} is outside 0..1")

    def matches(self, rec: EncounterRecord) -> bool:
        """True when ``rec`` is inside this scope."""
        if self.date_from and (rec.service_date is None or rec.service_date < self.date_from):
            return False
        if self.date_to and (rec.service_date is None or rec.service_date > self.date_to):
            return False
        if self.settings and rec.setting not in self.settings:
            return False
        if self.coded_by and rec.coded_by not in self.coded_by:
            return False
        if self.model_versions and rec.model_version not in self.model_versions:
            return False
        if self.coders and rec.coder not in self.coders:
            return False
        if self.confidence_min is not None and (rec.confidence is None or rec.confidence < self.confidence_min):
            return False
        if self.confidence_max is not None and (rec.confidence is None or rec.confidence >= self.confidence_max):
            return False
        if self.drgs and rec.drg not in self.drgs:
            return False
        if self.code_families and not any(
            _family_match(c, f) for c in rec.codes for f in self.code_families
        ):
            return False
        return not (self.payers and rec.payer not in self.payers)

    def apply(self, records: Iterable[EncounterRecord]) -> list[EncounterRecord]:
        """Return the records inside the scope, keeping their order."""
        return [r for r in records if self.matches(r)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings, tuples as lists)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, date):
                d[k] = v.isoformat()
            elif isinstance(v, tuple):
                d[k] = list(v)
        return d

    def describe(self) -> list[str]:
        """Plain-language lines for a report ("All encounters" when unrestricted)."""
        out: list[str] = []
        if self.date_from or self.date_to:
            out.append(f"Service dates {self.date_from or 'any'} to {self.date_to or 'any'}")
        labels = {
            "settings": "Setting", "coded_by": "Coded by", "model_versions": "Model version",
            "coders": "Coder", "drgs": "MS-DRG", "code_families": "Code families", "payers": "Payer",
        }
        for key, label in labels.items():
            vals: Sequence[str] = getattr(self, key)
            if vals:
                out.append(f"{label}: {', '.join(vals)}")
        if self.confidence_min is not None or self.confidence_max is not None:
            out.append(f"AI confidence from {self.confidence_min or 0:.2f} to below {self.confidence_max or 1:.2f}")
        return out or ["All encounters in the frame"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditScope:
        """Inverse of :meth:`to_dict`; unknown keys raise AuditInputError."""
        if not isinstance(data, Mapping):
            raise AuditInputError("a scope must be an object of AuditScope fields")
        allowed = set(cls.__dataclass_fields__)
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise AuditInputError(f"unknown scope field {unknown[0]!r}", options=sorted(allowed))
        kw: dict[str, Any] = {}
        for k, v in data.items():
            if v is None or v == "" or v == []:
                continue
            if k in ("date_from", "date_to"):
                try:
                    kw[k] = v if isinstance(v, date) else date.fromisoformat(str(v))
                except ValueError as exc:
                    raise AuditInputError(f"scope {k} {v!r} is not YYYY-MM-DD") from exc
            elif k in ("confidence_min", "confidence_max"):
                try:
                    kw[k] = float(v)
                except (TypeError, ValueError) as exc:
                    raise AuditInputError(f"scope {k} {v!r} is not a number in 0..1") from exc
            elif k == "name":
                kw[k] = str(v)
            else:
                kw[k] = tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else tuple(
                    x.strip() for x in str(v).split(",") if x.strip())
        return cls(**kw)
