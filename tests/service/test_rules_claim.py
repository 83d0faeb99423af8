"""The working code set is the rules layer's final claim: the worker stores the engine's
suggestions with the rules' selection (headers, replaced and excluded codes off, rule-added codes
on), straight-through finalisation gives that (billable) claim, and proposed fixes still resolve.

The engine is a stand-in that returns fixed suggestions (what the out-of-the-box engine gives for
these notes); the rules layer and the knowledge base are the real ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from svc_helpers import PASSWORD, add_users, auth

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence
from opencac.service.coding import get_knowledge
from opencac.store.models import Suggestion

pytestmark = pytest.mark.slow

# The diabetes/CKD note of tests/e2e/test_edit_fixes_e2e.py and what the engine selects for it.
CKD_NOTE = ("Assessment: Type 2 diabetes mellitus with hyperglycemia. Essential hypertension. "
            "Chronic kidney disease.\nPlan: insulin.\n")
CKD_ENGINE = [("E11.65", 0.865, True, "Type 2 diabetes mellitus with hyperglycemia"),
              ("N18.9", 0.777, True, "Chronic kidney disease"), ("E11.9", 0.721, True, "Type 2 diabetes mellitus"),
              ("I10", 0.714, True, "Essential hypertension"), ("N18", 0.699, True, "Chronic kidney disease"),
              ("E11", 0.639, True, "Type 2 diabetes mellitus"), ("N28.9", 0.636, True, "kidney disease"),
              ("E13.65", 0.629, True, "diabetes mellitus with hyperglycemia"), ("R73.9", 0.573, True, "hyperglycemia"),
              ("Z79.4", 0.2, False, "insulin")]
# A note whose rules only apply certain fixes: a header code and another diabetes type come off.
DM_NOTE = "Assessment: Type 2 diabetes mellitus with hyperglycemia. Essential hypertension.\n"
DM_ENGINE = [("E11.65", 0.95, True, "Type 2 diabetes mellitus with hyperglycemia"),
             ("I10", 0.93, True, "Essential hypertension"), ("E11", 0.9, True, "Type 2 diabetes mellitus"),
             ("E13.65", 0.6, True, "diabetes mellitus with hyperglycemia")]


def engine_then_rules(kb: Any) -> Any:
    def coder(text: str, ctx: EncounterContext) -> CodingResult:
        from opencac.edits import apply_rules

        spec = CKD_ENGINE if text == CKD_NOTE else DM_ENGINE
        res = CodingResult("note", model="dictionary-only", codeset={"icd10cm": "FY2026"}, context=ctx)
        for rank, (code, conf, sel, phrase) in enumerate(spec, 1):
            i = text.find(phrase)
            res.diagnoses.append(CodeSuggestion(code, "icd10cm", kb.get(code).description, conf,
                                                [Evidence(i, i + len(phrase), phrase, "assessment")],
                                                rank=rank, selected=sel))
        apply_rules(res, text, kb=kb)
        return res

    return coder


@pytest.fixture
def app(tmp_path: Path, kb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from opencac.routing import RoutingPolicy
    from opencac.service.app import create_app
    from opencac.service.settings import Settings

    # Straight-through whenever every code passes 0.5 and no blocking edit is open.
    pol = RoutingPolicy(default_threshold=0.5, thresholds={}, complexity_limit=1.0, audit_sample_rate=0.0)
    monkeypatch.setenv("OPENCAC_ROUTING_POLICY", str(pol.save(tmp_path / "policy.json")))
    application = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}", secret_key="test-secret",
                                      start_worker=False), coder=engine_then_rules(kb))
    application.dependency_overrides[get_knowledge] = lambda: kb
    add_users(application)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def token(app: Any, client: TestClient) -> str:
    from opencac.store.accounts import issue_token

    with app.state.session_factory() as s:
        t = issue_token(s, "coder1", actor="test")
        s.commit()
    return t


def _ingest(client: TestClient, token: str, text: str) -> dict[str, Any]:
    r = client.post("/api/v1/ingest", json={"text": text, "encounter": {"setting": "outpatient",
                                                                          "date_of_service": "2025-11-03"},
                                            "patient": {"birth_date": "1958-05-01", "sex": "F"}}, headers=auth(token))
    assert r.status_code == 201, r.text
    client.app.state.worker.drain()  # type: ignore[attr-defined]
    return _enc(client, token, int(r.json()["encounter_id"]))


def _enc(client: TestClient, token: str, eid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/encounters/{eid}", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def _codes(items: list[dict[str, Any]]) -> list[str]:
    return [c["code"] for c in items]


def test_working_set_is_the_rules_final_claim(client: TestClient, token: str, kb: Any) -> None:
    enc = _ingest(client, token, CKD_NOTE)
    rules = enc["rules"]
    final = _codes(rules["final_codes"])
    assert _codes(enc["working_codes"]) == final  # same codes, same sequence
    assert not {"N18", "E11", "E13.65", "E11.9", "I10", "R73.9"} & set(final)  # headers, replaced, excluded
    assert all(kb.is_billable(c, as_of=dt.date(2025, 11, 3)) for c in final)
    by_code = {s["code"]: s for s in enc["suggestions"]}
    # engine rows the rules took off stay, unselected, saying which rule removed them
    e13 = by_code["E13.65"]
    assert not e13["selected"] and e13["state"] == "pending" and e13["source"] == "engine"
    assert e13["removed_by_rules"].startswith("opencac.combination.diabetes.v1 - replaced by E11.65")
    assert by_code["N18"]["removed_by_rules"].startswith("opencac.completion.v1 - remove")
    assert by_code["R73.9"]["removed_by_rules"].startswith("opencac.excludes1.v1")
    assert by_code["E11.65"]["removed_by_rules"] is None
    # codes the rules added: new rows of source "rules" (no engine confidence), or the engine's
    # unselected candidate selected; a code written in place of an engine code keeps its confidence
    for code in set(final) - {s["code"] for s in enc["suggestions"] if s["source"] == "engine"}:
        row = by_code[code]
        assert row["source"] == "rules" and row["selected"] and row["description"], row
        assert row["rationale"][0].startswith("added by the rules: opencac."), row
    if "E11.22" in final:
        assert by_code["E11.22"]["confidence"] is None and by_code["E11.22"]["evidence"]
    if "I12.9" in final:
        assert by_code["I12.9"]["confidence"] == pytest.approx(0.714)
    if "Z79.4" in final:
        z79 = by_code["Z79.4"]
        assert z79["source"] == "engine" and z79["selected"] and z79["confidence"] == pytest.approx(0.2)
        assert any(r.startswith("added by the rules: opencac.companions.v1") for r in z79["rationale"])
    # suggestions listed in the claim's order first
    dx = [s for s in enc["suggestions"] if s["system"] == "icd10cm"]
    assert _codes(dx[:len(final)]) == final
    # each Excludes1 removal appears once; routing: the open proposed fix (and the rule-added
    # codes without engine confidence) keep it from straight-through
    removals = [str(e["fix"]) for e in enc["edits"] if e["edit_id"] == "EXCLUDES1" and e["fix"]]
    assert len(removals) == len(set(removals))
    assert enc["final"] is None and enc["status"] == "ready"


def test_page_shows_removed_by_the_rules(client: TestClient, token: str) -> None:
    from svc_helpers import post_login

    eid = _ingest(client, token, CKD_NOTE)["id"]
    r = post_login(client, {"username": "coder1", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(f"/encounters/{eid}").text
    assert "removed by the rules: opencac.combination.diabetes.v1" in page
    assert "added by the rules" in page


def test_straight_through_finalises_the_billable_claim(app: Any, client: TestClient, token: str, kb: Any) -> None:
    enc = _ingest(client, token, DM_NOTE)
    final = _codes(enc["rules"]["final_codes"])
    assert final == ["E11.65", "I10"]
    assert enc["status"] == "final", enc["status"]  # before: E11 (a header) failed finalisation
    assert enc["final"]["coded_by"] == "ai_straight_through"
    assert _codes(enc["final"]["codes"]) == final
    assert all(kb.is_billable(c["code"], as_of=dt.date(2025, 11, 3)) for c in enc["final"]["codes"])
    with app.state.session_factory() as s:
        rows = {r.code: r for r in s.query(Suggestion).filter(Suggestion.encounter_id == enc["id"])}
        assert rows["E11"].state == "pending" and not rows["E11"].selected  # never accepted
        assert rows["E13.65"].state == "pending" and rows["E11.65"].state == "accepted"


def test_resolving_a_proposed_fix_changes_the_working_set(client: TestClient, token: str, kb: Any) -> None:
    enc = _ingest(client, token, CKD_NOTE)
    proposed = [e for e in enc["edits"] if e["fix_status"] == "proposed" and (e["fix"] or {}).get("remove")]
    assert proposed, [(e["edit_id"], e["fix_status"]) for e in enc["edits"]]
    edit = proposed[0]
    gone = edit["fix"]["remove"][0]
    assert gone in _codes(enc["working_codes"])
    r = client.post(f"/api/v1/encounters/{enc['id']}/edits/{edit['id']}/resolve", headers=auth(token),
                    json={"action": "apply", "version": enc["version"]})
    assert r.status_code == 200, r.text
    left = [c for c in _codes(enc["rules"]["final_codes"]) if c != gone]
    assert _codes(r.json()["working_codes"]) == left
    enc2 = _enc(client, token, enc["id"])
    r = client.post(f"/api/v1/encounters/{enc['id']}/finalize", headers=auth(token),
                    json={"version": enc2["version"]})
    assert r.status_code == 200, r.text
    codes = _codes(_enc(client, token, enc["id"])["final"]["codes"])
    assert codes == left and all(kb.is_billable(c, as_of=dt.date(2025, 11, 3)) for c in codes)


def test_learned_feedback_keeps_the_rules_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feedback overlay moves confidences, but on a run stored as the rules' claim it neither
    re-selects a row the rules removed nor touches a rules row; a learned addition joins unselected."""
    from types import SimpleNamespace

    from opencac.service.routers import learning as lr

    class Overlay:
        def __len__(self) -> int:
            return 1

        def adjust(self, res: CodingResult, text: str) -> None:
            for s in res.diagnoses:
                s.confidence, s.selected = min(1.0, s.confidence + 0.05), True
            res.diagnoses.append(CodeSuggestion("R05.9", "icd10cm", "Cough", 0.9, [], selected=True, rank=9))

    monkeypatch.setattr(lr, "learner", lambda **_: SimpleNamespace(overlay=Overlay()))
    added: list[Suggestion] = []
    session = SimpleNamespace(get_bind=lambda: SimpleNamespace(url="sqlite://"), add=added.append)
    enc = SimpleNamespace(id=1, setting="outpatient")

    def row(code: str, conf: float | None, selected: bool, source: str = "engine") -> Suggestion:
        return Suggestion(encounter_id=1, run_id=1, system="icd10cm", code=code, description=code, confidence=conf,
                          evidence=[], rationale=[], signals={}, assertion="affirmed", rank=1, selected=selected,
                          source=source, state="pending")

    kept, removed, rules_row = row("E11.65", 0.8, True), row("E11", 0.6, False), row("E11.22", None, True, "rules")
    assert lr.apply_feedback(session, enc, [kept, removed, rules_row], "note", keep_selection=True) == 3
    assert kept.selected and kept.confidence == pytest.approx(0.85)
    assert not removed.selected and removed.confidence == pytest.approx(0.65)
    assert rules_row.confidence is None and rules_row.selected
    assert [(a.code, a.selected) for a in added] == [("R05.9", False)]
