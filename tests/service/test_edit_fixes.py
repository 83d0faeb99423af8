"""Proposed fixes of the rules layer in the workbench: stored with their edits, applied or dismissed
by a coder (API and page), each resolution a decision path plus a hash-chained audit event."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from svc_fakes import fake_coder
from svc_helpers import PASSWORD, auth, ingest, post_login

from opencac.service.coding import get_coder
from opencac.store.events import verify_events
from opencac.store.models import AuditEvent, CodingRun, Edit

CITE = "ICD-10-CM Official Guidelines I.B.13"
#: Edits as ``RulesOutcome.to_dict()`` gives them: three proposed fixes, one the rules applied.
PROPOSED = [
    {"id": "SPECIFICITY", "severity": "warning", "message": "A more specific code may apply. Proposed, not applied.",
     "citation": CITE, "codes": ["E11.9", "E11.65"], "rule": "opencac.specificity.v1",
     "fix": {"replace": {"E11.9": "E11.65"}}, "applied": False, "fix_status": "proposed"},
    {"id": "INTEGRAL-SYMPTOM", "severity": "warning", "message": "I10 may be integral. Proposed, not applied.",
     "citation": "ICD-10-CM Official Guidelines I.B.5", "codes": ["I10"], "rule": "opencac.integral.v1",
     "fix": {"remove": ["I10"]}, "applied": False, "fix_status": "proposed"},
    {"id": "USE-ADDITIONAL", "severity": "warning", "message": "Use an additional code. Proposed, not applied.",
     "citation": "ICD-10-CM Official Guidelines I.A.12", "codes": ["E11.9", "R05.9"], "rule": "opencac.companions.v1",
     "fix": {"add": [{"code": "R05.9", "evidence": [{"start": 0, "end": 15, "text": "Chief complaint"}],
                      "after": "E11.9"}]}, "applied": False, "fix_status": "proposed"},
    {"id": "DUPLICATE", "severity": "info", "message": "Duplicate removed.", "citation": "I.B.12",
     "codes": ["I10"], "rule": "opencac.duplicates.v1", "fix": {"remove_dup": "I10"}, "applied": True,
     "fix_status": "applied"},
]


def proposing_coder(text: str, ctx: Any) -> Any:
    res = fake_coder(text, ctx)
    res.rules["edits"] = [dict(e) for e in PROPOSED]
    return res


@pytest.fixture
def eid(app: Any, client: TestClient, tokens: dict[str, str]) -> int:
    app.dependency_overrides[get_coder] = lambda: proposing_coder
    return ingest(client, tokens["coder1"])


def _enc(client: TestClient, token: str, eid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/encounters/{eid}", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def _edit(enc: dict[str, Any], edit_id: str) -> dict[str, Any]:
    return next(e for e in enc["edits"] if e["edit_id"] == edit_id)


def _resolve(client: TestClient, token: str | None, eid: int, row: int, **body: Any) -> Any:
    return client.post(f"/api/v1/encounters/{eid}/edits/{row}/resolve", json=body,
                       headers=auth(token) if token else {})


def _events(app: Any, action: str) -> list[AuditEvent]:
    with app.state.session_factory() as s:
        return list(s.query(AuditEvent).filter(AuditEvent.action == action).order_by(AuditEvent.seq))


def test_worker_stores_fix_and_status(client: TestClient, tokens: dict[str, str], eid: int) -> None:
    enc = _enc(client, tokens["coder1"], eid)
    spec = _edit(enc, "SPECIFICITY")
    assert spec["fix"] == {"replace": {"E11.9": "E11.65"}} and spec["fix_status"] == "proposed"
    assert spec["fix_text"] == "replace E11.9 -> E11.65" and spec["resolution"] is None
    assert spec["run_id"] == enc["run"]["id"]
    dup = _edit(enc, "DUPLICATE")
    assert dup["fix_status"] == "applied" and dup["fix_text"] == "remove duplicate I10"


def test_apply_replace_modifies_through_the_decision_path(app: Any, client: TestClient, tokens: dict[str, str],
                                                          eid: int) -> None:
    t = tokens["coder1"]
    enc = _enc(client, t, eid)
    row = _edit(enc, "SPECIFICITY")["id"]
    r = _resolve(client, t, eid, row, action="apply", version=enc["version"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["edit"]["resolution"] == "applied" and out["edit"]["resolved_by"] == "coder1"
    assert len(out["decision_ids"]) == 1 and out["encounter_version"] > enc["version"]
    codes = [c["code"] for c in out["working_codes"]]
    assert "E11.65" in codes and "E11.9" not in codes
    enc2 = _enc(client, t, eid)
    e11 = next(s for s in enc2["suggestions"] if s["code"] == "E11.9")
    assert e11["state"] == "modified" and e11["final_code"] == "E11.65"
    dec = next(d for d in enc2["decisions"] if d["id"] == out["decision_ids"][0])
    assert (dec["action"], dec["code"], dec["new_code"], dec["reason_code"], dec["citation"]) == (
        "modify", "E11.9", "E11.65", "guideline", CITE)
    assert enc2["status"] == "in_review"
    ev = _events(app, "edit.apply")
    assert len(ev) == 1 and ev[0].entity == "edit" and ev[0].entity_id == str(row) and ev[0].actor == "coder1"
    assert ev[0].after["fix"] == {"replace": {"E11.9": "E11.65"}} and ev[0].after["decisions"] == out["decision_ids"]
    assert [e.action for e in _events(app, "decision.modify")] == ["decision.modify"]
    with app.state.session_factory() as s:
        assert verify_events(s).ok
    # the chain verifies through the API too, and the encounter's audit page lists the event
    v = client.get("/api/v1/audit-events/verify", headers=auth(tokens["auditor1"]))
    assert v.status_code == 200 and v.json()["ok"] is True


def test_apply_remove_and_add(app: Any, client: TestClient, tokens: dict[str, str], eid: int) -> None:
    t = tokens["coder1"]
    enc = _enc(client, t, eid)
    r = _resolve(client, t, eid, _edit(enc, "INTEGRAL-SYMPTOM")["id"], action="apply", reason="BP is integral")
    assert r.status_code == 200, r.text
    assert "I10" not in [c["code"] for c in r.json()["working_codes"]]
    r = _resolve(client, t, eid, _edit(enc, "USE-ADDITIONAL")["id"], action="apply")
    assert r.status_code == 200, r.text
    assert [c["code"] for c in r.json()["working_codes"] if c["system"] == "icd10cm"][-1] == "R05.9"
    enc2 = _enc(client, t, eid)
    assert next(s for s in enc2["suggestions"] if s["code"] == "I10")["state"] == "rejected"
    added = next(s for s in enc2["suggestions"] if s["code"] == "R05.9")
    assert added["state"] == "added" and added["source"] == "coder"
    rej = next(d for d in enc2["decisions"] if d["action"] == "reject")
    assert rej["reason_code"] == "guideline" and "BP is integral" in rej["reason_text"]
    add_ev = _events(app, "edit.apply")[-1]
    assert add_ev.after["fix"] == {"add": ["R05.9"]}
    assert "Chief complaint" not in str(add_ev.after)  # evidence (note text) never enters the audit trail


def test_dismiss_needs_a_reason_and_keeps_the_codes(app: Any, client: TestClient, tokens: dict[str, str],
                                                    eid: int) -> None:
    t = tokens["coder1"]
    enc = _enc(client, t, eid)
    row = _edit(enc, "SPECIFICITY")["id"]
    for body in ({"action": "dismiss"}, {"action": "dismiss", "reason": "   "}):
        r = _resolve(client, t, eid, row, **body)
        assert r.status_code == 422 and "reason is required" in r.json()["error"]["message"]
    r = _resolve(client, t, eid, row, action="undo", reason="x")
    assert r.status_code == 422
    r = _resolve(client, t, eid, row, action="dismiss", reason="hyperglycemia not documented",
                 version=enc["version"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["decision_ids"] == [] and out["edit"]["resolution"] == "dismissed"
    assert out["edit"]["resolution_reason"] == "hyperglycemia not documented"
    assert [c["code"] for c in out["working_codes"]] == [c["code"] for c in enc["working_codes"]]
    ev = _events(app, "edit.dismiss")
    assert len(ev) == 1 and ev[0].after["reason"] == "hyperglycemia not documented"
    assert ev[0].before == {"fix_status": "proposed", "resolution": None}
    with app.state.session_factory() as s:
        assert verify_events(s).ok


def test_resolve_errors(app: Any, client: TestClient, tokens: dict[str, str], eid: int) -> None:
    t = tokens["coder1"]
    enc = _enc(client, t, eid)
    spec, integral = _edit(enc, "SPECIFICITY")["id"], _edit(enc, "INTEGRAL-SYMPTOM")["id"]
    # 404: no such edit, or an edit of another encounter
    r = _resolve(client, t, eid, 999_999, action="apply")
    assert r.status_code == 404 and "no edit 999999" in r.json()["error"]["message"]
    other = ingest(client, t)
    r = _resolve(client, t, other, spec, action="apply")
    assert r.status_code == 404
    r = _resolve(client, t, 999_999, spec, action="apply")
    assert r.status_code == 404
    # 409: the rules already applied this fix (nothing proposed)
    r = _resolve(client, t, eid, _edit(enc, "DUPLICATE")["id"], action="apply")
    assert r.status_code == 409 and "no proposed fix" in r.json()["error"]["message"]
    # 409: a stale encounter version, nothing saved
    r = _resolve(client, t, eid, spec, action="apply", version=enc["version"] - 1)
    assert r.status_code == 409 and "NOT saved" in r.json()["error"]["message"]
    assert _edit(_enc(client, t, eid), "SPECIFICITY")["resolution"] is None
    # 409: the code the fix removes was rejected by the coder since
    i10 = next(s for s in enc["suggestions"] if s["code"] == "I10")
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(t),
                    json={"action": "reject", "suggestion_id": i10["id"], "reason_code": "integral",
                          "version": enc["version"]})
    assert r.status_code == 200, r.text
    r = _resolve(client, t, eid, integral, action="apply")
    assert r.status_code == 409 and "I10" in r.json()["error"]["message"]
    assert "no longer on the working code set" in r.json()["error"]["message"]
    # ... it can still be dismissed
    assert _resolve(client, t, eid, integral, action="dismiss", reason="rejected by hand").status_code == 200
    # 409: already resolved
    r = _resolve(client, t, eid, integral, action="apply")
    assert r.status_code == 409 and "already dismissed by coder1" in r.json()["error"]["message"]
    # 409: the encounter was coded again: the old run's fixes are stale
    with app.state.session_factory() as s:
        doc_id = s.query(CodingRun).filter(CodingRun.encounter_id == eid).one().document_id
        s.add(CodingRun(encounter_id=eid, document_id=doc_id, status="done"))
        s.commit()
    r = _resolve(client, t, eid, spec, action="apply")
    assert r.status_code == 409 and "stale" in r.json()["error"]["message"]
    with app.state.session_factory() as s:
        assert s.get(Edit, spec).resolution is None


def test_resolve_authorisation(app: Any, client: TestClient, tokens: dict[str, str], eid: int) -> None:
    enc = _enc(client, tokens["coder1"], eid)
    row = _edit(enc, "SPECIFICITY")["id"]
    assert _resolve(client, None, eid, row, action="apply").status_code == 401
    for reader in ("auditor1", "cdi1"):
        r = _resolve(client, tokens[reader], eid, row, action="apply")
        assert r.status_code == 403, reader
    assert _edit(_enc(client, tokens["coder1"], eid), "SPECIFICITY")["resolution"] is None
    assert _events(app, "edit.apply") == []
    r = _resolve(client, tokens["admin1"], eid, row, action="dismiss", reason="admin holds every role")
    assert r.status_code == 200 and r.json()["edit"]["resolved_by"] == "admin1"


def _login(client: TestClient, user: str = "coder1") -> None:
    r = post_login(client, {"username": user, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303


def test_encounter_page_shows_and_resolves_fixes(app: Any, client: TestClient, tokens: dict[str, str],
                                                 eid: int) -> None:
    _login(client)
    page = client.get(f"/encounters/{eid}").text
    assert page.count('class="sev-warning fix fix-open"') == 3
    assert "Proposed fix:" in page and "replace E11.9 -&gt; E11.65" in page and CITE in page
    assert "applied by the rules" in page and "remove duplicate I10" in page
    assert "<kbd>e</kbd>" in page  # the shortcut is in the help overlay
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    version = int(re.search(r'data-version="(\d+)"', page).group(1))  # type: ignore[union-attr]
    row = int(re.search(r'id="edit-(\d+)" data-edit="\d+" tabindex="0"\s+aria-label="Proposed fix: replace E11.9',
                        page).group(1))  # type: ignore[union-attr]
    # dismiss without a reason: error in the fragment, nothing saved
    r = client.post(f"/encounters/{eid}/edits/{row}/resolve", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version, "action": "dismiss"})
    assert r.status_code == 400 and "reason is required" in r.text
    # without the CSRF token: refused
    r = client.post(f"/encounters/{eid}/edits/{row}/resolve", headers={"X-Partial": "1"},
                    data={"version": version, "action": "apply"})
    assert r.status_code == 403
    r = client.post(f"/encounters/{eid}/edits/{row}/resolve", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version, "action": "apply"})
    assert r.status_code == 200, r.text
    assert "Proposed fix of SPECIFICITY applied." in r.text and "fix applied by coder1" in r.text
    assert r.text.count("fix fix-open") == 2 and f'data-version="{version + 2}"' in r.text
    # a stale form: 409 in the fragment
    r = client.post(f"/encounters/{eid}/edits/{row}/resolve", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version, "action": "apply"})
    assert r.status_code == 409
    audit = client.get(f"/encounters/{eid}/audit").text
    assert "edit.apply" in audit


def test_auditor_sees_fixes_without_buttons(client: TestClient, tokens: dict[str, str], eid: int) -> None:
    _login(client, "auditor1")
    page = client.get(f"/encounters/{eid}").text
    assert "Proposed fix:" in page and "apply-fix" not in page


def test_routing_keeps_open_proposed_fixes_from_straight_through() -> None:
    """Routing blocks an edit whose fix is proposed whatever its severity (not only because
    ``opencac.edits.policy.decide`` raises it to a warning): even under a policy that blocks only
    errors it never goes straight through; applied, it does."""
    from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext
    from opencac.routing import RoutingPolicy, route

    def result(edit: dict[str, Any]) -> CodingResult:
        res = CodingResult("n1", context=EncounterContext(setting="outpatient"))
        res.diagnoses.append(CodeSuggestion("E11.9", "icd10cm", "T2DM", 0.99, [], selected=True))
        res.rules = {"edits": [edit], "queries": []}
        return res

    pol = RoutingPolicy(default_threshold=0.5, complexity_limit=100.0, audit_sample_rate=0.0)
    proposed = dict(PROPOSED[0], fix={"replace": {"E11.9": "E11.65"}}, codes=["E11.9"])
    assert route(result(proposed), pol).route != "straight_through"
    applied = dict(proposed, applied=True, fix_status="applied")
    assert route(result(applied), pol).route == "straight_through"
    errors_only = RoutingPolicy(default_threshold=0.5, complexity_limit=100.0, audit_sample_rate=0.0,
                                blocking_edit_severities=["error"])
    assert route(result(dict(proposed, severity="info")), errors_only).route != "straight_through"
    assert route(result(applied), errors_only).route == "straight_through"
