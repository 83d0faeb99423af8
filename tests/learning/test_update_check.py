"""The update check: the engine's incremental update is kept only for the code systems where it
raises MAP on learnt notes it has not seen (cross-fitted), and small batches follow that choice."""

from __future__ import annotations

from typing import Any

from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext
from opencac.learning import OnlineLearner, TrainingDocument
from opencac.learning.online import MIN_CHECK_DOCS, check_update


class _Layer:
    """Remembers learnt codes (mutating its state in place: trial copies must not share it)."""

    def __init__(self) -> None:
        self.learnt: set[str] = set()

    def update(self, X: Any, B: Any, code_lists: list[list[str]]) -> None:
        self.learnt.update(c for cl in code_lists for c in cl)


class _Featurizer:
    def transform(self, texts: list[str]) -> list[str]:
        return texts

    def binary_words(self, texts: list[str]) -> list[str]:
        return texts


class _Model:
    def __init__(self) -> None:
        self.featurizer_ = _Featurizer()
        self.layers_ = {"icd10cm": _Layer(), "icd10pcs": _Layer()}
        self.manifest: dict[str, Any] = {}

    def update(self, docs: list[Any]) -> None:  # whole-model update (all systems)
        for s, layer in self.layers_.items():
            layer.update(None, None, [d.codes[s] for d in docs])

    def save(self, out: Any) -> None:
        pass


class _Engine:
    """Learning J18.9 helps diagnoses; learning any procedure makes procedure ranking worse."""

    name = "stub"

    def __init__(self) -> None:
        self.model = _Model()

    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None) -> CodingResult:
        res = CodingResult(doc_id, context=context or EncounterContext())
        dx = ["J18.9", "I10"] if "j189" in self.model.layers_["icd10cm"].learnt else ["I10", "J18.9"]
        px = ["0BH17EZ", "5A1955Z"] if self.model.layers_["icd10pcs"].learnt else ["5A1955Z", "0BH17EZ"]
        res.diagnoses = [CodeSuggestion(c, "icd10cm", "", 0.5, rank=i + 1) for i, c in enumerate(dx)]
        res.procedures = [CodeSuggestion(c, "icd10pcs", "", 0.5, rank=i + 1) for i, c in enumerate(px)]
        return res


def _docs(n: int, prefix: str = "d") -> list[TrainingDocument]:
    return [TrainingDocument(f"{prefix}{i:03d}", f"pneumonia on ventilation {i}",
                             {"icd10cm": ["j189"], "icd10pcs": ["5a1955z"]}) for i in range(n)]


def test_check_measures_each_system_on_notes_the_trial_did_not_learn() -> None:
    eng = _Engine()
    res = check_update(eng, eng.model, _docs(MIN_CHECK_DOCS + 4))
    assert res["icd10cm"]["delta_map"] > 0 and res["icd10pcs"]["delta_map"] < 0
    assert res["icd10cm"]["map_before"] == 0.5 and res["icd10cm"]["map_after"] == 1.0
    assert res["icd10cm"]["docs"] == MIN_CHECK_DOCS + 4
    # the trials worked on copies: the model itself learnt nothing
    assert not eng.model.layers_["icd10cm"].learnt and not eng.model.layers_["icd10pcs"].learnt
    assert check_update(eng, eng.model, _docs(MIN_CHECK_DOCS - 1)) == {}  # too few notes to judge


def test_learner_updates_only_the_systems_the_check_keeps(model_dir) -> None:
    eng = _Engine()
    learner = OnlineLearner(model_dir, engine=eng)
    rep = learner.learn_documents(_docs(30))
    assert rep.engine_updated and rep.engine_systems == ["icd10cm"]
    assert set(rep.check) == {"icd10cm", "icd10pcs"}
    assert eng.model.layers_["icd10cm"].learnt == {"j189"}
    assert not eng.model.layers_["icd10pcs"].learnt  # the update that hurt procedures was not applied
    out = learner.save(model_dir.parent / "m2")
    # a later single finalised encounter follows the stored choice
    eng2 = _Engine()
    again = OnlineLearner(out, engine=eng2)
    assert again.engine_systems == ["icd10cm"]
    rep2 = again.finalise(_docs(1, "w")[0])
    assert rep2.engine_updated and not rep2.check and not eng2.model.layers_["icd10pcs"].learnt


def test_without_the_check_every_system_is_updated(model_dir) -> None:
    eng = _Engine()
    rep = OnlineLearner(model_dir, engine=eng, check=False).learn_documents(_docs(30))
    assert rep.engine_updated and rep.engine_systems is None and not rep.check
    assert eng.model.layers_["icd10pcs"].learnt == {"5a1955z"}


class _HurtingEngine(_Engine):
    """Learning makes both systems worse."""

    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None) -> CodingResult:
        res = super().code(text, doc_id, context)
        if self.model.layers_["icd10cm"].learnt:
            res.diagnoses.reverse()
        return res


def test_a_declined_update_leaves_the_engine_and_the_memory_out(model_dir) -> None:
    eng = _HurtingEngine()
    eng.model.layers_["icd10cm"].learnt = {"x"}  # so that learning J18.9 reverses a good ranking
    learner = OnlineLearner(model_dir, engine=eng)
    rep = learner.learn_documents(_docs(30))
    assert rep.engine_systems == [] and not rep.engine_updated
    assert rep.check["icd10cm"]["delta_map"] <= 0 and rep.check["icd10pcs"]["delta_map"] < 0
    assert any("update check" in n for n in rep.notes)
    assert eng.model.layers_["icd10cm"].learnt == {"x"} and not eng.model.layers_["icd10pcs"].learnt
    # the declined notes do not vote for their codes in the feedback memory either
    votes = learner.overlay.votes("pneumonia on ventilation 3")
    assert all(v[0] == 0.0 for v in votes.values())
    # a later finalised encounter follows the stored choice: no engine update, no memory vote
    rep2 = learner.finalise(_docs(1, "w")[0])
    assert not rep2.engine_updated and rep2.engine_systems == []


def test_a_noisy_small_loss_keeps_the_update_a_measurable_one_does_not() -> None:
    from opencac.learning.online import update_helps

    assert update_helps({"delta_map": 0.01, "se": 0.0})
    assert update_helps({"delta_map": -0.001, "se": 0.004})  # within one standard error of no change
    assert not update_helps({"delta_map": -0.011, "se": 0.004})  # measurably worse
    assert not update_helps({"delta_map": 0.0, "se": 0.0})  # changes nothing
    assert not update_helps({"delta_map": -0.02})  # no standard error: the sign decides


def test_check_reports_the_standard_error_of_the_paired_changes() -> None:
    eng = _Engine()
    res = check_update(eng, eng.model, _docs(MIN_CHECK_DOCS + 4))
    # every note changes the same way: no spread
    assert res["icd10cm"]["se"] == 0.0 and res["icd10pcs"]["se"] == 0.0
