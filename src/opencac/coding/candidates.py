"""Candidate generation and features: knowledge-layer hits + supervised signals + hierarchy.

For one document and one code system, :func:`build_candidates` gathers

* dictionary candidates: every code a dictionary phrase leads to; incomplete index codes
  (``D49.51-``, PCS ``0TB``) and their training-corpus completions;
* hierarchy candidates: the parent category of a matched code and the training codes under
  the same category (siblings) - this is how codes never seen in training, or seen only
  under a sibling, get proposed with the support of both layers;
* supervised candidates: the top codes of the ridge, kNN and lexicon models;

and computes one feature row per candidate (:data:`FEATURES`). Codes are canonical keys
(lowercase, no dots) throughout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from opencac.coding.corpus import canon
from opencac.coding.dictionary import DictHit

SOURCES = ("tabular", "inclusion", "index", "eindex", "neoplasm", "pcs-index", "pcs-table", "imaging", "pcs-bodypart")
ASSERTION_KEYS = ("affirmed", "negated", "uncertain", "historical", "family", "hypothetical")

FEATURES: tuple[str, ...] = (
    # supervised
    "kr", "kr_rank", "knn", "knn_rank", "lex", "lex_rank", "lex_sum", "lex_n", "kr_rel", "lex_rel",
    "prior_log", "in_train", "slex",
    "cat_kr_max", "cat_knn_sum", "cat_lex_max", "cat_prior_log", "cat_n_train", "cat_slex_max",
    "cat4_kr_max", "cat4_knn_sum", "cat4_prior_log", "cat4_slex_max", "slex_sum", "slex_n",
    # dictionary
    "d_n", "d_best", "d_exact", "d_unsubsumed", "d_maxtok", "d_nsent", "d_incomplete",
    *(f"d_src_{s}" for s in SOURCES),
    *(f"d_as_{a}" for a in ASSERTION_KEYS), "d_aff_frac",
    "d_desc_n", "d_desc_best", "d_anc_n", "d_anc_best", "cat_d_n", "cat_d_best", "d_first_sent_rel",
    # how often training coders coded what the dictionary matched (HitPrecision)
    "hp_n", "hp_rate", "hp_below_rate", "hp_phrase_n", "hp_phrase_rate", "hp_anc_below_rate", "hp_cat_rate",
    "hp_cat4_rate",
    # words of the code's title found in the note (all of them / those its parent's title lacks)
    "desc_cov", "desc_extra_cov", "desc_extra_n",
    # code
    "code_len", "kb_known", "billable", "via_dict", "via_parent", "via_sibling", "via_sup", "via_child",
    # document
    "doc_hits", "doc_len",
    # appended later (a model trained before a column was added reads the columns before it:
    # ``EngineModel.rank``): the code's title says "unspecified"
    "title_unspecified",
    # the share of its dictionary hits inside a longer match naming a more specific form
    # ("hernia" in "inguinal hernia": DictHit.specified)
    "d_specified",
    # 1: the placeholder form of a code whose 7th character is left off (V87.9XX); 0: the code
    # it pads (V87.9); missing otherwise (:func:`_padded`)
    "pad_twin",
    # the sentence ridge (SentenceRidge): the best sentence's score, its rank among the
    # training codes, and the best of the candidate's category
    "skr", "skr_rank", "cat_skr_max",
)
#: The number of FEATURES of models trained before the manifest recorded it (``n_features``).
LEGACY_N_FEATURES = 76
FEATURE_INDEX = {f: i for i, f in enumerate(FEATURES)}
#: The supervised signals whose top codes become candidates.
SUP_SOURCES: tuple[str, ...] = ("kr", "knn", "lex", "skr")
#: The sentence ridge proposes its best 50 codes at most (its codes beyond them added 8 % of the
#: CPU per note and nothing to dev MAP with the same rankers; bench/RESULTS-engine.md, session 22).
SKR_TOP_N = 50


class Candidate:
    """A candidate code with its feature values, dictionary hits and how it was found.

    :func:`build_candidates` computes the features of all of a note's candidates at once, as
    the rows of one float64 matrix (:data:`FEATURES` order, NaN where missing); ``feats`` is a
    candidate's row as a dict of the values present (built on first use), plus any dictionary
    source that is no ranker feature (``d_src_clinical``). A candidate made directly keeps the
    ``feats`` dict it is given.
    """

    __slots__ = ("code", "hits", "via", "rationale", "_feats", "_mat", "_i", "_extra")

    def __init__(self, code: str, feats: dict[str, float] | None = None, hits: list[DictHit] | None = None,
                 via: set[str] | None = None, rationale: list[str] | None = None) -> None:
        self.code = code
        self.hits: list[DictHit] = hits if hits is not None else []
        self.via: set[str] = via if via is not None else set()
        self.rationale: list[str] = rationale if rationale is not None else []
        self._feats = feats
        self._mat: np.ndarray | None = None
        self._i = 0
        self._extra: dict[str, float] | None = None

    @property
    def feats(self) -> dict[str, float]:
        f = self._feats
        if f is None:
            f = {}
            if self._mat is not None:
                f = {k: v for k, v in zip(FEATURES, self._mat[self._i].tolist()) if v == v}
                if self._extra:
                    f.update(self._extra)
            self._feats = f
        return f

    def feat(self, name: str) -> float | None:
        """One feature's value (None when missing), without building ``feats``."""
        if self._feats is None and self._mat is not None:
            j = FEATURE_INDEX.get(name)
            if j is None:
                return (self._extra or {}).get(name)
            v = float(self._mat[self._i, j])
            return None if v != v else v
        return self.feats.get(name)

    def __repr__(self) -> str:
        return f"Candidate({self.code!r}, via={sorted(self.via)}, hits={len(self.hits)})"


def _kb_memo(store: dict[int, tuple[Any, dict[str, Any]]], kb: Any) -> dict[str, Any]:
    """The memo dict ``store`` keeps for this knowledge-base object (a new one for a new object
    that reuses a freed object's id)."""
    ent = store.get(id(kb))
    if ent is None or ent[0] is not kb:
        ent = store[id(kb)] = (kb, {})
    return ent[1]


_FIND_CACHE: dict[int, tuple[Any, dict[str, Any]]] = {}


def _memo_key(code: str, system: str | None) -> str:
    """Memo key of a code: ICD-10-PCS keys apart, since a PCS table prefix can spell an
    ICD-10-CM code (``b020``: CT of the brain, or B02.0 zoster encephalitis)."""
    return "#" + code if system == "icd10pcs" else code


def _find(kb: Any, code: str, system: str | None = None) -> Any:
    """``kb.find`` memoised per knowledge-base object (codes repeat across notes); ``system``
    ``icd10pcs`` looks the code up among ICD-10-PCS codes only."""
    cache = _kb_memo(_FIND_CACHE, kb)
    key = _memo_key(code, system)
    if key not in cache:
        if len(cache) > 500_000:
            cache.clear()
        cache[key] = kb.find(code, "icd10pcs") if system == "icd10pcs" else kb.find(code)
    return cache[key]


def _finder(kb: Any, system: str | None = None) -> Any:
    """``lambda code: _find(kb, code, system)`` with the memo looked up once."""
    cache = _kb_memo(_FIND_CACHE, kb)
    pcs = system == "icd10pcs"

    def find(code: str) -> Any:
        try:
            return cache["#" + code if pcs else code]
        except KeyError:
            return _find(kb, code, system)

    return find


_CHILD_CACHE: dict[int, tuple[Any, dict[str, list[str]]]] = {}


def _children(kb: Any, code: str, limit: int) -> list[str]:
    """Canonical keys of a code's direct children in the knowledge base (memoised; empty when
    the code is unknown, a leaf or has more than ``limit`` children)."""
    cache = _kb_memo(_CHILD_CACHE, kb)
    key = f"{code}/{limit}"
    if key not in cache:
        try:
            kids = [canon(k.code) for k in kb.children(code)] if _find(kb, code) is not None else []
        except Exception:
            kids = []
        cache[key] = kids if len(kids) <= limit else []
    return cache[key]


_PAD_CACHE: dict[int, tuple[Any, dict[str, str | None]]] = {}


def _padded(kb: Any, code: str) -> str | None:
    """The 6-character placeholder form of an ICD-10-CM code that needs a 7th character after
    X placeholders (``v879`` -> ``v879xx``: its codes are V87.9XXA/D/S), or None (memoised).

    Coders who leave the 7th character off write the placeholders (CodiEsp's "W19.XXX",
    "S62.92X"); a trained engine proposes that form beside the code's own and its ranker learns
    from the training labels which one the coders used (ICD-10-CM Official Guidelines I.A.5:
    the placeholder X fills the empty characters when a 7th character applies)."""
    cache = _kb_memo(_PAD_CACHE, kb)
    if code in cache:
        return cache[code]
    got = None
    obj = _find(kb, code) if len(code) < 6 else None
    if obj is not None and canon(obj.code) == code:  # the code itself, not a form the kb reads as it
        target = code + "x" * (6 - len(code))
        kids = _children(kb, code, 26)  # a 7th character has at most 26 values
        if kids and all(len(k) == 7 and k.startswith(target) for k in kids):
            got = target
    cache[code] = got
    return got


_WORD_RE = re.compile(r"[a-z]+")
_TITLE_STOP = frozenset({"and", "or", "of", "the", "with", "without", "to", "in", "on", "by", "for", "other",
                         "unspecified", "nos", "not", "elsewhere", "classified", "due", "site", "specified",
                         "approach", "open", "percutaneous", "device", "qualifier", "no", "none", "type"})


def _stem_word(w: str) -> str:
    for suf in ("ies", "es", "s"):
        if len(w) > 4 and w.endswith(suf):
            return w[: -len(suf)] + ("y" if suf == "ies" else "")
    return w


_STEMS: dict[str, str] = {}


def _words(text: str) -> set[str]:
    """Stemmed content words of a text (each distinct word stemmed once, stems memoised)."""
    stems = _STEMS
    out: set[str] = set()
    for w in set(_WORD_RE.findall(text.lower())):
        st = stems.get(w)
        if st is None:
            st = "" if w in _TITLE_STOP or len(w) <= 2 else _stem_word(w)
            if len(stems) < 200_000:
                stems[w] = st
        if st:
            out.add(st)
    return out


_TITLE_CACHE: dict[int, tuple[Any, dict[str, tuple[frozenset[str], frozenset[str]]]]] = {}


def _title_words(kb: Any, code: str, system: str | None = None) -> tuple[frozenset[str], frozenset[str]]:
    """Content words of a code's title and those of them its parent's title lacks (memoised)."""
    cache = _kb_memo(_TITLE_CACHE, kb)
    key = _memo_key(code, system)
    if key not in cache:
        obj = _find(kb, code, system)
        own = frozenset(_words(obj.description)) if obj is not None else frozenset()
        par = None
        for n in range(len(code) - 1, 2, -1):
            par = _find(kb, code[:n], system)
            if par is not None:
                break
        extra = own - _words(par.description) if par is not None else own
        cache[key] = (own, frozenset(extra))
    return cache[key]


def _cat(code: str) -> str:
    return code[:3]


_PREFIX_CACHE: dict[int, tuple[Any, dict[str, tuple[np.ndarray, float, float]], dict[str, list[str]]]] = {}


def _prefix_tables(sup: Any) -> tuple[dict[str, tuple[np.ndarray, float, float]], dict[str, list[str]]]:
    """Per code prefix of a supervised layer: (code indices, log1p of their summed priors,
    their number), and its training codes (canonical keys) in ``prefix_index_`` order; built
    once per ``prefix_index_`` (a layer update replaces it)."""
    pi = sup.prefix_index_
    ent = _PREFIX_CACHE.get(id(sup))
    if ent is None or ent[0] is not pi:
        prior, codes = sup.prior_, sup.codes_
        arrays, names = {}, {}
        for prefix, idx in pi.items():
            names[prefix] = [codes[i] for i in idx]
            if idx:
                ii = np.asarray(idx)
                arrays[prefix] = (ii, math.log1p(float(prior[ii].sum())), float(len(ii)))
        if len(_PREFIX_CACHE) > 8:
            _PREFIX_CACHE.clear()
        ent = _PREFIX_CACHE[id(sup)] = (pi, arrays, names)
    return ent[1], ent[2]


def _prefix_arrays(sup: Any) -> dict[str, tuple[np.ndarray, float, float]]:
    """The first table of :func:`_prefix_tables`."""
    return _prefix_tables(sup)[0]


def _cat_signals(prefixes: dict[str, tuple[np.ndarray, float, float]], keys: list[str],
                 sig: dict[str, np.ndarray], row: int) -> dict[str, tuple[float, ...]]:
    """``cat_sup`` of many prefixes at once: maxima by one ``reduceat`` over their
    concatenated code indices; sums per prefix (``ndarray.sum`` rounds as before)."""
    if not keys:
        return {}
    arrs = [prefixes[k][0] for k in keys]
    starts = np.cumsum([0] + [len(a) for a in arrs[:-1]])
    ii = np.concatenate(arrs)
    kr = np.maximum.reduceat(sig["kr"][row][ii], starts).tolist()
    lx = np.maximum.reduceat(sig["lex"][row][ii], starts).tolist()
    sl = np.maximum.reduceat(sig["slex"][row][ii], starts).tolist()
    sk = np.maximum.reduceat(sig["skr"][row][ii], starts).tolist() if "skr" in sig else [0.0] * len(keys)
    knn = sig["knn"][row][ii]
    # ndarray.sum of a prefix's kNN votes, most of them zero: adding zeros is exact, so with at
    # most two votes in the prefix every order of summation gives the same float32; three or
    # more are summed as before
    voted = np.add.reduceat((knn != 0).astype(np.int32), starts).tolist()
    few = np.add.reduceat(knn, starts).tolist()
    knn_row = sig["knn"][row]
    return {k: (kr[i], few[i] if voted[i] <= 2 else float(knn_row[arrs[i]].sum()), lx[i], prefixes[k][1],
                prefixes[k][2], sl[i], sk[i])
            for i, k in enumerate(keys)}


def _rows(tuples: Sequence[Sequence[float]], width: int) -> np.ndarray:
    """``np.array(tuples, dtype=float64)`` of equal-length tuples (``width`` each), built from one
    flat iterator (twice as fast for a note's few hundred rows; the same values)."""
    return np.fromiter(chain.from_iterable(tuples), dtype=np.float64, count=len(tuples) * width).reshape(
        len(tuples), width)


def _hit_stats(hits: Sequence[DictHit]) -> dict[str, float]:
    f: dict[str, float] = {}
    if not hits:
        return f
    f["d_n"] = float(len(hits))
    f["d_best"] = max(h.score for h in hits)
    f["d_exact"] = float(any(h.score >= 1.0 for h in hits))
    f["d_unsubsumed"] = float(sum(1 for h in hits if not h.subsumed))
    f["d_maxtok"] = float(max(h.n_tokens for h in hits))
    f["d_nsent"] = float(len({h.sentence for h in hits}))
    f["d_incomplete"] = float(all(h.incomplete for h in hits))
    for h in hits:
        key = f"d_src_{h.source}"
        f[key] = max(f.get(key, 0.0), h.score)
        akey = f"d_as_{h.assertion}" if h.assertion in ASSERTION_KEYS else "d_as_affirmed"
        f[akey] = f.get(akey, 0.0) + 1.0
    f["d_aff_frac"] = f.get("d_as_affirmed", 0.0) / len(hits)
    f["d_specified"] = sum(1 for h in hits if h.specified) / len(hits)
    return f


def build_candidates(
    system: str,
    hits: Sequence[DictHit],
    sup: Any | None,
    sig: dict[str, np.ndarray] | None,
    row: int,
    kb: Any | None,
    doc_len: int,
    top_n: int = 30,
    max_children: int = 12,
    text: str | None = None,
) -> dict[str, Candidate]:
    """Candidates and features of one document for one code system.

    Args:
        system: ``icd10cm`` or ``icd10pcs``.
        hits: the document's dictionary hits of that system.
        sup: the system's :class:`~opencac.coding.supervised.SupervisedLayer` (None: dictionary only).
        sig: ``sup.scores(...)`` for a batch of documents; ``row`` selects this document.
        kb: the knowledge base (for code validity / billable flags; may be None).
        doc_len: number of words of the document.
        top_n: supervised candidates taken from each signal.
        max_children: with a supervised layer, ICD-10-CM codes of the knowledge base directly
            below a matched code become candidates when there are at most this many (0: none).
        text: the note (for the title-word features; None leaves them missing).
    """
    cands: dict[str, Candidate] = {}

    def get(code: str) -> Candidate:
        c = cands.get(code)
        if c is None:
            c = cands[code] = Candidate(code)
        return c

    by_code: dict[str, list[DictHit]] = {}
    for h in hits:
        by_code.setdefault(canon(h.code), []).append(h)
    codes = sup.codes_ if sup is not None else []
    prefixes, prefix_codes = _prefix_tables(sup) if sup is not None else ({}, {})

    # dictionary + hierarchy candidates
    for code, hs in by_code.items():
        c = get(code)
        c.via.add("dict")
        c.hits.extend(hs)
        if system == "icd10cm":
            if len(code) > 3:
                for n in range(3, len(code)):
                    get(code[:n]).via.add("parent")
            for s in prefix_codes.get(_cat(code), ()):
                get(s).via.add("sibling")
            if sup is not None and kb is not None and max_children:
                # codes of the knowledge base below a matched code that needs more characters
                # (a hit on R22 "localized swelling" coded R22.0): new codes get proposed too
                for k in _children(kb, code, max_children):
                    get(k).via.add("child")
        else:
            if len(code) >= 4:
                get(code[:4]).via.add("parent")
            if (len(code) == 4 and code[0] == "b" and kb is not None and _find(kb, code + "zzz", system) is not None
                    and not all(h.attributes.get("contrast") == "given" for h in hs)):
                # imaging: CodiEsp codes both the 4-character node and the complete code
                # (no contrast, no qualifier: "ZZZ"), unless the note says contrast was used
                get(code + "zzz").via.add("parent")
            for s in prefix_codes.get(code[:4] if len(code) >= 4 else code, ()):
                get(s).via.add("sibling")

    # supervised candidates: each signal's top codes, in the order first seen
    if sup is not None and sig is not None:
        tops: list[int] = []
        for key in SUP_SOURCES:
            if key not in sig:
                continue
            v = sig[key][row]
            n = min(top_n, SKR_TOP_N) if key == "skr" else top_n
            top = np.argpartition(-v, min(n, len(v) - 1))[:n] if len(v) > n else np.arange(len(v))
            tops.extend(top[v[top] > 0].tolist())
        for j in dict.fromkeys(tops):
            code = codes[j]
            c = cands.get(code)
            if c is None:
                c = cands[code] = Candidate(code)
            c.via.add("sup")

    # a trained engine also proposes the placeholder form of codes needing a 7th character
    pads: dict[str, str] = {}
    if system == "icd10cm" and sup is not None and kb is not None:
        for code in list(cands):
            padded = _padded(kb, code)
            if padded is not None:
                get(padded).via.add("pad")
                pads[code] = padded

    if not cands:
        return cands

    # features: one column at a time over all candidates (float64; NaN = missing)
    keys = list(cands)
    cl = list(cands.values())
    n_c = len(keys)
    col = FEATURE_INDEX
    F = np.full((n_c, len(FEATURES)), np.nan)
    pos = {code: i for i, code in enumerate(keys)}
    hp = getattr(sup, "hit_precision_", None) if sup is not None else None

    # dictionary hits of the candidate itself (the candidates of `by_code`)
    max_sent = float(max((h.sentence for h in hits), default=0)) or 1.0
    for code in by_code:
        i = pos[code]
        c = cl[i]
        for key, v in _hit_stats(c.hits).items():
            j = col.get(key)
            if j is None:
                if c._extra is None:
                    c._extra = {}
                c._extra[key] = v
            else:
                F[i, j] = v
        F[i, col["d_first_sent_rel"]] = min(h.sentence for h in c.hits) / max_sent
        if hp is not None:
            best_n, best_rate = 0.0, float("nan")
            for h in c.hits:
                pn, pg = hp.phrase_stats(h.phrase, code)
                if pn and not best_rate >= pg / (pn + 1.0):
                    best_n, best_rate = float(pn), pg / (pn + 1.0)
            F[i, col["hp_phrase_n"]], F[i, col["hp_phrase_rate"]] = best_n, best_rate

    # how often training coders coded what the dictionary matched
    if hp is not None:
        A = _rows([hp.features(code) for code in keys], 5)
        nn = A[:, 0]
        has = nn != 0
        den = nn + 1.0
        F[:, col["hp_n"]] = nn
        F[:, col["hp_rate"]] = np.where(has, A[:, 1] / den, np.nan)
        F[:, col["hp_below_rate"]] = np.where(has, A[:, 2] / den, np.nan)
        F[:, col["hp_cat_rate"]] = A[:, 3]
        F[:, col["hp_cat4_rate"]] = A[:, 4]

    # supervised signals of the candidates seen in training; rank 1e4 for the others
    index = sup.index_ if sup is not None else {}
    js = [index.get(code) for code in keys]
    rank_cols = [col["kr_rank"], col["knn_rank"], col["lex_rank"], col["skr_rank"]]
    F[:, rank_cols] = 1e4
    kr_top = float(sig["kr"][row].max()) if sig is not None and sig["kr"].shape[1] else 0.0
    lex_top = float(sig["lex"][row].max()) if sig is not None and sig["lex"].shape[1] else 0.0
    if sup is not None and sig is not None:
        rows_in = np.array([i for i, j in enumerate(js) if j is not None], dtype=np.int64)
        jj = np.array([j for j in js if j is not None], dtype=np.int64)
        if len(jj):
            got = {}
            for key in ("kr", "knn", "lex", "lex_sum", "lex_n", "slex", "slex_sum", "slex_n", "skr"):
                got[key] = sig[key][row][jj].astype(np.float64) if key in sig else np.zeros(len(jj))
                F[rows_in, col[key]] = got[key]
            for key in ("kr", "knn", "lex", "skr"):
                if key not in sig:
                    continue
                v = sig[key][row]
                r = np.empty(len(v), dtype=np.float32)
                r[np.argsort(-v, kind="stable")] = np.arange(1, len(v) + 1)
                F[rows_in, col[key + "_rank"]] = r[jj]
            F[rows_in, col["kr_rel"]] = got["kr"] / max(kr_top, 1e-6)
            F[rows_in, col["lex_rel"]] = got["lex"] / max(lex_top, 1e-6)
            F[rows_in, col["prior_log"]] = [math.log1p(p) for p in sup.prior_[jj].tolist()]
            F[rows_in, col["in_train"]] = 1.0

    # category signals (absent prefix: zeros)
    cat_cache: dict[str, tuple[float, ...]] = {}
    if sig is not None and prefixes:
        needed = {code[:3] for code in keys} | {code[:4] for code in keys if len(code) >= 4}
        cat_cache.update(_cat_signals(prefixes, [p for p in needed if p in prefixes], sig, row))
    zero7 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    F[:, [col["cat_kr_max"], col["cat_knn_sum"], col["cat_lex_max"], col["cat_prior_log"], col["cat_n_train"],
          col["cat_slex_max"], col["cat_skr_max"]]] = \
        _rows([cat_cache.get(code[:3], zero7) for code in keys], 7)
    long4 = [i for i, code in enumerate(keys) if len(code) >= 4]
    if long4:
        A4 = _rows([cat_cache.get(keys[i][:4], zero7) for i in long4], 7)
        F[np.ix_(long4, [col["cat4_kr_max"], col["cat4_knn_sum"], col["cat4_prior_log"], col["cat4_slex_max"]])] = \
            A4[:, [0, 1, 3, 5]]

    # hits on descendants (the candidate is a prefix of a matched code), on ancestors, and on
    # the candidate's category
    desc_hits: dict[str, list[DictHit]] = {}
    for k, hs in by_code.items():
        for n in range(1, len(k)):
            desc_hits.setdefault(k[:n], []).extend(hs)
    for p, hs in desc_hits.items():
        i = pos.get(p)
        if i is not None:
            F[i, col["d_desc_n"]] = float(len(hs))
            F[i, col["d_desc_best"]] = max(h.score for h in hs)
    if by_code:
        m = min(map(len, by_code))  # no shorter code can be an ancestor
        heads = {k[:m] for k in by_code}
        for i, code in enumerate(keys):
            if code[:m] not in heads:
                continue
            anc = [h for n in range(m, len(code)) for h in by_code.get(code[:n], ())]
            if anc:
                F[i, col["d_anc_n"]] = float(len(anc))
                F[i, col["d_anc_best"]] = max(h.score for h in anc)
                if hp is not None:
                    F[i, col["hp_anc_below_rate"]] = max(
                        below / (n_hit + 1.0) for n_hit, _, below in
                        (hp.code_stats(code[:n]) for n in range(m, len(code)) if code[:n] in by_code))
        cat_stats: dict[str, tuple[float, float]] = {}  # hits and best score per category
        for code, hs in by_code.items():
            n0, b0 = cat_stats.get(_cat(code), (0.0, -math.inf))
            cat_stats[_cat(code)] = (n0 + len(hs), max(b0, *(h.score for h in hs)))
        in_cat = [(i, cat_stats[code[:3]]) for i, code in enumerate(keys) if code[:3] in cat_stats]
        if in_cat:
            ii = [i for i, _ in in_cat]
            F[ii, col["cat_d_n"]] = [s[0] for _, s in in_cat]
            F[ii, col["cat_d_best"]] = [s[1] for _, s in in_cat]

    # the code itself
    F[:, col["code_len"]] = [float(len(code)) for code in keys]
    if kb is not None:
        find = _finder(kb, system)
        objs = [find(code) for code in keys]
        F[:, col["kb_known"]] = [obj is not None for obj in objs]
        F[:, col["billable"]] = [bool(obj is not None and obj.billable) for obj in objs]
        # CodiEsp's coders often took the "unspecified" code of a category where a sibling
        # was also worded in the note (C64.9 for a "right renal mass"): the ranker may learn it
        F[:, col["title_unspecified"]] = [obj is not None and "unspecified" in obj.description.lower()
                                          for obj in objs]
    for name in ("dict", "parent", "sibling", "sup", "child"):
        F[:, col["via_" + name]] = [name in c.via for c in cl]
    if text is not None and kb is not None:
        note_words = _words(text)
        titles = _kb_memo(_TITLE_CACHE, kb)
        cov = []
        for code in keys:
            tw = titles.get(_memo_key(code, system))
            own, extra = tw if tw is not None else _title_words(kb, code, system)
            cov.append((len(own & note_words) / len(own) if own else math.nan, float(len(extra)),
                        len(extra & note_words) / len(extra) if extra else math.nan))
        F[:, [col["desc_cov"], col["desc_extra_n"], col["desc_extra_cov"]]] = _rows(cov, 3)
    if pads:
        j = col["pad_twin"]
        for code, padded in pads.items():
            F[pos[code], j] = 0.0
            F[pos[padded], j] = 1.0
    F[:, col["doc_hits"]] = float(len(hits))
    F[:, col["doc_len"]] = float(doc_len)
    for i, c in enumerate(cl):
        c._mat, c._i = F, i
    return cands


def feature_matrix(cands: Sequence[Candidate]) -> np.ndarray:
    """Rows of :data:`FEATURES` (missing values as NaN, which LightGBM handles), as float32.

    Candidates of :func:`build_candidates` bring their rows (consecutive rows of one note are
    copied at once); candidates made directly bring their ``feats`` dicts.
    """
    M = np.full((len(cands), len(FEATURES)), np.nan, dtype=np.float32)
    i, n = 0, len(cands)
    loose: list[int] = []
    while i < n:
        c = cands[i]
        mat = c._mat
        if mat is None:
            loose.append(i)
            i += 1
            continue
        j, start = i + 1, c._i
        while j < n and cands[j]._mat is mat and cands[j]._i == start + (j - i):
            j += 1
        M[i:j] = mat[start:start + (j - i)]  # float64 -> float32, rounded as np.array(..., float32)
        i = j
    # candidates whose features were set in the same order share one conversion
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in loose:
        groups.setdefault(tuple(cands[i].feats), []).append(i)
    for keys, rows in groups.items():
        cols = [FEATURE_INDEX.get(k) for k in keys]
        keep = [j for j, col in enumerate(cols) if col is not None]
        if not keep:
            continue
        # float64 then float32: the same rounding as np.array(..., dtype=float32), faster
        vals = np.fromiter(chain.from_iterable(cands[i].feats.values() for i in rows), dtype=np.float64,
                           count=len(rows) * len(keys)).astype(np.float32).reshape(len(rows), len(keys))
        M[np.ix_(rows, [cols[j] for j in keep])] = vals[:, keep]
    return M
