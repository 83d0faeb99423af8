"""Ingest formats and bad input: 4xx with a clear message, never a 5xx."""

from __future__ import annotations

import base64
import copy
from typing import Any

from svc_helpers import auth
from fastapi.testclient import TestClient

NOTE = "Discharge summary. Assessment: type 2 diabetes mellitus. Appendectomy performed laparoscopically."


def bundle(note: str = NOTE) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-01-31",
                      "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]}}]}},
        {"resource": {"resourceType": "Encounter", "id": "enc-77", "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                      "period": {"start": "2025-10-30", "end": "2025-11-02"}}},
        {"resource": {"resourceType": "DocumentReference", "id": "doc-1", "status": "current",
                      "content": [{"attachment": {"contentType": "text/plain",
                                                  "data": base64.b64encode(note.encode()).decode()}}]}}]}


def test_fhir_ingest(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post("/api/v1/ingest/fhir", json=bundle(), headers=auth(tokens["cdi1"]))
    assert r.status_code == 201, r.text
    eid = r.json()["encounter_id"]
    client.app.state.worker.drain()  # type: ignore[attr-defined]
    enc = client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["coder1"])).json()
    assert enc["setting"] == "inpatient" and enc["external_id"] == "enc-77"
    assert enc["admission_date"] == "2025-10-30" and enc["discharge_date"] == "2025-11-02"
    assert enc["documents"][0]["text"] == NOTE and enc["documents"][0]["source_format"] == "fhir"
    assert {s["code"] for s in enc["suggestions"]} == {"E11.9", "0DTJ4ZZ"}
    assert enc["rules"]["drg"]["drg"] == "638"


def test_text_ingest(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post("/api/v1/ingest/text?setting=emergency&date_of_service=2025-11-01", content=NOTE.encode(),
                    headers={**auth(tokens["coder1"]), "content-type": "text/plain"})
    assert r.status_code == 201, r.text
    enc = client.get(f"/api/v1/encounters/{r.json()['encounter_id']}", headers=auth(tokens["coder1"])).json()
    assert enc["setting"] == "emergency" and enc["status"] == "new"


def test_bad_input_is_4xx(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["coder1"])
    cases = []
    cases.append(client.post("/api/v1/ingest", content=b"{not json", headers={**h, "content-type": "application/json"}))
    cases.append(client.post("/api/v1/ingest", json={"text": "x" * 30_000}, headers=h))  # over the 20 kB limit
    cases.append(client.post("/api/v1/ingest", json={"text": "   "}, headers=h))
    cases.append(client.post("/api/v1/ingest", json={"text": "ok", "encounter": {"setting": "space"}}, headers=h))
    cases.append(client.post("/api/v1/ingest/fhir", json={"resourceType": "Patient"}, headers=h))
    bad = copy.deepcopy(bundle())
    bad["entry"][0]["resource"]["birthDate"] = "31/01/1960"
    cases.append(client.post("/api/v1/ingest/fhir", json=bad, headers=h))
    nodoc = copy.deepcopy(bundle())
    del nodoc["entry"][2]
    cases.append(client.post("/api/v1/ingest/fhir", json=nodoc, headers=h))
    cases.append(client.post("/api/v1/ingest/text", content=b"\x00\x01binary", headers={**h, "content-type": "text/plain"}))
    cases.append(client.post("/api/v1/ingest/text", content=b"y" * 300_000, headers={**h, "content-type": "text/plain"}))
    cases.append(client.get("/api/v1/encounters/999999", headers=h))
    statuses = [c.status_code for c in cases]
    assert statuses == [422, 413, 400, 422, 422, 422, 422, 400, 413, 404], statuses
    for c in cases:
        err = c.json()["error"]
        assert err["code"].startswith("OC-E") and len(err["message"]) > 10
    assert "Bundle" in cases[4].json()["error"]["message"]
    assert "DocumentReference" in cases[6].json()["error"]["message"]


def test_narrative_tags_are_stripped_in_one_pass() -> None:
    from opencac.service.ingest import _strip_tags

    assert _strip_tags('<div xmlns="http://www.w3.org/1999/xhtml"><p>Fever &amp; <b>cough</b></p></div>') == "Fever &  cough"
    assert _strip_tags("<" * 300_000 + "fever").endswith("fever")  # quadratic before: minutes
