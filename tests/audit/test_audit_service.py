"""Audits in the workbench: tables, JSON API, pages, audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from audit_service_fixtures import app, client, auth, make_app, seed_finalised, tokens  # noqa: E402



def test_full_audit_via_api(app: Any, client: TestClient) -> None:
    tok = tokens(app)
    ids = seed_finalised(client, tok["coder1"])
    aud = auth(tok["auditor1"])
    # coders may not create audits
    r = client.post("/api/v1/audits", json={"name": "x"}, headers=auth(tok["coder1"]))
    assert r.status_code == 403
    r = client.post("/api/v1/audits", json={"name": "Q1 inpatient", "mode": "blind", "method": "random", "n": 3,
                                            "seed": 42, "scope": {"settings": ["inpatient"]}}, headers=aud)
    assert r.status_code == 201, r.text
    audit_id = r.json()["id"]
    r = client.post(f"/api/v1/audits/{audit_id}/sample", headers=aud)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "sampled" and body["sample_size"] == 3 and body["frame_size"] == 3
    samples = body["samples"]
    assert {s["encounter_id"] for s in samples} <= set(ids)
    # the same seed and frame give the same sample (library check on the stored frame)
    from opencac.audit.records import EncounterRecord
    from opencac.audit.sampling import simple_random_sample

    again = simple_random_sample([EncounterRecord(str(i)) for i in sorted(ids)], 3, seed=42)
    assert [int(x) for x in again.ids] == [s["encounter_id"] for s in samples]
    assert client.post(f"/api/v1/audits/{audit_id}/sample", headers=aud).status_code == 409
    # blind worksheet hides billed codes
    s0 = samples[0]
    ws = client.get(f"/api/v1/audits/{audit_id}/samples/{s0['id']}", headers=aud).json()
    assert "codes" not in ws["final"] and "drg" not in ws["final"]
    # record the auditor's coding for both
    results = {}
    for s in samples:
        final = s["final"]["codes"]
        audited = ["I50.23", *final[1:]] if final[0] == "I50.9" else list(final)
        r = client.post(f"/api/v1/audits/{audit_id}/samples/{s['id']}/coding",
                        json={"codes": audited, "drg": "291" if final[0] == "I50.9" else s["final"]["drg"],
                              "drg_weight": 1.3378 if final[0] == "I50.9" else s["final"]["drg_weight"]},
                        headers=aud)
        assert r.status_code == 200, r.text
        results[s["id"]] = r.json()
    with_findings = [v for v in results.values() if v["findings"]]
    for v in results.values():
        assert v["score"]["accurate"] == (not v["findings"])
    assert len(with_findings) == 1  # the heart-failure encounter: I50.9 -> I50.23, DRG 293 -> 291
    if with_findings:
        f = with_findings[0]["findings"][0]
        r = client.post(f"/api/v1/audit-findings/{f['id']}/determination", json={"outcome": "upheld"}, headers=aud)
        assert r.status_code == 400 and "OC-E604" in r.text
        r = client.post(f"/api/v1/audit-findings/{f['id']}/defend",
                        json={"rationale": "Echo documents acute on chronic systolic failure",
                              "citation": "ICD-10-CM Official Guidelines I.C.9.a.1", "root_cause": "documentation"},
                        headers=aud)
        assert r.status_code == 200, r.text
        r = client.post(f"/api/v1/audit-findings/{f['id']}/responses", json={"text": "The note says CHF only"},
                        headers=auth(tok["coder1"]))
        assert r.status_code == 201 and r.json()["responses"][0]["by"] == "coder1"
        r = client.post(f"/api/v1/audit-findings/{f['id']}/determination",
                        json={"outcome": "upheld", "note": "Echo is part of the record"}, headers=aud)
        assert r.status_code == 200 and r.json()["determination"] == "upheld"
        r = client.post(f"/api/v1/audit-findings/{f['id']}/responses", json={"text": "late"},
                        headers=auth(tok["coder1"]))
        assert r.status_code == 409
    m = client.get(f"/api/v1/audits/{audit_id}/metrics", headers=aud).json()["metrics"]
    assert m["n_encounters"] == 3 and m["financial_impact_net"] == pytest.approx((1.3378 - 0.6737) * 6500)
    assert m["encounter_accuracy"]["k"] == sum(1 for v in results.values() if v["score"]["accurate"])
    pdf = client.get(f"/api/v1/audits/{audit_id}/report.pdf", headers=aud)
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-" and len(pdf.content) > 10_000
    html = client.get(f"/audits/{audit_id}/report.html", headers=aud)
    assert html.status_code == 200 and "3. How the sample was drawn" in html.text
    assert "unsafe-inline" in html.headers["content-security-policy"]
    csv_ = client.get(f"/audits/{audit_id}/findings.csv", headers=aud)
    assert csv_.status_code == 200 and csv_.text.startswith("id,encounter_id,kind")
    # everything is in the audit trail, and the chain verifies
    from opencac.store.events import events_for, verify_events

    with app.state.session_factory() as s:
        actions = [e.action for e in events_for(s, limit=500)]
        assert verify_events(s).ok
    for action in ("audit.create", "audit.sample", "audit.recode", "audit.report"):
        assert action in actions, action
    if with_findings:
        for action in ("audit.finding.defend", "audit.finding.respond", "audit.finding.determine"):
            assert action in actions, action


def test_pages_and_errors(app: Any, client: TestClient) -> None:
    tok = tokens(app)
    aud = auth(tok["auditor1"])
    r = client.get("/audits", headers=aud)
    assert r.status_code == 200 and "Plan a new audit" in r.text
    r = client.post("/api/v1/audits", json={"name": "bad", "method": "systematic"}, headers=aud)
    assert r.status_code == 400 and "OC-E601" in r.text
    r = client.post("/api/v1/audits", json={"name": "empty", "n": 5, "seed": 1}, headers=aud)
    aid = r.json()["id"]
    r = client.post(f"/api/v1/audits/{aid}/sample", headers=aud)
    assert r.status_code == 400 and "OC-E603" in r.text  # nothing finalised yet
    assert client.get("/api/v1/audits/999", headers=aud).status_code == 404
    assert client.get("/api/v1/audits", headers=auth(tok["coder1"])).status_code == 403
    r = client.get(f"/api/v1/audits/{aid}/metrics", headers=aud)
    assert r.status_code == 409 and "OC-E605" in r.text


def test_second_audit_gives_kappa(app: Any, client: TestClient) -> None:
    tok = tokens(app)
    seed_finalised(client, tok["coder1"])
    aud = auth(tok["auditor1"])
    audit_ids = []
    for name in ("first", "second"):
        aid = client.post("/api/v1/audits", json={"name": name, "n": 3, "seed": 1}, headers=aud).json()["id"]
        samples = client.post(f"/api/v1/audits/{aid}/sample", headers=aud).json()["samples"]
        for s in samples:
            codes = s["final"]["codes"]
            if name == "second" and codes[0] == "J18.9":
                codes = codes[:1]  # the second auditor disagrees on the pneumonia encounter (drops I10)
            r = client.post(f"/api/v1/audits/{aid}/samples/{s['id']}/coding", json={"codes": codes}, headers=aud)
            assert r.status_code == 200
        audit_ids.append(aid)
    html = client.get(f"/audits/{audit_ids[1]}/report.html", headers=aud).text
    assert "3 encounters were audited twice" in html
    first = client.get(f"/api/v1/audits/{audit_ids[0]}", headers=aud).json()["samples"][0]
    r = client.post(f"/api/v1/audits/{audit_ids[0]}/samples/{first['id']}/coding", json={"codes": ["X99.999"]},
                    headers=aud)
    assert r.status_code == 404 and "OC-E102" in r.text


def test_probe_then_full_sample(app: Any, client: TestClient) -> None:
    tok = tokens(app)
    seed_finalised(client, tok["coder1"])
    aud = auth(tok["auditor1"])
    aid = client.post("/api/v1/audits", json={"name": "probe", "method": "probe", "n": 2, "seed": 5,
                                              "precision": 0.05}, headers=aud).json()["id"]
    probe = client.post(f"/api/v1/audits/{aid}/sample", headers=aud).json()["samples"]
    assert len(probe) == 2
    r = client.post(f"/api/v1/audits/{aid}/extend", headers=aud)
    assert r.status_code == 409 and "not audited yet" in r.text
    for s in probe:
        client.post(f"/api/v1/audits/{aid}/samples/{s['id']}/coding", json={"codes": s["final"]["codes"]},
                    headers=aud)
    r = client.post(f"/api/v1/audits/{aid}/extend", headers=aud)
    assert r.status_code == 200, r.text
    full = r.json()
    from opencac.audit.sample_size import size_from_probe

    expected = min(3, max(2, size_from_probe(0, 2, 0.95, 0.05, 3).recommended))
    assert full["sample_size"] == expected
    assert [s["encounter_id"] for s in full["samples"][:2]] == [s["encounter_id"] for s in probe]
    assert client.post(f"/api/v1/audits/{aid}/extend", headers=aud).status_code == 409
    html = client.get(f"/audits/{aid}/report.html", headers=aud).text
    assert "Recommended sample size" in html
