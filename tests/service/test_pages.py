"""Review screen (server-rendered): worklist, encounter with highlights, partial updates, 409, audit trail."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from svc_helpers import post_login, NOTE, PASSWORD, auth, ingest
from fastapi.testclient import TestClient


def _login(client: TestClient, user: str = "coder1") -> None:
    r = post_login(client, {"username": user, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303


def _csrf(html: str) -> str:
    return html.split('name="csrf-token" content="')[1].split('"')[0]


def test_login_page_errors(client: TestClient) -> None:
    assert "User name" in client.get("/login").text
    r = post_login(client, {"username": "coder1", "password": "wrong-password"})
    assert r.status_code == 401 and "wrong user name or password" in r.text
    r = post_login(client, {"username": "coder1", "password": PASSWORD, "next": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/worklist"  # no open redirect
    # login CSRF: a cross-site form post carries no login token
    client.cookies.clear()
    r = client.post("/login", data={"username": "coder1", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "expired" in r.text


def test_worklist_and_encounter_pages(client: TestClient, tokens: dict[str, str]) -> None:
    eid = ingest(client, tokens["coder1"])
    _login(client)
    wl = client.get("/worklist?status=ready&sort=newest")
    assert wl.status_code == 200 and f'href="/encounters/{eid}"' in wl.text
    assert "Content-Security-Policy" in wl.headers
    page = client.get(f"/encounters/{eid}").text
    # evidence highlighted and linked to the suggestion ids
    marks = re.findall(r'<mark tabindex="0" data-sugg="([0-9 ]+)" title="([^"]*)">([^<]*)</mark>', page)
    assert {(m[1], m[2]) for m in marks} >= {("E11.9", "diabetes"), ("I10", "Hypertension")}
    # a ranked candidate that is not on the working set (J18.9, not selected) is marked faintly only
    weak = re.findall(r'<mark tabindex="0" data-sugg="[0-9 ]+" title="([^"]*)" class="weak">([^<]*)</mark>', page)
    assert ("J18.9", "pneumonia") in weak and not {w[0] for w in weak} & {"E11.9", "I10"}
    assert 'class="code-link" data-sugg=' in page
    for label in ('for="add-code"', "Reason", "Guideline citation"):
        assert label in page
    csrf = _csrf(page)
    version = int(re.search(r'data-version="(\d+)"', page).group(1))  # type: ignore[union-attr]
    sid = re.search(r'id="sugg-(\d+)" data-id="\d+" data-code="I10"', page).group(1)  # type: ignore[union-attr]
    # reject without a reason -> error shown in the fragment, nothing saved
    r = client.post(f"/encounters/{eid}/decide", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version, "suggestion_id": sid, "action": "reject"})
    assert r.status_code == 400 and "reason is required" in r.text
    r = client.post(f"/encounters/{eid}/decide", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version, "suggestion_id": sid, "action": "reject",
                          "reason_code": "negated", "reason_text": "ruled out"})
    assert r.status_code == 200 and "state-rejected" in r.text and f'data-version="{version + 1}"' in r.text
    # a stale form (another reviewer saved in between) -> 409 with a clear message in the fragment
    r = client.post(f"/encounters/{eid}/decide", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version, "suggestion_id": sid, "action": "accept"})
    assert r.status_code == 409 and "was changed by coder1" in r.text
    # assign to me (feeds the worklist filter)
    r = client.post(f"/encounters/{eid}/assign", headers={"X-Partial": "1"},
                    data={"csrf_token": csrf, "version": version + 1, "to": "me"})
    assert r.status_code == 200 and "Assigned: <strong>coder1</strong>" in r.text
    assert f'href="/encounters/{eid}"' in client.get("/worklist?assigned=me").text
    version += 1
    # no-JS form post -> redirect back to the page
    r = client.post(f"/encounters/{eid}/finalize", data={"csrf_token": csrf, "version": version + 1},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(f"/encounters/{eid}").text
    assert "Final version 1 by coder1" in page
    trail = client.get(f"/encounters/{eid}/audit").text
    for action in ("encounter.ingest", "document.view", "decision.reject", "final_code_set.change"):
        assert action in trail
    assert NOTE[:40] not in trail


def test_auditor_pages(client: TestClient, tokens: dict[str, str]) -> None:
    ingest(client, tokens["coder1"])
    _login(client, "coder1")
    assert client.get("/audit-log").status_code == 403
    client.cookies.clear()
    _login(client, "auditor1")
    page = client.get("/audit-log")
    assert page.status_code == 200 and "Hash chain: ok," in page.text
    assert 'href="/audit-log"' in page.text


def test_logs_never_contain_note_text(app: Any, client: TestClient, tokens: dict[str, str],
                                      caplog: pytest.LogCaptureFixture) -> None:
    secret = "Zyxwvut hypertension with diabetes in Qqqqq county"
    caplog.set_level(logging.DEBUG)
    eid = ingest(client, tokens["coder1"], text=secret)
    enc = client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["coder1"])).json()
    client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(tokens["coder1"]),
                json={"action": "accept", "suggestion_id": enc["suggestions"][0]["id"], "version": enc["version"]})
    _login(client)
    client.get(f"/encounters/{eid}")
    from opencac.service.coding import get_coder

    def broken(text: str, ctx: Any) -> Any:
        raise RuntimeError(f"failed on {text}")  # an error message that carries the note

    app.dependency_overrides[get_coder] = lambda: broken
    ingest(client, tokens["coder1"], text=secret)
    assert caplog.records, "expected some log records"
    for rec in caplog.records:
        msg = rec.getMessage()
        assert "Zyxwvut" not in msg and "Qqqqq" not in msg, msg
        assert not rec.exc_text or "Zyxwvut" not in rec.exc_text


def test_unexpected_errors_are_500_without_note_text(app: Any, client: TestClient,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from fastapi import APIRouter

    r = APIRouter()

    @r.get("/api/v1/boom")
    def boom() -> None:
        raise ValueError("could not parse: Zyxwvut patient note text")

    app.include_router(r)
    caplog.set_level(logging.DEBUG)
    resp = client.get("/api/v1/boom")
    assert resp.status_code == 500 and resp.json()["error"]["code"] == "OC-E400"
    assert "Zyxwvut" not in resp.text
    assert any("ValueError" in rec.getMessage() for rec in caplog.records)
    assert all("Zyxwvut" not in rec.getMessage() and "Zyxwvut" not in (rec.exc_text or "") for rec in caplog.records)
