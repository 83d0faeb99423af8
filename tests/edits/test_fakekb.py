"""Fast tests against the fake knowledge base (no compiled code-set artifact needed):
the rules only use the agreed KnowledgeBase methods, so they run on any object with them."""

from __future__ import annotations

from typing import Any

import pytest

from edits.guideline_cases import CASES
from edits.test_guidelines import check_expectations, run_case

FAST = CASES


@pytest.mark.parametrize("case", FAST, ids=[c["id"] for c in FAST])
def test_guideline_case_fake_kb(case: dict[str, Any], fake_kb: Any) -> None:
    check_expectations(case, run_case(case, fake_kb))
