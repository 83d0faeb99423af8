"""Background coding: crash-safe re-queue, failures recorded, the real thread picks work up."""

from __future__ import annotations

import time
from typing import Any

from svc_helpers import auth, ingest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from opencac.service.worker import requeue_interrupted
from opencac.store.models import CodingRun


def test_interrupted_run_is_requeued(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    eid = ingest(client, tokens["coder1"], drain=False)
    factory = app.state.session_factory
    with factory() as s:  # simulate a crash in the middle of coding
        s.execute(update(CodingRun).values(status="running"))
        s.commit()
    assert app.state.worker.drain() == 0  # a running run is not picked up twice
    assert requeue_interrupted(factory) == 1
    assert app.state.worker.drain() == 1
    enc = client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["coder1"])).json()
    assert enc["status"] == "ready" and enc["run"]["status"] == "done"


def test_failing_coder_marks_error(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    from opencac.service.coding import get_coder

    def broken(text: str, ctx: Any) -> Any:
        raise RuntimeError("engine exploded")

    app.dependency_overrides[get_coder] = lambda: broken
    eid = ingest(client, tokens["coder1"])
    enc = client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["coder1"])).json()
    assert enc["status"] == "error" and enc["run"]["status"] == "failed" and enc["run"]["attempts"] == 3
    assert "engine exploded" in enc["run"]["error"]


def test_worker_thread_codes_in_background(app: Any, tokens: dict[str, str]) -> None:
    app.state.settings.start_worker = True
    app.state.worker._poll_s = 0.1
    with TestClient(app) as client:
        eid = ingest(client, tokens["coder1"], drain=False)
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            status = client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["coder1"])).json()["status"]
            if status == "ready":
                break
            time.sleep(0.1)
        assert status == "ready"
        st = client.get("/api/v1/status", headers=auth(tokens["coder1"])).json()
        assert st["worker"] is True and st["runs"].get("done") == 1
    with app.state.session_factory() as s:
        assert s.execute(select(CodingRun.status)).scalar_one() == "done"


def test_superseded_claim_is_discarded(app: Any, client: TestClient, tokens: dict[str, str]) -> None:
    """A run re-queued and re-claimed by another process while this one coded it is stored once."""
    from svc_fakes import fake_coder

    from opencac.service.worker import claim_next, process_run

    eid = ingest(client, tokens["coder1"], drain=False)
    factory = app.state.session_factory
    first = claim_next(factory)
    assert first is not None
    reclaimed: list[int | None] = []

    def slow_coder(text: str, ctx: Any) -> Any:
        # meanwhile a second server process starts, re-queues the run and claims it
        assert requeue_interrupted(factory) == 1
        reclaimed.append(claim_next(factory))
        return fake_coder(text, ctx)

    assert process_run(factory, first, slow_coder) == "superseded"
    assert reclaimed == [first]
    assert process_run(factory, first, fake_coder) == "done"
    enc = client.get(f"/api/v1/encounters/{eid}", headers=auth(tokens["coder1"])).json()
    assert enc["status"] == "ready" and len(enc["suggestions"]) == 3  # one set, not two
