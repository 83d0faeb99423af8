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
from dataclasses import dataclass, field
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
    "prior_log", "in_train",
    "cat_kr_max", "cat_knn_sum", "cat_lex_max", "cat_prior_log", "cat_n_train",
    "cat4_kr_max", "cat4_knn_sum", "cat4_prior_log",
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
)
FEATURE_INDEX = {f: i for i, f in enumerate(FEATURES)}


@dataclass(slots=True)
class Candidate:
    """A candidate code with its feature values, dictionary hits and how it was found."""

    code: str
    feats: dict[str, float] = field(default_factory=dict)
    hits: list[DictHit] = field(default_factory=list)
    via: set[str] = field(default_factory=set)
    rationale: list[str] = field(default_factory=list)


def _kb_memo(store: dict[int, tuple[Any, dict[str, Any]]], kb: Any) -> dict[str, Any]:
    """The memo dict ``store`` keeps for this knowledge-base object (a new one for a new object
    that reuses a freed object's id)."""
    ent = store.get(id(kb))
    if ent is None or ent[0] is not kb:
        ent = store[id(kb)] = (kb, {})
    return ent[1]


_FIND_CACHE: dict[int, tuple[Any, dict[str, Any]]] = {}


def _find(kb: Any, code: str) -> Any:
    """``kb.find`` memoised per knowledge-base object (codes repeat across notes)."""
    cache = _kb_memo(_FIND_CACHE, kb)
    if code not in cache:
        if len(cache) > 500_000:
            cache.clear()
        cache[code] = kb.find(code)
    return cache[code]


def _finder(kb: Any) -> Any:
    """``lambda code: _find(kb, code)`` with the memo looked up once."""
    cache = _kb_memo(_FIND_CACHE, kb)

    def find(code: str) -> Any:
        try:
            return cache[code]
        except KeyError:
            return _find(kb, code)

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


def _title_words(kb: Any, code: str) -> tuple[frozenset[str], frozenset[str]]:
    """Content words of a code's title and those of them its parent's title lacks (memoised)."""
    cache = _kb_memo(_TITLE_CACHE, kb)
    if code not in cache:
        obj = _find(kb, code)
        own = frozenset(_words(obj.description)) if obj is not None else frozenset()
        par = None
        for n in range(len(code) - 1, 2, -1):
            par = _find(kb, code[:n])
            if par is not None:
                break
        extra = own - _words(par.description) if par is not None else own
        cache[code] = (own, frozenset(extra))
    return cache[code]


def _cat(code: str) -> str:
    return code[:3]


_PREFIX_CACHE: dict[int, tuple[Any, dict[str, tuple[np.ndarray, float, float]]]] = {}


def _prefix_arrays(sup: Any) -> dict[str, tuple[np.ndarray, float, float]]:
    """Per code prefix of a supervised layer: (code indices, log1p of their summed priors,
    their number); built once per ``prefix_index_`` (a layer update replaces it)."""
    pi = sup.prefix_index_
    ent = _PREFIX_CACHE.get(id(sup))
    if ent is None or ent[0] is not pi:
        prior = sup.prior_
        table = {}
        for prefix, idx in pi.items():
            if idx:
                ii = np.asarray(idx)
                table[prefix] = (ii, math.log1p(float(prior[ii].sum())), float(len(ii)))
        if len(_PREFIX_CACHE) > 8:
            _PREFIX_CACHE.clear()
        ent = _PREFIX_CACHE[id(sup)] = (pi, table)
    return ent[1]


def _cat_signals(prefixes: dict[str, tuple[np.ndarray, float, float]], keys: list[str],
                 sig: dict[str, np.ndarray], row: int) -> dict[str, tuple[float, float, float, float, float]]:
    """``cat_sup`` of many prefixes at once: maxima by one ``reduceat`` over their
    concatenated code indices; sums per prefix (``ndarray.sum`` rounds as before)."""
    if not keys:
        return {}
    arrs = [prefixes[k][0] for k in keys]
    starts = np.cumsum([0] + [len(a) for a in arrs[:-1]])
    ii = np.concatenate(arrs)
    kr = np.maximum.reduceat(sig["kr"][row][ii], starts).tolist()
    lx = np.maximum.reduceat(sig["lex"][row][ii], starts).tolist()
    knn = sig["knn"][row]
    return {k: (kr[i], float(knn[arrs[i]].sum()), lx[i], prefixes[k][1], prefixes[k][2]) for i, k in enumerate(keys)}


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
            c = cands[code] = Candidate(code, {}, [], set(), [])
        return c

    by_code: dict[str, list[DictHit]] = {}
    for h in hits:
        by_code.setdefault(canon(h.code), []).append(h)
    prefix_index = sup.prefix_index_ if sup is not None else {}
    codes = sup.codes_ if sup is not None else []

    # dictionary + hierarchy candidates
    for code, hs in by_code.items():
        c = get(code)
        c.via.add("dict")
        c.hits.extend(hs)
        if system == "icd10cm":
            if len(code) > 3:
                for n in range(3, len(code)):
                    get(code[:n]).via.add("parent")
            for i in prefix_index.get(_cat(code), []):
                get(codes[i]).via.add("sibling")
            if sup is not None and kb is not None and max_children:
                # codes of the knowledge base below a matched code that needs more characters
                # (a hit on R22 "localized swelling" coded R22.0): new codes get proposed too
                for k in _children(kb, code, max_children):
                    get(k).via.add("child")
        else:
            if len(code) >= 4:
                get(code[:4]).via.add("parent")
            if len(code) == 4 and code[0] == "b" and kb is not None and _find(kb, code + "zzz") is not None:
                # imaging: CodiEsp codes both the 4-character node and the complete code
                # (no contrast, no qualifier: "ZZZ")
                get(code + "zzz").via.add("parent")
            for i in prefix_index.get(code[:4] if len(code) >= 4 else code, []):
                get(codes[i]).via.add("sibling")

    # supervised candidates
    if sup is not None and sig is not None:
        for key in ("kr", "knn", "lex"):
            v = sig[key][row]
            top = np.argpartition(-v, min(top_n, len(v) - 1))[:top_n] if len(v) > top_n else np.arange(len(v))
            for j in top[v[top] > 0].tolist():
                get(codes[j]).via.add("sup")

    if not cands:
        return cands

    # features
    cat_hits: dict[str, list[DictHit]] = {}
    for code, hs in by_code.items():
        cat_hits.setdefault(_cat(code), []).extend(hs)
    doc_hits = float(len(hits))
    index = sup.index_ if sup is not None else {}
    # each candidate's signals and ranks, gathered at once as Python floats (the same values
    # as float() of each element)
    js = [index.get(code) for code in cands]
    got_: dict[str, list[float]] = {}
    if sup is not None and sig is not None:
        jj = np.array([j for j in js if j is not None], dtype=np.int64)
        for key in ("kr", "knn", "lex", "lex_sum", "lex_n"):
            if key in sig:
                got_[key] = sig[key][row][jj].tolist()
        for key in ("kr", "knn", "lex"):
            v = sig[key][row]
            r = np.empty(len(v), dtype=np.float32)
            r[np.argsort(-v, kind="stable")] = np.arange(1, len(v) + 1)
            got_[key + "_rank"] = r[jj].tolist()
    hp = getattr(sup, "hit_precision_", None) if sup is not None else None
    max_sent = float(max((h.sentence for h in hits), default=0)) or 1.0
    note_words = _words(text) if text is not None and kb is not None else None
    titles = _kb_memo(_TITLE_CACHE, kb) if note_words is not None else {}
    kr_top = float(sig["kr"][row].max()) if sig is not None and sig["kr"].shape[1] else 0.0
    lex_top = float(sig["lex"][row].max()) if sig is not None and sig["lex"].shape[1] else 0.0
    prefixes = _prefix_arrays(sup) if sup is not None else {}
    # category signals of every prefix the candidates need (absent prefix: zeros)
    cat_cache: dict[str, tuple[float, float, float, float, float]] = {}
    if sig is not None and prefixes:
        needed = {code[:3] for code in cands} | {code[:4] for code in cands if len(code) >= 4}
        cat_cache.update(_cat_signals(prefixes, [p for p in needed if p in prefixes], sig, row))
    zero5 = (0.0, 0.0, 0.0, 0.0, 0.0)

    # hits on descendants (a candidate is a prefix of a matched code) and on ancestors
    desc_hits: dict[str, list[DictHit]] = {}
    for k, hs in by_code.items():
        for n in range(1, len(k)):
            desc_hits.setdefault(k[:n], []).extend(hs)
    prior = sup.prior_ if sup is not None else None
    k = -1  # position among the candidates seen in training
    kr_den, lex_den = max(kr_top, 1e-6), max(lex_top, 1e-6)
    no_sum, no_n = [0.0] * len(js), [0.0] * len(js)
    lex_sums, lex_ns = got_.get("lex_sum", no_sum), got_.get("lex_n", no_n)
    find = _finder(kb) if kb is not None else None
    doc_len_f = float(doc_len)

    for (code, c), j in zip(cands.items(), js):
        f = c.feats
        if c.hits:
            f.update(_hit_stats(c.hits))
        if j is not None:
            k += 1
        if c.hits:
            f["d_first_sent_rel"] = min(h.sentence for h in c.hits) / max_sent
        if hp is not None:
            n, g, below, f["hp_cat_rate"], f["hp_cat4_rate"] = hp.features(code)
            f["hp_n"] = float(n)
            # missing as NaN rather than absent: rows keep one key order (see feature_matrix)
            f["hp_rate"] = g / (n + 1.0) if n else math.nan
            f["hp_below_rate"] = below / (n + 1.0) if n else math.nan
            if c.hits:
                best_n, best_rate = 0.0, float("nan")
                for h in c.hits:
                    pn, pg = hp.phrase_stats(h.phrase, code)
                    if pn and not best_rate >= pg / (pn + 1.0):
                        best_n, best_rate = float(pn), pg / (pn + 1.0)
                f["hp_phrase_n"], f["hp_phrase_rate"] = best_n, best_rate
        if j is not None and sig is not None:
            f["kr"] = kr = got_["kr"][k]
            f["knn"] = got_["knn"][k]
            f["lex"] = lx = got_["lex"][k]
            f["kr_rank"] = got_["kr_rank"][k]
            f["knn_rank"] = got_["knn_rank"][k]
            f["lex_rank"] = got_["lex_rank"][k]
            f["lex_sum"] = lex_sums[k]
            f["lex_n"] = lex_ns[k]
            f["kr_rel"] = kr / kr_den
            f["lex_rel"] = lx / lex_den
            f["prior_log"] = math.log1p(float(prior[j]))
            f["in_train"] = 1.0
        else:
            f["kr_rank"] = f["knn_rank"] = f["lex_rank"] = 1e4
        kr, kn, lx, pr, nt = cat_cache.get(code[:3], zero5)
        f["cat_kr_max"], f["cat_knn_sum"], f["cat_lex_max"], f["cat_prior_log"], f["cat_n_train"] = kr, kn, lx, pr, nt
        if len(code) >= 4:
            kr4, kn4, _, pr4, _ = cat_cache.get(code[:4], zero5)
            f["cat4_kr_max"], f["cat4_knn_sum"], f["cat4_prior_log"] = kr4, kn4, pr4
        desc = desc_hits.get(code, ())
        anc = [h for n in range(1, len(code)) for h in by_code.get(code[:n], ())]
        if desc:
            f["d_desc_n"] = float(len(desc))
            f["d_desc_best"] = max(h.score for h in desc)
        if anc:
            f["d_anc_n"] = float(len(anc))
            f["d_anc_best"] = max(h.score for h in anc)
            if hp is not None:
                f["hp_anc_below_rate"] = max(below / (n_hit + 1.0) for n_hit, _, below in
                                             (hp.code_stats(code[:n]) for n in range(1, len(code)) if code[:n] in by_code))
        ch = cat_hits.get(_cat(code), [])
        if ch:
            f["cat_d_n"] = float(len(ch))
            f["cat_d_best"] = max(h.score for h in ch)
        f["code_len"] = float(len(code))
        if find is not None:
            obj = find(code)
            f["kb_known"] = float(obj is not None)
            f["billable"] = float(bool(obj is not None and obj.billable))
        via = c.via
        f["via_dict"] = float("dict" in via)
        f["via_parent"] = float("parent" in via)
        f["via_sibling"] = float("sibling" in via)
        f["via_sup"] = float("sup" in via)
        f["via_child"] = float("child" in via)
        if note_words is not None:
            tw = titles.get(code)
            own, extra = tw if tw is not None else _title_words(kb, code)
            f["desc_cov"] = len(own & note_words) / len(own) if own else math.nan
            f["desc_extra_n"] = float(len(extra))
            f["desc_extra_cov"] = len(extra & note_words) / len(extra) if extra else math.nan
        f["doc_hits"] = doc_hits
        f["doc_len"] = doc_len_f
    return cands


def feature_matrix(cands: Sequence[Candidate]) -> np.ndarray:
    """Rows of :data:`FEATURES` (missing values as NaN, which LightGBM handles)."""
    M = np.full((len(cands), len(FEATURES)), np.nan, dtype=np.float32)
    # candidates whose features were set in the same order share one conversion
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, c in enumerate(cands):
        groups.setdefault(tuple(c.feats), []).append(i)
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
