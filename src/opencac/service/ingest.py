"""Ingest: plain text, JSON and FHIR R4 Bundles -> patient, encounter, document, queued coding run."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import html
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from opencac.coding.types import SETTINGS
from opencac.errors import InputError, PayloadFormatError
from opencac.store.events import record_event
from opencac.store.models import CodingRun, Document, Encounter, Patient, User
from opencac.text.document import read_note_bytes

#: FHIR Encounter.class codes (v3 ActCode) -> setting.
FHIR_CLASS_TO_SETTING = {"IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient", "OBSENC": "outpatient",
                         "AMB": "outpatient", "EMER": "emergency", "HH": "outpatient", "VR": "professional",
                         "PRENC": "professional", "SS": "outpatient"}


@dataclass(slots=True)
class IngestData:
    """Everything needed to create an encounter for review (format-independent)."""

    text: str
    setting: str = "outpatient"
    encounter_external_id: str | None = None
    date_of_service: dt.date | None = None
    admission_date: dt.date | None = None
    discharge_date: dt.date | None = None
    discharge_status: str | None = None
    priority: int = 0
    patient: dict[str, Any] = field(default_factory=dict)
    document_kind: str = "note"
    document_external_id: str | None = None
    source_format: str = "json"


def check_text(text: str, max_bytes: int, name: str = "document") -> str:
    """Validate note text with the same rules as files (size, binary, empty)."""
    return read_note_bytes(text.encode("utf-8"), name=name, max_bytes=max_bytes)


def check_setting(setting: str) -> str:
    """Validate an encounter setting."""
    s = (setting or "outpatient").strip().lower()
    if s not in SETTINGS:
        raise InputError(f"unknown setting {setting!r}.", options=SETTINGS)
    return s


def create_encounter(session: Session, data: IngestData, actor: User | str | None, max_bytes: int) -> Encounter:
    """Store an ingested encounter with its document and a queued coding run (events recorded).

    The caller commits and then notifies the worker.
    """
    text = check_text(data.text, max_bytes)
    setting = check_setting(data.setting)
    p = data.patient or {}
    patient = None
    if any(v not in (None, "") for v in p.values()):
        patient = Patient(external_id=p.get("external_id"), birth_date=p.get("birth_date"), sex=p.get("sex"),
                          race=p.get("race"), ethnicity=p.get("ethnicity"),
                          preferred_language=p.get("preferred_language"), payer=p.get("payer"))
        session.add(patient)
        session.flush()
    enc = Encounter(external_id=data.encounter_external_id, patient_id=patient.id if patient else None,
                    setting=setting, date_of_service=data.date_of_service, admission_date=data.admission_date,
                    discharge_date=data.discharge_date, discharge_status=data.discharge_status,
                    priority=data.priority, status="new", version=1)
    session.add(enc)
    session.flush()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    doc = Document(encounter_id=enc.id, external_id=data.document_external_id, kind=data.document_kind,
                   source_format=data.source_format, text=text, sha256=digest)
    session.add(doc)
    session.flush()
    run = CodingRun(encounter_id=enc.id, document_id=doc.id, status="queued")
    session.add(run)
    session.flush()
    record_event(session, actor, "encounter.ingest", "encounter", enc.id, None,
                 {"document_id": doc.id, "sha256": digest, "chars": len(text), "setting": setting,
                  "format": data.source_format, "patient_id": patient.id if patient else None, "run_id": run.id})
    return enc


# --- FHIR R4 -------------------------------------------------------------------------------
def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            errs = errors()
            if errs:
                e = errs[0]
                loc = ".".join(str(x) for x in e.get("loc", ()))
                return f"{loc}: {e.get('msg')}" if loc else str(e.get("msg"))
        except Exception:  # noqa: BLE001
            pass
    return str(exc).splitlines()[0][:300]


def _strip_tags(div: str) -> str:
    """The text of an XHTML narrative. A tag holds no "<", so a run of "<" without ">" costs
    one pass (``<[^>]+>`` retried every "<" against the whole rest: quadratic)."""
    return html.unescape(re.sub(r"<[^<>]+>", " ", div)).strip()


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def parse_fhir_bundle(raw: Any, max_bytes: int) -> IngestData:
    """Validate a FHIR R4 ``Bundle`` (R4B models) and extract Patient, Encounter, DocumentReference.

    The note comes from ``DocumentReference.content[].attachment.data`` (base64), else from the
    DocumentReference's narrative ``text.div``.

    Raises:
        PayloadFormatError: not a valid Bundle, or no usable DocumentReference.
    """
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.encounter import Encounter as FhirEncounter
    from fhir.resources.R4B.patient import Patient as FhirPatient

    if not isinstance(raw, dict):
        raise PayloadFormatError("expected a FHIR R4 Bundle JSON object.")
    if raw.get("resourceType") != "Bundle":
        raise PayloadFormatError(f"expected resourceType 'Bundle', got {raw.get('resourceType')!r}.")
    try:
        bundle = Bundle.model_validate(raw)
    except Exception as exc:  # noqa: BLE001 - pydantic / FHIR validation
        raise PayloadFormatError(f"invalid FHIR Bundle: {_first_error(exc)}") from None
    patient = encounter = docref = None
    for entry in bundle.entry or []:
        res = entry.resource
        if res is None:
            continue
        kind = res.get_resource_type() if hasattr(res, "get_resource_type") else type(res).__name__
        if kind == "Patient" and patient is None:
            patient = res
        elif kind == "Encounter" and encounter is None:
            encounter = res
        elif kind == "DocumentReference" and docref is None:
            docref = res
    if docref is None:
        raise PayloadFormatError("the Bundle has no DocumentReference: expected one with the note text.")
    text = None
    for content in docref.content or []:
        att = content.attachment
        if att is not None and att.data:
            data = att.data if isinstance(att.data, (bytes, bytearray)) else str(att.data).encode("ascii")
            try:
                decoded = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                decoded = bytes(data)  # the model may already have decoded it
            text = read_note_bytes(decoded, name="DocumentReference attachment", max_bytes=max_bytes)
            break
    if text is None and docref.text is not None and docref.text.div:
        text = _strip_tags(str(docref.text.div))
    if not text:
        raise PayloadFormatError("the DocumentReference has no attachment data (base64) and no narrative text.")
    out = IngestData(text=text, source_format="fhir", document_external_id=docref.id)
    if isinstance(patient, FhirPatient):
        lang = None
        for comm in patient.communication or []:
            if comm.language and comm.language.coding:
                lang = comm.language.coding[0].code
                break
            if comm.language and comm.language.text:
                lang = comm.language.text
                break
        race = ethnicity = None
        for ext in patient.extension or []:
            url = str(ext.url or "")
            for sub in ext.extension or []:
                if sub.url == "text" and sub.valueString:
                    if url.endswith("us-core-race"):
                        race = sub.valueString
                    elif url.endswith("us-core-ethnicity"):
                        ethnicity = sub.valueString
        gender = {"male": "M", "female": "F"}.get(str(patient.gender or ""), "U" if patient.gender else None)
        out.patient = {"external_id": patient.id, "birth_date": _date(patient.birthDate), "sex": gender,
                       "race": race, "ethnicity": ethnicity, "preferred_language": lang}
    if isinstance(encounter, FhirEncounter):
        out.encounter_external_id = encounter.id
        cls = getattr(encounter, "class_fhir", None) or getattr(encounter, "class", None)
        code = getattr(cls, "code", None)
        if code:
            out.setting = FHIR_CLASS_TO_SETTING.get(str(code).upper(), "outpatient")
        if encounter.period is not None:
            start, end = _date(encounter.period.start), _date(encounter.period.end)
            out.date_of_service = start
            if out.setting == "inpatient":
                out.admission_date, out.discharge_date = start, end
    if isinstance(docref, DocumentReference) and docref.type is not None and docref.type.text:
        out.document_kind = str(docref.type.text)[:50]
    return out
