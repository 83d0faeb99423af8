"""Workbench integration: coding runs get routed (worklist queue/priority), decisions become
labelled examples and feed the online learner, admin pages and JSON routes."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence  # noqa: E402

NOTE = "Assessment: community acquired pneumonia of the right lower lobe. Plan: antibiotics."


def fake_coder(text: str, context: EncounterContext) -> CodingResult:
    res = CodingResult("note", context=context)
    res.diagnoses = [
        CodeSuggestion("J18.9", "icd10cm", "Pneumonia, unspecified organism", 0.97,
                       [Evidence(12, 43, "community acquired pneumonia", "assessment")], selected=True, rank=1),
        CodeSuggestion("I10", "icd10cm", "Essential hypertension", 0.40, [], selected=False, rank=2),
    ]
    res.rules = {"edits": [], "queries": []}
    return res


@pytest.fixture()
def app_env(tmp_path, monkeypatch):
    from opencac.service import app as app_mod
    from opencac.service.settings import Settings

    monkeypatch.setenv("OPENCAC_EXTRA_ROUTERS", "opencac.service.routers.learning")
    monkeypatch.setenv("OPENCAC_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.delenv("OPENCAC_MODEL", raising=False)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wb.db'}", secret_key="k" * 32, start_worker=False,
                        apply_rules=False)
    app = app_mod.create_app(settings, coder=fake_coder)
    from opencac.service.routers import learning as lr
    from opencac.store import learning_models  # noqa: F401
    from opencac.store.models import Base

    # The tables come from migration 0003_learning; create them here when it is not installed yet.
    tables = [Base.metadata.tables[n] for n in ("routing_policies", "learning_examples", "route_decisions")]
    Base.metadata.create_all(app.state.engine, tables=tables)
    lr._tables_ok.clear()
    lr._learners.clear()
    lr.stop_queues()
    yield app, lr
    lr.stop_queues()


def _user(app, roles=("admin",)):
    from opencac.store.accounts import create_user, issue_token

    with app.state.session_factory() as s:
        create_user(s, "ada", "correct horse battery", roles=roles)
        s.commit()
        tok = issue_token(s, "ada")
        s.commit()
    return tok if isinstance(tok, str) else tok[0]


def _ingest_and_code(app) -> int:
    from opencac.service.ingest import IngestData, create_encounter

    with app.state.session_factory() as s:
        enc = create_encounter(s, IngestData(text=NOTE, setting="inpatient"), None, 100_000)
        s.commit()
        eid = enc.id
    app.state.worker.drain()
    return eid


def test_coded_encounter_is_routed_and_decisions_are_learnt(app_env) -> None:
    app, lr = app_env
    from sqlalchemy import select

    from opencac.service import workflow
    from opencac.store.learning_models import LearningExample, RouteDecisionRow
    from opencac.store.models import Encounter, Suggestion, User

    eid = _ingest_and_code(app)
    with app.state.session_factory() as s:
        enc = s.get(Encounter, eid)
        # default policy: default threshold 0.95 -> J18.9 (0.97) passes -> straight through
        assert enc.queue == "straight_through" and enc.priority == 0
        row = s.execute(select(RouteDecisionRow).where(RouteDecisionRow.encounter_id == eid)).scalars().one()
        assert row.route == "straight_through" and "conditions" in row.factors

    _user(app)
    with app.state.session_factory() as s:
        user = s.execute(select(User).where(User.username == "ada")).scalars().one()
        sug = s.execute(select(Suggestion).where(Suggestion.code == "I10")).scalars().one()
        enc = s.get(Encounter, eid)
        workflow.decide(s, user, eid, enc.version, "reject", suggestion_id=sug.id, reason_code="not_documented")
        s.commit()
    db = str(app.state.engine.url)
    # the learner is fed after commit, by the app's background queue: wait for it to drain
    assert lr.queue_for(app.state.engine).drain(30)
    with app.state.session_factory() as s:
        exs = s.execute(select(LearningExample)).scalars().all()
        assert [(e.code, e.label, e.action, e.applied) for e in exs] == [("I10", False, "reject", True)]
    votes = lr.learner(database=db).overlay.votes(NOTE)
    assert votes[("icd10cm", "i10")][1] > 0
    # ... and the next similar encounter's I10 suggestion comes in lower, with the reason
    eid2 = _ingest_and_code(app)
    with app.state.session_factory() as s:
        i10 = s.execute(select(Suggestion).where(Suggestion.encounter_id == eid2, Suggestion.code == "I10")
                        ).scalars().one()
        assert i10.confidence < 0.40 and any("rejected" in r for r in i10.rationale)
        j18 = s.execute(select(Suggestion).where(Suggestion.encounter_id == eid2, Suggestion.code == "J18.9")
                        ).scalars().one()
        assert j18.confidence == pytest.approx(0.97)
    # another workbench (database) does not see this one's teaching
    assert len(lr.learner(database="sqlite:///other.db").overlay) == 0


def test_admin_routes_and_pages(app_env) -> None:
    from fastapi.testclient import TestClient

    from opencac.routing import RoutingPolicy

    app, _ = app_env
    tok = _user(app)
    h = {"Authorization": f"Bearer {tok}"}
    c = TestClient(app)
    pol = RoutingPolicy(thresholds={"icd10cm:*": 0.9}, projection={"curve": [
        {"target_precision": 0.9, "thresholds": {"icd10cm:*": 0.8}, "recall": {"icd10cm:*": 0.5},
         "straight_through_rate": 0.4},
        {"target_precision": 0.95, "thresholds": {"icd10cm:*": 0.9}, "recall": {"icd10cm:*": 0.3},
         "straight_through_rate": 0.2}]})
    r = c.put("/api/v1/routing/policy", json=pol.to_dict(), headers=h)
    assert r.status_code == 200, r.text
    r = c.post("/api/v1/routing/policy/target", json={"target_precision": 0.9}, headers=h)
    assert r.status_code == 200 and r.json()["thresholds"] == {"icd10cm:*": 0.8}
    assert r.json()["projected_straight_through_rate"] == 0.4
    got = c.get("/api/v1/routing/policy", headers=h).json()
    assert got["policy"]["target_precision"] == 0.9
    page = c.get("/admin/routing", headers={**h, "accept": "text/html"})
    assert page.status_code == 200 and "Projected automation by target precision" in page.text
    assert '<img class="chart" src="data:image/svg+xml;base64,' in page.text  # the curve as a chart too
    assert c.get("/api/v1/models", headers=h).json() == []
    page = c.get("/admin/models", headers={**h, "accept": "text/html"})
    assert page.status_code == 200 and "No versions registered" in page.text
    r = c.post("/api/v1/models/rollback", headers=h)
    assert r.status_code == 400 and "nothing to roll back" in r.text


def test_coder_may_not_change_policy(app_env) -> None:
    from fastapi.testclient import TestClient

    app, _ = app_env
    tok = _user(app, roles=("coder",))
    r = TestClient(app).post("/api/v1/routing/policy/target", json={"target_precision": 0.9},
                             headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403


def _reject_i10(app, eid: int) -> None:
    from sqlalchemy import select

    from opencac.service import workflow
    from opencac.store.models import Encounter, Suggestion, User

    with app.state.session_factory() as s:
        user = s.execute(select(User).where(User.username == "ada")).scalars().one()
        sug = s.execute(select(Suggestion).where(Suggestion.encounter_id == eid, Suggestion.code == "I10")
                        ).scalars().one()
        enc = s.get(Encounter, eid)
        workflow.decide(s, user, eid, enc.version, "reject", suggestion_id=sug.id, reason_code="not_documented")
        s.commit()


def test_decision_is_not_learnt_inside_the_transaction(app_env, monkeypatch) -> None:
    """The learner's update runs after commit, in the queue's thread, never in the request's flush."""
    import threading

    app, lr = app_env
    from opencac.learning.online import OnlineLearner

    calls: list[str] = []
    real = OnlineLearner.decide

    def spy(self, decision, text=None):
        calls.append(threading.current_thread().name)
        return real(self, decision, text)

    monkeypatch.setattr(OnlineLearner, "decide", spy)
    eid = _ingest_and_code(app)
    _user(app)
    _reject_i10(app, eid)
    q = lr.queue_for(app.state.engine)
    assert q.drain(30)
    assert calls == ["opencac-learning"]


def test_decision_reaches_next_run_after_drain_and_survives_restart(app_env) -> None:
    from sqlalchemy import select

    from opencac.store.models import Suggestion

    app, lr = app_env
    eid = _ingest_and_code(app)
    _user(app)
    _reject_i10(app, eid)
    assert lr.queue_for(app.state.engine).drain(30)
    eid2 = _ingest_and_code(app)
    with app.state.session_factory() as s:
        i10 = s.execute(select(Suggestion).where(Suggestion.encounter_id == eid2, Suggestion.code == "I10")
                        ).scalars().one()
        assert i10.confidence < 0.40
    # "restart": the in-memory learner and the queue are gone; the stored rows are replayed
    lr.stop_queues()
    lr._learners.clear()
    db = str(app.state.engine.url)
    assert len(lr.learner(database=db).overlay) == 0
    lr._learners.clear()
    from fastapi.testclient import TestClient

    with TestClient(app):  # lifespan start-up starts the queue: warm-up + replay
        assert lr.queue_for(app.state.engine).drain(30)
        votes = lr.learner(database=db).overlay.votes(NOTE)
        assert votes[("icd10cm", "i10")][1] > 0
        # idempotent: another pass applies nothing twice
        q = lr.queue_for(app.state.engine)
        before = (len(lr.learner(database=db).overlay), lr.learner(database=db).overlay.votes(NOTE))
        assert q.run_once() == 0 and q.drain(30)
        assert (len(lr.learner(database=db).overlay), lr.learner(database=db).overlay.votes(NOTE)) == before
        eid3 = _ingest_and_code(app)
        with app.state.session_factory() as s:
            i10 = s.execute(select(Suggestion).where(Suggestion.encounter_id == eid3, Suggestion.code == "I10")
                            ).scalars().one()
            assert i10.confidence < 0.40 and any("rejected" in r for r in i10.rationale)


def test_straight_through_run_is_finalised_as_ai_straight_through(app_env) -> None:
    from sqlalchemy import select

    from opencac.routing import RoutingPolicy
    from opencac.store.learning_models import RouteDecisionRow, RoutingPolicyRow
    from opencac.store.models import Encounter, FinalCodeSet

    app, lr = app_env
    # a policy whose thresholds let the simple note (J18.9 at 0.97, no edits) go straight through,
    # every straight-through encounter sampled for audit
    pol = RoutingPolicy(thresholds={"icd10cm:*": 0.9}, default_threshold=0.9, audit_sample_rate=1.0)
    with app.state.session_factory() as s:
        s.add(RoutingPolicyRow(name="t", policy=pol.to_dict(), target_precision=0.9, active=True))
        s.commit()
    eid = _ingest_and_code(app)
    with app.state.session_factory() as s:
        enc = s.get(Encounter, eid)
        assert enc.status == "final" and enc.queue == "straight_through"
        fcs = s.execute(select(FinalCodeSet).where(FinalCodeSet.encounter_id == eid)).scalars().one()
        assert fcs.coded_by == "ai_straight_through"
        assert [c["code"] for c in fcs.codes] == ["J18.9"]
        row = s.execute(select(RouteDecisionRow).where(RouteDecisionRow.encounter_id == eid)).scalars().one()
        assert row.route == "straight_through" and row.audit_sample is True
    # the engine's own straight-through acceptances are not learnt back as coder feedback
    from opencac.store.learning_models import LearningExample

    assert lr.queue_for(app.state.engine).drain(30)
    with app.state.session_factory() as s:
        assert s.execute(select(LearningExample)).first() is None
    assert len(lr.learner(database=str(app.state.engine.url)).overlay) == 0
    # a policy that keeps it for review: not finalised
    pol2 = RoutingPolicy(thresholds={"icd10cm:*": 0.99}, default_threshold=0.99)
    with app.state.session_factory() as s:
        for r in s.execute(select(RoutingPolicyRow)).scalars():
            r.active = False
        s.add(RoutingPolicyRow(name="t2", policy=pol2.to_dict(), target_precision=0.99, active=True))
        s.commit()
    eid2 = _ingest_and_code(app)
    with app.state.session_factory() as s:
        enc = s.get(Encounter, eid2)
        assert enc.queue == "coder_review" and enc.status == "ready"
        assert s.execute(select(FinalCodeSet).where(FinalCodeSet.encounter_id == eid2)).first() is None


def test_service_follows_registry_promotion_and_rollback(tmp_path, monkeypatch) -> None:
    import json

    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from opencac.learning.registry import ModelRegistry
    from opencac.service import app as app_mod
    from opencac.service import coding
    from opencac.service.routers import learning as lr
    from opencac.service.settings import Settings
    from opencac.store.models import CodingRun

    reg_dir = tmp_path / "registry"
    monkeypatch.setenv("OPENCAC_MODEL_REGISTRY", str(reg_dir))
    monkeypatch.setenv("OPENCAC_EXTRA_ROUTERS", "opencac.service.routers.learning")
    monkeypatch.delenv("OPENCAC_MODEL", raising=False)
    reg = ModelRegistry(reg_dir)
    for name, score in (("m1", 0.5), ("m2", 0.6)):
        d = tmp_path / name
        d.mkdir()
        (d / "manifest.json").write_text(json.dumps({"name": name}), encoding="utf-8")
        reg.register(d, metrics={"map": score}, validation_hash="val", auto_promote=False)
    reg.promote("v0001", by="test")

    class FakeEngine:
        def __init__(self, path):
            self.path = path

        def code(self, text, doc_id="note", context=None):
            res = fake_coder(text, context)
            res.model = self.path
            return res

    loaded: list[str | None] = []

    def fake_engine(path):
        loaded.append(path)
        return FakeEngine(path)

    monkeypatch.setattr(coding, "_engine", fake_engine)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wb.db'}", secret_key="k" * 32, start_worker=False,
                        apply_rules=False)
    app = app_mod.create_app(settings)
    lr._tables_ok.clear()

    def last_model() -> str:
        _ingest_and_code(app)
        with app.state.session_factory() as s:
            return s.execute(select(CodingRun).order_by(CodingRun.id.desc())).scalars().first().model

    try:
        assert last_model() == reg.get("v0001").path
        h = {"Authorization": f"Bearer {_user(app)}"}
        c = TestClient(app)
        r = c.post("/api/v1/models/v0002/promote", headers=h)
        assert r.status_code == 200, r.text
        assert last_model() == reg.get("v0002").path
        r = c.post("/admin/models/rollback", headers={**h, "accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303
        assert last_model() == reg.get("v0001").path
        # an explicit --model / OPENCAC_MODEL wins over the registry
        assert coding.resolve_model_path("/explicit/model") == "/explicit/model"
    finally:
        lr.stop_queues()


def test_coder_finalisation_is_learnt_after_commit(app_env) -> None:
    from sqlalchemy import select

    from opencac.routing import RoutingPolicy
    from opencac.service import workflow
    from opencac.store.learning_models import RoutingPolicyRow
    from opencac.store.models import Encounter, User

    app, lr = app_env
    pol = RoutingPolicy(thresholds={"icd10cm:*": 0.99}, default_threshold=0.99)  # keep it for review
    with app.state.session_factory() as s:
        s.add(RoutingPolicyRow(name="t", policy=pol.to_dict(), target_precision=0.99, active=True))
        s.commit()
    eid = _ingest_and_code(app)
    _user(app)
    db = str(app.state.engine.url)
    assert lr.queue_for(app.state.engine).drain(30)
    assert len(lr.learner(database=db).overlay) == 0
    with app.state.session_factory() as s:
        user = s.execute(select(User).where(User.username == "ada")).scalars().one()
        enc = s.get(Encounter, eid)
        fcs = workflow.finalize(s, user, eid, enc.version)
        s.commit()
        assert fcs.coded_by != "ai_straight_through"
    assert lr.queue_for(app.state.engine).drain(30)
    assert len(lr.learner(database=db).overlay) >= 1
