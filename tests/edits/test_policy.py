"""The auto-apply policy: when a rule's fix is applied by itself and when it is only proposed."""

from __future__ import annotations

import pytest

from opencac.edits import Edit
from opencac.edits.policy import DEFAULT_POLICY, AutoApplyPolicy, decide


def test_defaults_are_documented_in_one_place() -> None:
    d = DEFAULT_POLICY.to_dict()
    assert d == {"confident": 0.7, "confidence_gap": 0.3, "attribute_window": 30, "candidate_min": 0.2,
                 "history_candidate_min": 0.5, "doubtful": 0.2}
    with pytest.raises(Exception):
        DEFAULT_POLICY.confident = 0.1  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(("removed", "kept", "ok"), [
    (0.96, 0.07, False),  # the engine believes the code taken out far more
    (0.5, 0.5, True),
    (0.3, 0.8, True),
    (None, 0.1, True),    # unscored: the note decides
    (0.9, None, True),
])
def test_engine_agrees(removed: float | None, kept: float | None, ok: bool) -> None:
    assert DEFAULT_POLICY.engine_agrees(removed, kept) is ok


def test_doubtful_and_far_less() -> None:
    p = AutoApplyPolicy()
    assert p.may_drop(None) and p.may_drop(0.2) and not p.may_drop(0.21)
    assert p.far_less(0.6, 0.9) and not p.far_less(0.5, 0.6) and not p.far_less(0.1, 0.35)  # stronger not confident
    assert AutoApplyPolicy(doubtful=0.5).may_drop(0.45)


def test_decide_marks_proposals_and_keeps_them_visible() -> None:
    e = decide(Edit("X", "info", "Do it.", "cite", fix={"remove": ["A"]}), False, "not sure")
    assert not e.auto and e.severity == "warning" and e.message == "Do it. Proposed, not applied: not sure."
    assert e.fix_status == "proposed" and e.to_dict()["fix_status"] == "proposed" and "auto" not in e.to_dict()
    optional = decide(Edit("Y", "info", "Add it.", "cite", fix={"add": ["Z85.3"]}), False, escalate=False)
    assert optional.severity == "info" and optional.fix_status == "proposed"
    sure = decide(Edit("Z", "info", "Done.", "cite", fix={"remove": ["A"]}), True, "unused")
    assert sure.auto and sure.severity == "info" and sure.message == "Done." and sure.fix_status == "unchanged"
    sure.applied = True
    assert sure.fix_status == "applied"
    assert Edit("N", "info", "no fix", "cite").fix_status is None


def test_presumption_backed_only_questions_a_trained_engine() -> None:
    pol = AutoApplyPolicy()
    # the dictionary-only engine has no coded practice to contradict the presumed link
    assert pol.presumption_backed(False, False, None)
    # a trained engine: a stated link, or the engine's own score for the combination code, backs it
    assert pol.presumption_backed(True, True, None)
    assert pol.presumption_backed(True, False, pol.candidate_min)
    assert not pol.presumption_backed(True, False, None)
    assert not pol.presumption_backed(True, False, pol.candidate_min / 2)
