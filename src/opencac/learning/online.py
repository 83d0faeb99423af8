"""The incremental learning path: decisions and coded documents -> updated model within seconds.

Two layers learn at once:

1. the *feedback overlay* (:class:`~opencac.learning.memory.FeedbackOverlay`): a memory of
   decided notes and per-organisation priors, updated on every single decision;
2. the *engine's own model*, through its incremental-update method (``update(documents)``
   on the engine or its model: SGD ``partial_fit`` layers, kNN memory, code priors), called
   with whole coded documents (a finalised encounter, or a corpus document in
   ``opencac learn``), since a one-vs-rest layer needs a document's complete code set.

A model directory after learning holds the engine's artifacts plus ``learning/``
(``memory.npz``, ``memory.json``, ``manifest.json``, ``examples.jsonl``).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import shutil
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.coding.types import CodingResult, EncounterContext
from opencac.errors import ModelNotFoundError
from opencac.learning.feedback import (
    SYSTEMS,
    Decision,
    ExampleLog,
    LabelledExample,
    TrainingDocument,
    examples_from_decision,
)
from opencac.learning.memory import FeedbackOverlay

LEARNING_DIR = "learning"


def documents_hash(docs: Iterable[TrainingDocument]) -> str:
    """SHA-256 over ids, texts and codes of training documents (the learning data hash)."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.id.encode() + b"\0" + d.text.encode() + b"\0")
        for s in SYSTEMS:
            h.update(("|".join(d.codes.get(s, [])) + "/" + "|".join(d.rejected.get(s, [])) + "\n").encode())
    return h.hexdigest()


def _engine_target(engine: Any, method: str) -> Any:
    """The engine or its inner model that has ``method``, or ``None``."""
    for obj in (engine, getattr(engine, "model", None), getattr(engine, "supervised", None)):
        if obj is not None and callable(getattr(obj, method, None)):
            return obj
    return None


def _as_engine_docs(docs: Sequence[TrainingDocument]) -> list[Any]:
    """Training documents in the engine's corpus type when it has one (``CodedDocument``)."""
    try:
        from opencac.coding.corpus import CodedDocument
    except ImportError:  # engine corpus module not there: pass ours (same fields)
        return list(docs)
    return [CodedDocument(d.id, d.text, {s: list(d.codes.get(s, [])) for s in SYSTEMS},
                          {s: dict(v) for s, v in getattr(d, "evidence", {}).items()}) for d in docs]


def engine_update(engine: Any, docs: Sequence[TrainingDocument], systems: Sequence[str] | None = None) -> bool:
    """Call the engine's incremental update with coded documents; ``False`` when it has none.

    Args:
        engine: the engine or its model.
        docs: coded documents.
        systems: update only these code systems' layers (``None``: all). Needs a model with
            per-system layers (``layers_`` + ``featurizer_``, as ``EngineModel``); other
            engines are updated whole, or not at all when ``systems`` leaves one out.
    """
    target = _engine_target(engine, "update")
    if target is None or not docs:
        return False
    hits = _dictionary_hits(engine, docs)
    if systems is None:
        if hits is not None:
            target.update(_as_engine_docs(docs), hits=hits)
        else:
            target.update(_as_engine_docs(docs))
        return True
    return _update_systems(target, docs, systems, hits)


def _dictionary_hits(engine: Any, docs: Sequence[TrainingDocument]) -> list[Any] | None:
    """Each document's dictionary hits, when the engine matches a dictionary and its model
    keeps dictionary-hit precision counts (``HitPrecision``) that should learn from them."""
    layers = getattr(getattr(engine, "model", None), "layers_", None)
    if not callable(getattr(engine, "dictionary_hits", None)) or not isinstance(layers, dict):
        return None
    if not any(getattr(layer, "hit_precision_", None) is not None for layer in layers.values()):
        return None
    return [engine.dictionary_hits(d.text, d.id, attributes=False)[1] for d in docs]


def _update_systems(target: Any, docs: Sequence[TrainingDocument], systems: Sequence[str],
                    hits: Sequence[Sequence[Any]] | None = None) -> bool:
    """Update only ``systems`` of a per-system model (what ``EngineModel.update`` does, per layer)."""
    layers = getattr(target, "layers_", None)
    feat = getattr(target, "featurizer_", None)
    if not isinstance(layers, dict) or feat is None:
        if set(SYSTEMS) <= set(systems):
            target.update(_as_engine_docs(docs))
            return True
        return False
    from opencac.coding.model import update_layers

    chosen = update_layers(feat, layers, docs, hits, systems)
    if not chosen:
        return False
    td = getattr(target, "manifest", {}).setdefault("training_data", {})
    td["n_updates"] = int(td.get("n_updates", 0)) + len(docs)
    td.setdefault("updated_systems", {})
    for s in chosen:
        td["updated_systems"][s] = int(td["updated_systems"].get(s, 0)) + len(docs)
    return True


def _trial_copy(target: Any) -> Any:
    """A copy of an updatable model that a trial update may change without touching ``target``.

    Only the per-system layers (what an update changes) are copied, deeply (~0.1 s for a
    500-note model); the featurizer, rankers and calibrators are shared.
    """
    layers = getattr(target, "layers_", None)
    if isinstance(layers, dict):
        twin = copy.copy(target)
        twin.layers_ = {s: copy.deepcopy(layer) for s, layer in layers.items()}
        twin.manifest = copy.deepcopy(getattr(target, "manifest", {}))
        return twin
    return copy.deepcopy(target)


#: Fewest learnt documents for the update check (below it the last check's decision applies).
MIN_CHECK_DOCS = 20
#: Most learnt documents the check codes (a deterministic sample beyond it, to stay fast).
MAX_CHECK_DOCS = 64


def check_update(
    engine: Any, target: Any, docs: Sequence[TrainingDocument], systems: Sequence[str] = SYSTEMS,
    max_docs: int = MAX_CHECK_DOCS, context: EncounterContext | None = None,
) -> dict[str, dict[str, Any]]:
    """Does the engine's incremental update help, per code system? Cross-fitted on the learnt notes.

    The check notes (all learnt documents, or an evenly spaced sample of ``max_docs`` by id) are
    split in two folds; for each fold, a copy of the model is updated with every *other* learnt
    document and the fold is coded by the model before and after that update. The change of
    mean average precision (CodiEsp MAP, over the fold's notes that have codes of the system)
    says whether the update helps notes it has not seen.

    Args:
        engine: what codes (``code_many`` or ``code``); ``target`` is the engine itself or its ``model``.
        target: the updatable model.
        docs: the documents about to be learnt.
        systems: code systems to check.
        max_docs: most notes coded (each twice).
        context: the encounter context for coding.

    Returns:
        ``system -> {"delta_map", "se" (standard error of the per-note changes), "map_before",
        "map_after", "docs"}``; empty when the check
        cannot run (too few documents, or an engine whose model cannot be swapped).
    """
    from opencac.learning.evaluation import average_precision

    ordered = sorted(docs, key=lambda d: d.id)
    if len(ordered) < MIN_CHECK_DOCS:
        return {}
    step = max(1.0, len(ordered) / max_docs)
    sample = [ordered[int(i * step)] for i in range(min(len(ordered), max_docs))]
    folds = [sample[0::2], sample[1::2]]
    swap = getattr(engine, "model", None) is target
    if not swap and engine is not target:
        return {}
    aps: dict[str, list[tuple[float, float]]] = {s: [] for s in systems}
    for fold in folds:
        ids = {d.id for d in fold}
        rest = [d for d in ordered if d.id not in ids]
        trial = _trial_copy(target)
        if not _update_systems(trial, rest, systems):
            return {}
        before = _code(engine, fold, context)
        if swap:
            engine.model = trial
            try:
                after = _code(engine, fold, context)
            finally:
                engine.model = target
        else:
            after = _code(trial, fold, context)
        for d, rb, ra in zip(fold, before, after, strict=True):
            for s in systems:
                gold = d.codes.get(s, [])
                if gold:
                    aps[s].append((average_precision([x.code for x in rb.ranked(s)], gold),
                                   average_precision([x.code for x in ra.ranked(s)], gold)))
    out = {}
    for s, pairs in aps.items():
        if pairs:
            b = sum(p[0] for p in pairs) / len(pairs)
            a = sum(p[1] for p in pairs) / len(pairs)
            diffs = [p[1] - p[0] for p in pairs]
            se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
            out[s] = {"delta_map": a - b, "se": se, "map_before": b, "map_after": a, "docs": len(pairs)}
    return out


def update_helps(check: dict[str, Any]) -> bool:
    """Whether a system's checked update is kept: unless the check measured it worse by more
    than one standard error of the paired per-note differences. On a few dozen notes the
    measured change is noisy; noise alone is no reason to discard what coders taught, a
    measurable loss is (an update that changes nothing, or makes every note worse, is declined)."""
    return check["delta_map"] + check.get("se", 0.0) > 0


def _code(engine: Any, docs: Sequence[TrainingDocument], context: EncounterContext | None) -> list[CodingResult]:
    many = getattr(engine, "code_many", None)
    if callable(many):
        try:
            return list(many([d.text for d in docs], [d.id for d in docs], context, max_suggestions=None,
                             explain_top=0))
        except TypeError:  # an engine without those keywords
            return list(many([d.text for d in docs], [d.id for d in docs], context))
    return [engine.code(d.text, doc_id=d.id, context=context) for d in docs]


def engine_save(engine: Any, out: Path) -> bool:
    """Save the engine's (updated) model into ``out``; ``False`` when it cannot save."""
    target = _engine_target(engine, "save")
    if target is None:
        return False
    target.save(out)
    return True


def load_updatable(model: str | Path) -> Any:
    """The lightest object that can ``update`` and ``save`` a model directory.

    The engine's model class (``opencac.coding.model.EngineModel``) when it exists (no
    knowledge base to load: learning 250 documents stays well under a minute), else the
    whole engine.
    """
    try:
        from opencac.coding.model import EngineModel
    except ImportError:
        return load_engine(model)
    return EngineModel.load(model)


def load_engine(model: str | Path | None) -> Any:
    """``CodingEngine.load(model)`` (imported lazily: the engine is heavy)."""
    from opencac.coding.engine import CodingEngine

    return CodingEngine.load(model)


class LearnedEngine:
    """A coding engine plus the feedback overlay of its model directory.

    ``code()`` returns the engine's result adjusted by what coders taught (immediately
    after each decision, before any retrain).

    Args:
        engine: a loaded engine (anything with ``code(text, doc_id, context)``).
        overlay: the feedback overlay.
        model_dir: where both live (``None`` for a model-less engine).
    """

    def __init__(self, engine: Any, overlay: FeedbackOverlay | None = None, model_dir: Path | None = None) -> None:
        self.engine = engine
        self.overlay = overlay or FeedbackOverlay()
        self.model_dir = model_dir

    @classmethod
    def load(cls, model: str | Path | None) -> LearnedEngine:
        """Load the engine of ``model`` and its ``learning/`` overlay (if any)."""
        eng = load_engine(model)
        overlay = FeedbackOverlay.load(Path(model) / LEARNING_DIR) if model else FeedbackOverlay()
        return cls(eng, overlay, Path(model) if model else None)

    @property
    def name(self) -> str:
        base = str(getattr(self.engine, "name", "engine"))
        return f"{base}+feedback({len(self.overlay)})" if len(self.overlay) else base

    def code(
        self, text: str, doc_id: str = "note", context: EncounterContext | None = None, org: str = "default"
    ) -> CodingResult:
        """Code a note with the engine, then apply the feedback overlay."""
        res = self.engine.code(text, doc_id=doc_id, context=context)
        if len(self.overlay):
            self.overlay.adjust(res, text, org=org)
        return res


    def code_many(
        self, texts: Sequence[str], doc_ids: Sequence[str], context: EncounterContext | None = None,
        org: str = "default", **kw: Any,
    ) -> list[CodingResult]:
        """Code many notes (the engine's vectorised ``code_many`` when it has one), then the overlay.

        Extra keywords (e.g. ``max_suggestions=None`` for every candidate) go to the engine.
        """
        many = getattr(self.engine, "code_many", None)
        if callable(many):
            results = list(many(list(texts), list(doc_ids), context, **kw))
        else:
            results = [self.engine.code(t, doc_id=d, context=context) for t, d in zip(texts, doc_ids, strict=True)]
        if len(self.overlay):
            for r, t in zip(results, texts, strict=True):
                self.overlay.adjust(r, t, org=org)
        return results


@dataclass(slots=True)
class LearnReport:
    """What one learning call did.

    Attributes:
        documents: coded documents learnt.
        examples: labelled examples taken in.
        engine_updated: whether the engine's own incremental update ran.
        seconds: wall time.
        data_hash: hash of the documents learnt.
        engine_systems: the code systems whose engine layers were updated (``None``: all / no
            per-system choice).
        check: the update check per system (:func:`check_update`), when it ran.
        check_seconds: its wall time (part of ``seconds``).
    """

    documents: int = 0
    examples: int = 0
    engine_updated: bool = False
    seconds: float = 0.0
    data_hash: str = ""
    notes: list[str] = field(default_factory=list)
    engine_systems: list[str] | None = None
    check: dict[str, dict[str, Any]] = field(default_factory=dict)
    check_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OnlineLearner:
    """Feeds decisions and coded documents into a model; the fast learning path.

    Args:
        model: the model directory (``None`` = model-less engine, overlay only).
        engine: an already-loaded engine (default: load ``model`` lazily).
        update_engine: also call the engine's incremental update on whole documents.
        memory_positives: let the overlay's memory vote for accepted codes too (switch off
            to rely on the engine's own update for positives; rejections always apply).
        check: before a batch of at least :data:`MIN_CHECK_DOCS` documents updates the engine,
            check per code system (:func:`check_update`, cross-fitted on the batch) that the
            update raises MAP on notes it has not seen, and update only the systems where it
            does; smaller batches (a finalised encounter) follow the last check's choice.

    Attributes:
        learned: a :class:`LearnedEngine` that codes with everything learnt so far.
    """

    def __init__(
        self,
        model: str | Path | None,
        engine: Any = None,
        update_engine: bool = True,
        memory_positives: bool = True,
        check: bool = True,
    ) -> None:
        self.model = Path(model) if model else None
        if self.model is not None and not self.model.exists():
            raise ModelNotFoundError(f"model {str(self.model)!r} does not exist; expected a model directory.")
        self.update_engine = update_engine
        overlay = FeedbackOverlay.load(self.model / LEARNING_DIR) if self.model else FeedbackOverlay()
        overlay.use_memory_positives = memory_positives
        self._engine = engine
        self._updatable: Any = None
        self.overlay = overlay
        self._pending: list[LabelledExample] = []
        self._history: list[dict[str, Any]] = []
        self._engine_changed = False
        self.check = check
        #: code systems the engine update is applied to (``None``: all); the last check's choice
        self.engine_systems: list[str] | None = None
        man = self.model / LEARNING_DIR / "manifest.json" if self.model else None
        if man is not None and man.is_file():
            systems = json.loads(man.read_text(encoding="utf-8")).get("engine_update_systems")
            self.engine_systems = list(systems) if systems is not None else None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = load_engine(self.model)
            if self._updatable is not None and getattr(self._engine, "model", None) is not None:
                self._engine.model = self._updatable  # the in-memory model already holds the updates
        return self._engine

    @property
    def updatable(self) -> Any:
        """What receives the engine update: the given engine, else the model loaded on its own."""
        if self._engine is not None:
            return self._engine
        if self._updatable is None:
            assert self.model is not None
            self._updatable = load_updatable(self.model)
        return self._updatable

    @property
    def learned(self) -> LearnedEngine:
        return LearnedEngine(self.engine, self.overlay, self.model)

    def decide(self, decision: Decision, text: str | None = None) -> list[LabelledExample]:
        """Learn one coder decision now (overlay memory + organisation priors).

        Args:
            decision: the decision.
            text: the note; needed the first time its document is seen.

        Returns:
            The labelled examples it produced.
        """
        exs = examples_from_decision(decision)
        for ex in exs:
            self.overlay.learn_example(ex, text)
        self._pending.extend(exs)
        return exs

    def finalise(self, doc: TrainingDocument) -> LearnReport:
        """A finalised encounter: remember it as a whole and update the engine's model with it."""
        return self.learn_documents([doc])

    def learn_documents(self, docs: Sequence[TrainingDocument]) -> LearnReport:
        """Learn coded documents as accepted decisions (rejected codes as rejections).

        This is what ``opencac learn`` runs for a corpus: every code of every document goes
        through the same path as a coder's accept, then the engine's incremental update is
        called once with the batch.
        """
        t0 = time.perf_counter()
        rep = LearnReport(documents=len(docs), data_hash=documents_hash(docs))
        self.overlay.learn_documents(docs)
        for d in docs:
            for s in SYSTEMS:
                rep.examples += len(d.codes.get(s, [])) + len(d.rejected.get(s, []))
                self._pending += [LabelledExample(d.id, c, s, True, "accept", org=d.org) for c in d.codes.get(s, [])]
                self._pending += [LabelledExample(d.id, c, s, False, "reject", org=d.org) for c in d.rejected.get(s, [])]
        if self.update_engine and self.model is not None:
            systems: list[str] | None = None
            try:
                systems = self._choose_systems(docs, rep)
                rep.engine_systems = list(systems) if systems is not None else None
                rep.engine_updated = bool(systems is None or systems) and engine_update(self.updatable, docs, systems)
            except (NotImplementedError, ImportError):  # no engine installed / no update support
                rep.engine_updated = False
            if rep.engine_updated or rep.check or systems == []:
                # the engine learnt these notes, or a check (this one or the stored choice) found
                # its update does not help: either way the memory must not vote for their codes
                # (measured: memory positives on corpus notes cost MAP, bench/RESULTS-learning.md)
                self.overlay.mark_engine_learned(d.id for d in docs)
            if not rep.engine_updated:
                rep.notes.append("the engine was not updated (" + (
                    "the update check found no code system it helps" if rep.check or systems == []
                    else "the engine offers no incremental update") + "); learnt by the feedback overlay only")
            self._engine_changed |= rep.engine_updated
        rep.seconds = time.perf_counter() - t0
        self._history.append({"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **rep.to_dict()})
        return rep

    def _choose_systems(self, docs: Sequence[TrainingDocument], rep: LearnReport) -> list[str] | None:
        """The code systems to update: checked on this batch when it is large enough, else the last choice."""
        if not self.check or len(docs) < MIN_CHECK_DOCS:
            return self.engine_systems
        updatable = self.updatable
        target = _engine_target(updatable, "update")
        if target is None:
            return self.engine_systems
        t0 = time.perf_counter()
        rep.check = check_update(self.engine, target, docs)
        rep.check_seconds = time.perf_counter() - t0
        if not rep.check:
            return self.engine_systems
        # a system the check could not measure (no coded notes of it) keeps the earlier choice
        earlier = set(self.engine_systems) if self.engine_systems is not None else set(SYSTEMS)
        keep = [s for s in SYSTEMS if (update_helps(rep.check[s]) if s in rep.check else s in earlier)]
        self.engine_systems = keep
        return keep

    def save(self, out: str | Path | None = None) -> Path:
        """Write the learnt model: a copy of the base model, the updated engine, the overlay.

        Args:
            out: the new model directory (default: update the base model in place).

        Returns:
            The written directory.
        """
        out = Path(out) if out else self.model
        if out is None:
            raise ModelNotFoundError("no output directory given and the learner has no base model directory.")
        if self.model is not None and out.resolve() != self.model.resolve():
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(self.model, out)
        out.mkdir(parents=True, exist_ok=True)
        engine_saved = self._engine_changed and engine_save(self.updatable, out)
        ldir = out / LEARNING_DIR
        self.overlay.save(ldir)
        ExampleLog(ldir / "examples.jsonl").append(self._pending)
        self._pending = []
        man_path = ldir / "manifest.json"
        man = json.loads(man_path.read_text(encoding="utf-8")) if man_path.is_file() else {"history": []}
        man["parent"] = str(self.model) if self.model else None
        man["memory_documents"] = len(self.overlay)
        man["engine_saved"] = bool(engine_saved) or man.get("engine_saved", False)
        man["engine_update_systems"] = self.engine_systems
        man["history"] = list(man.get("history", [])) + self._history
        man["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        man_path.write_text(json.dumps(man, indent=2), encoding="utf-8")
        self._history = []
        return out
