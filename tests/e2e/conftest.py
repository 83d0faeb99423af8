"""E2E fixtures: a real server (real engine + rules) on a free loopback port, and headless Chromium."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
E2E_PASSWORD = "e2e-password-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_app`` in a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def ingest(self, text: str, encounter: dict[str, Any], token_name: str) -> tuple[int, dict[str, str]]:
        """Ingest a note as the ``coder`` user over the API and wait until the background worker
        has coded it; returns the encounter id and the API headers."""
        import httpx

        from opencac.store.accounts import issue_token

        with self.app.state.session_factory() as s:
            token = issue_token(s, "coder", name=token_name)
            s.commit()
        h = {"Authorization": f"Bearer {token}"}
        body = {"text": text, "encounter": encounter, "patient": {"birth_date": "1958-05-01", "sex": "F"}}
        r = httpx.post(f"{self.url}/api/v1/ingest", json=body, headers=h, timeout=30)
        assert r.status_code == 201, r.text
        eid = int(r.json()["encounter_id"])
        deadline = time.monotonic() + 240  # the first run loads the code sets
        status = None
        while time.monotonic() < deadline:
            status = httpx.get(f"{self.url}/api/v1/encounters/{eid}", headers=h, timeout=30).json()["status"]
            if status in ("ready", "error"):
                break
            time.sleep(0.5)
        assert status == "ready", f"coding did not finish: {status}"
        return eid, h


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from opencac.service.app import create_app
    from opencac.service.settings import Settings
    from opencac.store.accounts import create_user

    db = tmp_path_factory.mktemp("e2e") / "e2e.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", secret_key="e2e-secret", start_worker=True,
                              worker_poll_s=0.2))
    with app.state.session_factory() as s:
        create_user(s, "coder", E2E_PASSWORD, roles=["coder", "auditor"], display_name="Casey Coder")
        s.commit()
    srv = LiveServer(app, _free_port())
    srv.start()
    yield srv
    srv.stop()
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def screenshot_dir() -> Path:
    d = Path(os.environ.get("OPENCAC_E2E_SCREENSHOTS", "/tmp/opencac-e2e"))
    d.mkdir(parents=True, exist_ok=True)
    return d
