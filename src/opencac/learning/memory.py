"""The fast-learning overlay: a feedback memory of coded notes and per-organisation code priors.

A decision takes effect at once: the decided document's features (a stateless hashing
vectoriser, so nothing needs refitting) and its positive / negative codes go into a memory;
a new note's nearest remembered notes vote for the codes coders accepted on them and
against the ones they rejected. Per-organisation priors count how often an organisation's
coders accept or reject each code. :meth:`FeedbackOverlay.adjust` applies both to a
:class:`~opencac.coding.types.CodingResult`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencac.coding.types import CodeSuggestion, CodingResult
from opencac.errors import FeedbackError
from opencac.learning.feedback import SYSTEMS, LabelledExample, TrainingDocument, canon

_N_FEATURES = 2**19


def _dotted(code: str, system: str) -> str:
    c = canon(code).upper()
    return c[:3] + "." + c[3:] if system == "icd10cm" and len(c) > 3 else c


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=_N_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2", lowercase=True,
        token_pattern=r"(?u)\b[^\W\d_][^\W_]+\b", binary=True,
    )


@dataclass(slots=True)
class CodePriors:
    """Per-organisation counts of accepted and rejected codes (Beta-smoothed acceptance rates).

    Attributes:
        counts: org -> canonical code -> ``[accepted, rejected]``.
        docs: org -> documents seen.
    """

    counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    docs: dict[str, int] = field(default_factory=dict)

    def observe(self, example: LabelledExample) -> None:
        """Count one labelled example."""
        c = self.counts.setdefault(example.org, {}).setdefault(f"{example.system}:{example.code}", [0, 0])
        c[0 if example.label else 1] += 1

    def acceptance(self, code: str, system: str, org: str = "default", a: float = 1.0, b: float = 1.0) -> float:
        """Smoothed share of decisions on ``code`` that accepted it (``(acc + a) / (n + a + b)``)."""
        acc, rej = self.counts.get(org, {}).get(f"{system}:{canon(code)}", [0, 0])
        return (acc + a) / (acc + rej + a + b)

    def get(self, code: str, system: str, org: str = "default") -> tuple[int, int]:
        """``(accepted, rejected)`` counts."""
        acc, rej = self.counts.get(org, {}).get(f"{system}:{canon(code)}", [0, 0])
        return acc, rej

    def frequency(self, code: str, system: str, org: str = "default") -> float:
        """Share of the organisation's documents carrying ``code`` (0 when none seen)."""
        n = self.docs.get(org, 0)
        return self.get(code, system, org)[0] / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "docs": self.docs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodePriors:
        return cls({o: {k: list(v) for k, v in m.items()} for o, m in data.get("counts", {}).items()},
                   dict(data.get("docs", {})))


class FeedbackOverlay:
    """Memory of coded documents + per-organisation priors, applied on top of an engine's result.

    Args:
        k: neighbours consulted per query.
        power: similarity exponent (sharper votes from closer notes).
        tau: pseudo-mass of "no remembered note" (keeps far notes from casting full votes).
        min_sim: neighbours below this cosine similarity are ignored.
        boost: weight of a positive memory vote (``conf + (1 - conf) * boost * vote``).
        penalty: weight of a negative vote / a high rejection rate.
        add_threshold: memory vote at which a code the engine did not suggest is added.
        select_threshold: confidence at which an adjusted suggestion is marked ``selected``.
        use_memory_positives: whether positive memory votes are applied (turn off when the
            engine's own model was updated with the same documents, to avoid counting twice).

    Attributes:
        ids_: remembered document ids (one memory row each).
        pos_ / neg_: per row, ``{system: [canonical codes]}`` accepted / rejected.
        orgs_: per row, the organisation.
        X_: the rows' hashed features (scipy CSR), or ``None`` while empty.
        priors_: :class:`CodePriors`.
        descriptions_: code -> description seen in decisions (for codes the engine lacks).
    """

    def __init__(
        self,
        k: int = 10,
        power: float = 2.0,
        tau: float = 0.02,
        min_sim: float = 0.1,
        boost: float = 0.9,
        penalty: float = 0.7,
        add_threshold: float = 0.15,
        select_threshold: float = 0.5,
        use_memory_positives: bool = True,
    ) -> None:
        self.k = k
        self.power = power
        self.tau = tau
        self.min_sim = min_sim
        self.boost = boost
        self.penalty = penalty
        self.add_threshold = add_threshold
        self.select_threshold = select_threshold
        self.use_memory_positives = use_memory_positives
        self.ids_: list[str] = []
        self.pos_: list[dict[str, list[str]]] = []
        self.neg_: list[dict[str, list[str]]] = []
        self.orgs_: list[str] = []
        self.X_: Any = None
        self.priors_ = CodePriors()
        self.descriptions_: dict[str, str] = {}
        self.engine_learned_: set[str] = set()
        self._index: dict[str, int] = {}
        self._vec: Any = None

    # -- learning ---------------------------------------------------------------------
    def _row(self, doc_id: str, text: str | None, org: str) -> int:
        if doc_id in self._index:
            return self._index[doc_id]
        if text is None:
            raise FeedbackError(
                f"document {doc_id!r} is not in the feedback memory yet; pass its text with the first decision."
            )
        import scipy.sparse as sp

        if self._vec is None:
            self._vec = _vectorizer()
        x = self._vec.transform([text])
        self.X_ = x if self.X_ is None else sp.vstack([self.X_, x], format="csr")
        self.ids_.append(doc_id)
        self.pos_.append({s: [] for s in SYSTEMS})
        self.neg_.append({s: [] for s in SYSTEMS})
        self.orgs_.append(org)
        self._index[doc_id] = len(self.ids_) - 1
        self.priors_.docs[org] = self.priors_.docs.get(org, 0) + 1
        return self._index[doc_id]

    def learn_example(self, example: LabelledExample, text: str | None = None) -> None:
        """Take one labelled example into the memory and priors (effective immediately).

        Args:
            example: the example.
            text: the document's note; required the first time a document is seen.
        """
        i = self._row(example.doc_id, text, example.org)
        add, drop = (self.pos_[i], self.neg_[i]) if example.label else (self.neg_[i], self.pos_[i])
        if example.code not in add[example.system]:
            add[example.system].append(example.code)
        if example.code in drop[example.system]:
            drop[example.system].remove(example.code)
        self.priors_.observe(example)

    def learn_examples(self, examples: Iterable[LabelledExample], texts: dict[str, str]) -> int:
        """Learn many examples; ``texts`` maps doc id -> note for documents not yet remembered."""
        n = 0
        for ex in examples:
            self.learn_example(ex, texts.get(ex.doc_id))
            n += 1
        return n

    def learn_documents(self, docs: Iterable[TrainingDocument]) -> int:
        """Remember whole coded documents (all their codes accepted, rejected ones negative), in one batch."""
        docs = list(docs)
        new = [d for d in docs if d.id not in self._index]
        if new:
            import scipy.sparse as sp

            if self._vec is None:
                self._vec = _vectorizer()
            X = self._vec.transform([d.text for d in new])
            self.X_ = X if self.X_ is None else sp.vstack([self.X_, X], format="csr")
            for d in new:
                self.ids_.append(d.id)
                self.pos_.append({s: [] for s in SYSTEMS})
                self.neg_.append({s: [] for s in SYSTEMS})
                self.orgs_.append(d.org)
                self._index[d.id] = len(self.ids_) - 1
                self.priors_.docs[d.org] = self.priors_.docs.get(d.org, 0) + 1
        for d in docs:
            for s in SYSTEMS:
                for c in d.codes.get(s, []):
                    self.learn_example(LabelledExample(d.id, canon(c), s, True, "accept", org=d.org))
                for c in d.rejected.get(s, []):
                    self.learn_example(LabelledExample(d.id, canon(c), s, False, "reject", org=d.org))
        return len(docs)

    def mark_engine_learned(self, doc_ids: Iterable[str]) -> None:
        """Documents the engine's own model has learnt: their accepted codes no longer vote.

        The engine's incremental update already knows them (and ranks them better, see
        ``bench/RESULTS-learning.md``); counting them twice hurts the ranking. Their rejected
        codes still vote against.
        """
        self.engine_learned_.update(doc_ids)

    def __len__(self) -> int:
        return len(self.ids_)

    # -- applying ---------------------------------------------------------------------
    def votes(self, text: str, exclude: str | None = None) -> dict[tuple[str, str], tuple[float, float, str]]:
        """Memory votes for a note: ``(system, code) -> (positive vote, negative vote, nearest doc id)``.

        A vote is ``sum(sim^p over neighbours with the code) / (sum(sim^p over neighbours) + tau)``.
        """
        if self.X_ is None or not self.ids_:
            return {}
        if self._vec is None:
            self._vec = _vectorizer()
        q = self._vec.transform([text])
        sims = (self.X_ @ q.T).toarray().ravel()
        if exclude is not None and exclude in self._index:
            sims[self._index[exclude]] = 0.0
        order = sims.argsort()[::-1][: self.k]
        neigh = [(int(i), float(sims[i])) for i in order if sims[i] >= self.min_sim]
        if not neigh:
            return {}
        weights = [(i, s**self.power) for i, s in neigh]
        denom = sum(w for _, w in weights) + self.tau
        out: dict[tuple[str, str], list[Any]] = {}
        for i, w in weights:
            engine_knows = self.ids_[i] in self.engine_learned_
            for s in SYSTEMS:
                for c in () if engine_knows else self.pos_[i][s]:
                    v = out.setdefault((s, c), [0.0, 0.0, self.ids_[i]])
                    v[0] += w / denom
                for c in self.neg_[i][s]:
                    v = out.setdefault((s, c), [0.0, 0.0, self.ids_[i]])
                    v[1] += w / denom
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def adjust(self, result: CodingResult, text: str, org: str = "default", exclude_self: bool = False) -> CodingResult:
        """Apply the memory and priors to a result in place (re-ranked); returns it.

        Confidence of a suggestion with positive vote ``v+`` and negative vote ``v-`` becomes
        ``c + (1 - c) * boost * v+`` then ``* (1 - penalty * v-)``; a code this organisation's
        coders rejected more often than accepted is scaled by its smoothed acceptance rate.
        Codes the engine missed enter when ``v+ >= add_threshold``.

        Args:
            result: the engine's result.
            text: the note.
            org: the organisation (priors).
            exclude_self: ignore a remembered document with the same id (for evaluation).
        """
        votes = self.votes(text, exclude=result.doc_id if exclude_self else None)
        for system in SYSTEMS:
            sugg = result.ranked(system)
            have = {canon(s.code): s for s in sugg}
            for (sy, code), (vp, vn, nearest) in votes.items():
                if sy != system:
                    continue
                s = have.get(code)
                if s is None:
                    if not self.use_memory_positives or vp < self.add_threshold:
                        continue
                    s = CodeSuggestion(
                        code=_dotted(code, system), system=system,
                        description=self.descriptions_.get(f"{system}:{code}", ""), confidence=0.0,
                        rationale=[], signals={},
                    )
                    sugg.append(s)
                    have[code] = s
                c = float(s.confidence)
                if self.use_memory_positives and vp > 0:
                    c = c + (1 - c) * self.boost * min(1.0, vp)
                    s.rationale.append(f"coders accepted it on similar notes (nearest {nearest}, vote {vp:.2f})")
                if vn > 0:
                    c *= 1 - self.penalty * min(1.0, vn)
                    s.rationale.append(f"coders rejected it on similar notes (vote {vn:.2f})")
                s.signals["feedback_pos"] = round(vp, 4)
                s.signals["feedback_neg"] = round(vn, 4)
                s.confidence = c
            for s in sugg:
                acc, rej = self.priors_.get(s.code, system, org)
                if rej > acc:
                    rate = self.priors_.acceptance(s.code, system, org)
                    s.confidence *= 1 - self.penalty * (1 - rate)
                    s.signals["org_acceptance"] = round(rate, 4)
                    s.rationale.append(f"{org} coders rejected it {rej} of {acc + rej} times")
            sugg.sort(key=lambda x: -x.confidence)
            for r, s in enumerate(sugg, 1):
                s.rank = r
                if "feedback_pos" in s.signals or "org_acceptance" in s.signals:
                    s.selected = s.confidence >= self.select_threshold and s.assertion not in (
                        "negated", "family", "hypothetical")
        return result

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``memory.npz`` + ``memory.json`` into ``directory``."""
        import scipy.sparse as sp

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.X_ is not None:
            sp.save_npz(d / "memory.npz", self.X_)
        meta = {
            "params": {k: getattr(self, k) for k in ("k", "power", "tau", "min_sim", "boost", "penalty",
                                                    "add_threshold", "select_threshold", "use_memory_positives")},
            "ids": self.ids_, "pos": self.pos_, "neg": self.neg_, "orgs": self.orgs_,
            "priors": self.priors_.to_dict(), "descriptions": self.descriptions_,
            "engine_learned": sorted(self.engine_learned_),
        }
        (d / "memory.json").write_text(json.dumps(meta), encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> FeedbackOverlay:
        """Read an overlay written by :meth:`save` (an empty overlay when none is there).

        Raises:
            FeedbackError: a damaged memory.
        """
        d = Path(directory)
        if not (d / "memory.json").is_file():
            return cls()
        try:
            meta = json.loads((d / "memory.json").read_text(encoding="utf-8"))
            ov = cls(**meta.get("params", {}))
            ov.ids_, ov.pos_, ov.neg_, ov.orgs_ = meta["ids"], meta["pos"], meta["neg"], meta["orgs"]
            ov.priors_ = CodePriors.from_dict(meta.get("priors", {}))
            ov.descriptions_ = dict(meta.get("descriptions", {}))
            ov.engine_learned_ = set(meta.get("engine_learned", []))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise FeedbackError(f"feedback memory in {d} is damaged ({exc.__class__.__name__}).") from None
        if (d / "memory.npz").is_file():
            import scipy.sparse as sp

            ov.X_ = sp.load_npz(d / "memory.npz").tocsr()
            if ov.X_.shape[0] != len(ov.ids_):
                raise FeedbackError(f"feedback memory in {d} is damaged (rows and ids differ).")
        ov._index = {k: i for i, k in enumerate(ov.ids_)}
        return ov
