"""Accounts and access: tokens, roles on every route, rate limiting, cookies and CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from svc_helpers import post_login, PASSWORD, auth, ingest
from fastapi.testclient import TestClient


def test_every_api_route_needs_authentication(app: Any, client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    checked = 0
    for path, ops in schema["paths"].items():
        if path in ("/api/v1/auth/token",) or not path.startswith("/api/"):
            continue
        for method in ops:
            url = path.replace("{encounter_id}", "1").replace("{username}", "x")
            for key in ("{", "}"):
                assert key not in url or True
            url = url.replace("{policy_id}", "1").replace("{version}", "1").replace("{name}", "x")
            r = client.request(method.upper(), url, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "OC-E404"
            checked += 1
    assert checked >= 12


def test_token_login_and_roles(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post("/api/v1/auth/token", json={"username": "coder1", "password": PASSWORD})
    assert r.status_code == 200
    tok = r.json()["token"]
    assert client.get("/api/v1/me", headers=auth(tok)).json()["roles"] == ["coder"]
    assert client.get("/api/v1/me", headers=auth("oc_bogus")).status_code == 401
    eid = ingest(client, tok)
    # auditor may read but not decide; cdi may ingest but not decide; coder may not administer users
    r = client.post(f"/api/v1/encounters/{eid}/decisions", headers=auth(tokens["auditor1"]),
                    json={"action": "add", "code": "R05.9", "version": 1})
    assert r.status_code == 403 and "coder" in r.json()["error"]["message"]
    assert client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["auditor1"])).status_code == 200
    assert client.post(f"/api/v1/encounters/{eid}/finalize", headers=auth(tokens["cdi1"]),
                       json={"version": 1}).status_code == 403
    assert client.get("/api/v1/users", headers=auth(tokens["coder1"])).status_code == 403
    assert client.get("/api/v1/audit-events", headers=auth(tokens["coder1"])).status_code == 403
    assert client.post("/api/v1/ingest", headers=auth(tokens["auditor1"]), json={"text": "x"}).status_code == 403
    # admin: create and disable; the disabled user's token stops working at once
    r = client.post("/api/v1/users", headers=auth(tokens["admin1"]),
                    json={"username": "newbie", "password": "long enough pw", "roles": ["coder"]})
    assert r.status_code == 201
    r = client.post("/api/v1/auth/token", json={"username": "newbie", "password": "long enough pw"})
    newtok = r.json()["token"]
    assert client.get("/api/v1/me", headers=auth(newtok)).status_code == 200
    assert client.post("/api/v1/users/newbie/disable", headers=auth(tokens["admin1"])).status_code == 200
    assert client.get("/api/v1/me", headers=auth(newtok)).status_code == 401
    names = {u["username"]: u["active"] for u in client.get("/api/v1/users", headers=auth(tokens["admin1"])).json()}
    assert names["newbie"] is False


def test_login_rate_limited(client: TestClient) -> None:
    for _ in range(3):
        r = client.post("/api/v1/auth/token", json={"username": "coder2", "password": "wrong-password"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": "coder2", "password": PASSWORD})
    assert r.status_code == 429 and "try again" in r.json()["error"]["message"]
    # other users are not locked out
    assert client.post("/api/v1/auth/token", json={"username": "coder1", "password": PASSWORD}).status_code == 200


def _login(client: TestClient, user: str = "coder1") -> None:
    r = post_login(client, {"username": user, "password": PASSWORD, "next": "/worklist"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie


@pytest.mark.parametrize("secure", [True])
def test_secure_cookie_setting(app: Any, client: TestClient, secure: bool) -> None:
    app.state.settings.secure_cookies = secure
    r = post_login(client, {"username": "coder1", "password": PASSWORD}, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()


def test_cookie_session_and_csrf(client: TestClient, tokens: dict[str, str]) -> None:
    eid = ingest(client, tokens["coder1"])
    assert client.get("/worklist", headers={"accept": "text/html"}, follow_redirects=False).status_code == 303
    _login(client)
    page = client.get(f"/encounters/{eid}")
    assert page.status_code == 200 and "<mark" in page.text
    csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    body = {"action": "add", "code": "R05.9", "version": "2"}
    r = client.post(f"/encounters/{eid}/decide", data=body)  # no CSRF token
    assert r.status_code == 403
    r = client.post(f"/encounters/{eid}/decide", data={**body, "csrf_token": "forged"})
    assert r.status_code == 403
    r = client.post(f"/encounters/{eid}/decide", data={**body, "csrf_token": csrf}, headers={"X-Partial": "1"})
    assert r.status_code == 200 and 'id="review"' in r.text and "R05.9" in r.text
    # the JSON API with a cookie also needs the CSRF header
    r = client.post(f"/api/v1/encounters/{eid}/finalize", json={"version": 3})
    assert r.status_code == 403
    r = client.post(f"/api/v1/encounters/{eid}/finalize", json={"version": 3}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
