"""Browser end-to-end: log in, open an encounter coded by the real engine + rules, accept, reject with
a reason, add a code with the type-ahead, finalise, and see the audit trail (headless Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOTE = """DISCHARGE SUMMARY
History of present illness: 67-year-old woman admitted with poorly controlled diabetes.
Assessment:
1. Type 2 diabetes mellitus with hyperglycemia.
2. Essential hypertension.
3. No evidence of pneumonia on chest x-ray.
Plan: insulin titration, follow up in clinic.
"""


def _ingest(live_server: Any) -> int:
    return live_server.ingest(NOTE, {"setting": "inpatient", "external_id": "E2E-1", "admission_date": "2025-11-01",
                                     "discharge_date": "2025-11-04"}, "e2e")[0]


def test_review_in_browser(live_server: Any, browser: Any, screenshot_dir: Path) -> None:
    eid = _ingest(live_server)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    page.on("dialog", lambda d: d.accept())

    page.goto(f"{live_server.url}/worklist")
    assert "/login" in page.url
    page.get_by_label("User name").fill("coder")
    page.get_by_label("Password").fill("e2e-password-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/worklist")
    page.get_by_role("link", name=f"#{eid} · E2E-1").click()
    page.wait_for_url(f"**/encounters/{eid}")

    # evidence <-> codes
    marks = page.locator("mark[data-sugg]")
    assert marks.count() >= 1
    marks.first.click()
    assert "Codes for this phrase" in page.locator("#linked-codes").inner_text()
    first_row = page.locator("li.sugg").first
    first_code = first_row.get_attribute("data-code")
    first_row.locator(".code-link").click()
    assert first_code in page.locator("#linked-codes").inner_text()

    # accept the first suggestion with the keyboard (j selects, a accepts)
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("k")
    page.keyboard.press("a")
    page.wait_for_selector(f"li.sugg.state-accepted[data-code='{first_code}'], li.sugg.state-added[data-code='{first_code}']")

    # reject every other pending suggestion with a reason (the first one with a guideline citation)
    rejected = 0
    while True:
        pending = page.locator("li.sugg.state-pending")
        if pending.count() == 0:
            break
        row = pending.first
        code = row.get_attribute("data-code")
        box = row.locator("details.reject-box")
        box.locator("summary").click()
        box.get_by_label("Reason").select_option("not_documented" if rejected == 0 else "duplicate")
        box.get_by_label("Comment").fill("not supported by the assessment")
        if rejected == 0:
            box.get_by_label("Guideline citation (optional)").fill("ICD-10-CM Official Guidelines III.B")
        box.get_by_role("button", name="Confirm reject").click()
        page.wait_for_selector(f"li.sugg.state-rejected[data-code='{code}']")
        rejected += 1
        assert rejected < 30
    assert rejected >= 1

    # add a code with the type-ahead search ("/" focuses it)
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    search = page.locator("#add-code")
    assert search.evaluate("el => el === document.activeElement")
    search.type("morbid obesity", delay=20)
    option = page.locator("#add-code-list li[role=option]:not(:has-text('not billable'))").first
    option.wait_for()
    added_code = option.get_attribute("data-code")
    option.click()
    page.locator("form.add-code").get_by_role("button", name="Add code").click()
    page.wait_for_selector(f"li.sugg.state-added[data-code='{added_code}']")

    page.screenshot(path=str(screenshot_dir / "review-1366x768.png"))
    # every visible form control has an accessible label; the page does not scroll sideways at 1366x768
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.name || el.id)""")
    assert unlabelled == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # finalise with the keyboard shortcut (the confirm dialog is accepted)
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("f")
    page.wait_for_selector("text=Final version 1 by coder")
    working = page.get_by_role("list", name="Working code set").inner_text()
    assert added_code in working and first_code in working

    # the audit trail
    page.get_by_role("link", name="Audit trail of this encounter").click()
    trail = page.locator("table.audit").inner_text()
    for action in ("encounter.ingest", "coding_run.done", "document.view", "decision.accept", "decision.reject",
                   "decision.add", "final_code_set.change"):
        assert action in trail, action
    assert "Type 2 diabetes mellitus with hyperglycemia." not in trail
    page.screenshot(path=str(screenshot_dir / "audit-trail.png"))

    # the export validates as FHIR R4 and carries the sequenced codes
    resp = page.request.get(f"{live_server.url}/api/v1/encounters/{eid}/export/fhir")
    assert resp.status == 200
    claim = next(e["resource"] for e in resp.json()["entry"] if e["resource"]["resourceType"] == "Claim")
    assert claim["diagnosis"][0]["sequence"] == 1
    ctx.close()
