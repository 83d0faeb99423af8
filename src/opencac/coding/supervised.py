"""Supervised signals learned from coded documents, one set per code system.

* :class:`TextFeaturizer` - TF-IDF word 1-2 grams + character 3-5 grams (fit once, shared).
* :class:`LinearCodeModel` - one-vs-rest logistic regression per code seen >= ``min_count`` times.
* :class:`KnnCodeModel` - similarity-weighted code votes of the nearest training notes; an
  updatable memory (:meth:`KnnCodeModel.add`) for fast learning from coder decisions.
* :class:`CodeLexicon` - n-grams strongly associated with a code in training notes
  (``P(code | n-gram)``), with counts that :meth:`CodeLexicon.update` adds to incrementally.
* code priors (document frequency of each code), also updatable.

All follow scikit-learn habits: ``__init__`` stores parameters, ``fit`` returns ``self``,
learned state ends in ``_``. Heavy imports happen inside methods.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np

from opencac.coding.corpus import canon

_TOKEN_RE = re.compile(r"(?u)\b[a-zA-Z][a-zA-Z0-9\-]+\b")


def clean_text(text: str) -> str:
    """Lower-case text used by every supervised layer."""
    return text.lower()


class TextFeaturizer:
    """TF-IDF word (1-2 grams) and character (3-5 grams, word-bounded) features, L2-normalised.

    Args:
        max_word_features: vocabulary cap for word n-grams.
        max_char_features: vocabulary cap for character n-grams (0 disables them).
    """

    def __init__(self, max_word_features: int = 60000, max_char_features: int = 60000) -> None:
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features

    def fit(self, texts: Sequence[str]) -> TextFeaturizer:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.__dict__.pop("plain_", None)

        self.word_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.5, sublinear_tf=True,
                                     max_features=self.max_word_features, token_pattern=_TOKEN_RE.pattern,
                                     dtype=np.float32)
        self.word_.fit([clean_text(t) for t in texts])
        self.char_ = None
        if self.max_char_features:
            self.char_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_df=0.5,
                                         sublinear_tf=True, max_features=self.max_char_features,
                                         dtype=np.float32)
            self.char_.fit([clean_text(t) for t in texts])
        return self

    def words(self, texts: Sequence[str]) -> Any:
        """Word TF-IDF matrix (rows L2-normalised)."""
        plain = self._plain()
        if plain is None:
            return self.word_.transform([clean_text(t) for t in texts])
        return _tfidf(_count(texts, plain["word_vocab"], _word_grams), plain["word_idf"])

    def _chars(self, texts: Sequence[str]) -> Any:
        plain = self._plain()
        if plain is None:
            return self.char_.transform([clean_text(t) for t in texts])
        return _tfidf(_count_char_wb(texts, plain["char_vocab"]), plain["char_idf"])

    def transform(self, texts: Sequence[str]) -> Any:
        """Concatenated word + char TF-IDF (each block L2-normalised, scaled by 1/sqrt 2)."""
        import scipy.sparse as sp

        w = self.words(texts)
        if not self._has_chars():
            return w
        c = self._chars(texts)
        return sp.hstack([w, c], format="csr", dtype=np.float32) * np.float32(1 / np.sqrt(2))

    # -- scikit-learn-free transform -------------------------------------------------------
    # The fitted vectorizers reduce to vocabularies and IDF weights; the transform below
    # repeats scikit-learn's arithmetic step by step (same dtypes and summation order), so
    # its output is identical, and a featurizer loaded in this plain form
    # (:meth:`plain_copy`) needs no scikit-learn import (about a second of start-up).

    def _has_chars(self) -> bool:
        plain = self.__dict__.get("plain_")
        if plain is not None:
            return plain["char_vocab"] is not None
        return self.char_ is not None

    def _plain(self) -> dict[str, Any] | None:
        plain = self.__dict__.get("plain_")
        if plain is None and "word_" in self.__dict__:
            plain = _plain_state(self.word_, self.char_)
            if plain is not None:
                self.__dict__["plain_"] = plain
        return plain

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "word_" in state:
            state.pop("plain_", None)  # derived from the vectorizers again on first use
        return state

    def plain_copy(self) -> TextFeaturizer:
        """This featurizer as vocabularies and IDF weights only (no scikit-learn objects);
        ``self`` when its vectorizers use options the plain transform does not cover."""
        plain = self._plain()
        if plain is None:
            return self
        twin = TextFeaturizer(self.max_word_features, self.max_char_features)
        twin.__dict__["plain_"] = plain
        return twin

    def word_names(self) -> np.ndarray:
        """The word n-gram of each vocabulary column (``get_feature_names_out``)."""
        plain = self._plain()
        if plain is None:
            return self.word_.get_feature_names_out()
        vocab = plain["word_vocab"]
        names = np.empty(len(vocab), dtype=object)
        names[np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))] = list(vocab)
        return names

    def sentence_tfidf(self, texts: Sequence[str]) -> tuple[Any, np.ndarray, list[tuple[int, int]]]:
        """The TF-IDF row of every sentence of ``texts``, the index of the text each row comes
        from, and each row's offsets in its text (:func:`sentence_matrices` without the binary rows)."""
        flat, doc, spans = split_texts(texts)
        return self.transform_rows(flat), doc, [ab for sp_ in spans for ab in sp_]

    def transform_rows(self, texts: Sequence[str]) -> Any:
        """:meth:`transform` of many short texts (sentences) at once: the same features and weights,
        counted for the whole batch in one pass (float32 rounding aside, equal to ``transform``)."""
        plain = self._plain()
        if plain is None:
            return self.transform(texts)
        return _batch_tfidf(texts, plain)

    def binary_words(self, texts: Sequence[str]) -> Any:
        """Binary word n-gram presence matrix over the word vocabulary."""
        w = self.words(texts)
        w.data[:] = 1.0
        return w

    def transform_and_binary(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """``(transform(texts), binary_words(texts))`` with the word n-grams counted once."""
        import scipy.sparse as sp

        w = self.words(texts)
        b = w.copy()
        b.data[:] = 1.0
        if not self._has_chars():
            return w, b
        c = self._chars(texts)
        return sp.hstack([w, c], format="csr", dtype=np.float32) * np.float32(1 / np.sqrt(2)), b


_WORD_RE = re.compile(_TOKEN_RE.pattern)
_WHITE_SPACES = re.compile(r"\s\s+")


def _plain_state(word: Any, char: Any) -> dict[str, Any] | None:
    """Vocabularies and IDF weights of fitted ``TfidfVectorizer`` s, when their options are
    the ones :class:`TextFeaturizer` fits with (else None: keep scikit-learn's transform)."""
    def ok(v: Any, analyzer: str) -> bool:
        p = v.get_params()
        return (p["analyzer"] == analyzer and p["lowercase"] and p["strip_accents"] is None
                and p["preprocessor"] is None and p["tokenizer"] is None and p["stop_words"] is None
                and not p["binary"] and p["norm"] == "l2" and p["use_idf"] and p["sublinear_tf"]
                and p["input"] == "content" and np.dtype(p["dtype"]) == np.float32
                and tuple(p["ngram_range"]) == ((1, 2) if analyzer == "word" else (3, 5))
                and (analyzer != "word" or p["token_pattern"] == _TOKEN_RE.pattern))

    if not ok(word, "word") or (char is not None and not ok(char, "char_wb")):
        return None
    return {"word_vocab": word.vocabulary_, "word_idf": word._tfidf.idf_,
            "char_vocab": char.vocabulary_ if char is not None else None,
            "char_idf": char._tfidf.idf_ if char is not None else None}


def _word_grams(doc: str) -> list[str]:
    """scikit-learn's word analyzer: lower-case, token pattern, 1-2 grams."""
    tokens = _WORD_RE.findall(doc.lower())
    return tokens + [" ".join(pair) for pair in zip(tokens, tokens[1:])]


def _char_wb_grams(doc: str) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer for 3-5 grams (short words counted once)."""
    out: list[str] = []
    append = out.append
    for w in _WHITE_SPACES.sub(" ", doc.lower()).split():
        w = " " + w + " "
        w_len = len(w)
        for n in (3, 4, 5):
            append(w[:n])
            if w_len <= n:
                break
            for offset in range(1, w_len - n + 1):
                append(w[offset:offset + n])
    return out


def _count(texts: Sequence[str], vocab: dict[str, int], analyze: Any) -> Any:
    """Term counts over a fixed vocabulary (``CountVectorizer.transform``), float32 CSR."""
    from collections import Counter

    get = vocab.get

    def rows() -> Iterator[dict[int, int]]:
        for t in texts:
            row: dict[int, int] = {}
            for gram, n in Counter(analyze(clean_text(t))).items():
                j = get(gram)
                if j is not None:
                    row[j] = n
            yield row

    return _csr_rows(rows(), len(texts), len(vocab))


def _csr_rows(rows: Iterable[dict[int, int]], n_rows: int, n_cols: int) -> Any:
    """Float32 CSR from per-row ``{column: count}`` dicts, indices sorted."""
    import scipy.sparse as sp

    indices: list[int] = []
    values: list[int] = []
    indptr = [0]
    for row in rows:
        indices.extend(row)
        values.extend(row.values())
        indptr.append(len(indices))
    X = sp.csr_matrix((np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int32),
                       np.asarray(indptr, dtype=np.int32)), shape=(n_rows, n_cols))
    X.sort_indices()
    return X


_WORD_GRAM_IDS: dict[int, tuple[dict[str, int], dict[str, list[int]]]] = {}


def _count_char_wb(texts: Sequence[str], vocab: dict[str, int]) -> Any:
    """``_count(texts, vocab, _char_wb_grams)`` computed per distinct word: a word's n-grams
    (and their vocabulary columns) depend on the word alone, so they are looked up once per
    word and kept for the next notes."""
    from collections import Counter

    import scipy.sparse as sp

    cache = _gram_ids(vocab)
    get = vocab.get
    indptr = [0]
    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for t in texts:
        id_lists: list[list[int]] = []
        counts: list[int] = []
        for w, k in Counter(_WHITE_SPACES.sub(" ", clean_text(t).lower()).split()).items():
            ids = cache.get(w)
            if ids is None:
                ids = _word_char_ids(cache, get, w)
            if ids:
                id_lists.append(ids)
                counts.append(k)
        # each column's count: the words' n-gram columns, weighted by how often each word occurs
        flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64)
        cols, inverse = np.unique(flat, return_inverse=True)
        weights = np.repeat(np.asarray(counts, dtype=np.int64), [len(x) for x in id_lists])
        indices.append(cols.astype(np.int32))
        values.append(np.bincount(inverse, weights=weights, minlength=len(cols)).astype(np.float32))
        indptr.append(indptr[-1] + len(cols))
    X = sp.csr_matrix((np.concatenate(values) if values else np.zeros(0, dtype=np.float32),
                       np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32),
                       np.asarray(indptr, dtype=np.int32)), shape=(len(texts), len(vocab)))
    X.sort_indices()  # sorted already; marks them so, as _csr_rows does
    return X


def _gram_ids(vocab: dict[str, int]) -> dict[str, list[int]]:
    """The per-word cache of character n-gram columns of ``vocab`` (see :func:`_count_char_wb`)."""
    ent = _WORD_GRAM_IDS.get(id(vocab))
    if ent is None or ent[0] is not vocab:
        if len(_WORD_GRAM_IDS) > 4:
            _WORD_GRAM_IDS.clear()
        ent = _WORD_GRAM_IDS[id(vocab)] = (vocab, {})
    return ent[1]


def _word_char_ids(cache: dict[str, list[int]], get: Any, word: str) -> list[int]:
    """A word's character n-gram columns (``get``: the vocabulary's lookup), kept in ``cache``."""
    if len(cache) > 500_000:
        cache.clear()
    ids = cache[word] = [j for j in map(get, _char_wb_grams(word)) if j is not None]
    return ids


def _batch_tfidf(texts: Sequence[str], plain: dict[str, Any]) -> Any:
    """Word + character TF-IDF rows of many texts (as :meth:`TextFeaturizer.transform`), each
    block's counts gathered for the whole batch and weighted and normalised in array operations."""
    import scipy.sparse as sp

    word_get = plain["word_vocab"].get
    char_vocab = plain["char_vocab"]
    w_cols: list[int] = []
    w_len: list[int] = []
    c_cols: list[int] = []
    c_len: list[int] = []
    cache = _gram_ids(char_vocab) if char_vocab is not None else {}
    char_get = char_vocab.get if char_vocab is not None else None
    for t in texts:
        low = clean_text(t)
        ids = [j for j in map(word_get, _word_grams(low)) if j is not None]
        w_cols.extend(ids)
        w_len.append(len(ids))
        if char_get is not None:
            n = len(c_cols)
            for w in _WHITE_SPACES.sub(" ", low.lower()).split():
                got = cache.get(w)
                if got is None:
                    got = _word_char_ids(cache, char_get, w)
                c_cols.extend(got)
            c_len.append(len(c_cols) - n)
    blocks = [_counts_tfidf(w_cols, w_len, len(plain["word_vocab"]), plain["word_idf"])]
    if char_vocab is None:
        return blocks[0]
    blocks.append(_counts_tfidf(c_cols, c_len, len(char_vocab), plain["char_idf"]))
    return sp.hstack(blocks, format="csr", dtype=np.float32) * np.float32(1 / np.sqrt(2))


def _counts_tfidf(cols: list[int], lens: list[int], n_cols: int, idf: np.ndarray) -> Any:
    """Sublinear TF-IDF with L2 rows from each row's column list (a column as often as counted)."""
    import scipy.sparse as sp

    n_rows = len(lens)
    rows = np.repeat(np.arange(n_rows, dtype=np.int32), lens)
    X = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, np.asarray(cols, dtype=np.int32))),
                      shape=(n_rows, n_cols))
    X.sum_duplicates()
    X.data = ((np.log(X.data) + np.float32(1.0)) * idf[X.indices]).astype(np.float32)
    sizes = np.diff(X.indptr)
    full = sizes > 0
    sq = np.zeros(n_rows, dtype=np.float64)
    if X.nnz:
        sq[full] = np.add.reduceat((X.data.astype(np.float64)) ** 2, X.indptr[:-1][full])
    norm = np.sqrt(sq)
    norm[norm == 0] = 1.0
    X.data = (X.data / np.repeat(norm, sizes)).astype(np.float32)
    return X


def _tfidf(X: Any, idf: np.ndarray) -> Any:
    """``TfidfTransformer.transform`` with sublinear TF and L2 rows, in scikit-learn's order of
    operations: log(tf) + 1, times IDF, each row divided by the square root of its float64
    running sum of float32 squares."""
    np.log(X.data, X.data)
    X.data += 1.0
    X.data *= idf[X.indices]
    for i in range(X.shape[0]):
        a, b = X.indptr[i], X.indptr[i + 1]
        if a == b:
            continue
        d = X.data[a:b]
        total = np.cumsum((d * d).astype(np.float64))[-1]
        if total == 0.0:
            continue
        X.data[a:b] = (d.astype(np.float64) / np.sqrt(total)).astype(np.float32)
    return X


class LinearCodeModel:
    """One-vs-rest logistic regression per code (codes seen at least ``min_count`` times).

    Args:
        C: inverse regularisation strength.
        min_count: minimum number of training documents for a code to get a classifier.
    """

    def __init__(self, C: float = 8.0, min_count: int = 1) -> None:
        self.C = C
        self.min_count = min_count

    def fit(self, X: Any, Y: Any, codes: Sequence[str]) -> LinearCodeModel:
        """Fit on features ``X`` (docs x feats) and binary label matrix ``Y`` (docs x codes)."""
        from sklearn.linear_model import LogisticRegression

        Y = Y.tocsc()
        counts = np.asarray(Y.sum(axis=0)).ravel()
        keep = [j for j in range(Y.shape[1]) if self.min_count <= counts[j] < Y.shape[0]]
        n_feat = X.shape[1]
        W = np.zeros((len(keep), n_feat), dtype=np.float32)
        b = np.zeros(len(keep), dtype=np.float32)
        for i, j in enumerate(keep):
            y = Y[:, j].toarray().ravel()
            clf = LogisticRegression(C=self.C, solver="liblinear", class_weight="balanced", max_iter=200)
            clf.fit(X, y)
            W[i] = clf.coef_[0]
            b[i] = clf.intercept_[0]
        self.codes_ = [codes[j] for j in keep]
        self.coef_ = W
        self.intercept_ = b
        return self

    def decision(self, X: Any) -> np.ndarray:
        """Raw margins (docs x codes)."""
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Per-code probabilities (docs x ``codes_``), uncalibrated."""
        return 1.0 / (1.0 + np.exp(-self.decision(X)))


class KnnCodeModel:
    """Similarity-weighted code votes of the ``k`` most similar training notes.

    ``score(code) = sum_{n in top-k, code in n} sim(n)^p / sum_{n in top-k} sim(n)^p``.
    """

    def __init__(self, k: int = 20, power: float = 2.0) -> None:
        self.k = k
        self.power = power

    def fit(self, X: Any, Y: Any, codes: Sequence[str]) -> KnnCodeModel:
        self.X_ = X.tocsr().astype(np.float32)
        self.Y_ = Y.tocsr().astype(np.float32)
        self.codes_ = list(codes)
        return self

    def add(self, X: Any, Y: Any) -> None:
        """Append documents to the memory (``Y`` over the same ``codes_``)."""
        import scipy.sparse as sp

        self.X_ = sp.vstack([self.X_, X.tocsr().astype(np.float32)], format="csr")
        self.Y_ = sp.vstack([self.Y_, Y.tocsr().astype(np.float32)], format="csr")

    def scores(self, X: Any, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (code scores docs x codes, neighbour indices docs x k, neighbour sims docs x k)."""
        S = np.asarray((X @ self.X_.T).todense(), dtype=np.float32)
        if exclude_self:
            np.fill_diagonal(S, -1.0)
        k = min(self.k, S.shape[1])
        idx = np.argpartition(-S, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(S, idx, axis=1)
        order = np.argsort(-sims, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        sims = np.clip(np.take_along_axis(sims, order, axis=1), 0, None)
        w = sims ** self.power
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
        out = np.zeros((X.shape[0], self.Y_.shape[1]), dtype=np.float32)
        for i in range(X.shape[0]):
            out[i] = w[i] @ self.Y_[idx[i]].toarray()
        return out, idx, sims


def _csr_gather(M: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M[rows].indices, M[rows].data)`` of a CSR matrix, without building the sub-matrix
    (scipy's row indexing costs more than the rows of one note hold)."""
    indptr = M.indptr
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    n = int(lens.sum())
    if not n:
        return M.indices[:0], M.data[:0]
    at = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(n)
    return M.indices[at], M.data[at]


class CodeLexicon:
    """Learned lexicon: word n-grams associated with codes, ``P(code | n-gram)`` smoothed.

    Args:
        alpha: additive smoothing in the denominator (``n(g, c) / (n(g) + alpha)``).
        min_pair: minimum co-occurrence count for a (n-gram, code) pair to be kept.
    """

    def __init__(self, alpha: float = 2.0, min_pair: int = 2) -> None:
        self.alpha = alpha
        self.min_pair = min_pair

    def fit(self, B: Any, Y: Any) -> CodeLexicon:
        """Fit from a binary doc x n-gram matrix ``B`` and doc x code label matrix ``Y``."""
        self.co_ = (B.T.tocsr().astype(np.float32) @ Y.tocsc().astype(np.float32)).tocsr()
        self.df_ = np.asarray(B.sum(axis=0)).ravel().astype(np.float32)
        self._compile()
        return self

    def update(self, B: Any, Y: Any) -> None:
        """Add the counts of new documents (same vocabulary and code list)."""
        self.co_ = (self.co_ + (B.T.tocsr().astype(np.float32) @ Y.tocsc().astype(np.float32))).tocsr()
        self.df_ = self.df_ + np.asarray(B.sum(axis=0)).ravel().astype(np.float32)
        self._compile()

    #: Lexicon rows (n-grams) with at least this many codes are kept dense for scoring: the
    #: common n-grams hold most of a note's (n-gram, code) pairs.
    DENSE_MIN_CODES = 64

    def _compile(self) -> None:
        P = self.co_.tocoo()
        keep = P.data >= self.min_pair
        import scipy.sparse as sp

        rows, cols = P.row[keep], P.col[keep]
        vals = P.data[keep] / (self.df_[rows] + self.alpha)
        self.P_ = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=P.shape)
        self._dense = None
        self._dense_strong = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_dense", None)  # scoring caches, rebuilt on first use
        state.pop("_dense_strong", None)
        return state

    def _dense_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(position of each n-gram among the dense rows or -1, the dense rows of ``P_``)."""
        dense = getattr(self, "_dense", None)
        if dense is None:
            long = np.flatnonzero(np.diff(self.P_.indptr) >= self.DENSE_MIN_CODES)
            pos = np.full(self.P_.shape[0], -1, dtype=np.int64)
            pos[long] = np.arange(len(long))
            dense = self._dense = (pos, self.P_[long].toarray())
        return dense

    def _dense_at_least(self, strong: float) -> np.ndarray:
        """``dense rows >= strong`` as bytes (counted per note without a boolean matrix each time)."""
        got = getattr(self, "_dense_strong", None)  # reset with the dense rows by _compile
        if got is None or got[0] != strong:
            got = self._dense_strong = (strong, (self._dense_rows()[1] >= strong).view(np.uint8))
        return got[1]

    def scores(self, B: Any) -> tuple[np.ndarray, np.ndarray]:
        """For each doc and code: (max ``P(code|g)`` over present n-grams g, argmax n-gram index)."""
        best, arg, _, _ = self.scores_full(B)
        return best, arg

    def scores_full(self, B: Any, strong: float = 0.3, with_arg: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """(max, argmax n-gram, sum of ``P(code|g)`` over present n-grams, number of present
        n-grams with ``P >= strong``), each docs x codes. The argmax is the last of the tied
        n-grams in the row's order; ``with_arg=False`` skips it (None; only explanations use it).

        Common n-grams are scored from dense rows (one gather and reduction per note), the
        rest from their sparse entries; sums accumulate in float64."""
        n_docs, n_codes = B.shape[0], self.P_.shape[1]
        best = np.zeros((n_docs, n_codes), dtype=np.float32)
        total = np.zeros((n_docs, n_codes), dtype=np.float32)
        count = np.zeros((n_docs, n_codes), dtype=np.float32)
        arg = np.full((n_docs, n_codes), -1, dtype=np.int64) if with_arg else None
        B = B.tocsr()
        pos, D = self._dense_rows()
        # strong n-grams counted from a byte matrix built once (~10 ms) for batches, from the
        # note's own rows for a few notes (the same counts)
        Dc = self._dense_at_least(strong) if n_docs >= 8 else None
        for i in range(n_docs):
            terms = B.indices[B.indptr[i]:B.indptr[i + 1]]
            if len(terms) == 0:
                continue
            dp = pos[terms]
            tot = np.zeros(n_codes, dtype=np.float64)
            cnt = np.zeros(n_codes, dtype=np.float64)
            if (dp >= 0).any():
                rows = dp[dp >= 0]
                G = D[rows]
                best[i] = G.max(axis=0)
                tot += G.sum(axis=0, dtype=np.float64)
                if Dc is None:
                    cnt += (G >= strong).sum(axis=0)
                else:  # counted in the narrowest type that holds the number of rows (exact either way)
                    cnt += np.add.reduce(Dc[rows], axis=0, dtype=np.uint16 if len(rows) < 65536 else np.int64)
            c, v = _csr_gather(self.P_, terms[dp < 0])
            if len(c):
                order = np.lexsort((v, c))  # by code, then value ascending: the last is the maximum
                last = np.r_[c[order][1:] != c[order][:-1], True]
                top = order[last]
                best[i, c[top]] = np.maximum(best[i, c[top]], v[top])
                tot += np.bincount(c, weights=v, minlength=n_codes)
                cnt += np.bincount(c[v >= strong], minlength=n_codes)
            total[i] = tot
            count[i] = cnt
            if arg is not None:
                full = self.P_[terms].tocoo()
                hit = full.data == best[i][full.col]
                at = np.full(n_codes, -1, dtype=np.int64)
                np.maximum.at(at, full.col[hit], full.row[hit])
                found = at >= 0
                arg[i, found] = terms[at[found]]
        return best, arg, total, count


def _empty_sentences(n_features: int) -> tuple[Any, list[list[str]]]:
    import scipy.sparse as sp

    return sp.csr_matrix((0, n_features), dtype=np.float32), []


def split_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray, list[list[tuple[int, int]]]]:
    """Every sentence of ``texts`` (:func:`~opencac.nlp.sentences.split_sentences`), the index of
    the text each comes from, and each text's sentence offsets."""
    from opencac.nlp.sentences import split_sentences

    spans = [[(s.start, s.end) for s in split_sentences(t)] for t in texts]
    flat = [t[a:b] for t, sp_ in zip(texts, spans) for a, b in sp_]
    doc = np.repeat(np.arange(len(texts)), [len(sp_) for sp_ in spans]).astype(np.int64)
    return flat, doc, spans


def sentence_rows(featurizer: Any, texts: Sequence[str]) -> tuple[Any, np.ndarray, list[list[tuple[int, int]]]]:
    """Binary word n-gram rows of every sentence of ``texts`` (:func:`split_texts`), the index of
    the text each row comes from, and each text's sentence offsets."""
    flat, doc, spans = split_texts(texts)
    return featurizer.binary_words(flat), doc, spans


def sentence_matrices(featurizer: Any, texts: Sequence[str]) -> tuple[tuple[Any, Any], np.ndarray,
                                                                        list[list[tuple[int, int]]]]:
    """As :func:`sentence_rows`, with each sentence's TF-IDF row too: ``((tfidf, binary), doc, spans)``."""
    flat, doc, spans = split_texts(texts)
    return (featurizer.transform_rows(flat), featurizer.binary_words(flat)), doc, spans


#: The most training sentences the sentence ridge factorises (its Gram matrix: n x n float32, 0.9 GB here).
MAX_RIDGE_SENTENCES = 15_000


def ridge_rows(labels: Any, cap: int | None = None, seed: int = 0) -> np.ndarray:
    """The training sentences the sentence ridge learns from (ascending row indices): all of them up
    to ``cap`` (:data:`MAX_RIDGE_SENTENCES`); beyond it the evidence sentences first (``labels``: one
    row per sentence, nonzero where it is evidence for a code), then others, each drawn at random."""
    cap = MAX_RIDGE_SENTENCES if cap is None else cap
    n = labels.shape[0]
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    rng = np.random.RandomState(seed)
    coded = np.asarray(labels.getnnz(axis=1) > 0)
    first = rng.permutation(np.flatnonzero(coded))
    rest = rng.permutation(np.flatnonzero(~coded))
    return np.sort(np.concatenate([first, rest])[:cap])


def _gram_cholesky(T: Any, lam: float) -> np.ndarray:
    """The lower Cholesky factor of ``T T^T + lam I`` (float32, Fortran order), computed in place:
    the Gram matrix is filled a block of rows at a time, so that no sparse product of all rows
    and no second dense copy is made (memory: one n x n float32 matrix)."""
    import scipy.linalg as sla

    n = T.shape[0]
    G = np.empty((n, n), dtype=np.float32)
    Tt = T.T.tocsr()
    for a in range(0, n, 1024):
        G[a:a + 1024] = (T[a:a + 1024] @ Tt).toarray()
    G[np.diag_indices(n)] += np.float32(lam)
    # G is symmetric: its transpose is the same matrix in the Fortran order LAPACK works in
    c, info = sla.lapack.spotrf(G.T, lower=1, overwrite_a=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"sentence ridge: factorisation failed ({info})")
    return c


def _pruned_primal(T: Any, A: np.ndarray, keep: int) -> Any:
    """``T^T A`` (features x codes, CSR) with each code's ``keep`` largest weights (by size) only."""
    import scipy.sparse as sp

    n_feat, n_codes = T.shape[1], A.shape[1]
    keep = max(1, min(keep, n_feat))
    data, rows, cols = [], [], []
    for a in range(0, n_codes, 256):  # blocks of codes: a dense codes x features block at a time
        Wb = np.asarray(A[:, a:a + 256].T @ T, dtype=np.float32)  # ndarray @ CSR: contiguous rows
        top = np.argpartition(-np.abs(Wb), keep - 1, axis=1)[:, :keep] if keep < n_feat else \
            np.broadcast_to(np.arange(n_feat)[None, :], Wb.shape)
        vals = np.take_along_axis(Wb, top, axis=1)
        nz = vals != 0
        data.append(vals[nz])
        rows.append(top[nz])
        cols.append(np.broadcast_to(np.arange(a, a + Wb.shape[0])[:, None], vals.shape)[nz])
    if not data:
        return sp.csr_matrix((n_feat, n_codes), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_feat, n_codes), dtype=np.float32)


class SentenceRidgeFolds:
    """The sentence ridge of many training folds at once, for out-of-fold scores.

    One factorisation of ``G = T T^T + lam I`` over all training sentences gives the ridge fit
    without any group ``g`` of them exactly (the held-out identities of kernel ridge regression,
    with ``M = (G^-1)_gg`` and ``R = (G^-1 Y)_g``): its predictions on ``g`` are
    ``Y_g - M^-1 R``, and its dual weights over the other sentences ``r`` are
    ``(G^-1 Y)_r - (G^-1)_rg M^-1 R``. Scores are unpruned (the fitted :class:`SentenceRidge`
    keeps its largest weights only; the two agree closely).
    """

    def __init__(self, lam: float = 0.3) -> None:
        self.lam = lam

    def fit(self, T: Any, Y: Any) -> SentenceRidgeFolds:
        import scipy.linalg as sla

        self.T_ = T.tocsr().astype(np.float32)
        self.Y_ = np.asarray(Y.toarray(), dtype=np.float32)
        M, info = sla.lapack.spotri(_gram_cholesky(self.T_, self.lam), lower=1, overwrite_c=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"sentence ridge: inversion failed ({info})")
        n = M.shape[0]
        for a in range(0, n, 512):  # the inverse's upper triangle from its lower one, in place
            b = min(a + 512, n)
            M[a:b, b:] = M[b:, a:b].T
            block = M[a:b, a:b]
            M[a:b, a:b] = np.tril(block) + np.tril(block, -1).T
        self.Ginv_ = M
        self.P_ = M @ self.Y_
        return self

    def held_out(self, g: np.ndarray, others: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores of the training sentences ``g`` (row indices) from the ridge fit without them,
        and of the ``others`` rows (TF-IDF rows of sentences outside the training set) from the
        same ridge (None without them)."""
        g = np.asarray(g, dtype=np.int64)
        if not len(g):
            fit_all = None if others is None or not others.shape[0] else \
                np.asarray((others @ self.T_.T).todense(), dtype=np.float32) @ self.P_
            return np.zeros((0, self.Y_.shape[1]), dtype=np.float32), fit_all
        MR = np.linalg.solve(self.Ginv_[np.ix_(g, g)].astype(np.float64), self.P_[g].astype(np.float64))
        mine = (self.Y_[g] - MR).astype(np.float32)
        if others is None or not others.shape[0]:
            return mine, None
        rest = np.setdiff1d(np.arange(self.T_.shape[0]), g)
        A = self.P_[rest] - (self.Ginv_[np.ix_(rest, g)] @ MR.astype(np.float32))
        return mine, np.asarray((others @ self.T_[rest].T).todense(), dtype=np.float32) @ A


class SentenceRidge:
    """Which codes a sentence is evidence for: ridge regression from a sentence's TF-IDF row
    (words and characters) to the codes coders found in it, learnt where training documents say
    where their codes were found.

    Solved in its dual form over the training sentences (``A = (T T^T + lam I)^-1 Y``), then kept
    in primal form, ``W = T^T A`` (features x codes), with each code's ``keep`` largest weights
    only: a sentence scores in a sparse product. A note's score for a code is its best sentence's.

    Args:
        lam: ridge penalty.
        keep: weights kept per code.
    """

    def __init__(self, lam: float = 0.3, keep: int = 1000) -> None:
        self.lam = lam
        self.keep = keep

    def fit(self, T: Any, Y: Any) -> SentenceRidge:
        import scipy.linalg as sla

        T = T.tocsr().astype(np.float32)
        A = sla.cho_solve((_gram_cholesky(T, self.lam), True), Y.toarray().astype(np.float32), overwrite_b=True,
                          check_finite=False)
        self.W_ = _pruned_primal(T, A, self.keep)
        return self

    def add_codes(self, n: int) -> None:
        """``n`` more codes (columns) with no weights: they score 0."""
        import scipy.sparse as sp

        W = self.W_.tocsr()
        self.W_ = sp.csr_matrix((W.data, W.indices, W.indptr), shape=(W.shape[0], W.shape[1] + n))

    def scores(self, T: Any, doc: np.ndarray, n_docs: int,
               with_arg: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Each document's best-sentence score per code (``doc``: each row's document, ascending;
        a document without sentences scores 0); with ``with_arg`` also the best sentence's row
        (-1 for a document without sentences)."""
        out = np.zeros((n_docs, self.W_.shape[1]), dtype=np.float32)
        arg = np.full(out.shape, -1, dtype=np.int64) if with_arg else None
        if T.shape[0]:
            V = np.asarray((T @ self.W_).todense(), dtype=np.float32)
            starts = best_sentence(V, doc, out)
            if arg is not None:
                for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(doc)]):
                    arg[doc[a]] = a + V[a:b].argmax(axis=0)
        return (out, arg) if with_arg else out


def best_sentence(V: np.ndarray, doc: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write each document's best sentence score per column into ``out`` (``V``: one row per
    sentence; ``doc``: each row's document, ascending, a row index of ``out``); returns the first row
    of each document's sentences."""
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    out[doc[starts]] = np.maximum.reduceat(V, starts, axis=0)
    return starts


def sentence_labels(spans: Sequence[tuple[int, int]], evidence: dict[str, list[tuple[int, int]]]) -> list[list[str]]:
    """The codes whose evidence overlaps each sentence of one document."""
    out: list[list[str]] = [[] for _ in spans]
    for code, evs in evidence.items():
        for i, (a, b) in enumerate(spans):
            if any(s < b and a < e for s, e in evs):
                out[i].append(code)
    return out


class SupervisedLayer:
    """All supervised signals of one code system, over the codes seen in training.

    * kernel ridge regression on the TF-IDF features (a linear model in its dual form:
      ``scores = X_q X^T (X X^T + lam I)^-1 Y``; exact, fast on thousands of notes, and
      refit in seconds by :meth:`update`);
    * nearest-neighbour votes (:class:`KnnCodeModel`);
    * the learned lexicon (:class:`CodeLexicon`);
    * the same lexicon over sentences, where training documents say where their codes were
      found (``P(the sentence is evidence for the code | n-gram)``; see :func:`sentence_labels`);
    * code priors (training document frequency).

    Args:
        lam: ridge penalty.
        k: neighbours for the kNN votes.
        power: similarity exponent of the kNN votes.
        lex_alpha / lex_min_pair: lexicon smoothing and minimum pair count.
    """

    def __init__(self, lam: float = 0.1, k: int = 20, power: float = 2.0, lex_alpha: float = 2.0,
                 lex_min_pair: int = 1) -> None:
        self.lam = lam
        self.k = k
        self.power = power
        self.lex_alpha = lex_alpha
        self.lex_min_pair = lex_min_pair

    def fit(self, X: Any, B: Any, code_lists: Sequence[Sequence[str]],
            sentences: tuple[Any, Sequence[Sequence[str]]] | None = None) -> SupervisedLayer:
        """Fit from TF-IDF rows ``X``, binary word rows ``B`` and each document's codes;
        ``sentences``: binary word rows of training sentences and the codes each is evidence
        for (:func:`sentence_rows`, :func:`sentence_labels`), for the sentence lexicon, and
        optionally their TF-IDF rows third, for the sentence ridge (:func:`sentence_matrices`)."""
        self.codes_ = sorted({c for cl in code_lists for c in cl})
        self.X_ = X.tocsr().astype(np.float32)
        self.B_ = B.tocsr().astype(np.float32)
        self.Y_ = self._labels(code_lists)
        self.S_, self.S_codes_ = _empty_sentences(X.shape[1]) if sentences is None else \
            (sentences[0].tocsr().astype(np.float32), [list(c) for c in sentences[1]])
        self.sentence_ridge_ = None
        self._refit(sentences[2] if sentences is not None and len(sentences) > 2 else None)
        return self

    def _labels(self, code_lists: Sequence[Sequence[str]]) -> Any:
        import scipy.sparse as sp

        ix = {c: i for i, c in enumerate(self.codes_)}
        rows, cols = [], []
        for i, cl in enumerate(code_lists):
            for c in set(cl):
                if c in ix:
                    rows.append(i)
                    cols.append(ix[c])
        return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                             shape=(len(code_lists), len(self.codes_)))

    def _refit(self, T: Any | None = None) -> None:
        """Refit the signals from the stored rows; ``T``: the sentences' TF-IDF rows, to fit the
        sentence ridge on (:meth:`fit`; an update keeps the ridge it has)."""
        K = np.asarray((self.X_ @ self.X_.T).todense(), dtype=np.float64)
        K[np.diag_indices_from(K)] += self.lam
        self.A_ = np.linalg.solve(K, self.Y_.toarray().astype(np.float64)).astype(np.float32)
        self.knn_ = KnnCodeModel(self.k, self.power).fit(self.X_, self.Y_, self.codes_)
        self.lexicon_ = CodeLexicon(self.lex_alpha, self.lex_min_pair).fit(self.B_, self.Y_)
        if not hasattr(self, "S_"):  # a layer saved before the sentence lexicon existed
            self.S_, self.S_codes_ = _empty_sentences(self.X_.shape[1])
        # the lexicon again over sentences: P(a sentence is evidence for the code | n-gram in it)
        S_labels = self._labels(self.S_codes_)
        self.sentence_lexicon_ = CodeLexicon(self.lex_alpha, self.lex_min_pair).fit(self.S_, S_labels)
        if T is not None and S_labels.nnz and T.shape[0] == S_labels.shape[0]:
            rows = ridge_rows(S_labels)
            self.sentence_ridge_ = SentenceRidge().fit(T[rows], S_labels[rows])
        ridge = self.__dict__.get("sentence_ridge_")
        if ridge is not None and ridge.W_.shape[1] < len(self.codes_):
            ridge.add_codes(len(self.codes_) - ridge.W_.shape[1])
        self.prior_ = np.asarray(self.Y_.sum(axis=0)).ravel().astype(np.float32)
        self.n_docs_ = self.X_.shape[0]
        self.index_ = {c: i for i, c in enumerate(self.codes_)}
        prefixes: dict[str, list[int]] = {}
        for i, c in enumerate(self.codes_):
            for n in range(3, len(c) + 1):
                prefixes.setdefault(c[:n], []).append(i)
        self.prefix_index_ = prefixes

    def update(self, X: Any, B: Any, code_lists: Sequence[Sequence[str]],
               sentences: tuple[Any, Sequence[Sequence[str]]] | None = None) -> None:
        """Learn from new coded documents (e.g. coder-approved results) without retraining
        the featurizer or the ranker: new codes extend the vocabulary, and the ridge, kNN
        memory, lexicon and priors are refit on old + new documents (seconds); ``sentences``
        (as in :meth:`fit`, when the new documents say where their codes were found) join the
        sentence lexicon. The sentence ridge stays as trained (its factorisation over every
        training sentence takes too long for an update; ``opencac train`` refits it): new codes
        score 0 there."""
        import scipy.sparse as sp

        new_codes = sorted({c for cl in code_lists for c in cl} - set(self.codes_))
        if new_codes:
            old = self.Y_
            self.codes_ = self.codes_ + new_codes
            self.Y_ = sp.hstack([old, sp.csr_matrix((old.shape[0], len(new_codes)), dtype=np.float32)], format="csr")
        self.X_ = sp.vstack([self.X_, X.tocsr().astype(np.float32)], format="csr")
        self.B_ = sp.vstack([self.B_, B.tocsr().astype(np.float32)], format="csr")
        self.Y_ = sp.vstack([self.Y_, self._labels(code_lists)], format="csr")
        if sentences is not None and sentences[0].shape[0]:
            if not hasattr(self, "S_"):
                self.S_, self.S_codes_ = _empty_sentences(self.X_.shape[1])
            self.S_ = sp.vstack([self.S_, sentences[0].tocsr().astype(np.float32)], format="csr")
            self.S_codes_ = self.S_codes_ + [list(c) for c in sentences[1]]
        self._refit()

    def scores(self, X: Any, B: Any, with_arg: bool = True,
               sentences: tuple[Any, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Per-document signals over ``codes_``: ``kr`` (ridge), ``knn``, ``lex`` and
        ``lex_arg`` (the best lexicon n-gram's vocabulary index; None with ``with_arg=False``,
        when no explanation will be shown), ``nn_idx`` / ``nn_sim``, and the sentence lexicon's
        ``slex`` / ``slex_arg`` / ``slex_sum`` / ``slex_n`` (zeros, and no ``slex_arg``, when
        training gave no evidence), and the sentence ridge's ``skr`` (the best sentence's score;
        ``sentences``: the TF-IDF rows of the documents' sentences and each row's document, as
        :func:`sentence_matrices` gives them; zeros without them or without a sentence ridge) and
        ``skr_arg`` (the best sentence's row; None without ``with_arg`` or without scores)."""
        S = np.asarray((X @ self._rows_t()).todense(), dtype=np.float32)
        kr = S @ self.A_
        knn, idx, sims = self._knn_from_sims(S)
        lex, arg, lex_sum, lex_n = self.lexicon_.scores_full(B, with_arg=with_arg)
        slexicon = self.__dict__.get("sentence_lexicon_")
        # the best n-gram of any sentence is the best n-gram of the note: scored on the note's rows
        if slexicon is not None and self.S_.shape[0]:
            slex, slex_arg, slex_sum, slex_n = slexicon.scores_full(B, with_arg=with_arg)
        else:
            slex = slex_sum = slex_n = np.zeros_like(kr)
            slex_arg = None
        ridge = self.__dict__.get("sentence_ridge_")
        skr_arg = None
        if ridge is not None and sentences is not None:
            got = ridge.scores(sentences[0], sentences[1], X.shape[0], with_arg=with_arg)
            skr, skr_arg = got if with_arg else (got, None)
        else:
            skr = np.zeros_like(kr)
        return {"kr": kr, "knn": knn, "lex": lex, "lex_arg": arg, "lex_sum": lex_sum, "lex_n": lex_n,
                "nn_idx": idx, "nn_sim": sims, "slex": slex, "slex_arg": slex_arg, "slex_sum": slex_sum,
                "slex_n": slex_n, "skr": skr, "skr_arg": skr_arg}

    def _rows_t(self) -> Any:
        """``X_.T`` as CSR, kept: ``X @ X_.T`` would convert the transposed rows on every call
        (the same product either way)."""
        got = self.__dict__.get("_xt")
        if got is None or got[0] is not self.X_:
            got = self.__dict__["_xt"] = (self.X_, self.X_.T.tocsr())
        return got[1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_xt", None)
        return state

    def _knn_from_sims(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = min(self.k, S.shape[1])
        idx = np.argpartition(-S, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(S, idx, axis=1)
        order = np.argsort(-sims, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        sims = np.clip(np.take_along_axis(sims, order, axis=1), 0, None)
        w = sims ** self.power
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
        import scipy.sparse as sp

        n = S.shape[0]
        W = sp.csr_matrix((w.ravel().astype(np.float32), idx.ravel(), np.arange(0, n * k + 1, k)),
                          shape=(n, self.Y_.shape[0]))
        out = np.asarray((W @ self.Y_).todense(), dtype=np.float32)
        return out, idx, sims


class HitPrecision:
    """How often coders coded what the dictionary matched, learned from coded documents.

    For every code the dictionary hit in a training note: in how many notes it was hit
    (``n``), in how many of those it was a gold code (``gold``) and in how many a gold code
    lay at or below it (``below``, e.g. a hit on ``R22`` coded as ``R22.0``); the same per
    matched (phrase, code) pair. Dictionary terms differ widely in precision ("fever" is
    coded, "patient" matched to a Z code is not); these rates let the ranker tell them apart
    for codes never seen as gold too.

    Codes are canonical keys; hits are :class:`~opencac.coding.dictionary.DictHit`-like
    (``code`` and ``phrase`` attributes).
    """

    def fit(self, hit_lists: Sequence[Sequence[Any]], code_lists: Sequence[Sequence[str]]) -> HitPrecision:
        """Count over documents: ``hit_lists[i]`` are note i's hits of one system, ``code_lists[i]`` its codes."""
        self.code_: dict[str, list[int]] = {}
        self.phrase_: dict[tuple[str, str], list[int]] = {}
        self.prefix_n_: dict[str, int] = {}
        self.prefix_gold_: dict[str, int] = {}
        return self.update(hit_lists, code_lists)

    def update(self, hit_lists: Sequence[Sequence[Any]], code_lists: Sequence[Sequence[str]]) -> HitPrecision:
        """Add the counts of more coded documents (the incremental learning path: the rates of
        a code coders just taught move at once, without refitting anything else)."""
        self.__dict__.pop("_memo", None)
        for hits, codes in zip(hit_lists, code_lists):
            gold = set(codes)
            hit_codes = {canon(h.code) for h in hits}
            prefixes = {c[:n] for c in hit_codes for n in (3, 4) if len(c) >= n}
            for q in prefixes:
                self.prefix_n_[q] = self.prefix_n_.get(q, 0) + 1
            for g in gold:
                for n in (3, 4):
                    if g[:n] in prefixes:
                        self.prefix_gold_[f"{n}:{g}"] = self.prefix_gold_.get(f"{n}:{g}", 0) + 1
            pairs = {(h.phrase, canon(h.code)) for h in hits}
            for c in hit_codes:
                e = self.code_.setdefault(c, [0, 0, 0])
                e[0] += 1
                e[1] += c in gold
                e[2] += any(g.startswith(c) for g in gold)
            for p in pairs:
                e = self.phrase_.setdefault(p, [0, 0])
                e[0] += 1
                e[1] += p[1] in gold
        return self

    def features(self, code: str) -> tuple[int, int, int, float, float]:
        """``code_stats(code) + (prefix_rate(code, 3), prefix_rate(code, 4))`` in one
        look-up (memoised: the ranker asks for every candidate of every note)."""
        memo = self.__dict__.setdefault("_memo", {})
        out = memo.get(code)
        if out is None:
            if len(memo) > 200_000:
                memo.clear()
            out = memo[code] = (*self.code_stats(code), self.prefix_rate(code, 3), self.prefix_rate(code, 4))
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def code_stats(self, code: str) -> tuple[int, int, int]:
        """``(n, gold, below)`` of a code (zeros if never hit)."""
        e = self.code_.get(code)
        return (e[0], e[1], e[2]) if e else (0, 0, 0)

    def prefix_rate(self, code: str, n: int) -> float:
        """Among training notes with a hit under ``code[:n]``, the share coded ``code``
        (which code coders choose once the dictionary points at a category); NaN if never hit."""
        m = self.prefix_n_.get(code[:n], 0) if len(code) >= n else 0
        return self.prefix_gold_.get(f"{n}:{code}", 0) / (m + 1.0) if m else float("nan")

    def phrase_stats(self, phrase: str, code: str) -> tuple[int, int]:
        """``(n, gold)`` of a matched (phrase, code) pair."""
        e = self.phrase_.get((phrase, code))
        return (e[0], e[1]) if e else (0, 0)
