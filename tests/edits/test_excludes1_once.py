"""One Excludes1 edit per removed code (a code in two Excludes1 pairs was flagged twice: once
proposed for one pair, once applied for the other)."""

from __future__ import annotations

from typing import Any

from .helpers import make_result
from opencac.edits import apply_rules

# Outpatient diabetes with CKD (the note of tests/e2e/test_edit_fixes_e2e.py): R73.9 is an
# Excludes1 partner of E11.65 (close support: removal only proposed) and of the E11.22 the
# diabetes combination rule derives (a derived code outranks a raw one: removal applied).
TEXT = ("Assessment: Type 2 diabetes mellitus with hyperglycemia. Essential hypertension. "
        "Chronic kidney disease.\nPlan: insulin.\n")
DX = [{"code": "E11.65", "ev": "Type 2 diabetes mellitus with hyperglycemia", "conf": 0.86},
      {"code": "N18.9", "ev": "Chronic kidney disease", "conf": 0.78},
      {"code": "E11.9", "ev": "Type 2 diabetes mellitus", "conf": 0.72},
      {"code": "R73.9", "ev": "hyperglycemia", "conf": 0.57}]


def _excludes1(out: Any, code: str) -> list[Any]:
    return [e for e in out.edits if e.id == "EXCLUDES1" and code in ((e.fix or {}).get("remove") or [])]


def test_a_code_removed_for_one_pair_is_not_also_proposed_for_another(fake_kb: Any) -> None:
    res = make_result(TEXT, DX, context={"setting": "outpatient"}, kb=fake_kb)
    out = apply_rules(res, TEXT, kb=fake_kb, strict=True)
    dx = [c.code for c in out.diagnoses]
    assert "E11.22" in dx and "R73.9" not in dx, dx
    r73 = _excludes1(out, "R73.9")
    assert len(r73) == 1, [(e.codes, e.fix_status) for e in r73]
    assert r73[0].fix_status == "applied"
    assert {"R73.9", "E11.22", "E11.65"} <= set(r73[0].codes)
    assert not [p for p in out.to_dict()["proposed"] if p["fix"] == {"remove": ["R73.9"]}]


def test_two_uncertain_pairs_removing_one_code_give_one_proposal(fake_kb: Any) -> None:
    from opencac.edits.guidelines import _one_removal_each
    from opencac.edits.model import Edit

    a = Edit("EXCLUDES1", "warning", "a", "c", codes=["X1", "Y1"], fix={"remove": ["X1"]}, auto=False)
    b = Edit("EXCLUDES1", "warning", "b", "c", codes=["X1", "Z1"], fix={"remove": ["X1"]}, auto=False)
    c = Edit("EXCLUDES1", "warning", "c", "c", codes=["Q1", "Z1"], fix={"remove": ["Q1"]}, auto=True)
    out = _one_removal_each([a, b, c])
    assert out == [a, c] and a.codes == ["X1", "Y1", "Z1"]
    # a certain removal wins over an earlier proposal of the same removal
    d = Edit("EXCLUDES1", "warning", "d", "c", codes=["X1", "W1"], fix={"remove": ["X1"]}, auto=True)
    a2 = Edit("EXCLUDES1", "warning", "a", "c", codes=["X1", "Y1"], fix={"remove": ["X1"]}, auto=False)
    assert _one_removal_each([a2, d]) == [d] and d.codes == ["X1", "W1", "Y1"]
