"""Incremental learning with the real engine: teach a code on a few documents, see its score rise.

Trains a tiny model on 80 CodiEsp train notes (so: slow, needs ../shared/data), then feeds
dev notes that carry B20 (HIV disease) through the same path as ``opencac learn``.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _score(res, key: str) -> float:
    return max((s.confidence for s in res.diagnoses if s.code.replace(".", "").lower() == key), default=0.0)


def _rank(res, key: str) -> int | None:
    return next((i for i, s in enumerate(res.diagnoses, 1) if s.code.replace(".", "").lower() == key), None)


def test_teaching_a_code_raises_its_score_with_the_real_engine(codiesp_dir, tmp_path) -> None:
    engine_mod = pytest.importorskip("opencac.coding.engine", reason="the coding engine is not installed")
    from opencac.coding.types import EncounterContext
    from opencac.learning import OnlineLearner
    from opencac.learning.evaluation import load_documents

    code = "b20"
    # 80 notes that never code it (40 made the ranker too coarse: the rise turned on a few
    # candidates more or less from the dictionary)
    train = [d for d in sorted(load_documents(codiesp_dir / "train"), key=lambda d: d.id)
             if code not in d.codes["icd10cm"]][:80]
    taught = sorted((d for d in load_documents(codiesp_dir / "dev") if code in d.codes["icd10cm"]),
                    key=lambda d: d.id)
    assert len(taught) >= 8
    teach, probe = taught[:6], taught[6:10]

    from opencac.learning.feedback import SYSTEMS
    from opencac.coding.corpus import CodedDocument

    eng = engine_mod.CodingEngine.load(None)
    eng.train([CodedDocument(d.id, d.text, {s: list(d.codes[s]) for s in SYSTEMS}) for d in train], folds=2)
    m0 = tmp_path / "m0"
    eng.model.save(m0)

    ctx = EncounterContext(setting="inpatient")
    learner = OnlineLearner(m0, engine=eng)
    before = [_score(learner.learned.code(d.text, d.id, ctx), code) for d in probe]
    rep = learner.learn_documents(teach)
    assert rep.engine_updated  # the engine's own incremental update ran too
    after = [_score(learner.learned.code(d.text, d.id, ctx), code) for d in probe]
    # (a small model's ranker is coarse: the rise is clear, its size varies with the dictionary)
    assert sum(after) / len(after) > sum(before) / len(before) + 0.05
    assert sum(a > b + 0.05 for a, b in zip(after, before)) >= len(probe) / 2
    ranks = [_rank(learner.learned.code(d.text, d.id, ctx), code) for d in probe]
    assert sum(r is not None and r <= 20 for r in ranks) >= len(probe) / 2, ranks  # among what a coder reads
    # and it survives save + reload from disk
    out = learner.save(tmp_path / "m1")
    from opencac.learning import LearnedEngine

    reloaded = LearnedEngine.load(out)
    again = [_score(reloaded.code(d.text, d.id, ctx), code) for d in probe]
    assert again == pytest.approx(after, abs=1e-6)
