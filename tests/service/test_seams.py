"""Workbench seams: POA on final codes, the coded_by marker, regroup, server-side logout."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from svc_helpers import PASSWORD, auth, ingest, post_login


def _rules_coder(poa: dict[str, str]) -> Any:
    from svc_fakes import fake_coder

    def coder(text: str, ctx: Any) -> Any:
        res = fake_coder(text, ctx)
        res.rules["final_codes"] = [{"code": c, "role": "secondary", "poa": p} for c, p in poa.items()]
        return res

    return coder


def _enc(client: TestClient, token: str, eid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/encounters/{eid}", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def test_poa_defaults_from_rules_editable_and_exported(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    from opencac.service.coding import get_coder

    app.dependency_overrides[get_coder] = lambda: _rules_coder({"E11.9": "Y", "I10": "W"})
    t = tokens["coder1"]
    eid = ingest(client, t)
    enc = _enc(client, t, eid)
    dx = [c["code"] for c in enc["working_codes"] if c["system"] == "icd10cm"]
    assert {"E11.9", "I10"} <= set(dx)
    # A bad indicator is refused with one clear error.
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t),
                    json={"version": enc["version"], "poa": {"E11.9": "X"}})
    assert r.status_code == 400, r.text
    # The coder overrides I10; E11.9 keeps the rules layer's Y.
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t),
                    json={"version": enc["version"], "poa": {"I10": "n"}})
    assert r.status_code == 200, r.text
    body = r.json()
    poa = {c["code"]: c["poa"] for c in body["codes"] if c["system"] == "icd10cm"}
    assert poa["E11.9"] == "Y" and poa["I10"] == "N"
    assert body["coded_by"] == "ai_plus_coder"
    bundle = client.get(f"/api/v1/encounters/{eid}/export/fhir", headers=auth(t)).json()
    claim = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    conds = {e["resource"]["id"]: e["resource"]["code"]["coding"][0]["code"]
             for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
    on_adm = {conds[d["diagnosisReference"]["reference"].split("/")[1]]: d["onAdmission"]["coding"][0]["code"]
              for d in claim["diagnosis"] if "onAdmission" in d}
    assert on_adm["E11.9"] == "Y" and on_adm["I10"] == "N"
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/encounters/{eid}/export/csv", headers=auth(t)).text)))
    assert {r["code"]: r["poa"] for r in rows if r["system"] == "icd10cm"}["I10"] == "N"
    assert {r["coded_by"] for r in rows} == {"ai_plus_coder"}


def test_poa_for_a_code_not_in_the_set_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    t = tokens["coder1"]
    eid = ingest(client, t)
    enc = _enc(client, t, eid)
    r = client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(t),
                    json={"version": enc["version"], "poa": {"Z99.89": "Y"}})
    assert r.status_code == 400 and "Z99.89" in r.text


def test_encounter_page_form_sets_poa(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    from opencac.service.coding import get_coder

    app.dependency_overrides[get_coder] = lambda: _rules_coder({"E11.9": "U"})
    eid = ingest(client, tokens["coder1"])
    assert post_login(client, {"username": "coder1", "password": PASSWORD}, follow_redirects=False).status_code == 303
    page = client.get(f"/encounters/{eid}").text
    assert 'name="poa:E11.9"' in page and '<option value="U" selected>' in page
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    version = _enc(client, tokens["coder1"], eid)["version"]
    r = client.post(f"/encounters/{eid}/finalize", data={"csrf_token": csrf, "version": str(version),
                                                          "poa:E11.9": "1"})
    assert r.status_code == 200, r.text
    final = _enc(client, tokens["coder1"], eid)["final"]
    assert {c["code"]: c.get("poa") for c in final["codes"]}["E11.9"] == "1"


def test_coded_by_marker_and_audit_scope(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    from opencac.service import workflow
    from opencac.service.routers.audits import build_frame
    from opencac.store.models import SYSTEM_USERNAME, Encounter

    t = tokens["coder1"]
    by_coder, straight = ingest(client, t), ingest(client, t)
    enc = _enc(client, t, by_coder)
    assert client.post(f"/api/v1/encounters/{by_coder}/finalize", headers=auth(t),
                       json={"version": enc["version"]}).status_code == 200
    with app.state.session_factory() as s:
        # The queue says straight-through but a coder finalised: the marker, not the queue, counts.
        s.get(Encounter, by_coder).queue = "straight_through"
        fcs = workflow.finalize_straight_through(s, straight)
        assert fcs.coded_by == "ai_straight_through" and fcs.finalized_by.username == SYSTEM_USERNAME
        s.commit()
        assert not fcs.finalized_by.active  # the system account cannot log in
        recs = {int(r.encounter_id): r for r in build_frame(s)}
    assert recs[straight].coded_by == "ai_straight_through" and recs[straight].automated
    assert recs[by_coder].coded_by == "ai_coder" and recs[by_coder].coder == "coder1"
    r = client.post("/api/v1/audits", headers=auth(tokens["auditor1"]),
                    json={"name": "st", "mode": "blind", "method": "random", "n": 1, "seed": 7,
                          "scope": {"coded_by": ["ai_straight_through"]}})
    assert r.status_code in (200, 201), r.text
    r = client.post(f"/api/v1/audits/{r.json()['id']}/sample", headers=auth(tokens["auditor1"]))
    assert r.status_code in (200, 201), r.text
    drawn = {int(x["encounter_id"]) for x in r.json()["samples"]}
    assert drawn == {straight}


def test_logout_revokes_a_copied_cookie(app: Any, client: TestClient) -> None:
    from sqlalchemy import select

    from opencac.service.security import SESSION_COOKIE
    from opencac.store.models import RevokedSession, User, utcnow

    with app.state.session_factory() as s:  # a revocation older than any cookie: pruned at the next logout
        uid = s.execute(select(User.id).where(User.username == "coder2")).scalar_one()
        s.add(RevokedSession(nonce="stale", user_id=uid, revoked_at=utcnow() - dt.timedelta(days=30)))
        s.commit()

    r = post_login(client, {"username": "coder1", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie and client.get("/api/v1/me").status_code == 200
    page = client.get("/worklist").text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)  # the copied cookie, replayed
    assert client.get("/api/v1/me").status_code == 401
    with app.state.session_factory() as s:
        assert s.execute(select(RevokedSession.nonce)).scalars().all() != []
        assert s.execute(select(RevokedSession.id).where(RevokedSession.nonce == "stale")).first() is None
    # A fresh login still works.
    assert post_login(client, {"username": "coder1", "password": PASSWORD}, follow_redirects=False).status_code == 303
    assert client.get("/api/v1/me").status_code == 200


def test_regroup_groups_inpatient_and_skips_outpatient() -> None:
    pytest.importorskip("drgpy")
    from opencac.coding.types import EncounterContext
    from opencac.errors import GrouperError
    from opencac.service.coding import regroup

    ctx = EncounterContext(setting="inpatient", age=70, sex="M", discharge_date=dt.date(2025, 3, 1))
    plain = regroup(["I21.4"], ctx)
    assert plain["source"] == "regrouped" and plain["drg"] and plain["weight"] is not None
    with_mcc = regroup([{"system": "icd10cm", "code": "I21.4"}, {"system": "icd10cm", "code": "J96.01"}], ctx)
    assert with_mcc["drg"] != plain["drg"] and with_mcc["weight"] > plain["weight"]
    assert regroup(["I21.4"], EncounterContext(setting="outpatient"))["drg"] is None
    with pytest.raises(GrouperError):
        regroup([], ctx)


def test_auditor_drg_is_regrouped_unless_overridden(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    pytest.importorskip("drgpy")
    from opencac.service.routers.audits import _regrouped

    inpatient = ingest(client, tokens["coder1"], setting="inpatient")
    outpatient = ingest(client, tokens["coder1"])
    with app.state.session_factory() as s:
        plain = _regrouped(s, inpatient, ("I21.4",), {})
        mcc = _regrouped(s, inpatient, ("I21.4", "J96.01"), {})
        assert plain["drg_source"] == "regrouped" and plain["drg"] and plain["drg_weight"] is not None
        assert mcc["drg"] != plain["drg"] and mcc["drg_weight"] > plain["drg_weight"]
        assert _regrouped(s, outpatient, ("I21.4",), {}) == {"drg_source": "not_applicable"}


def test_docs_is_a_local_page_without_cdn(client: TestClient) -> None:
    r = client.get("/docs")  # public by design, like /openapi.json
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "cdn" not in html.lower() and "<script" not in html.lower() and "https://" not in html
    assert "POST /api/v1/encounters/{encounter_id}/finalize" in html and "FinalizeIn" in html
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/redoc").status_code == 404
