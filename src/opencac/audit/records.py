"""Encounter records as auditors see them: one row of the audit frame.

A frame is the ordered list of encounters an audit may sample from. Records are plain,
frozen data so that a frame can be hashed and a sample reproduced exactly. ``read_frame``
reads the CSV layout used by ``opencac audit sample`` (columns documented on
:data:`FRAME_COLUMNS`); unknown columns are kept in ``extra``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from opencac.errors import AuditInputError

#: How an encounter's final codes were produced.
CODED_BY = ("ai_straight_through", "ai_coder", "coder")

#: Columns understood in a frame CSV. Only ``encounter_id`` is required.
FRAME_COLUMNS = (
    "encounter_id", "service_date", "setting", "coded_by", "model_version", "coder",
    "confidence", "drg", "drg_weight", "codes", "payer", "edits", "age", "sex", "race",
    "ethnicity", "language", "automated", "queried", "accurate",
)

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass(frozen=True)
class EncounterRecord:
    """One encounter in an audit frame.

    Attributes:
        encounter_id: Stable identifier (unique within the frame).
        service_date: Date of service (discharge date for inpatient).
        setting: ``inpatient``, ``outpatient``, ``ed``, ``professional`` ... (free text).
        coded_by: One of :data:`CODED_BY`.
        model_version: Versioned name of the model that suggested codes, if any.
        coder: User id of the coder who finalised, if any.
        confidence: Encounter-level confidence of the AI (0-1), if any.
        drg: Final MS-DRG, if grouped.
        drg_weight: Relative weight of the final DRG.
        codes: Final codes in sequence (principal diagnosis first).
        payer: Payer name or class.
        edits: Ids of the edits that fired on the final claim.
        age: Age in years at the encounter.
        sex, race, ethnicity, language: Demographics used for fairness reporting.
        automated: True when the encounter went straight through without a coder.
        queried: True when a CDI/physician query was raised.
        accurate: Audit outcome when already known (used by fairness reporting).
        extra: Any further columns, kept as text.
    """

    encounter_id: str
    service_date: date | None = None
    setting: str | None = None
    coded_by: str | None = None
    model_version: str | None = None
    coder: str | None = None
    confidence: float | None = None
    drg: str | None = None
    drg_weight: float | None = None
    codes: tuple[str, ...] = ()
    payer: str | None = None
    edits: tuple[str, ...] = ()
    age: int | None = None
    sex: str | None = None
    race: str | None = None
    ethnicity: str | None = None
    language: str | None = None
    automated: bool | None = None
    queried: bool | None = None
    accurate: bool | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """Return attribute ``key`` or the ``extra`` column of that name (None when absent)."""
        if key in _FIELD_NAMES:
            return getattr(self, key)
        return self.extra.get(key)

    def to_row(self) -> dict[str, str]:
        """Flatten to CSV-ready strings (lists joined with ``|``)."""
        row: dict[str, str] = {}
        for name in FRAME_COLUMNS:
            value = getattr(self, name)
            row[name] = _fmt(value)
        for k, v in self.extra.items():
            row[k] = v
        return row


_FIELD_NAMES = {f.name for f in fields(EncounterRecord)} - {"extra"}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "|".join(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _split(value: str) -> tuple[str, ...]:
    value = value.strip()
    if not value:
        return ()
    if value.startswith("["):
        try:
            return tuple(str(x) for x in json.loads(value))
        except json.JSONDecodeError as exc:
            raise AuditInputError(f"bad list value {value[:40]!r}: expected JSON list or a|b|c") from exc
    sep = "|" if "|" in value else (";" if ";" in value else " ")
    return tuple(p.strip() for p in value.split(sep) if p.strip())


def _bool(value: str, column: str, row_no: int) -> bool | None:
    v = value.strip().lower()
    if v == "":
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise AuditInputError(f"row {row_no}: column {column!r} has {value!r}, expected true/false")


def record_from_mapping(row: Mapping[str, Any], row_no: int = 0) -> EncounterRecord:
    """Build an :class:`EncounterRecord` from a CSV row or JSON object.

    Args:
        row: Column name -> value (strings from CSV, or typed JSON values).
        row_no: Row number for error messages.

    Raises:
        AuditInputError: Missing ``encounter_id`` or a value of the wrong type.
    """
    def s(key: str) -> str:
        v = row.get(key)
        if v is None:
            return ""
        if isinstance(v, (list, tuple)):
            return "|".join(str(x) for x in v)
        return str(v)

    eid = s("encounter_id").strip()
    if not eid:
        raise AuditInputError(f"row {row_no}: missing encounter_id")
    try:
        sd = s("service_date").strip()
        service_date = date.fromisoformat(sd[:10]) if sd else None
    except ValueError as exc:
        raise AuditInputError(f"row {row_no}: service_date {s('service_date')!r} is not YYYY-MM-DD") from exc

    def num(key: str, kind: type) -> Any:
        v = s(key).strip()
        if not v:
            return None
        try:
            return kind(float(v)) if kind is int else kind(v)
        except ValueError as exc:
            raise AuditInputError(f"row {row_no}: column {key!r} has {v!r}, expected a number") from exc

    coded_by = s("coded_by").strip() or None
    if coded_by is not None and coded_by not in CODED_BY:
        raise AuditInputError(f"row {row_no}: coded_by {coded_by!r} is not known", options=CODED_BY)
    known = set(FRAME_COLUMNS)
    extra = {str(k): s(str(k)) for k in row if k not in known}
    return EncounterRecord(
        encounter_id=eid,
        service_date=service_date,
        setting=s("setting").strip() or None,
        coded_by=coded_by,
        model_version=s("model_version").strip() or None,
        coder=s("coder").strip() or None,
        confidence=num("confidence", float),
        drg=s("drg").strip() or None,
        drg_weight=num("drg_weight", float),
        codes=_split(s("codes")),
        payer=s("payer").strip() or None,
        edits=_split(s("edits")),
        age=num("age", int),
        sex=s("sex").strip() or None,
        race=s("race").strip() or None,
        ethnicity=s("ethnicity").strip() or None,
        language=s("language").strip() or None,
        automated=_bool(s("automated"), "automated", row_no),
        queried=_bool(s("queried"), "queried", row_no),
        accurate=_bool(s("accurate"), "accurate", row_no),
        extra=extra,
    )


def read_frame(path: str | Path) -> list[EncounterRecord]:
    """Read a frame CSV (or JSON list / JSON-lines) into records, in file order.

    Raises:
        AuditInputError: Empty file, missing ``encounter_id`` column or duplicate ids.
        FileNotFoundError: The file does not exist.
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig")
    rows: list[Mapping[str, Any]]
    if p.suffix.lower() in (".json", ".jsonl"):
        try:
            if p.suffix.lower() == ".jsonl":
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                data = json.loads(text)
                rows = data.get("records", []) if isinstance(data, dict) else data
        except json.JSONDecodeError as exc:
            raise AuditInputError(f"{p.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "encounter_id" not in reader.fieldnames:
            raise AuditInputError(f"{p.name}: no 'encounter_id' column", options=FRAME_COLUMNS)
        rows = list(reader)
    records = [record_from_mapping(r, i + 2) for i, r in enumerate(rows)]
    if not records:
        raise AuditInputError(f"{p.name}: the frame is empty")
    check_unique(records)
    return records


def check_unique(records: Sequence[EncounterRecord]) -> None:
    """Raise AuditInputError naming the first duplicated encounter id."""
    seen: set[str] = set()
    for r in records:
        if r.encounter_id in seen:
            raise AuditInputError(f"duplicate encounter_id {r.encounter_id!r} in the frame")
        seen.add(r.encounter_id)


def write_records(records: Iterable[EncounterRecord], path: str | Path) -> Path:
    """Write records as CSV with the :data:`FRAME_COLUMNS` (plus any extra columns)."""
    rows = [r.to_row() for r in records]
    cols = list(FRAME_COLUMNS)
    for row in rows:
        cols += [k for k in row if k not in cols]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return p
