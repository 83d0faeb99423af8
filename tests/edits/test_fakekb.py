"""Fast tests against the fake knowledge base (no compiled code-set artifact needed):
the rules only use the agreed KnowledgeBase methods, so they run on any object with them."""

from __future__ import annotations

from typing import Any

import pytest

from .guideline_cases import CASES
from .test_guidelines import check_expectations, run_case

FAST = [c for c in CASES if not c.get("real_kb_only")]


@pytest.mark.parametrize("case", FAST, ids=[c["id"] for c in FAST])
def test_guideline_case_fake_kb(case: dict[str, Any], fake_kb: Any) -> None:
    check_expectations(case, run_case(case, fake_kb))


def test_code_not_valid_on_date_of_service(fake_kb: Any) -> None:
    from opencac.edits import check_claim

    old = check_claim({"context": {"date_of_service": "2020-01-15"}, "diagnoses": ["U09.9"]}, kb=fake_kb)
    hit = [e for e in old.edits if e.id == "MCE-INVALID-DX"]
    assert hit and "FY2020" in hit[0].message and old.has_errors()
    new = check_claim({"context": {"date_of_service": "2022-01-15"}, "diagnoses": ["U09.9"]}, kb=fake_kb)
    assert "MCE-INVALID-DX" not in new.edit_ids()
