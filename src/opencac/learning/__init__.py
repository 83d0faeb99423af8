"""Learning from coders: decisions -> labelled examples -> fast incremental updates; full
retrains; a model registry with promote / compare / rollback.

Public API::

    from opencac.learning import Decision, OnlineLearner, LearnedEngine, ModelRegistry
    learner = OnlineLearner("models/m1")
    learner.decide(Decision("enc-1", "J18.9", "icd10cm", "accept"), text=note)  # effective now
    learner.finalise(finalised_document("enc-1", note, [("J18.9", "icd10cm")]))
    learner.save("models/m2")
    ModelRegistry(root).register("models/m2", metrics)  # not promoted when worse
"""

from __future__ import annotations

from opencac.learning.feedback import (
    ACTIONS,
    Decision,
    ExampleLog,
    LabelledExample,
    TrainingDocument,
    documents_as_decisions,
    examples_from_decision,
    examples_from_decisions,
    finalised_document,
)
from opencac.learning.memory import CodePriors, FeedbackOverlay
from opencac.learning.online import LearnedEngine, LearnReport, OnlineLearner, engine_update
from opencac.learning.registry import ModelRegistry, ModelVersion

__all__ = [
    "ACTIONS",
    "CodePriors",
    "Decision",
    "ExampleLog",
    "FeedbackOverlay",
    "LabelledExample",
    "LearnReport",
    "LearnedEngine",
    "ModelRegistry",
    "ModelVersion",
    "OnlineLearner",
    "TrainingDocument",
    "documents_as_decisions",
    "engine_update",
    "examples_from_decision",
    "examples_from_decisions",
    "finalised_document",
]
