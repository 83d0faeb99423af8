"""Audit work files: the findings an auditor recorded, read from CSV or JSON, scored.

CSV: one row per audited encounter (a second row for the same encounter by a different
auditor is a double audit, used for Cohen's kappa). Columns: ``encounter_id``, ``coded_by``,
``model_version``, ``confidence``, ``service_date``, ``final_codes``, ``final_poa``
(``I50.23:Y|E11.9:N``), ``final_drg``, ``final_drg_weight``, ``audited_codes``, ``audited_poa``,
``audited_drg``, ``audited_drg_weight``, ``auditor``, ``root_cause``, ``rationale``,
``citation``, ``response``, ``responder``, ``determination``, ``determination_note``.
Lists are ``|``-separated.

JSON::

    {"audit": {"name": ..., "auditor": ..., "mode": "blind", "base_rate": 6500},
     "scope": {...}, "sample": {... Sample.to_dict() ...},
     "encounters": [{"encounter_id": ..., "coded_by": ..., "final": {"codes": [...], "poa": {...},
                     "drg": ..., "drg_weight": ...}, "audited": {...}, "auditor": ..., "root_cause": ...,
                     "rationale": ..., "citation": ..., "findings": [{"kind": ..., "final_code": ...,
                     "audited_code": ..., "rationale": ..., "citation": ..., "root_cause": ...,
                     "responses": [{"by": ..., "text": ...}], "determination": ..., "note": ...}]}]}

Encounter-level rationale, citation, root cause, response and determination apply to every
finding of that encounter; per-finding entries (JSON) override them for the finding they match.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencac.audit.metrics import KappaResult, cohens_kappa, paired_labels
from opencac.audit.sampling import Sample, SampledItem
from opencac.audit.scope import AuditScope
from opencac.audit.scoring import (
    ROOT_CAUSES,
    AuditorCoding,
    AuditWorkbook,
    CodedEncounter,
    EncounterScore,
    score_encounter,
)
from opencac.errors import AuditInputError


@dataclass
class AuditFile:
    """A parsed audit work file."""

    name: str
    auditor: str
    mode: str
    base_rate: float | None
    organisation: str
    scope: AuditScope | None
    sample: Sample | None
    workbook: AuditWorkbook
    second: list[EncounterScore] = field(default_factory=list)

    def kappa(self) -> KappaResult | None:
        """Encounter-level Cohen's kappa over encounters audited twice (None if none)."""
        if not self.second:
            return None
        a, b = paired_labels(self.workbook.scores, self.second)
        return cohens_kappa(a, b) if a else None


def _list(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(str(x).strip() for x in v if str(x).strip())
    s = str(v).strip()
    if not s:
        return ()
    sep = "|" if "|" in s else ("," if "," in s else (";" if ";" in s else " "))
    return tuple(p.strip() for p in s.split(sep) if p.strip())


def _poa(v: Any) -> dict[str, str]:
    if isinstance(v, Mapping):
        return {str(k): str(x) for k, x in v.items()}
    out = {}
    for item in _list(v):
        if ":" not in item:
            raise AuditInputError(f"POA entry {item!r} should look like CODE:Y")
        k, x = item.split(":", 1)
        out[k.strip()] = x.strip()
    return out


def _float(v: Any, what: str) -> float | None:
    if v in (None, ""):
        return None
    try:
        return float(v)
    except (TypeError, ValueError) as exc:
        raise AuditInputError(f"{what} {v!r} is not a number") from exc


def _coding(d: Mapping[str, Any], what: str) -> tuple[tuple[str, ...], dict[str, str], str | None, float | None]:
    return (_list(d.get("codes")), _poa(d.get("poa")), (str(d["drg"]).strip() or None) if d.get("drg") else None,
            _float(d.get("drg_weight"), f"{what} drg_weight"))


def _csv_to_entries(path: Path) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    if not rows:
        raise AuditInputError(f"{path.name}: no rows")
    need = {"encounter_id", "final_codes", "audited_codes"}
    missing = need - set(rows[0])
    if missing:
        raise AuditInputError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}", options=sorted(need))
    out = []
    for r in rows:
        e: dict[str, Any] = {k: r.get(k) for k in ("encounter_id", "coded_by", "model_version", "confidence",
                                                   "service_date", "auditor", "root_cause", "rationale",
                                                   "citation", "determination", "determination_note")}
        e["final"] = {"codes": r.get("final_codes"), "poa": r.get("final_poa"), "drg": r.get("final_drg"),
                      "drg_weight": r.get("final_drg_weight")}
        e["audited"] = {"codes": r.get("audited_codes"), "poa": r.get("audited_poa"), "drg": r.get("audited_drg"),
                        "drg_weight": r.get("audited_drg_weight")}
        if (r.get("response") or "").strip():
            e["responses"] = [{"by": r.get("responder") or "coded party", "text": r["response"]}]
        out.append(e)
    return out


def _annotate(wb: AuditWorkbook, eid: str, e: Mapping[str, Any]) -> None:
    per = list(e.get("findings") or [])
    for f in wb.encounters[eid].findings:
        match = next((a for a in per if a.get("kind") == f.kind
                      and (a.get("final_code") or None) == f.final_code
                      and (a.get("audited_code") or None) == f.audited_code), {})
        ann = {**{k: v for k, v in e.items() if k in ("root_cause", "rationale", "citation", "responses",
                                                         "determination", "determination_note")}, **match}
        if ann.get("root_cause"):
            if ann["root_cause"] not in ROOT_CAUSES:
                raise AuditInputError(f"encounter {eid}: root cause {ann['root_cause']!r} is not known",
                                      options=ROOT_CAUSES)
            f.root_cause = ann["root_cause"]
        f.rationale = str(ann.get("rationale") or "").strip()
        f.citation = str(ann.get("citation") or "").strip()
        for resp in ann.get("responses") or []:
            f.respond(str(resp.get("by") or "coded party"), str(resp.get("text") or ""), resp.get("at"))
        det = str(ann.get("determination") or "").strip()
        if det:
            f.determine(det, str(ann.get("determination_note") or ann.get("note") or ""))


def load_audit_file(path: str | Path) -> AuditFile:
    """Read and score an audit work file (CSV or JSON, see module docstring).

    Raises:
        AuditInputError: Malformed file, unknown root cause or mode.
        AuditOverrideError: A finding is upheld without a rationale and a citation.
    """
    p = Path(path)
    meta: Mapping[str, Any] = {}
    scope = sample = None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise AuditInputError(f"{p.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if isinstance(data, list):
            data = {"encounters": data}
        if not isinstance(data, Mapping):
            raise AuditInputError(f"{p.name}: expected a JSON object with 'encounters'")
        meta = data.get("audit") or {}
        if data.get("scope"):
            scope = AuditScope.from_dict(data["scope"])
        if data.get("sample"):
            sample = sample_from_dict(data["sample"])
        entries = list(data.get("encounters") or [])
    else:
        entries = _csv_to_entries(p)
    if not entries:
        raise AuditInputError(f"{p.name}: no audited encounters")
    wb = AuditWorkbook(str(meta.get("name") or p.stem), str(meta.get("mode") or "blind"))
    second: list[EncounterScore] = []
    first_auditor: dict[str, str] = {}
    for i, e in enumerate(entries):
        eid = str(e.get("encounter_id") or "").strip()
        if not eid:
            raise AuditInputError(f"{p.name}: entry {i + 1} has no encounter_id")
        fc = _coding(e.get("final") or {}, f"{eid} final")
        ac = _coding(e.get("audited") or {}, f"{eid} audited")
        final = CodedEncounter(eid, fc[0], fc[1], fc[2], fc[3], (e.get("coded_by") or None),
                               (e.get("model_version") or None), _float(e.get("confidence"), f"{eid} confidence"),
                               (str(e.get("service_date")) if e.get("service_date") else None))
        audited = AuditorCoding(ac[0], ac[1], ac[2], ac[3])
        auditor = str(e.get("auditor") or "")
        if eid in wb.encounters:
            if first_auditor.get(eid) == auditor:
                raise AuditInputError(f"{p.name}: encounter {eid} appears twice for auditor {auditor or '(blank)'}")
            second.append(score_encounter(final, audited))
            continue
        wb.add(final)
        first_auditor[eid] = auditor
        wb.record_coding(eid, audited, auditor)
        _annotate(wb, eid, e)
    return AuditFile(wb.name, str(meta.get("auditor") or ""), wb.mode, _float(meta.get("base_rate"), "base_rate"),
                     str(meta.get("organisation") or ""), scope, sample, wb, second)


def sample_from_dict(d: Mapping[str, Any]) -> Sample:
    """Inverse of :meth:`Sample.to_dict` (the size calculation is not restored)."""
    try:
        items = [SampledItem(**i) for i in d.get("items", [])]
        return Sample(d["method"], int(d["seed"]), items, tuple(d.get("frame_ids") or ()), d["frame_hash"],
                      dict(d.get("params") or {}), dict(d.get("strata") or {}), list(d.get("notes") or []))
    except (KeyError, TypeError) as exc:
        raise AuditInputError(f"sample record is incomplete: {exc}") from exc


def scores_of(files: Sequence[AuditFile]) -> list[EncounterScore]:
    """Final scores (after determinations) of several audit files, concatenated."""
    return [s for f in files for s in f.workbook.final_scores()]
