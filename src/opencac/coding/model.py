"""A trained coding model: featurizer + per-system supervised layers + rankers + calibrators.

Saved as a directory::

    MODEL/
      manifest.json          format, engine version, code-set versions, training data hash,
                             parameters, metrics (out-of-fold MAP, ECE, F1), created time
      featurizer.joblib      TF-IDF vocabularies
      layer-icd10cm.joblib   SupervisedLayer (ridge duals, kNN memory, lexicon, sentence lexicon, priors)
      ranker-icd10cm-N.txt   LightGBM boosters (text format; their scores are averaged; booster N
                             learnt from the out-of-fold candidate rows of fold split N % splits)
      calibrator-icd10cm.joblib  centered isotonic curve (older models: scikit-learn IsotonicRegression)
      (same for icd10pcs)

Learning from coder decisions (issue 5): :meth:`EngineModel.update` adds coded documents to
the supervised layers (new codes included) in seconds, leaving the featurizer, the ranker and
the dictionary-hit precision counts (:class:`~opencac.coding.supervised.HitPrecision`) as
trained; :meth:`~opencac.coding.engine.CodingEngine.train` (``opencac train``) retrains everything.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opencac.codesets.config import paused_gc
from opencac.coding.corpus import SYSTEMS, CodedDocument, corpus_hash
from opencac.coding.ranker import DEFAULT_ROUNDS
from opencac.errors import CorpusError, ModelFormatError, ModelNotFoundError

# 2: candidate features of dictionary-hit precision and title words (FEATURES changed), KB children
# 3: the sentence lexicon learnt from coders' evidence (five more FEATURES)
MODEL_FORMAT = "opencac-engine/3"
ENGINE_VERSION = "opencac.engine.v3"

Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    return None


class EngineModel:
    """Everything learned from a coded corpus.

    Args:
        folds: out-of-fold splits for the ranker's training features.
        seed: random seed.
        top_n: supervised candidates per signal.
        rounds: LightGBM boosting rounds.
        n_rankers: boosters with different seeds whose scores are averaged.
        splits: fold splits of the corpus whose out-of-fold candidate rows train the boosters
            (booster ``r`` learns from split ``r % splits``): with several, the averaged boosters
            have seen different out-of-fold signals of every note, not one split's noise.
    """

    def __init__(self, folds: int = 5, seed: int = 0, top_n: int = 100, rounds: int = DEFAULT_ROUNDS, n_rankers: int = 5,
                 splits: int = 5) -> None:
        self.folds = folds
        self.seed = seed
        self.top_n = top_n
        self.rounds = rounds
        self.n_rankers = n_rankers
        self.splits = splits
        self.manifest: dict[str, Any] = {}

    # -- training ------------------------------------------------------------------------
    def fit(self, docs: Sequence[CodedDocument], hits: Sequence[Sequence[Any]], kb: Any,
            progress: Progress = _noop, unlabeled: Sequence[str] = ()) -> EngineModel:
        """Train on coded documents whose dictionary hits were computed by the engine.

        Args:
            docs: the training documents.
            hits: each document's dictionary hits (``CodingEngine.dictionary_hits``).
            kb: the knowledge base.
            progress: ``progress(stage, done, total)`` callback.
            unlabeled: extra uncoded notes; only the TF-IDF vocabulary and IDF weights see them.
        """
        from opencac.coding.ranker import (best_f1_threshold, cross_fit_scores, expected_calibration_error,
                                           fit_booster, fit_calibrator)
        from opencac.coding.supervised import HitPrecision, SupervisedLayer, TextFeaturizer, sentence_matrices
        from opencac.coding.evaluate import average_precision

        if len(docs) < max(10, self.folds * 2):
            raise CorpusError(f"training needs at least {max(10, self.folds * 2)} coded documents; got {len(docs)}.")
        texts = [d.text for d in docs]
        self.__dict__.pop("_compiled_", None)
        self.__dict__.pop("_numpy_", None)
        self.featurizer_ = TextFeaturizer().fit(texts + list(unlabeled))
        X = self.featurizer_.transform(texts)
        B = self.featurizer_.binary_words(texts)
        # sentences of the notes and, where the corpus says where coders found their codes,
        # the codes each sentence is evidence for (the sentence lexicon)
        S_rows, s_doc, s_spans = sentence_matrices(self.featurizer_, texts)
        n_splits = max(1, min(self.splits, self.n_rankers))
        # split 0 is the one the metrics, the calibrator and the threshold come from
        split_folds = [np.random.RandomState(self.seed + 1009 * j).permutation(len(docs)) % self.folds
                       for j in range(n_splits)]
        self.layers_: dict[str, Any] = {}
        self.rankers_: dict[str, Any] = {}
        self.calibrators_: dict[str, Any] = {}
        self.thresholds_: dict[str, float] = {}
        metrics: dict[str, Any] = {}
        n_features: dict[str, int] = {}
        total_steps = len(SYSTEMS) * (self.folds * n_splits + 2)
        step = 0
        for system in SYSTEMS:
            labelled = [i for i, d in enumerate(docs) if d.codes[system]]
            if len(labelled) < self.folds * 2:
                step += self.folds * n_splits + 2
                progress("train", step, total_steps)
                continue
            s_codes = _sentence_codes(s_spans, docs, system)
            with_ev = np.array([bool(d.evidence.get(system)) for d in docs])
            # the sentence ridge of every fold from one factorisation
            ridge = _RidgeFolds(S_rows, s_doc, s_codes, with_ev, docs, system) if with_ev.any() else None
            split_rows: list[tuple[np.ndarray, np.ndarray]] = []
            for fold in split_folds:
                step, got = self._out_of_fold_rows(system, docs, hits, kb, X, B, S_rows, s_doc, s_codes, with_ev, fold,
                                                   step, total_steps, progress, ridge)
                split_rows.append((np.vstack(got[0]), np.concatenate(got[1])))
                if len(split_rows) == 1:
                    _, _, groups, missed, doc_gold, doc_codes = got
            Xr, yr = split_rows[0]
            n_features[system] = int(Xr.shape[1])
            oof = cross_fit_scores(Xr, yr, groups, seed=self.seed, rounds=self.rounds)
            cal = fit_calibrator(oof, yr)
            prob = cal.predict(oof)
            thr, f1 = best_f1_threshold(prob, yr, missed)
            # honest calibration error: isotonic fit on half the documents, measured on the other
            half = np.repeat(np.random.RandomState(self.seed + 2).permutation(len(groups)) % 2, groups)
            held = np.zeros_like(prob)
            for h in (0, 1):
                held[half == h] = fit_calibrator(oof[half != h], yr[half != h]).predict(oof[half == h])
            aps = []
            pos = 0
            for g, n, codes in zip(doc_gold, groups, doc_codes):
                s = oof[pos:pos + n]
                pos += n
                aps.append(average_precision([codes[j] for j in np.argsort(-s)], g))
            n_gold_docs = len(labelled)
            metrics[system] = {
                "oof_map": float(sum(aps) / n_gold_docs),
                "oof_ece": expected_calibration_error(held, yr),
                "oof_f1_at_threshold": f1,
                "threshold": thr,
                "candidate_recall": float(yr.sum() / (yr.sum() + missed)) if yr.sum() + missed else 0.0,
                "n_docs": n_gold_docs,
                "n_codes": len({c for d in docs for c in d.codes[system]}),
            }
            step += 1
            progress("train", step, total_steps)
            self.rankers_[system] = [fit_booster(*split_rows[r % len(split_rows)], seed=self.seed + r, rounds=self.rounds)
                                     for r in range(max(1, self.n_rankers))]
            self.calibrators_[system] = cal
            self.thresholds_[system] = thr
            ridge = None  # its factorisation is not kept: the final layer fits its own sentence ridge
            self.layers_[system] = SupervisedLayer().fit(X, B, [d.codes[system] for d in docs],
                                                         _sentence_subset(S_rows, s_doc, np.where(with_ev)[0], s_codes))
            self.layers_[system].hit_precision_ = HitPrecision().fit(
                [[h for h in hs if h.system == system] for hs in hits], [d.codes[system] for d in docs])
            step += 1
            progress("train", step, total_steps)
        if not self.layers_:
            raise CorpusError("no code system has enough coded documents to train on.")
        self.manifest = {
            "format": MODEL_FORMAT,
            "engine_version": ENGINE_VERSION,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "codesets": {k: {"fiscal_year": v.fiscal_year, "source": v.source, "sha256": v.sha256}
                         for k, v in getattr(kb, "versions", {}).items()},
            "training_data": {"sha256": corpus_hash(docs), "n_documents": len(docs),
                              "n_unlabeled": len(unlabeled)},
            "parameters": {"folds": self.folds, "seed": self.seed, "top_n": self.top_n, "rounds": self.rounds,
                           "n_rankers": self.n_rankers, "splits": n_splits},
            "systems": sorted(self.layers_),
            "thresholds": dict(self.thresholds_),
            "metrics": metrics,
            "n_features": n_features,  # candidate feature columns the rankers read (FEATURES' first n)
        }
        return self

    def _out_of_fold_rows(self, system: str, docs: Sequence[CodedDocument], hits: Sequence[Sequence[Any]], kb: Any,
                          X: Any, B: Any, S_rows: Any, s_doc: Any, s_codes: Any, with_ev: np.ndarray,
                          fold: np.ndarray, step: int, total_steps: int, progress: Progress,
                          ridge: _RidgeFolds | None = None) -> tuple[int, tuple[Any, ...]]:
        """Candidate feature rows of every labelled note, from supervised layers fit on the
        other folds of ``fold``: ``(step, (rows, labels, groups, missed gold codes, gold sets,
        candidate codes))``. ``ridge``: the sentence ridge's out-of-fold scores (the fold layers fit
        none of their own)."""
        from opencac.coding.candidates import build_candidates, feature_matrix
        from opencac.coding.supervised import HitPrecision, SupervisedLayer

        rows: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        groups: list[int] = []
        doc_gold: list[set[str]] = []
        doc_codes: list[list[str]] = []
        missed = 0
        for k in range(self.folds):
            tr = np.where(fold != k)[0]
            te = [i for i in np.where(fold == k)[0] if docs[i].codes[system]]
            layer = SupervisedLayer().fit(X[tr], B[tr], [docs[i].codes[system] for i in tr],
                                          _sentence_subset(S_rows, s_doc, tr[with_ev[tr]], s_codes)[:2])
            layer.hit_precision_ = HitPrecision().fit([[h for h in hits[i] if h.system == system] for i in tr],
                                                      [docs[i].codes[system] for i in tr])
            if te:
                sig = layer.scores(X[te], B[te])
                if ridge is not None:
                    sig["skr"] = ridge.note_scores(fold == k, te, layer.codes_)
                with paused_gc():  # many short-lived containers per note (see paused_gc)
                    for r, i in enumerate(te):
                        hs = [h for h in hits[i] if h.system == system]
                        cands = list(build_candidates(system, hs, layer, sig, r, kb, len(docs[i].text.split()),
                                                      self.top_n, text=docs[i].text).values())
                        gold = set(docs[i].codes[system])
                        if not cands:
                            missed += len(gold)
                            continue
                        rows.append(feature_matrix(cands))
                        ys.append(np.array([c.code in gold for c in cands], dtype=np.float32))
                        groups.append(len(cands))
                        missed += len(gold - {c.code for c in cands})
                        doc_gold.append(gold)
                        doc_codes.append([c.code for c in cands])
            step += 1
            progress("train", step, total_steps)
        return step, (rows, ys, groups, missed, doc_gold, doc_codes)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_compiled_", None)  # loaded native libraries: found again in the cache on use
        state.pop("_numpy_", None)  # read from the boosters again on use
        return state

    def rank(self, system: str, X: np.ndarray, build: bool = False) -> np.ndarray:
        """Ranker ensemble scores of candidate feature rows (:data:`~opencac.coding.candidates.FEATURES`).

        Uses the compiled ranker (:mod:`opencac.coding.forest`) when it is cached for this
        machine or, with ``build=True``, can be built now; else LightGBM. Same scores either way.
        """
        return _rank(self, system, X, build)

    def prepare_ranker(self, system: str, build: bool = True) -> bool:
        """Load (``build=True``: or compile) the compiled ranker of ``system``; True when it
        will be used, False when predictions stay on LightGBM."""
        return _compiled(self, system, build) is not None

    def update(self, docs: Sequence[CodedDocument], hits: Sequence[Sequence[Any]] | None = None) -> None:
        """Fast incremental learning: add coded documents to every supervised layer.

        Args:
            docs: the coded documents.
            hits: each document's dictionary hits (``CodingEngine.update`` passes them), so the
                dictionary-hit precision counts learn too; without them those stay as trained.
        """
        if not docs:
            return
        update_layers(self.featurizer_, self.layers_, docs, hits)
        td = self.manifest.setdefault("training_data", {})
        td["n_updates"] = int(td.get("n_updates", 0)) + len(docs)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model directory (created if needed)."""
        import joblib

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.featurizer_, out / "featurizer.joblib")  # uncompressed: loads ~3x faster
        for system in self.layers_:
            joblib.dump(self.layers_[system], out / f"layer-{system}.joblib")
            for r, booster in enumerate(self.rankers_[system]):
                booster.save_model(str(out / f"ranker-{system}-{r}.txt"))
            joblib.dump(self.calibrators_[system], out / f"calibrator-{system}.joblib")
        (out / "manifest.json").write_text(json.dumps(self.manifest, indent=2, default=_json_default) + "\n",
                                           encoding="utf-8")
        # the fast load cache now, from the model in memory: the first `opencac code` after
        # `opencac train` then loads it as quickly as every later one (< 2 s, not ~3 s)
        _write_load_cache(_artifact_parts(out, self.manifest.get("systems", [])), self)
        return out

    @classmethod
    def load(cls, path: str | Path) -> EngineModel:
        """Read a model directory.

        The LightGBM boosters are read on first use (importing LightGBM takes about a second,
        and the compiled ranker does not need it).

        Raises:
            ModelNotFoundError: no such directory or no manifest in it.
            ModelFormatError: the manifest or an artifact is unreadable or of another format.
        """
        p = Path(path)
        if not p.exists():
            raise ModelNotFoundError(f"model {p} does not exist; train one with 'opencac train' or omit --model.")
        if not p.is_dir() or not (p / "manifest.json").is_file():
            raise ModelNotFoundError(f"{p} is not a model directory (no manifest.json).")
        try:
            manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"{p / 'manifest.json'} is not valid JSON ({exc}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MODEL_FORMAT:
            got = manifest.get("format") if isinstance(manifest, dict) else None
            raise ModelFormatError(f"{p} has model format {got!r}; expected {MODEL_FORMAT!r} "
                                   "(train it again with 'opencac train').")
        m = cls(**{k: v for k, v in manifest.get("parameters", {}).items() if k in ("folds", "seed", "top_n", "rounds", "n_rankers", "splits")})
        m.manifest = manifest
        systems = list(manifest.get("systems", []))
        try:
            files: dict[str, list[Path]] = {}
            for system in systems:
                n = int(manifest.get("parameters", {}).get("n_rankers", 1))
                files[system] = [p / f"ranker-{system}-{r}.txt" for r in range(max(1, n))]
                for f in files[system]:
                    if not f.is_file():
                        raise FileNotFoundError(2, "missing", str(f))
            m.rankers_ = _BoosterFiles(files, p)
            parts = _artifact_parts(p, systems)
            cached = _read_load_cache(parts)
            if cached is not None:
                m.featurizer_, m.layers_, m.calibrators_ = cached
            else:
                import joblib

                m.featurizer_ = joblib.load(p / "featurizer.joblib")
                m.layers_ = {s: joblib.load(p / f"layer-{s}.joblib") for s in systems}
                m.calibrators_ = {s: joblib.load(p / f"calibrator-{s}.joblib") for s in systems}
                _write_load_cache(parts, m)
        except FileNotFoundError as exc:
            raise ModelFormatError(f"model {p} is incomplete: {Path(str(exc.filename)).name} is missing.") from None
        except Exception as exc:  # corrupt pickle / booster file
            raise ModelFormatError(f"model {p} could not be read ({type(exc).__name__}).") from None
        m.thresholds_ = {k: float(v) for k, v in manifest.get("thresholds", {}).items()}
        return m


def _sentence_codes(s_spans: Sequence[Sequence[tuple[int, int]]], docs: Sequence[Any], system: str) -> list[list[str]]:
    """For every sentence of every document (``s_spans``, as :func:`sentence_rows` gives them),
    the codes of ``system`` its evidence overlaps."""
    from opencac.coding.supervised import sentence_labels

    return [c for i, spans in enumerate(s_spans)
            for c in sentence_labels(spans, getattr(docs[i], "evidence", {}).get(system, {}))]


def _sentence_subset(rows: Any, s_doc: np.ndarray, chosen: np.ndarray,
                     labels: Sequence[Sequence[str]]) -> tuple[Any, ...]:
    """The sentence rows of the ``chosen`` documents (``s_doc``: each row's document) and
    their codes (``labels``: one list per row): ``(binary rows, codes)``, and the TF-IDF rows
    third where ``rows`` is ``(tfidf, binary)`` (:func:`~opencac.coding.supervised.sentence_matrices`)."""
    keep = np.isin(s_doc, np.asarray(chosen, dtype=np.int64))
    where = np.flatnonzero(keep)
    if isinstance(rows, tuple):
        return rows[1][where], [labels[i] for i in where], rows[0][where]
    return rows[where], [labels[i] for i in where]


class _RidgeFolds:
    """Out-of-fold sentence ridge scores of training notes (:class:`~opencac.coding.supervised.SentenceRidgeFolds`
    over the sentences of the notes with evidence, labelled with ``system``'s codes of all notes)."""

    def __init__(self, S_rows: Any, s_doc: np.ndarray, s_codes: Sequence[Sequence[str]], with_ev: np.ndarray,
                 docs: Sequence[CodedDocument], system: str) -> None:
        import scipy.sparse as sp

        from opencac.coding.supervised import SentenceRidgeFolds, ridge_rows

        self.codes = sorted({c for d in docs for c in d.codes[system]})
        index = {c: i for i, c in enumerate(self.codes)}
        self.T, self.s_doc = S_rows[0], s_doc
        rows = np.flatnonzero(with_ev[s_doc])  # the sentences of the notes with evidence
        pairs = [(r, index[c]) for r, i in enumerate(rows) for c in set(s_codes[i]) if c in index]
        Y = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), ([p[0] for p in pairs], [p[1] for p in pairs])),
                          shape=(len(rows), len(self.codes)))
        keep = ridge_rows(Y)  # as the final layer chooses them (SupervisedLayer.fit)
        self.rows = rows[keep]  # the ridge's training sentences
        self.folds = SentenceRidgeFolds().fit(self.T[self.rows], Y[keep])
        self.index = index

    def note_scores(self, held: np.ndarray, notes: Sequence[int], codes: Sequence[str]) -> np.ndarray:
        """Best-sentence scores of ``notes`` (ascending) over ``codes``, from the ridge fit without the
        sentences of the ``held`` notes (a mask over all notes); ``notes`` are among them."""
        from opencac.coding.supervised import best_sentence

        g = np.flatnonzero(held[self.s_doc[self.rows]])
        notes = np.asarray(notes, dtype=np.int64)
        mine = np.flatnonzero(np.isin(self.s_doc, notes))  # the notes' sentences, in order
        outside = mine[~np.isin(mine, self.rows)]  # not among the ridge's training sentences
        got, other = self.folds.held_out(g, self.T[outside] if len(outside) else None)
        V = np.zeros((len(mine), len(self.codes)), dtype=np.float32)
        at = {s: i for i, s in enumerate(mine.tolist())}
        in_g = self.rows[g]
        sel = np.isin(in_g, mine)
        V[[at[s] for s in in_g[sel].tolist()]] = got[sel]
        if other is not None:
            V[[at[s] for s in outside.tolist()]] = other
        out = np.zeros((len(notes), len(self.codes)), dtype=np.float32)
        if len(mine):
            best_sentence(V, np.searchsorted(notes, self.s_doc[mine]), out)
        return out[:, [self.index[c] for c in codes]]


def update_layers(featurizer: Any, layers: dict[str, Any], docs: Sequence[Any],
                  hits: Sequence[Sequence[Any]] | None = None, systems: Sequence[str] | None = None) -> list[str]:
    """Add coded documents (``text`` and ``codes`` per system) to per-system supervised layers
    (``layer.update(X, B, code_lists)``), and to their dictionary-hit precision counts when each
    document's ``hits`` are given. Only ``systems`` when given. Returns the systems updated."""
    from opencac.coding.supervised import sentence_rows

    chosen = [s for s in layers if systems is None or s in systems]
    if not chosen or not docs:
        return []
    texts = [d.text for d in docs]
    both = getattr(featurizer, "transform_and_binary", None)
    X, B = both(texts) if callable(both) else (featurizer.transform(texts), featurizer.binary_words(texts))
    sent: tuple[Any, np.ndarray, list[list[tuple[int, int]]]] | None = None
    for s in chosen:
        codes = [list(d.codes.get(s, [])) for d in docs]
        with_ev = [i for i, d in enumerate(docs) if getattr(d, "evidence", {}).get(s)]
        if with_ev:
            if sent is None:
                sent = sentence_rows(featurizer, texts)
            labels = _sentence_codes(sent[2], docs, s)
            layers[s].update(X, B, codes, _sentence_subset(sent[0], sent[1], np.array(with_ev), labels))
        else:
            layers[s].update(X, B, codes)
        hp = getattr(layers[s], "hit_precision_", None)
        if hits is not None and hp is not None:
            hp.update([[h for h in hs if h.system == s] for hs in hits], codes)
    return chosen


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    return str(o)


# -- load cache --------------------------------------------------------------------------
# The joblib artifacts load through joblib's pure-Python unpickler and need scikit-learn
# (the TF-IDF vectorizers, the isotonic calibrators): 2-4 s of ``opencac code``'s start-up.
# After a model's first load, the same parts are kept in the cache directory as one plain
# pickle - the featurizer as vocabularies + IDF weights, each calibrator as its curve - keyed
# by the artifacts' paths, sizes and modification times. The model directory is never written.
_LOAD_CACHE_VERSION = "1"
_LOAD_CACHE_KEEP = 20  # newest by use (reads refresh the time): older entries are removed


def _artifact_parts(path: Path, systems: Sequence[str]) -> list[Path]:
    """The pickled artifacts of a model directory, in the order the load cache's key lists them."""
    return [path / "featurizer.joblib"] + [path / f"{kind}-{s}.joblib" for s in systems
                                           for kind in ("layer", "calibrator")]


def _load_cache_file(parts: Sequence[Path]) -> Path | None:
    import hashlib

    try:
        ident = [(str(f.resolve()), st.st_size, st.st_mtime_ns, st.st_ino) for f in parts for st in (f.stat(),)]
    except OSError:
        return None
    key = hashlib.sha256(json.dumps([_LOAD_CACHE_VERSION, MODEL_FORMAT, ident]).encode()).hexdigest()[:32]
    from opencac.codesets import config

    return config.cache_dir(None) / "engine" / "models" / f"model-{key}.pkl"


def _read_load_cache(parts: Sequence[Path]) -> tuple[Any, dict[str, Any], dict[str, Any]] | None:
    from opencac.codesets.config import read_pickle

    f = _load_cache_file(parts)
    if f is None or not f.is_file():
        return None
    try:
        state = read_pickle(f)
        try:
            os.utime(f)  # recently used: kept when older entries are removed
        except OSError:
            pass
        return state["featurizer"], state["layers"], state["calibrators"]
    except Exception:  # noqa: BLE001 - a stale or partial cache file: read the artifacts
        return None


def _write_load_cache(parts: Sequence[Path], m: EngineModel) -> None:
    from opencac.coding.ranker import IsotonicCurve
    from opencac.codesets.config import write_pickle

    f = _load_cache_file(parts)
    if f is None:
        return
    feat = m.featurizer_.plain_copy() if hasattr(m.featurizer_, "plain_copy") else m.featurizer_
    for layer in m.layers_.values():  # the kNN memory is a copy of the layer's rows: keep one
        knn = getattr(layer, "knn_", None)
        a, b = getattr(layer, "X_", None), getattr(knn, "X_", None)
        if a is not None and b is not None and a is not b and a.shape == b.shape and a.nnz == b.nnz \
                and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices) \
                and np.array_equal(a.data, b.data):
            knn.X_ = a
    cals = {s: IsotonicCurve.from_fitted(c) or c for s, c in m.calibrators_.items()}
    try:
        write_pickle({"featurizer": feat, "layers": m.layers_, "calibrators": cals}, f)
        old = sorted(f.parent.glob("model-*.pkl"), key=lambda q: q.stat().st_mtime, reverse=True)
        for q in old[_LOAD_CACHE_KEEP:]:
            q.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a read-only or full cache dir, an unpicklable part: only costs speed
        return


def ranker_scores(boosters: Sequence[Any], X: np.ndarray) -> np.ndarray:
    """Mean score of the ranker ensemble."""
    return np.mean([b.predict(X, num_threads=1) for b in boosters], axis=0)


class _BoosterFiles(dict):  # type: ignore[type-arg]
    """``system -> [LightGBM Booster]``, each system's boosters read from the model directory
    on first access (``rankers_[system]``)."""

    def __init__(self, files: dict[str, list[Path]], where: Path) -> None:
        super().__init__()
        self.files = files
        self.where = where

    def __missing__(self, system: str) -> list[Any]:
        if system not in self.files:
            raise KeyError(system)
        try:
            import lightgbm as lgb

            boosters = [lgb.Booster(model_file=str(f)) for f in self.files[system]]
        except Exception as exc:  # corrupt or unreadable booster file
            raise ModelFormatError(f"model {self.where} could not be read ({type(exc).__name__}).") from None
        self[system] = boosters
        return boosters

    def __contains__(self, system: object) -> bool:
        return system in self.files or super().__contains__(system)

    def texts(self, system: str) -> list[str] | None:
        """The boosters' saved text models (None when not saved in files)."""
        if system not in self.files:
            return None
        return [f.read_text(encoding="utf-8") for f in self.files[system]]


#: ``OPENCAC_COMPILED_RANKER=0`` keeps every prediction on LightGBM.
_COMPILED_ENV = "OPENCAC_COMPILED_RANKER"


def _native_ranker_off() -> bool:
    """``OPENCAC_COMPILED_RANKER=0``: LightGBM scores everything (no compiled or NumPy trees)."""
    return os.environ.get(_COMPILED_ENV, "1").strip().lower() in ("0", "false", "no", "off")


def _compiled_cache_dir() -> Path:
    from opencac.codesets import config

    return config.cache_dir(None) / "engine" / "forest"


#: Up to this many candidate rows (about ten notes) the ranker runs in NumPy when it is not
#: compiled: reading a booster that way takes ~0.02 s, importing LightGBM and loading the
#: boosters ~1 s per code system. Larger calls are faster on LightGBM.
NUMPY_MAX_ROWS = 4000


def _rank(model: EngineModel, system: str, X: np.ndarray, build: bool = False) -> np.ndarray:
    """Ranker ensemble scores of candidate rows: the compiled ranker when it is available
    (cached, or built now with ``build=True``), else the boosters in NumPy for a few rows,
    else LightGBM. All three give the same scores.

    Feature columns added to :data:`~opencac.coding.candidates.FEATURES` after a model was
    trained are dropped here: such a model reads the columns it was trained on."""
    n = _n_features(model, system)
    if X.shape[1] > n:
        X = X[:, :n]
    forests = _compiled(model, system, build)
    if forests is None and len(X) <= NUMPY_MAX_ROWS:
        forests = _numpy_forests(model, system)
    if forests is not None:
        from opencac.coding.forest import predict_mean

        return predict_mean(forests, X)
    return ranker_scores(model.rankers_[system], X)


def _n_features(model: EngineModel, system: str) -> int:
    """How many leading FEATURES columns the rankers of ``system`` were trained on."""
    from opencac.coding.candidates import LEGACY_N_FEATURES

    got = model.manifest.get("n_features", {}).get(system) if isinstance(model.manifest, dict) else None
    return int(got) if isinstance(got, int) and got > 0 else LEGACY_N_FEATURES


def _booster_texts(model: EngineModel, system: str) -> list[str]:
    rankers = model.rankers_
    texts = rankers.texts(system) if isinstance(rankers, _BoosterFiles) else None
    return texts if texts is not None else [b.model_to_string() for b in rankers[system]]


def _numpy_forests(model: EngineModel, system: str) -> list[Any] | None:
    """The boosters of ``system`` as :class:`~opencac.coding.forest.NumpyForest` (memoised;
    None when the booster files use what it does not cover: LightGBM scores then)."""
    if _native_ranker_off():
        return None
    state = model.__dict__.setdefault("_numpy_", {})
    if system not in state:
        from opencac.coding.forest import NumpyForest, UnsupportedBooster

        try:
            state[system] = [NumpyForest(t) for t in _booster_texts(model, system)]
        except (UnsupportedBooster, KeyError, ValueError):
            state[system] = None
        except OSError as exc:  # a booster file gone since the model was loaded
            raise ModelFormatError(f"model ranker of {system} could not be read ({exc.strerror or exc}).") from None
    return state[system]


def _compiled(model: EngineModel, system: str, build: bool) -> list[Any] | None:
    if _native_ranker_off():
        return None
    state = model.__dict__.setdefault("_compiled_", {})
    got = state.get(system)
    if got is not None and (got[0] is not None or not build or got[1]):
        return got[0]  # loaded, or already tried at this level
    rankers = model.rankers_
    texts = _booster_texts(model, system)
    from opencac.coding.forest import load_compiled

    cache = _compiled_cache_dir()
    forests = [load_compiled(t, cache) for t in texts]
    if build and not all(forests):
        from opencac.coding.forest import compiler_available

        if compiler_available():
            import sys

            boosters = rankers[system]
            print(f"opencac: compiling the {system} ranker for this machine (first run only, ~10 s per booster)...",
                  file=sys.stderr, flush=True)
            forests = [f or load_compiled(t, cache, build=True, check=b) for f, t, b in zip(forests, texts, boosters)]
    result = forests if forests and all(forests) else None
    state[system] = (result, build)
    return result
