"""Export of a finalised encounter: FHIR R4 Bundle (Claim + Condition + Procedure) and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sqlalchemy.orm import Session

from opencac.errors import ConflictError
from opencac.service.workflow import encounter_state

CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
PCS_SYSTEM = "http://www.cms.gov/Medicare/Coding/ICD10"
CSV_COLUMNS = ("encounter_id", "external_id", "final_version", "system", "sequence", "code", "description",
               "source", "finalized_by", "finalized_at", "poa", "coded_by")
#: FHIR R4 Claim.diagnosis.onAdmission code system (UB-04 POA indicators Y, N, U, W, 1).
POA_SYSTEM = "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/HospitalAcqCond/Coding"
POA_DISPLAY = {"Y": "Present on admission", "N": "Not present on admission",
               "U": "Documentation insufficient", "W": "Clinically undetermined", "1": "Exempt from POA reporting"}


def _final(session: Session, encounter_id: int) -> Any:
    state = encounter_state(session, encounter_id)
    if state.final is None:
        raise ConflictError(f"encounter {encounter_id} has no final code set yet: finalise it first.")
    return state


def export_fhir(session: Session, encounter_id: int) -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (collection) with Patient, Encounter, Condition, Procedure and a ``Claim``
    whose ``diagnosis`` and ``procedure`` entries are sequenced; validated with ``fhir.resources.R4B``."""
    from fhir.resources.R4B.bundle import Bundle

    state = _final(session, encounter_id)
    enc, final = state.encounter, state.final
    pid = f"patient-{enc.patient_id or 'unknown'}"
    eid = f"encounter-{enc.id}"
    when = (final.finalized_at or dt.datetime.utcnow()).replace(microsecond=0).isoformat() + "Z"
    entries: list[dict[str, Any]] = []
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if enc.patient is not None:
        if enc.patient.birth_date:
            patient["birthDate"] = enc.patient.birth_date.isoformat()
        if enc.patient.sex:
            patient["gender"] = {"F": "female", "M": "male"}.get(enc.patient.sex, "unknown")
    entries.append(patient)
    class_code = {"inpatient": "IMP", "emergency": "EMER", "outpatient": "AMB", "professional": "AMB"}[enc.setting] \
        if enc.setting in ("inpatient", "emergency", "outpatient", "professional") else "AMB"
    encounter: dict[str, Any] = {
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class_code},
        "subject": {"reference": f"Patient/{pid}"},
    }
    start = enc.admission_date or enc.date_of_service
    if start:
        encounter["period"] = {"start": start.isoformat()}
        if enc.discharge_date:
            encounter["period"]["end"] = enc.discharge_date.isoformat()
    entries.append(encounter)
    diagnoses, procedures = [], []
    for c in final.codes:
        if c["system"] == "icd10cm":
            rid = f"condition-{enc.id}-{c['seq']}"
            entries.append({
                "resourceType": "Condition", "id": rid,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": "active"}]},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
                "code": {"coding": [{"system": CM_SYSTEM, "code": c["code"], "display": c.get("description") or None}]},
                "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{eid}"},
            })
            diag: dict[str, Any] = {"sequence": len(diagnoses) + 1,
                                    "diagnosisReference": {"reference": f"Condition/{rid}"}}
            if c.get("poa"):
                diag["onAdmission"] = {"coding": [{"system": POA_SYSTEM, "code": c["poa"],
                                                   "display": POA_DISPLAY.get(c["poa"])}]}
            if len(diagnoses) == 0:
                diag["type"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                                             "code": "principal"}]}]
            diagnoses.append(diag)
        else:
            rid = f"procedure-{enc.id}-{c['seq']}"
            entries.append({
                "resourceType": "Procedure", "id": rid, "status": "completed",
                "code": {"coding": [{"system": PCS_SYSTEM, "code": c["code"], "display": c.get("description") or None}]},
                "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{eid}"},
            })
            procedures.append({"sequence": len(procedures) + 1,
                               "procedureReference": {"reference": f"Procedure/{rid}"}})
    payer = enc.patient.payer if enc.patient is not None and enc.patient.payer else "unknown payer"
    claim: dict[str, Any] = {
        "resourceType": "Claim", "id": f"claim-{enc.id}-v{final.version}", "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "institutional" if enc.setting == "inpatient" else "professional"}]},
        "use": "claim", "patient": {"reference": f"Patient/{pid}"}, "created": when,
        "provider": {"display": "OpenCAC coding workbench"},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": payer}}],
        "item": [{"sequence": 1, "productOrService": {"text": "encounter"}, "encounter": [{"reference": f"Encounter/{eid}"}],
                  "diagnosisSequence": [d["sequence"] for d in diagnoses] or None,
                  "procedureSequence": [p["sequence"] for p in procedures] or None}],
        "diagnosis": diagnoses,
    }
    if procedures:
        claim["procedure"] = procedures
    entries.append(claim)
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": when,
              "entry": [{"fullUrl": f"urn:opencac:{r['resourceType']}/{r['id']}", "resource": _prune(r)}
                        for r in entries]}
    validated = Bundle.model_validate(bundle)
    return validated.model_dump(mode="json", exclude_none=True) if hasattr(validated, "model_dump") else bundle


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def export_csv(session: Session, encounter_id: int) -> str:
    """The final code set as CSV (one row per code, ``CSV_COLUMNS``)."""
    state = _final(session, encounter_id)
    enc, final = state.encounter, state.final
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for c in final.codes:
        w.writerow([enc.id, enc.external_id or "", final.version, c["system"], c["seq"], c["code"],
                    c.get("description") or "", c.get("source") or "", final.finalized_by.username,
                    final.finalized_at.isoformat(), c.get("poa") or "", final.coded_by or ""])
    return buf.getvalue()
