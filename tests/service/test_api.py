"""The REST API end to end (in-process): ingest, code, review, finalise, export, audit."""

from __future__ import annotations

import csv
import io
from typing import Any

from svc_helpers import NOTE, auth, ingest
from fastapi.testclient import TestClient


def _enc(client: TestClient, token: str, eid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/encounters/{eid}", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def _sugg(enc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(s for s in enc["suggestions"] if s["code"] == code)


def test_review_flow(client: TestClient, tokens: dict[str, str]) -> None:
    t = tokens["coder1"]
    eid = ingest(client, t)
    enc = _enc(client, t, eid)
    assert enc["status"] == "ready"
    assert {s["code"] for s in enc["suggestions"]} == {"E11.9", "I10", "J18.9"}
    e11 = _sugg(enc, "E11.9")
    assert e11["evidence"][0]["text"].lower() == "diabetes"
    assert NOTE[e11["evidence"][0]["start"]:e11["evidence"][0]["end"]] == e11["evidence"][0]["text"]
    assert enc["run"]["model"] == "fake-1"
    v = enc["version"]

    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "accept", "suggestion_id": e11["id"], "version": v})
    assert r.status_code == 200, r.text
    v = r.json()["encounter_version"]
    assert r.json()["state"] == "accepted"

    i10 = _sugg(enc, "I10")
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "reject", "suggestion_id": i10["id"], "version": v})
    assert r.status_code == 400 and "reason is required" in r.json()["error"]["message"]
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "reject", "suggestion_id": i10["id"], "version": v, "reason_code": "not_documented",
                          "reason_text": "BP normal", "citation": "ICD-10-CM IV.J"})
    assert r.status_code == 200, r.text
    v = r.json()["encounter_version"]

    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "add", "code": "X99.99", "version": v})
    assert r.status_code == 404 and "unknown code" in r.json()["error"]["message"].lower()
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "add", "code": "E11", "version": v})
    assert r.status_code == 400 and "not billable" in r.json()["error"]["message"]
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "add", "code": "r059", "version": v})
    assert r.status_code == 200, r.text
    v = r.json()["encounter_version"]

    # modify: the accepted diabetes code becomes E11.65 (reason required)
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "modify", "suggestion_id": e11["id"], "code": "E11.65", "version": v})
    assert r.status_code == 400
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "modify", "suggestion_id": e11["id"], "code": "E11.65", "version": v,
                          "reason_code": "more_specific"})
    assert r.status_code == 200, r.text
    v = r.json()["encounter_version"]

    r = client.get(f"/api/v1/encounters/{eid}/export/fhir", headers=auth(t))
    assert r.status_code == 409  # not final yet
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t), json={"version": v})
    assert r.status_code == 200, r.text
    final = r.json()
    assert [(c["system"], c["code"], c["seq"]) for c in final["codes"]] == [("icd10cm", "E11.65", 1),
                                                                           ("icd10cm", "R05.9", 2)]
    assert _enc(client, t, eid)["status"] == "final"

    bundle = client.get(f"/api/v1/encounters/{eid}/export/fhir", headers=auth(t)).json()
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    claim = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    assert [d["sequence"] for d in claim["diagnosis"]] == [1, 2]
    conds = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert [c["code"]["coding"][0]["code"] for c in conds] == ["E11.65", "R05.9"]
    text = client.get(f"/api/v1/encounters/{eid}/export/csv", headers=auth(t)).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["code"] for r in rows] == ["E11.65", "R05.9"] and rows[0]["source"] == "coder-modified"

    # the audit trail holds views, decisions and the final code-set change; the chain verifies
    ev = client.get("/api/v1/audit-events", headers=auth(tokens["auditor1"])).json()
    actions = [e["action"] for e in ev]
    for a in ("encounter.ingest", "coding_run.done", "document.view", "decision.accept", "decision.reject",
              "decision.add", "decision.modify", "final_code_set.change"):
        assert a in actions, a
    rej = next(e for e in ev if e["action"] == "decision.reject")
    assert rej["actor"] == "coder1" and rej["before"]["state"] == "pending" and rej["after"]["reason_code"] == "not_documented"
    assert all(NOTE[:30] not in str(e) for e in ev)  # no note text in the audit events
    ver = client.get("/api/v1/audit-events/verify", headers=auth(tokens["auditor1"])).json()
    assert ver["ok"] and ver["count"] == len(client.get("/api/v1/audit-events?limit=1000",
                                                        headers=auth(tokens["auditor1"])).json())

    # re-finalising after a change records a new version with before/after
    v = _enc(client, t, eid)["version"]
    j18 = _sugg(enc, "J18.9")
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "accept", "suggestion_id": j18["id"], "version": v})
    v = r.json()["encounter_version"]
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t), json={"version": v})
    assert r.json()["version"] == 2
    ev = client.get("/api/v1/audit-events?entity=encounter&entity_id=%d" % eid, headers=auth(tokens["auditor1"])).json()
    change = next(e for e in ev if e["action"] == "final_code_set.change")
    assert change["before"]["version"] == 1 and ["icd10cm", "J18.9"] in change["after"]["codes"]


def test_optimistic_locking(client: TestClient, tokens: dict[str, str]) -> None:
    eid = ingest(client, tokens["coder1"])
    enc = _enc(client, tokens["coder1"], eid)
    v = enc["version"]
    e11, i10 = _sugg(enc, "E11.9"), _sugg(enc, "I10")
    r1 = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(tokens["coder1"]),
                     json={"action": "accept", "suggestion_id": e11["id"], "version": v})
    assert r1.status_code == 200
    r2 = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(tokens["coder2"]),
                     json={"action": "reject", "suggestion_id": i10["id"], "version": v, "reason_code": "other"})
    assert r2.status_code == 409
    msg = r2.json()["error"]["message"]
    assert "changed by coder1" in msg and "NOT saved" in msg
    after = _enc(client, tokens["coder2"], eid)
    assert _sugg(after, "E11.9")["state"] == "accepted"  # the first save is kept
    assert _sugg(after, "I10")["state"] == "pending"  # the second changed nothing
    # retry with the fresh version works
    r3 = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(tokens["coder2"]),
                     json={"action": "reject", "suggestion_id": i10["id"], "version": after["version"],
                           "reason_code": "other"})
    assert r3.status_code == 200
    r4 = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(tokens["coder1"]), json={"version": v + 1})
    assert r4.status_code == 409


def test_worklist_filters_and_sorting(client: TestClient, tokens: dict[str, str]) -> None:
    t = tokens["coder1"]
    a = ingest(client, t, "Type 2 diabetes.", "outpatient")
    b = ingest(client, t, "Hypertension and pneumonia.", "inpatient")
    c = ingest(client, t, "Follow-up, nothing found.", "emergency")

    def ids(q: str) -> list[int]:
        r = client.get(f"/api/v1/encounters?{q}", headers=auth(t))
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids("setting=inpatient") == [b]
    assert ids("edits=true") == [b]
    assert set(ids("edits=false")) == {a, c}
    assert ids("band=high") == [a]
    assert ids("band=medium") == [b]  # lowest *proposed* confidence (I10 0.64)
    assert ids("band=none") == [c]
    assert ids("sort=newest") == [c, b, a]
    assert ids("sort=confidence")[:2] == [b, a]
    assert ids("assigned=me") == []
    v = _enc(client, t, a)["version"]
    assert client.post(f"/api/v1/encounters/{a}/assign", headers=auth(t),
                       json={"version": v, "username": "coder1"}).status_code == 200
    assert ids("assigned=me") == [a]
    assert ids("status=final") == []
    r = client.get("/api/v1/encounters?status=bogus", headers=auth(t))
    assert r.status_code == 400 and "unknown status" in r.json()["error"]["message"]


def test_code_search_and_reasons(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get("/api/v1/codes/search?q=diabetes", headers=auth(tokens["coder1"]))
    assert r.status_code == 200
    assert {h["code"] for h in r.json()} >= {"E11.9", "E11.65"}
    r = client.get("/api/v1/codes/search?q=e119", headers=auth(tokens["coder1"]))
    assert r.json()[0]["code"] == "E11.9"
    r = client.get("/api/v1/codes/search?q=appendix&system=icd10pcs", headers=auth(tokens["coder1"]))
    assert [h["code"] for h in r.json()] == ["0DTJ4ZZ"]
    assert "not_documented" in client.get("/api/v1/reasons", headers=auth(tokens["coder1"])).json()


def test_finalise_refuses_non_billable_codes(client: TestClient, tokens: dict[str, str]) -> None:
    t = tokens["coder1"]
    eid = ingest(client, t, "Known diabetic, seen today.")
    enc = _enc(client, t, eid)
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t), json={"version": enc["version"]})
    assert r.status_code == 400 and "E11 is not billable" in r.json()["error"]["message"]
    assert _enc(client, t, eid)["final"] is None
    e11 = _sugg(enc, "E11")
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "modify", "suggestion_id": e11["id"], "code": "E11.9", "version": enc["version"],
                          "reason_code": "more_specific"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t),
                    json={"version": r.json()["encounter_version"]})
    assert r.status_code == 200 and [c["code"] for c in r.json()["codes"]] == ["E11.9"]


def test_rules_sequence_orders_the_final_set(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    """The rules layer's final_codes sequence (principal first) wins over engine rank."""
    from svc_fakes import fake_coder

    from opencac.service.coding import get_coder

    def coder(text: str, ctx: Any) -> Any:
        res = fake_coder(text, ctx)
        res.rules["final_codes"] = [{"code": "I10", "role": "principal"}, {"code": "E11.9", "role": "secondary"}]
        return res

    app.dependency_overrides[get_coder] = lambda: coder
    t = tokens["coder1"]
    eid = ingest(client, t)
    enc = _enc(client, t, eid)
    assert [c["code"] for c in enc["working_codes"]] == ["I10", "E11.9"]
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t), json={"version": enc["version"]})
    assert [(c["code"], c["seq"]) for c in r.json()["codes"]] == [("I10", 1), ("E11.9", 2)]
