"""Audit seams: the final code set's POA reaches the scoring; the auditor's DRG is grouped from the
auditor's codes unless overridden (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from audit_service_fixtures import app, client, auth, make_app, tokens  # noqa: E402


NOTE = "Assessment: acute on chronic systolic heart failure, EF 25%. Hypertension. Type 2 diabetes.\n"


def _sampled(client: TestClient, tok: dict[str, str]) -> tuple[int, dict[str, Any]]:
    coder = auth(tok["coder1"])
    r = client.post("/api/v1/ingest", json={"text": NOTE, "encounter": {"setting": "inpatient",
                                                                         "date_of_service": "2025-03-01"},
                                            "patient": {"birth_date": "1950-01-01", "sex": "M"}}, headers=coder)
    eid = int(r.json()["encounter_id"])
    client.app.state.worker.drain()  # type: ignore[attr-defined]
    enc = client.get(f"/api/v1/encounters/{eid}", headers=coder).json()
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=coder,
                    json={"version": enc["version"], "poa": {"I50.9": "Y", "I10": "Y", "E11.9": "N"}})
    assert r.status_code == 200, r.text
    aud = auth(tok["auditor1"])
    r = client.post("/api/v1/audits", json={"name": "seams", "mode": "review", "method": "random", "n": 1,
                                            "seed": 3, "scope": {"coded_by": ["ai_coder"]}}, headers=aud)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    r = client.post(f"/api/v1/audits/{aid}/sample", headers=aud)
    assert r.status_code == 200, r.text
    s = r.json()["samples"][0]
    assert s["final"]["poa"] == {"I50.9": "Y", "I10": "Y", "E11.9": "N"}
    assert s["final"]["coded_by"] == "ai_coder"
    return aid, s


def test_poa_mismatch_is_found_and_drg_regrouped(app: Any, client: TestClient) -> None:
    pytest.importorskip("drgpy")
    tok = tokens(app)
    aid, s = _sampled(client, tok)
    aud = auth(tok["auditor1"])
    codes = s["final"]["codes"]
    r = client.post(f"/api/v1/audits/{aid}/samples/{s['id']}/coding",
                    json={"codes": codes, "poa": {"I50.9": "Y", "I10": "Y", "E11.9": "Y"}}, headers=aud)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(f["kind"], f["final_code"]) for f in body["findings"] if f["kind"] == "poa"] == [("poa", "E11.9")]
    assert body["audited"]["drg_source"] == "regrouped"
    assert body["audited"]["drg"] and body["audited"]["drg_weight"] is not None
    # A manual override is kept as typed.
    r = client.post(f"/api/v1/audits/{aid}/samples/{s['id']}/coding",
                    json={"codes": codes, "poa": {"I50.9": "Y", "I10": "Y", "E11.9": "N"}, "drg": "291",
                          "drg_weight": 1.3378}, headers=aud)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["audited"]["drg_source"] == "manual" and body["audited"]["drg"] == "291"
    assert not [f for f in body["findings"] if f["kind"] == "poa"]
