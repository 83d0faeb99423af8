"""Property-based fuzzing of the OpenAPI description with schemathesis: no route answers 5xx.

Bounded: a fixed number of examples per operation, derandomised, SQLite only (the PostgreSQL
paths are the same code).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from svc_helpers import USERS, PASSWORD, auth
from svc_fakes import FakeKB, fake_coder
from fastapi.testclient import TestClient

EXAMPLES = int(os.environ.get("OPENCAC_SCHEMATHESIS_EXAMPLES", "25"))
#: The workbench core's routes; routers added by other layers are fuzzed by the second test.
CORE_PREFIXES = ("/api/v1/auth", "/api/v1/me", "/api/v1/users", "/api/v1/ingest", "/api/v1/encounters",
                 "/api/v1/codes", "/api/v1/reasons", "/api/v1/audit-events", "/api/v1/status")


@pytest.mark.slow
def test_openapi_fuzz_core_routes(tmp_path: Path) -> None:
    _fuzz(tmp_path, core=True)


@pytest.mark.slow
def test_openapi_fuzz_extension_routes(tmp_path: Path) -> None:
    """Routers of other layers (audits, learning, routing) included in the app."""
    _fuzz(tmp_path, core=False)


def _fuzz(tmp_path: Path, core: bool) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    from opencac.service.app import create_app
    from opencac.service.coding import get_knowledge
    from opencac.service.settings import Settings
    from opencac.store.accounts import create_user, issue_token

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'fuzz.db'}", secret_key="k", start_worker=False,
                              max_document_bytes=20_000, login_max_attempts=1000),
                     coder=fake_coder)
    app.dependency_overrides[get_knowledge] = lambda: FakeKB()
    with app.state.session_factory() as s:
        for name, role in USERS.items():
            create_user(s, name, PASSWORD, roles=role)
        token = issue_token(s, "admin1")
        s.commit()
    with TestClient(app) as client:  # a few encounters so that ids in paths often exist
        for text in ("Type 2 diabetes.", "Hypertension and pneumonia.", "Appendectomy."):
            client.post("/api/v1/ingest", json={"text": text}, headers=auth(token))
        app.state.worker.drain()

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    n_ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.startswith(CORE_PREFIXES) != core:
            continue
        n_ops += 1

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            headers = dict(case.headers or {})
            headers.update(auth(token))
            resp = case.call(headers=headers)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:200]}")

        run()
        app.state.worker.drain()
    if not core and n_ops == 0:
        pytest.skip("no extension routers installed")
    assert n_ops >= (12 if core else 1)
    assert not failures, "\n".join(failures[:10])
