"""Shared helpers of the service tests (constants, auth header, ingest)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

NOTE = ("Chief complaint: follow-up.\nAssessment: Type 2 diabetes, well controlled. Hypertension noted.\n"
        "No pneumonia on chest film.\nPlan: continue metformin.\n")
USERS = {"coder1": "coder", "coder2": "coder", "auditor1": "auditor", "cdi1": "cdi", "admin1": "admin"}
PASSWORD = "s3cret-password"


def add_users(app: Any) -> None:
    """Create the test users (:data:`USERS`, :data:`PASSWORD`) in a freshly created app's database."""
    from opencac.store.accounts import create_user

    with app.state.session_factory() as s:
        for name, role in USERS.items():
            create_user(s, name, PASSWORD, roles=role, actor="test")
        s.commit()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ingest(client: TestClient, token: str, text: str = NOTE, setting: str = "outpatient", drain: bool = True) -> int:
    r = client.post("/api/v1/ingest", json={"text": text, "encounter": {"setting": setting,
                                                                          "date_of_service": "2025-11-03"},
                                            "patient": {"birth_date": "1950-03-02", "sex": "F", "payer": "Medicare"}},
                    headers=auth(token))
    assert r.status_code == 201, r.text
    if drain:
        client.app.state.worker.drain()  # type: ignore[attr-defined]
    return int(r.json()["encounter_id"])


def post_login(client: TestClient, data: dict[str, str], **kwargs: object):  # noqa: ANN201
    """Post the login form like a browser: fetch it first for its login token (double submit)."""
    page = client.get("/login").text
    token = page.split('name="login_token" value="')[1].split('"')[0]
    return client.post("/login", data={**data, "login_token": token}, **kwargs)  # type: ignore[arg-type]
