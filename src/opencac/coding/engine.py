"""The coding engine: clinical note in, ranked ICD-10-CM and ICD-10-PCS suggestions out.

    from opencac.coding.engine import CodingEngine
    eng = CodingEngine.load()                 # out of the box: code sets only
    eng = CodingEngine.load("models/codiesp") # with a trained model
    res = eng.code(text)                      # CodingResult: .diagnoses / .procedures

Pipeline (component names are stable; audit records cite them):

1. ``opencac.nlp.analyze`` + the dictionary matcher (``opencac.coding.dictionary``): every
   code-set phrase in the note, with assertion, section and attributes.
2. ``opencac.coding.candidates.v1``: dictionary, hierarchy and supervised candidates with
   features.
3. ``opencac.coding.ranker.v1`` (trained model): LightGBM score -> isotonic confidence;
   ``opencac.coding.heuristic.v3`` (no model): a hand-set score from match quality, mapped to
   a confidence by a fixed curve (see :mod:`opencac.coding.heuristic`).
4. Suggestions with evidence spans, assertion, rationale and signals; ``selected`` when the
   confidence passes the model's threshold and the assertion allows it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opencac.coding.candidates import FEATURE_INDEX, _find
from opencac.codesets.config import paused_gc
from opencac.codesets.types import fiscal_year
from opencac.coding.corpus import CM, SYSTEMS, CodedDocument, canon, dotted
from opencac.coding.heuristic import FITTED_ON as HEURISTIC_FITTED_ON
from opencac.coding.heuristic import THRESHOLD as HEURISTIC_THRESHOLD
from opencac.coding.heuristic import VERSION as HEURISTIC_VERSION
from opencac.coding.heuristic import confidence as heuristic_confidence
from opencac.coding.heuristic import excludes1_competition, heuristic_score
from opencac.coding.history import HISTORY_OF
from opencac.coding.laterality import documented_side_first
from opencac.coding.types import CodeSuggestion, CodingResult, EncounterContext, Evidence

#: Assertions that never make a code part of the proposed final set. Negated and family
#: history findings are not the patient's conditions; hypothetical ones have not happened
#: (ICD-10-CM Official Guidelines I.B.4-6 code documented conditions; IV.H / II.H for
#: uncertain diagnoses by setting are left to the rules layer).
NOT_SELECTED = frozenset({"negated", "family", "hypothetical"})

#: ``code_many`` compiles the ranker for this machine (once, ~10 s per booster; see
#: :mod:`opencac.coding.forest`) when it codes at least this many notes; smaller calls use the
#: compiled ranker only when it is already cached.
COMPILE_MIN_NOTES = 100
#: The sentence ridge's score from which its best sentence is shown as evidence of a code.
SKR_SHOWN = 0.25


class CodingEngine:
    """Codes notes with the knowledge layer and, when given, a trained model.

    Use :meth:`load`; the constructor takes already-loaded parts.
    """

    def __init__(self, kb: Any, matcher: Any, model: Any | None = None, model_path: Path | None = None) -> None:
        self.kb = kb
        self.matcher = matcher
        self.model = model
        self.model_path = model_path
        self._vocab: np.ndarray | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def load(cls, model: str | Path | None = None, kb: Any | None = None) -> CodingEngine:
        """Load the engine: the knowledge base, the cached dictionary and, if given, a model.

        Args:
            model: a model directory from ``opencac train``; None = out-of-the-box engine.
            kb: a knowledge base (default :func:`opencac.codesets.load_knowledge`).

        Raises:
            ModelNotFoundError / ModelFormatError: ``model`` is missing or unreadable.
        """
        from opencac.coding.dictionary import get_matcher
        from opencac.coding.model import EngineModel

        m = EngineModel.load(model) if model is not None else None  # fail fast before the kb
        if kb is None:
            from opencac.codesets import load_knowledge

            kb = load_knowledge()
        return cls(kb, get_matcher(kb), m, Path(model) if model is not None else None)

    @property
    def name(self) -> str:
        """``dictionary-only`` or ``<model dir name> (<engine version>, <created>)``."""
        if self.model is None:
            return "dictionary-only"
        mf = self.model.manifest
        label = self.model_path.name if self.model_path is not None else "model"
        return f"{label} ({mf.get('engine_version', '?')}, {mf.get('created', '?')})"

    @property
    def manifest(self) -> dict[str, Any]:
        """The model manifest (empty for the dictionary-only engine)."""
        return dict(self.model.manifest) if self.model is not None else {}

    @property
    def setup_warnings(self) -> list[str]:
        """What differs between the code sets the model was trained with and those loaded now.

        A model trained with the ICD-10-CM alphabetic index learned from its matches; without
        it the engine finds fewer mentions (CodiEsp dev D MAP 0.63 -> 0.56).
        """
        trained = (self.model.manifest.get("codesets") or {}) if self.model is not None else {}
        loaded = getattr(self.kb, "versions", None) or {}
        out = []
        if "icd10cm-index" in trained and loaded and "icd10cm-index" not in loaded:
            src = (trained["icd10cm-index"] or {}).get("source") or "an index folder"
            out.append(f"the model was trained with the ICD-10-CM alphabetic index ({src}), which is not loaded now: "
                       "suggestions are less accurate; load it with 'opencac codes import-index DIR' or "
                       "OPENCAC_CM_INDEX_DIR=DIR.")
        return out

    # -- analysis --------------------------------------------------------------------------
    def dictionary_hits(self, text: str, doc_id: str = "note", attributes: bool = True,
                        systems: Sequence[str] | None = None) -> tuple[Any, list[Any]]:
        """Analyse a note and match the dictionary: ``(Document, [DictHit])``.

        Args:
            text: the note.
            doc_id: its id.
            attributes: also extract mention attributes (laterality, acuity...; not used for
                ranking, so batch prediction skips them).
            systems: keep only these code systems' hits (default all; the hits of a system do
                not depend on the others).
        """
        from opencac.coding.dictionary import (apply_stated_approach, drop_contrast_conflicts, drop_study_findings,
                                               expand_pcs_hits, hits_from_mentions, mark_extent)
        from opencac.coding.history import history_hits
        from opencac.coding.values import value_hits
        from opencac.nlp.pipeline import analyze

        doc = analyze(text, doc_id)
        # mentions of other code systems only are not asserted (their hits would be dropped below)
        wanted = None if systems is None else frozenset(systems)
        hits = hits_from_mentions(self.matcher.find(
            doc, attributes=attributes, keep=None if wanted is None else (lambda p: p[1] in wanted),
            within_for=_diagnosis_payload))
        if systems is None or CM in systems:
            # values that complete a code (BMI 36 -> Z68.36, week 21 of gestation -> Z3A.21)
            hits.extend(value_hits(doc, self.kb))
            if self.kb is not None:
                # a condition the patient had, or a relative has: its history code (Z85.3, Z80.0)
                hits.extend(history_hits(self.kb, hits))
        if systems is not None:
            keep = set(systems)
            hits = [h for h in hits if h.system in keep]
            if "icd10pcs" not in keep:
                return doc, hits
        hits = apply_stated_approach(doc, drop_contrast_conflicts(doc, drop_study_findings(doc, hits)), self.kb)
        return doc, mark_extent(doc, expand_pcs_hits(doc, hits, self.kb))

    # -- coding ----------------------------------------------------------------------------
    def code(self, text: str, doc_id: str = "note", context: EncounterContext | None = None,
             max_suggestions: int | None = 50) -> CodingResult:
        """Code one note.

        Args:
            text: the note text.
            doc_id: its id.
            context: the encounter context (date of service selects code versions).
            max_suggestions: keep at most this many suggestions per system (None = all).
        """
        return self.code_many([text], [doc_id], context, max_suggestions=max_suggestions)[0]

    def code_many(self, texts: Sequence[str], doc_ids: Sequence[str] | None = None,
                  context: EncounterContext | None = None, max_suggestions: int | None = None,
                  progress: Callable[[int], None] | None = None, batch_size: int = 64,
                  systems: Sequence[str] = SYSTEMS, explain_top: int | None = None) -> list[CodingResult]:
        """Code many notes (vectorised; what ``opencac predict`` uses).

        Args:
            texts: note texts.
            doc_ids: their ids (default ``note-1``...).
            context: one encounter context for all notes.
            max_suggestions: per system (None = every candidate, as the benchmark wants).
            progress: called with the number of notes done after each batch.
            batch_size: notes per vectorised batch.
            systems: the code systems to code (default both).
            explain_top: fill evidence/rationale/signals for the best this many suggestions
                only (None = all); the rest carry code, confidence, assertion and rank.
        """
        ctx = context or EncounterContext()
        ids = list(doc_ids) if doc_ids is not None else [f"note-{i + 1}" for i in range(len(texts))]
        results: list[CodingResult] = []
        codeset = {k: f"FY{v.fiscal_year}" for k, v in getattr(self.kb, "versions", {}).items()}
        for b0 in range(0, len(texts), batch_size):
            with paused_gc():  # many short-lived containers per note (see paused_gc)
                results.extend(self._code_batch(list(texts[b0:b0 + batch_size]), ids[b0:b0 + batch_size], ctx,
                                                codeset, max_suggestions, systems, explain_top,
                                                compile_ranker=len(texts) >= COMPILE_MIN_NOTES))
            if progress is not None:
                progress(min(batch_size, len(texts) - b0))
        return results

    def _code_batch(self, bt: list[str], bids: list[str], ctx: EncounterContext, codeset: dict[str, str],
                    max_suggestions: int | None, systems: Sequence[str], explain_top: int | None,
                    compile_ranker: bool) -> list[CodingResult]:
        """One batch of :meth:`code_many` (``compile_ranker``: build the compiled ranker if needed)."""
        from opencac.coding.candidates import build_candidates, feature_matrix

        analysed = [self.dictionary_hits(t, i, attributes=explain_top != 0, systems=systems)
                    for t, i in zip(bt, bids)]
        warn = self.setup_warnings
        batch_res = [CodingResult(doc_id=did, model=self.name, codeset=codeset, context=ctx, warnings=list(warn))
                     for did in bids]
        sigs: dict[str, Any] = {}
        if self.model is not None:
            X, B = self.model.featurizer_.transform_and_binary(bt)
            sentences = None
            for system in systems:
                layer = self.model.layers_.get(system)
                if layer is None:
                    continue
                if sentences is None and layer.__dict__.get("sentence_ridge_") is not None:
                    sentences = self.model.featurizer_.sentence_tfidf(bt)
                sigs[system] = layer.scores(X, B, with_arg=explain_top != 0,
                                            sentences=sentences[:2] if sentences is not None else None)
                if sentences is not None:
                    sigs[system]["skr_spans"] = sentences[2]
        for system in systems:
            layer = self.model.layers_.get(system) if self.model is not None else None
            per_doc: list[list[Any]] = []
            for r, (text, (doc, hits)) in enumerate(zip(bt, analysed)):
                hs = [h for h in hits if h.system == system]
                if layer is None:
                    cands = build_candidates(system, hs, None, None, r, self.kb, len(text.split()))
                    kept = []
                    for c in cands.values():
                        if "dict" not in c.via:
                            continue
                        kept.append(c)
                        # an imaging node the dictionary found (BW20 "CT, abdomen") also as its
                        # complete code without contrast or qualifier (BW20ZZZ), on the same evidence
                        z = cands.get(c.code + "zzz")  # made by build_candidates for PCS imaging nodes only
                        if z is not None:
                            c.via.add("completed")  # the out-of-the-box scorer's cue (heuristic._plain_prefix)
                            if "dict" not in z.via:
                                z.hits.extend(c.hits)
                                kept.append(z)
                    if system == CM and self.kb is not None:
                        kept = _with_completions(self.kb, kept, doc, ctx.date_of_service)
                    per_doc.append(kept)
                else:
                    cands = build_candidates(system, hs, layer, sigs[system], r, self.kb, len(text.split()),
                                             self.model.top_n, text=text)
                    per_doc.append(list(cands.values()))
            if layer is None:
                scores_all = [np.array([heuristic_score(c, system) for c in cl]) for cl in per_doc]
                if system == CM:
                    scores_all = [excludes1_competition(self.kb, cl, sc) for cl, sc in zip(per_doc, scores_all)]
                conf_all = [heuristic_confidence(sc, system) for sc in scores_all]
                thr = HEURISTIC_THRESHOLD[system]
            else:
                sizes = [len(cl) for cl in per_doc]
                flat = [c for cl in per_doc for c in cl]
                if flat:
                    sc = self.model.rank(system, feature_matrix(flat), build=compile_ranker)
                    cf = self.model.calibrators_[system].predict(sc)
                else:
                    sc = cf = np.zeros(0)
                bounds = np.cumsum([0, *sizes])
                scores_all = [sc[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
                conf_all = [cf[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
                thr = self.model.thresholds_.get(system, 0.5)
            related_all = [_RelatedHits({c.code: c.hits for c in cl if c.hits}) for cl in per_doc]
            if system == CM and self.kb is not None:
                # the side the note documents first among codes differing only in laterality
                for r, (text, cl) in enumerate(zip(bt, per_doc)):
                    scores_all[r], conf_all[r] = documented_side_first(self.kb, text, cl, scores_all[r], conf_all[r],
                                                                       related_all[r])
            for r, (text, res) in enumerate(zip(bt, batch_res)):
                sugg = self._suggestions(system, text, per_doc[r], scores_all[r], conf_all[r], thr, layer,
                                         sigs.get(system), r, ctx, max_suggestions, related_all[r], explain_top)
                if system == CM:
                    res.diagnoses = sugg
                else:
                    res.procedures = sugg
        return batch_res

    # -- suggestions -------------------------------------------------------------------------
    def _suggestions(self, system: str, text: str, cands: list[Any], scores: np.ndarray, conf: np.ndarray,
                     thr: float, layer: Any, sig: Any, row: int, ctx: EncounterContext,
                     max_suggestions: int | None, related: _RelatedHits,
                     explain_top: int | None = None) -> list[CodeSuggestion]:
        """One note's suggestions, best first (``related``: the hits of its matched codes)."""
        order = np.argsort(-np.asarray(scores), kind="stable").tolist()
        conf_l = np.asarray(conf, dtype=np.float64).tolist()
        in_train = _in_train_flags(cands)
        as_of = ctx.date_of_service
        out: list[CodeSuggestion] = []
        seen: set[str] = set()
        shown = self._shown_memo()
        kb = self.kb
        note_hits: list[Any] | None = None  # the note's dictionary hits, gathered when first needed
        for j in order:
            c = cands[j]
            # a training code, or a placeholder form (V87.9XX), is shown as written
            as_written = in_train[j] or "pad" in c.via
            mk = (c.code, system, as_written, as_of)
            got = shown.get(mk)
            if got is None:
                code = self._display_code(c.code, system, as_written, as_of)
                obj = _find(kb, code, system) if kb is not None else None
                # an ICD-10-CM header (a category with codes below it) is never reported itself
                header = system == CM and obj is not None and not getattr(obj, "billable", True)
                got = shown[mk] = (code, canon(code), obj.description if obj is not None else "", header)
            code, key, description, header = got
            if key in seen:
                continue
            seen.add(key)
            explain = explain_top is None or len(out) < explain_top
            if c.hits or explain:
                hits = c.hits or related(c.code)
                assertion = _assertion(hits)
            else:
                hits = []
                assertion = related.assertion(c.code)
            confidence = conf_l[j]
            sugg = CodeSuggestion(
                code=code, system=system, description=description,
                confidence=round(confidence, 4), assertion=assertion, rank=len(out) + 1,
                # out of the box, a header is not proposed for the claim: the billable codes found
                # for the same words, or its completion, are (a trained model learns what its
                # coders report)
                selected=bool(confidence >= thr and assertion not in NOT_SELECTED and not (header and layer is None)),
            )
            if explain:
                sugg.evidence = _evidence(hits)
                sugg.rationale = _rationale(c, hits)
                if layer is not None and sig is not None:
                    if note_hits is None:
                        note_hits = [h for cc in cands for h in cc.hits]
                    ev, why = self._supervised_evidence(c, layer, sig, row, text, note_hits)
                    if not sugg.evidence:
                        sugg.evidence = ev
                        # the words the model learned from sit in a mention the note negates or gives
                        # as family history ("Father died of myocardial infarction" for I25.2): the
                        # suggestion carries that assertion, as a dictionary hit there would
                        said = _assertion_at(note_hits, [(e.start, e.end) for e in ev])
                        if ev and not hits and said != "affirmed":
                            sugg.assertion = said
                            sugg.selected = sugg.selected and said not in NOT_SELECTED
                    sugg.rationale.extend(why)
                sugg.signals = {k: round(float(v), 4) for k, v in sorted(c.feats.items()) if not math.isnan(v)}
                if layer is None:  # how the out-of-the-box confidence came about
                    raw = float(scores[j])
                    sugg.signals["heuristic_score"] = round(raw, 4)
                    sugg.rationale.append(f"out-of-the-box match score {raw:.2f} -> confidence {confidence:.2f} "
                                          f"({HEURISTIC_VERSION}, curve fitted on {HEURISTIC_FITTED_ON})")
            out.append(sugg)
            if max_suggestions is not None and len(out) >= max_suggestions:
                break
        return out

    def _shown_memo(self) -> dict[tuple[str, str, bool, dt.date | None], tuple[str, str, str, bool]]:
        """(candidate key, system, in training, as of) -> (code shown, its canonical key, its
        description, whether it is an ICD-10-CM header), kept across notes (cleared past 200,000
        entries)."""
        memo = self.__dict__.setdefault("_shown", {})
        if len(memo) > 200_000:
            memo.clear()
        return memo

    def _display_code(self, key: str, system: str, in_train: bool, as_of: dt.date | None) -> str:
        obj = _find(self.kb, key, system) if self.kb is not None else None
        code = obj.code if obj is not None else dotted(key, system)
        if in_train and obj is not None and canon(code) != key:
            # A training code (a placeholder form is passed as one) the knowledge base reads as
            # its category: placeholder X's written without the 7th character (CodiEsp's
            # "W19.XXX" is looked up as W19). Show it as the coders wrote it, a suggestion of its
            # own; the claim edits flag the missing 7th character (ICD-10-CM Official Guidelines
            # I.A.5, I.B.1).
            return dotted(key, system)
        # Knowledge-layer codes are FY2026 codes; map to the code valid on the date of service
        # when the loaded code sets know an older equivalent. Training codes stay as coded.
        if as_of is not None and obj is not None and not in_train and hasattr(self.kb, "as_of_equivalent"):
            try:
                eq = self.kb.as_of_equivalent(code, as_of)
            except Exception:
                eq = None
            if eq:
                code = eq
            if eq == obj.code and system == CM:
                code = self._coders_code(key, as_of) or code
        return code

    def _coders_code(self, key: str, as_of: dt.date) -> str | None:
        """For a date of service before every loaded ICD-10-CM code set: the training code above
        ``key`` that the loaded code sets have split into codes below it (M54.5 for M54.50 "low
        back pain, unspecified", split in FY2022), when the training coders used it as a code and
        none below it - the code set of their time, which the loaded ones cannot say. None
        otherwise."""
        kb, model = self.kb, self.model
        if model is None or CM not in model.layers_ or not getattr(kb, "cm_fiscal_years", ()):
            return None
        if fiscal_year(as_of) >= min(kb.cm_fiscal_years):
            return None
        trained = model.layers_[CM].index_
        split = self.__dict__.get("_coders_split")
        if split is None or split[0] is not trained:
            # training codes with no training code below them: the coders' code set ends there
            # (a code with training codes below it was abbreviated, Z68.4 beside Z68.43, not split)
            inner = {k[:n] for k in trained for n in range(3, len(k))}
            split = self.__dict__["_coders_split"] = (trained, frozenset(k for k in trained if k not in inner))
        for n in range(len(key) - 1, 2, -1):
            up = key[:n]
            if up in trained:
                obj = _find(kb, up, CM)
                ok = up in split[1] and obj is not None and not kb.is_billable(obj.code)
                return obj.code if ok else None
        return None

    def _supervised_evidence(self, c: Any, layer: Any, sig: Any, row: int, text: str,
                             note_hits: Sequence[Any] = ()) -> tuple[list[Evidence], list[str]]:
        """Evidence spans and rationale of the supervised signals. A learned term is shown where it
        first occurs outside a negated, family-history or hypothetical mention (``note_hits``), else
        where it first occurs."""
        j = layer.index_.get(c.code)
        if j is None:
            return [], []
        why: list[str] = []
        ev: list[Evidence] = []
        for key, say in (("lex", "learned lexicon: '{gram}' (P(code|term)={p:.2f})"),
                         ("slex", "coders' evidence: sentences with '{gram}' were coded so (P={p:.2f})")):
            args = sig.get(key + "_arg")
            if args is None:
                continue
            p, arg = float(sig[key][row][j]), int(args[row][j])
            if p <= 0 or arg < 0:
                continue
            if self._vocab is None:
                self._vocab = self.model.featurizer_.word_names()
            gram = str(self._vocab[arg])
            why.append(say.format(gram=gram, p=p))
            m = None
            for found in _gram_pattern(gram).finditer(text):
                m = m or found
                if _assertion_at(note_hits, [found.span()]) not in NOT_SELECTED:
                    m = found
                    break
            if m and all(e.start != m.start() or e.end != m.end() for e in ev):
                ev.append(Evidence(m.start(), m.end(), text[m.start():m.end()]))
        skr_arg = sig.get("skr_arg")
        if skr_arg is not None and sig.get("skr_spans") is not None:
            v, at = float(sig["skr"][row][j]), int(skr_arg[row][j])
            if v >= SKR_SHOWN and at >= 0:
                s, e = sig["skr_spans"][at]
                why.append(f"coders' evidence: a sentence like those coded so ({v:.2f})")
                if all(x.start != s or x.end != e for x in ev):
                    ev.append(Evidence(s, e, text[s:e]))
        knn = float(sig["knn"][row][j])
        if knn > 0:
            why.append(f"similar coded notes: weighted vote {knn:.2f}")
        kr = float(sig["kr"][row][j])
        if kr > 0.05:
            why.append(f"text model score {kr:.2f}")
        return ev, why

    # -- training ----------------------------------------------------------------------------
    def train(self, docs: Sequence[CodedDocument], folds: int = 5, seed: int = 0,
              progress: Callable[[str, int, int], None] | None = None, unlabeled: Sequence[str] = ()) -> Any:
        """Train a model on coded documents with this engine's knowledge layer.

        ``unlabeled`` notes (no codes) only widen the TF-IDF vocabulary and IDF statistics.

        Returns:
            The fitted :class:`~opencac.coding.model.EngineModel` (also installed in this engine).
        """
        from opencac.coding.model import EngineModel

        hits = []
        for i, d in enumerate(docs):
            hits.append(self.dictionary_hits(d.text, d.id, attributes=False)[1])
            if progress is not None:
                progress("analyse", i + 1, len(docs))
        model = EngineModel(folds=folds, seed=seed).fit(docs, hits, self.kb, progress or (lambda *a: None),
                                                        unlabeled=unlabeled)
        self.model = model
        return model


@functools.lru_cache(maxsize=20_000)
def _diagnosis_payload(payload: tuple[str, str, int]) -> bool:
    """A dictionary payload ``(code, system, source id)`` of a diagnosis code: its word-bag match
    takes a trigger between its words (the matcher's ``within_for``)."""
    return payload[1] == CM


def _gram_pattern(gram: str) -> re.Pattern[str]:
    """The compiled pattern that finds a lexicon n-gram in a note (its words, any separators
    between them; compiled once: re's own cache of 512 patterns thrashes over thousands of n-grams)."""
    return re.compile(r"\b" + r"\W+".join(map(re.escape, gram.split())) + r"\b", re.I)


def _assertion(hits: Sequence[Any]) -> str:
    if not hits:
        return "affirmed"
    if any(h.assertion == "affirmed" for h in hits):
        return "affirmed"
    return Counter(h.assertion for h in hits).most_common(1)[0][0]


def _assertion_at(hits: Sequence[Any], spans: Sequence[tuple[int, int]]) -> str:
    """The assertion of the dictionary hits that overlap any of ``spans`` (as :func:`_assertion`);
    a history code read from the words (:func:`opencac.coding.history.history_hits`) does not
    change what they say."""
    return _assertion([h for h in hits if any(h.start < e and s < h.end for s, e in spans)
                       and HISTORY_OF not in h.attributes])


def _in_train_flags(cands: Sequence[Any]) -> list[bool]:
    """``bool(c.feat("in_train"))`` of each candidate; one column read when the candidates are
    the rows of one feature matrix (as :func:`build_candidates` makes them)."""
    mat = cands[0]._mat if cands else None
    if mat is not None and all(c._mat is mat and c._i == i for i, c in enumerate(cands)):
        return [v == v and v != 0.0 for v in mat[: len(cands), FEATURE_INDEX["in_train"]].tolist()]
    return [bool(c.feat("in_train")) for c in cands]


class _RelatedHits:
    """The hits of every matched code that extends or is a prefix of a code, in the order of
    ``hit_codes`` (what a hierarchy candidate without hits of its own shows)."""

    def __init__(self, hit_codes: dict[str, list[Any]]) -> None:
        self.hit_codes = hit_codes
        self.pos = {k: i for i, k in enumerate(hit_codes)}
        self.under: dict[str, list[str]] = {}
        for k in hit_codes:
            for n in range(1, len(k)):
                self.under.setdefault(k[:n], []).append(k)
        self.affirmed = {k: any(h.assertion == "affirmed" for h in hs) for k, hs in hit_codes.items()}
        # matched codes with no affirmed hit, their lengths, and every prefix of them: a code
        # related to none of them is affirmed (the usual case, decided without the lists)
        self.unaffirmed = {k for k, a in self.affirmed.items() if not a}
        self.unaffirmed_lens = sorted({len(k) for k in self.unaffirmed})
        self.unaffirmed_heads = {k[:n] for k in self.unaffirmed for n in range(1, len(k) + 1)}

    def assertion(self, code: str) -> str:
        """``_assertion(self(code))`` without gathering the hits when one related code has an
        affirmed hit (or none is related): the usual case, and all a suggestion that shows no
        evidence needs."""
        if code not in self.unaffirmed_heads and not any(
                n < len(code) and code[:n] in self.unaffirmed for n in self.unaffirmed_lens):
            return "affirmed"
        aff = self.affirmed
        keys = self.under.get(code, []) + [code[:n] for n in range(1, len(code)) if code[:n] in aff]
        if not keys or any(aff[k] for k in keys):
            return "affirmed"
        return _assertion(self(code))

    def __call__(self, code: str) -> list[Any]:
        keys = set(self.under.get(code, ()))
        keys.update(code[:n] for n in range(1, len(code)) if code[:n] in self.pos)
        keys.discard(code)
        return [h for k in sorted(keys, key=self.pos.__getitem__) for h in self.hit_codes[k]]


def _with_completions(kb: Any, kept: list[Any], doc: Any, as_of: dt.date | None) -> list[Any]:
    """The dictionary's ICD-10-CM candidates, each header code (C64 "neoplasm of kidney")
    followed by the billable code completing it from the note (C64.2 for a left kidney, else
    the unspecified C64.9), on the same evidence and with the header's score
    (:func:`opencac.coding.completion.complete_code`). Without a trained model nothing else
    proposes the codes below a matched header."""
    from opencac.coding.candidates import Candidate
    from opencac.coding.completion import complete_code

    have = {c.code for c in kept}
    out: list[Any] = []
    for c in kept:
        out.append(c)
        if not c.hits or c.feat("billable") or any(k != c.code and k.startswith(c.code) for k in have):
            continue  # a billable code, or a header the dictionary already found a code below
        window = " ".join(_around(doc, h) for h in c.hits[:3])
        got = complete_code(kb, c.code, window, as_of)
        if got is None or canon(got[0]) in have:
            continue
        key = canon(got[0])
        have.add(key)
        out.append(Candidate(key, feats={"kb_known": 1.0, "billable": 1.0, "code_len": float(len(key))},
                             hits=list(c.hits), via={"dict", "completion"},
                             rationale=[f"{got[1]}: {dotted(c.code, CM)} -> {got[0]}"]))
    return out


def _around(doc: Any, h: Any, width: int = 60) -> str:
    """The text of a hit's sentence within ``width`` characters of the mention."""
    lo, hi = max(0, h.start - width), h.end + width
    if 0 <= h.sentence < len(doc.sentences):
        sent = doc.sentences[h.sentence]
        lo, hi = max(lo, sent.start), min(hi, sent.end)
    return doc.text[lo:hi]


def _evidence(hits: Sequence[Any], limit: int = 5) -> list[Evidence]:
    out: list[Evidence] = []
    seen: set[tuple[int, int]] = set()
    for h in sorted(hits, key=lambda h: (h.subsumed, -h.score, h.start)):
        if (h.start, h.end) in seen:
            continue
        seen.add((h.start, h.end))
        out.append(Evidence(h.start, h.end, h.text, h.section, h.sentence))
        if len(out) >= limit:
            break
    return sorted(out, key=lambda e: e.start)


def _rationale(c: Any, hits: Sequence[Any]) -> list[str]:
    why: list[str] = list(c.rationale)
    for h in sorted(c.hits, key=lambda h: -h.score)[:3]:
        kind = "exact" if h.score >= 1.0 else f"words ({h.score:.2f})"
        why.append(f"{h.source} term '{h.phrase}' -> {h.code}{'-' if h.incomplete else ''} [{kind}, {h.assertion}]")
    if not c.hits and hits:
        codes = sorted({h.code for h in hits})[:3]
        if "pad" in c.via and "parent" not in c.via:
            why.append(f"placeholder form of matched {', '.join(codes)} with the 7th character left off "
                       "(the model learnt from its training codes which form its coders use)")
        else:
            rel = "parent of" if "parent" in c.via else "sibling in training data of"
            why.append(f"hierarchy: {rel} matched {', '.join(codes)}")
    return why
