"""Speed-ups that must not change results: the scikit-learn-free featurizer and calibrator,
the dense lexicon scoring, and the model load cache."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from opencac.coding.ranker import IsotonicCurve
from opencac.coding.supervised import CodeLexicon, TextFeaturizer, clean_text

TEXTS = [
    "Patient with fever and cough. Chest X-ray: right lower lobe pneumonia.",
    "Abdominal pain in the right iliac fossa; ultrasound showed acute appendicitis.",
    "Type 2 diabetes mellitus with  chronic kidney\tdisease, stage 3.",
    "No fever. Mother had breast cancer. ÉCHOGRAPHIE abdominale, ﬁbrosis",
    "a", "", "   ", "Fever fever fever and cough; cough. X-ray x-ray.",
] * 3


def test_plain_featurizer_is_identical_to_scikit_learn() -> None:
    f = TextFeaturizer(max_word_features=200, max_char_features=300).fit(TEXTS)
    plain = f.plain_copy()
    assert "word_" not in plain.__dict__
    assert b"sklearn" not in pickle.dumps(plain)
    queries = TEXTS + ["Unseen words only: zebra quokka.", "", "pneumonia pneumonia appendicitis", "#"]
    for ref, got in ((f.word_.transform([clean_text(t) for t in queries]), plain.words(queries)),
                     (f.char_.transform([clean_text(t) for t in queries]), plain._chars(queries))):
        assert ref.shape == got.shape
        assert np.array_equal(ref.indptr, got.indptr) and np.array_equal(ref.indices, got.indices)
        assert np.array_equal(ref.data, got.data)
    X, B = plain.transform_and_binary(queries)
    assert np.array_equal(X.toarray(), f.transform(queries).toarray())
    assert np.array_equal(B.toarray(), f.binary_words(queries).toarray())
    assert list(plain.word_names()) == list(f.word_.get_feature_names_out())


def test_batch_rows_equal_transform() -> None:
    """``transform_rows`` (sentences counted in one pass) gives ``transform``'s rows, float32 rounding aside."""
    f = TextFeaturizer(max_word_features=200, max_char_features=300).fit(TEXTS)
    queries = TEXTS + ["Unseen words only: zebra quokka.", "", "pneumonia pneumonia appendicitis", "#"]
    for feat in (f, f.plain_copy()):
        ref, got = feat.transform(queries).toarray(), feat.transform_rows(queries).toarray()
        assert ref.shape == got.shape and np.array_equal(ref != 0, got != 0)
        assert np.allclose(ref, got, rtol=1e-5, atol=1e-7)
    words_only = TextFeaturizer(max_word_features=200, max_char_features=0).fit(TEXTS)
    assert np.allclose(words_only.transform(queries).toarray(), words_only.transform_rows(queries).toarray(),
                       rtol=1e-5, atol=1e-7)


def test_isotonic_curve_is_identical_to_scikit_learn() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.RandomState(0)
    s = rng.rand(2000)
    y = (rng.rand(2000) < s ** 2).astype(float)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    curve = IsotonicCurve.from_fitted(iso)
    assert curve is not None
    T = np.r_[rng.rand(5000), iso.X_thresholds_, -1.0, 2.0]
    assert np.array_equal(curve.predict(T), iso.predict(T))
    assert IsotonicCurve.from_fitted(IsotonicRegression(out_of_bounds="nan").fit(s, y)) is None


def test_lexicon_scores_match_a_direct_computation() -> None:
    rng = np.random.RandomState(3)
    n_docs, n_terms, n_codes = 40, 300, 25
    B = sp.csr_matrix((rng.rand(n_docs, n_terms) < 0.15).astype(np.float32))
    Y = sp.csr_matrix((rng.rand(n_docs, n_codes) < 0.2).astype(np.float32))
    lex = CodeLexicon(alpha=2.0, min_pair=1).fit(B, Y)
    lex.DENSE_MIN_CODES = 5  # exercise both the dense and the sparse rows
    Q = sp.csr_matrix((rng.rand(12, n_terms) < 0.2).astype(np.float32))
    best, arg, total, count = lex.scores_full(Q, strong=0.3)
    few = lex.scores_full(Q[:3], strong=0.3)  # a few notes count strong n-grams another way
    assert all(np.array_equal(a[:3], b) for a, b in zip((best, arg, total, count), few))
    P = lex.P_.toarray()
    for i in range(Q.shape[0]):
        terms = Q.indices[Q.indptr[i]:Q.indptr[i + 1]]
        sub = P[terms]
        assert np.array_equal(best[i], sub.max(axis=0) if len(terms) else np.zeros(n_codes))
        assert np.allclose(total[i], sub.sum(axis=0, dtype=np.float64), rtol=1e-6)
        assert np.array_equal(count[i], (sub >= np.float32(0.3)).sum(axis=0))
        for c in range(n_codes):
            if best[i, c] > 0:  # the last of the tied n-grams in the row's order
                assert arg[i, c] == terms[np.flatnonzero(sub[:, c] == best[i, c])[-1]]
            else:
                assert arg[i, c] == -1
    b2, a2, t2, c2 = lex.scores_full(Q, strong=0.3, with_arg=False)
    assert a2 is None and np.array_equal(b2, best) and np.array_equal(t2, total) and np.array_equal(c2, count)
    c3 = lex.scores_full(Q, strong=0.5, with_arg=False)[3]  # another threshold: counted again
    for i in range(Q.shape[0]):
        sub = P[Q.indices[Q.indptr[i]:Q.indptr[i + 1]]]
        assert np.array_equal(c3[i], (sub >= np.float32(0.5)).sum(axis=0))
    assert not {"_dense", "_dense_strong"} & set(pickle.loads(pickle.dumps(lex)).__dict__)


def test_category_signals_sum_votes_as_ndarray_sum() -> None:
    """``_cat_signals`` takes sums of few votes from one ``reduceat``; they equal the per-prefix
    ``ndarray.sum`` bit for bit, with 0 to 40 non-zero votes in a prefix."""
    from opencac.coding.candidates import _cat_signals

    rng = np.random.RandomState(5)
    n_codes = 400
    knn = np.zeros((1, n_codes), dtype=np.float32)
    hot = rng.choice(n_codes, 150, replace=False)
    knn[0, hot] = (rng.rand(150) ** 3 / 7).astype(np.float32)
    sig = {k: rng.rand(1, n_codes).astype(np.float32) for k in ("kr", "lex", "slex")}
    sig["knn"] = knn
    prefixes = {f"p{i}": (np.sort(rng.choice(n_codes, rng.randint(1, 60), replace=False)), 0.5, 3.0)
                for i in range(300)}
    got = _cat_signals(prefixes, list(prefixes), sig, 0)
    votes = set()
    for k, (idx, _, _) in prefixes.items():
        assert got[k][1] == float(knn[0][idx].sum()), k
        assert got[k][0] == float(sig["kr"][0][idx].max())
        votes.add(min(int((knn[0][idx] != 0).sum()), 3))
    assert votes == {0, 1, 2, 3}  # every path ran


@pytest.mark.slow
def test_model_load_cache_gives_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opencac.coding.engine import CodingEngine
    from opencac.coding.model import EngineModel
    from test_engine import _toy_corpus  # tests/coding is on sys.path (rootdir-less test modules)

    engine = CodingEngine.load(None)
    model = CodingEngine(engine.kb, engine.matcher).train(_toy_corpus(), folds=3, seed=1)
    out = model.save(tmp_path / "m")
    monkeypatch.setenv("OPENCAC_CACHE_DIR", str(tmp_path / "cache"))
    first = EngineModel.load(out)  # reads the joblib artifacts, writes the load cache
    assert list((tmp_path / "cache" / "engine" / "models").glob("model-*.pkl"))
    second = EngineModel.load(out)  # from the cache: plain featurizer and calibrators
    assert "word_" not in second.featurizer_.__dict__
    assert type(second.calibrators_["icd10cm"]).__name__ == "IsotonicCurve"
    note = "Fever and cough; chest X-ray shows a right lower lobe pneumonia. Appendectomy."
    results = [CodingEngine(engine.kb, engine.matcher, m).code(note) for m in (model, first, second)]
    for r in results[1:]:
        assert [(s.code, s.confidence, s.rationale) for s in r.diagnoses + r.procedures] == \
               [(s.code, s.confidence, s.rationale) for s in results[0].diagnoses + results[0].procedures]
    (out / "featurizer.joblib").touch()  # a changed artifact is read again, not taken from the cache
    assert "word_" in EngineModel.load(out).featurizer_.__dict__


@pytest.mark.slow
def test_a_saved_model_loads_from_the_cache_the_first_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``save`` writes the load cache: the first load after training reads no joblib artifact."""
    import joblib

    from opencac.coding.engine import CodingEngine
    from opencac.coding.model import EngineModel
    from test_engine import _toy_corpus

    monkeypatch.setenv("OPENCAC_CACHE_DIR", str(tmp_path / "cache"))
    engine = CodingEngine.load(None)
    model = CodingEngine(engine.kb, engine.matcher).train(_toy_corpus(), folds=3, seed=1)
    out = model.save(tmp_path / "m")
    assert len(list((tmp_path / "cache" / "engine" / "models").glob("model-*.pkl"))) == 1

    def no_joblib(*args: object, **kwargs: object) -> None:
        raise AssertionError("read a joblib artifact")

    monkeypatch.setattr(joblib, "load", no_joblib)
    loaded = EngineModel.load(out)
    assert "word_" not in loaded.featurizer_.__dict__
    note = "Fever and cough; chest X-ray shows a right lower lobe pneumonia. Appendectomy."
    want, got = (CodingEngine(engine.kb, engine.matcher, m).code(note) for m in (model, loaded))
    assert [(s.code, s.confidence, s.rationale) for s in got.diagnoses + got.procedures] == \
           [(s.code, s.confidence, s.rationale) for s in want.diagnoses + want.procedures]


def _hit(code: str, assertion: str) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(code=code, assertion=assertion)


def test_related_assertion_matches_the_assertion_of_the_gathered_hits() -> None:
    from opencac.coding.engine import _assertion, _RelatedHits

    hit_codes = {
        "e119": [_hit("E11.9", "negated"), _hit("E11.9", "affirmed")],
        "e11": [_hit("E11", "family")],
        "i10": [_hit("I10", "negated")],
        "i5030": [_hit("I50.30", "uncertain"), _hit("I50.30", "negated"), _hit("I50.30", "uncertain")],
        "i50": [_hit("I50", "historical")],
        "z8701": [_hit("Z87.01", "historical")],
    }
    related = _RelatedHits(hit_codes)
    queries = ["e1165", "e11", "e119x", "i1", "i10x", "i503", "i5031", "i50", "z87", "z8701x", "j189", "e"]
    outcomes = set()
    for code in queries:
        want = _assertion(related(code))
        assert related.assertion(code) == want, code
        outcomes.add(want)
    assert outcomes >= {"affirmed", "negated", "uncertain", "historical"}  # every branch ran


def test_feature_matrix_rounds_like_a_float32_array() -> None:
    from opencac.coding.candidates import FEATURES, Candidate, feature_matrix

    rng = np.random.RandomState(3)
    cands = []
    for i in range(40):
        keys = [FEATURES[j] for j in rng.permutation(len(FEATURES))[: 5 + i % 7]]
        feats = {k: float(rng.randn() * 10 ** rng.randint(-8, 8)) for k in keys}
        if i % 5 == 0:
            feats[keys[0]] = float("nan")
        feats["not_a_feature"] = 1.0
        cands.append(Candidate(f"c{i}", feats))
    M = feature_matrix(cands)
    for i, c in enumerate(cands):
        for k, v in c.feats.items():
            if k == "not_a_feature":
                continue
            got = M[i, FEATURES.index(k)]
            assert (np.isnan(got) and np.isnan(v)) or got == np.float32(v)
        assert np.isnan(M[i, [j for j, f in enumerate(FEATURES) if f not in c.feats]]).all()


def test_csr_gather_equals_scipy_row_indexing() -> None:
    from opencac.coding.supervised import _csr_gather

    rng = np.random.RandomState(11)
    A = (rng.rand(60, 40) < 0.1) * rng.rand(60, 40)
    A[5] = 0  # an empty row
    M = sp.csr_matrix(A, dtype=np.float32)
    for rows in ([], [5], [3, 3, 59, 0, 5, 17], list(rng.permutation(60))):
        r = np.asarray(rows, dtype=np.int64)
        c, v = _csr_gather(M, r)
        sub = M[r]
        assert np.array_equal(c, sub.indices) and np.array_equal(v, sub.data)
        assert c.dtype == sub.indices.dtype and v.dtype == sub.data.dtype


def test_old_dictionary_caches_are_pruned_by_last_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each dictionary cache is 70-140 MB; a new code-set version or normaliser makes a new one."""
    import os

    from opencac.coding.dictionary import prune_dictionaries

    names = [f"dictionary-{k}-v9-x.pkl" for k in "abcde"]
    for i, n in enumerate(names):
        (tmp_path / n).write_bytes(b"x")
        os.utime(tmp_path / n, (1_000_000 + i, 1_000_000 + i))  # a oldest ... e newest
    os.utime(tmp_path / names[0], (2_000_000, 2_000_000))  # a used last
    (tmp_path / "model-1.pkl").write_bytes(b"x")  # not a dictionary: left alone
    gone = prune_dictionaries(tmp_path, keep=3)
    assert sorted(p.name for p in gone) == [names[1], names[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[0], names[3], names[4], "model-1.pkl"])
    assert prune_dictionaries(tmp_path, keep=0) and len(list(tmp_path.glob("dictionary-*.pkl"))) == 1  # never the newest
