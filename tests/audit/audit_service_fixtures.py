"""A workbench with a few finalised encounters for audit service and browser tests.

The coder is a tiny stand-in (trigger words -> codes) so that these tests do not need the
coding engine; the knowledge base likewise.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from opencac.codesets.types import Code, CodeSystem
from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence
from opencac.errors import UnknownCodeError

CM = CodeSystem.ICD10CM
CODES = {c: Code(CM, c, d, billable=True) for c, d in (
    ("I50.9", "Heart failure, unspecified"), ("I50.23", "Acute on chronic systolic heart failure"),
    ("I10", "Essential (primary) hypertension"), ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("N18.3", "Chronic kidney disease, stage 3"), ("J18.9", "Pneumonia, unspecified organism"))}
RULES = [("heart failure", "I50.9", 0.71), ("hypertension", "I10", 0.93), ("diabetes", "E11.9", 0.95),
         ("pneumonia", "J18.9", 0.55)]
NOTES = [
    "Assessment: acute on chronic systolic heart failure, EF 25%. Hypertension. Type 2 diabetes.\n",
    "Assessment: community acquired pneumonia. Hypertension, controlled.\n",
    "Assessment: type 2 diabetes, well controlled. Hypertension noted.\n",
]
USERS = {"coder1": "coder", "auditor1": "auditor", "admin1": "admin"}
PASSWORD = "s3cret-password"


class FakeKB:
    """The subset of ``KnowledgeBase`` the workbench uses."""

    def normalize(self, code: str, system: object = None) -> str:
        c = code.strip().upper().replace(".", "")
        return c[:3] + "." + c[3:] if len(c) > 3 else c

    def find(self, code: str, system: object = None) -> Code | None:
        return CODES.get(self.normalize(code))

    def get(self, code: str, as_of: object = None) -> Code:
        c = self.find(code)
        if c is None:
            raise UnknownCodeError(f"unknown code {code!r}.")
        return c

    def is_billable(self, code: str, as_of: object = None) -> bool:
        return self.find(code) is not None

    def search(self, text: str, system: object = None, limit: int = 20) -> list[tuple[Code, float]]:
        return [(c, 0.5) for c in CODES.values() if text.lower() in c.description.lower()][:limit]


def fake_coder(text: str, context: EncounterContext) -> CodingResult:
    """Suggest codes for trigger words (all selected), with an inpatient DRG."""
    res = CodingResult(doc_id="note", model="audit-fake-1", codeset={"icd10cm": "FY2026"}, context=context)
    for word, code, conf in RULES:
        m = re.search(word, text, re.IGNORECASE)
        if m:
            res.diagnoses.append(CodeSuggestion(code=code, system="icd10cm", description=CODES[code].description,
                                                confidence=conf, evidence=[Evidence(m.start(), m.end(), m.group(0),
                                                                                    "assessment")],
                                                rationale=[f"matched {word!r}"], selected=True))
    for i, s in enumerate(res.diagnoses, 1):
        s.rank = i
    res.rules = {"edits": [], "queries": [],
                 "drg": {"drg": "293", "weight": 0.6737} if "heart failure" in text.lower() else
                 {"drg": "195", "weight": 0.7}}
    return res


def make_app(db_url: str) -> Any:
    """The workbench app on ``db_url`` with the fakes and three users."""
    from opencac.service.app import create_app
    from opencac.service.coding import get_knowledge
    from opencac.service.settings import Settings
    from opencac.store.accounts import create_user

    settings = Settings(database_url=db_url, secret_key="audit-test-secret", start_worker=False, apply_rules=False)
    app = create_app(settings, coder=fake_coder)
    app.dependency_overrides[get_knowledge] = lambda: FakeKB()
    with app.state.session_factory() as s:
        for name, role in USERS.items():
            create_user(s, name, PASSWORD, roles=role, actor="test")
        s.commit()
    return app


def tokens(app: Any) -> dict[str, str]:
    from opencac.store.accounts import issue_token

    with app.state.session_factory() as s:
        out = {n: issue_token(s, n, actor="test") for n in USERS}
        s.commit()
    return out


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed_finalised(client: TestClient, coder_token: str) -> list[int]:
    """Ingest the three notes (with demographics), code them and finalise them as a coder."""
    ids = []
    patients = [{"birth_date": "1948-05-01", "sex": "F", "payer": "Medicare", "race": "White",
                 "preferred_language": "English"},
                {"birth_date": "1990-02-11", "sex": "M", "payer": "Medicaid", "race": "Black",
                 "preferred_language": "Spanish"},
                {"birth_date": "1961-09-30", "sex": "F", "payer": "Commercial", "race": "Asian",
                 "preferred_language": "English"}]
    for note, patient in zip(NOTES, patients, strict=True):
        r = client.post("/api/v1/ingest", json={"text": note, "encounter": {"setting": "inpatient",
                                                                            "date_of_service": "2026-01-15"},
                                                "patient": patient}, headers=auth(coder_token))
        assert r.status_code == 201, r.text
        ids.append(int(r.json()["encounter_id"]))
    client.app.state.worker.drain()  # type: ignore[attr-defined]
    for eid in ids:
        enc = client.get(f"/api/v1/encounters/{eid}", headers=auth(coder_token)).json()
        r = client.post(f"/api/v1/encounters/{eid}/finalize", json={"version": enc["version"]},
                        headers=auth(coder_token))
        assert r.status_code == 200, r.text
    return ids


# --- fixtures shared by the audit service tests (imported by name into each test module) ---
import pytest  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from opencac.store.testing import postgres_unreachable_reason, temp_database  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The workbench app on a throw-away SQLite or PostgreSQL database."""
    if request.param == "postgresql":
        reason = postgres_unreachable_reason()
        if reason:
            pytest.skip(reason)
    with temp_database(request.param, tmp_path) as url:
        application = make_app(url)
        yield application
        application.state.engine.dispose()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """A TestClient running the app's lifespan."""
    with TestClient(app) as c:
        yield c
