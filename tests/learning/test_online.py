"""Incremental learning changes predictions for a taught code (stand-in engine; the real
engine's test is in test_online_engine.py)."""

from __future__ import annotations

import pytest

from opencac.errors import FeedbackError, ModelNotFoundError
from opencac.learning import Decision, FeedbackOverlay, OnlineLearner, finalised_document
from opencac.learning.feedback import TrainingDocument

from .conftest import KeywordEngine, UpdatableEngine

PNEUMONIA = [
    "Chest X-ray shows right lower lobe consolidation. Diagnosis: community acquired pneumonia, started antibiotics.",
    "Fever and productive cough; lobar consolidation on chest radiograph consistent with pneumonia.",
    "Admitted with pneumonia of the left lower lobe, consolidation on X-ray, treated with ceftriaxone.",
]
NEW_NOTE = "Cough, fever and consolidation of the right lower lobe on chest X-ray: pneumonia. Antibiotics given."
UNRELATED = "Routine follow-up of knee osteoarthritis; physiotherapy continues, no new complaints."


def _score(res, code: str) -> float:
    return next((s.confidence for s in res.diagnoses if s.code == code), 0.0)


def test_teaching_a_code_raises_its_score(model_dir) -> None:
    learner = OnlineLearner(model_dir, engine=KeywordEngine())
    before = learner.learned.code(NEW_NOTE, "new")
    assert _score(before, "J18.9") == 0.0
    for i, text in enumerate(PNEUMONIA):
        learner.decide(Decision(f"d{i}", "J18.9", "icd10cm", "add"), text=text)
    after = learner.learned.code(NEW_NOTE, "new")
    assert _score(after, "J18.9") > 0.5
    j = next(s for s in after.diagnoses if s.code == "J18.9")
    assert j.selected and j.rank == 1 and any("similar notes" in r for r in j.rationale)
    # an unrelated note is not affected
    assert _score(learner.learned.code(UNRELATED, "u"), "J18.9") == 0.0


def test_rejections_lower_a_code(model_dir) -> None:
    learner = OnlineLearner(model_dir, engine=KeywordEngine())
    note = "History of hypertension, blood pressure controlled. " + PNEUMONIA[0]
    assert _score(learner.learned.code(note, "x"), "I10") == pytest.approx(0.6)
    for i, text in enumerate(PNEUMONIA):
        learner.decide(Decision(f"r{i}", "I10", "icd10cm", "reject", reason="not documented"),
                       text="hypertension mentioned once. " + text)
    assert _score(learner.learned.code(note, "x"), "I10") < 0.4


def test_save_and_reload_keeps_what_was_learnt(model_dir, tmp_path) -> None:
    learner = OnlineLearner(model_dir, engine=KeywordEngine())
    for i, text in enumerate(PNEUMONIA):
        learner.decide(Decision(f"d{i}", "J18.9", "icd10cm", "accept"), text=text)
    out = learner.save(tmp_path / "m2")
    assert (out / "manifest.json").is_file() and (out / "learning" / "memory.npz").is_file()
    again = OnlineLearner(out, engine=KeywordEngine())
    assert len(again.overlay) == 3
    assert _score(again.learned.code(NEW_NOTE, "n"), "J18.9") > 0.5
    assert len(list((out / "learning" / "examples.jsonl").read_text().splitlines())) == 3


def test_documents_go_to_the_engines_update(model_dir, tmp_path) -> None:
    eng = UpdatableEngine()
    learner = OnlineLearner(model_dir, engine=eng)
    docs = [TrainingDocument(f"d{i}", t, {"icd10cm": ["j189"], "icd10pcs": []}) for i, t in enumerate(PNEUMONIA)]
    rep = learner.learn_documents(docs)
    assert rep.engine_updated and rep.documents == 3 and rep.examples == 3
    assert [d.id for d in eng.updates[0]] == ["d0", "d1", "d2"]
    assert eng.updates[0][0].codes["icd10cm"] == ["j189"]
    learner.save(tmp_path / "m3")
    assert eng.saved == [str(tmp_path / "m3")]
    rep2 = OnlineLearner(model_dir, engine=KeywordEngine()).learn_documents(docs)
    assert not rep2.engine_updated and "no incremental update" in rep2.notes[0]


def test_finalise_uses_final_codes(model_dir) -> None:
    learner = OnlineLearner(model_dir, engine=KeywordEngine())
    doc = finalised_document("f1", PNEUMONIA[0], [("J18.9", "icd10cm")],
                             [Decision("f1", "I10", "icd10cm", "reject")])
    learner.finalise(doc)
    votes = learner.overlay.votes(NEW_NOTE)
    assert votes[("icd10cm", "j189")][0] > 0 and votes[("icd10cm", "i10")][1] > 0


def test_errors(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError):
        OnlineLearner(tmp_path / "missing")
    ov = FeedbackOverlay()
    from opencac.learning.feedback import LabelledExample

    with pytest.raises(FeedbackError, match="pass its text"):
        ov.learn_example(LabelledExample("zz", "j189", "icd10cm", True, "accept"))


def test_org_priors_are_per_organisation(model_dir) -> None:
    learner = OnlineLearner(model_dir, engine=KeywordEngine())
    note = "Known diabetes on metformin."
    for i in range(4):
        learner.decide(Decision(f"o{i}", "E11.9", "icd10cm", "reject", org="clinic-a"), text=f"unrelated text {i} xyz")
    a = learner.learned.code(note, "n", org="clinic-a")
    b = learner.learned.code(note, "n", org="clinic-b")
    assert _score(a, "E11.9") < _score(b, "E11.9") == pytest.approx(0.6)
    assert learner.overlay.priors_.get("E11.9", "icd10cm", "clinic-a") == (0, 4)


def test_documents_the_engine_learnt_do_not_vote_twice(model_dir) -> None:
    learner = OnlineLearner(model_dir, engine=UpdatableEngine())
    docs = [TrainingDocument(f"d{i}", t, {"icd10cm": ["j189"], "icd10pcs": []},
                             {"icd10cm": ["i10"], "icd10pcs": []}) for i, t in enumerate(PNEUMONIA)]
    assert learner.learn_documents(docs).engine_updated
    votes = learner.overlay.votes(NEW_NOTE)
    assert ("icd10cm", "j189") not in votes or votes[("icd10cm", "j189")][0] == 0.0  # the engine knows them
    assert votes[("icd10cm", "i10")][1] > 0  # rejections still count
    # a coder's decision on a new note (not yet learnt by the engine) votes at once
    learner.decide(Decision("w1", "J18.9", "icd10cm", "accept"), text=PNEUMONIA[0] + " Day 2.")
    assert learner.overlay.votes(NEW_NOTE)[("icd10cm", "j189")][0] > 0
