"""End to end in the browser: create an audit, draw the sample, score two encounters, get the PDF."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: browser tests need Chromium (apt-get install chromium)",
                allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

sys.path.insert(0, str(Path(__file__).parent))

from audit_service_fixtures import PASSWORD, make_app, seed_finalised, tokens  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    import uvicorn
    from fastapi.testclient import TestClient

    app = make_app(f"sqlite:///{tmp_path / 'e2e.db'}")
    with TestClient(app) as client:
        seed_finalised(client, tokens(app)["coder1"])
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    t.join(timeout=10)
    app.state.engine.dispose()


def test_browser_audit_two_encounters_to_pdf(server: tuple[str, Any], tmp_path: Path) -> None:
    base, app = server
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
            page.goto(f"{base}/login?next=/audits")
            page.fill("#username", "auditor1")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/audits")
            page.fill("#audit-name", "E2E blind audit")
            page.fill("#audit-n", "2")
            page.fill("#audit-seed", "7")
            page.click("#create-audit")
            page.wait_for_selector("#draw-sample")
            assert page.inner_text("#audit-seed-value") == "7"
            page.click("#draw-sample")
            page.wait_for_selector("#sample-table")
            links = page.eval_on_selector_all("a.sample-link", "els => els.map(e => e.getAttribute('href'))")
            assert len(links) == 2
            for i, href in enumerate(links):
                page.goto(base + href)
                assert page.locator("#final-codes").count() == 0  # blind: billed codes hidden
                page.fill("#audit-codes", "I50.23, I10, E11.9" if i == 0 else "E11.9, I10")
                page.click("#save-coding")
                page.wait_for_selector("#score-summary")
                assert page.locator("#final-codes").count() == 1  # revealed after re-coding
            page.goto(f"{base}{links[0].rsplit('/samples', 1)[0]}")
            assert "2 of 2 audited" in page.inner_text("h2 small")
            page.screenshot(path=str(tmp_path / "audit.png"))
            detail_url = page.url
            page.goto(f"{base}{links[0].rsplit('/samples', 1)[0]}/report.html")
            # the report's own styles and inline SVG charts are allowed by its CSP
            assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(18, 60, 105)"
            widths = page.eval_on_selector_all("img.chart", "els => els.map(e => e.naturalWidth)")
            assert widths and all(w > 0 for w in widths)
            page.goto(detail_url)
            with page.expect_download() as dl:
                page.click("#report-pdf")
            pdf = tmp_path / "report.pdf"
            dl.value.save_as(str(pdf))
        finally:
            browser.close()
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and len(data) > 10_000
    import shutil
    import subprocess

    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "E2E blind audit" in text and "3. How the sample was drawn" in text and "Random seed" in text
