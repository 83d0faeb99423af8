"""Coders' evidence carried to the English notes, and the sentence votes learnt from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from opencac.coding.align import align_sentences
from opencac.coding.corpus import CM, PCS, corpus_hash, load_corpus
from opencac.coding.model import _sentence_subset
from opencac.coding.supervised import SupervisedLayer, sentence_labels
from opencac.errors import CorpusError

ES = ("Varón de 37 años con fiebre de 40 C desde hace 3 días.\n"
      "Se realizó una ecografía hepática que fue normal. Presentaba orquiepididimitis derecha con dolor intenso.\n"
      "Se trató con doxiciclina 100 mg cada 12 horas durante 45 días.")
EN = ("A 37-year-old man with a fever of 40 C for 3 days.\n"
      "A liver ultrasound was performed, which was normal.\n"
      "He had right orchiepididymitis with severe pain.\n"
      "He was treated with doxycycline 100 mg every 12 hours for 45 days.")


def test_alignment_maps_a_span_to_the_translated_sentence() -> None:
    al = align_sentences(ES, EN)
    # the Spanish second line holds two sentences; the English has them on two lines
    assert len(al.source_sentences) == 4 and len(al.target_sentences) == 4
    for word, english in (("orquiepididimitis", "orchiepididymitis"), ("ecografía", "liver ultrasound"),
                          ("doxiciclina", "doxycycline"), ("fiebre", "fever")):
        s = ES.index(word)
        got = al.target_spans(s, s + len(word))
        assert len(got) == 1, word
        assert english in EN[got[0][0]:got[0][1]], word


def test_alignment_survives_a_merged_sentence() -> None:
    en = EN.replace(".\nHe had", ", and he had")  # two English sentences fewer boundaries than Spanish
    al = align_sentences(ES, en)
    s = ES.index("orquiepididimitis")
    spans = al.target_spans(s, s + 5)
    assert any("orchiepididymitis" in en[a:b] for a, b in spans)
    assert al.target_spans(ES.index("doxiciclina"), ES.index("doxiciclina") + 3) == [
        (en.index("He was treated"), len(en))]


def _split_with_evidence(tmp_path: Path) -> Path:
    d = tmp_path / "train"
    (d / "text_files_en").mkdir(parents=True)
    (d / "text_files").mkdir()
    (d / "text_files_en" / "doc1.txt").write_text(EN, encoding="utf-8")
    (d / "text_files" / "doc1.txt").write_text(ES, encoding="utf-8")
    (d / "trainD.tsv").write_text("doc1\tn45.3\ndoc1\tr50.9\n", encoding="utf-8")
    (d / "trainP.tsv").write_text("doc1\tbf45zzz\n", encoding="utf-8")
    s = ES.index("orquiepididimitis")
    e = ES.index("ecografía")
    (d / "trainX.tsv").write_text(
        f"doc1\tDIAGNOSTICO\tn45.3\torquiepididimitis derecha\t{s} {s + 25}\n"
        f"doc1\tPROCEDIMIENTO\tbf45zzz\tecografía hepática\t{e} {e + 9};{e + 10} {e + 18}\n", encoding="utf-8")
    return d


def test_codiesp_evidence_lands_on_the_english_sentences(tmp_path: Path) -> None:
    (doc,) = load_corpus(_split_with_evidence(tmp_path))
    (span,) = doc.evidence[CM]["n453"]
    assert "orchiepididymitis" in doc.text[span[0]:span[1]]
    (span,) = doc.evidence[PCS]["bf45zzz"]
    assert "liver ultrasound" in doc.text[span[0]:span[1]]
    assert "r509" not in doc.evidence[CM]  # coded, but the X file gives no evidence for it


def test_evidence_without_an_original_is_left_out(tmp_path: Path) -> None:
    d = _split_with_evidence(tmp_path)
    (d / "text_files" / "doc1.txt").unlink()
    (doc,) = load_corpus(d)
    assert doc.evidence == {}
    assert doc.codes[CM] == ["n453", "r509"]


def test_bad_evidence_offsets_are_a_clear_error(tmp_path: Path) -> None:
    d = _split_with_evidence(tmp_path)
    (d / "trainX.tsv").write_text("doc1\tDIAGNOSTICO\tn45.3\tx\tten 20\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="trainX.tsv line 1: offsets"):
        load_corpus(d)


def test_short_evidence_rows_are_a_clear_error(tmp_path: Path) -> None:
    d = _split_with_evidence(tmp_path)
    (d / "trainX.tsv").write_text("doc1\tDIAGNOSTICO\tn45.3\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"trainX.tsv line 1: expected 5 tab-separated columns .*got 3\."):
        load_corpus(d)


def test_jsonl_spans(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    text = "Fever. Type 2 diabetes without complications."
    rows = [{"id": "a", "text": text, "codes": [{"code": "E11.9", "spans": [[7, 22]]}, "R50.9"]}]
    p.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    (doc,) = load_corpus([p])
    assert doc.evidence == {CM: {"e119": [(7, 22)]}}
    assert doc.codes[CM] == ["e119", "r509"]
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "a", "text": text, "codes": ["E11.9", "R50.9"]}) + "\n", encoding="utf-8")
    assert corpus_hash([doc]) != corpus_hash(load_corpus([plain]))
    p.write_text(json.dumps({"id": "a", "text": text, "codes": [{"code": "E11.9", "spans": [[7, 99]]}]}) + "\n",
                 encoding="utf-8")
    with pytest.raises(CorpusError, match="outside the text"):
        load_corpus([p])


def test_sentence_labels_follow_overlap() -> None:
    spans = [(0, 10), (11, 30), (31, 40)]
    got = sentence_labels(spans, {"a": [(12, 15)], "b": [(5, 12)], "c": [(40, 45)]})
    assert got == [["b"], ["a", "b"], []]


def _rows(*vecs: list[float]) -> sp.csr_matrix:
    return sp.csr_matrix(np.array(vecs, dtype=np.float32))


def test_sentence_lexicon_learns_where_the_evidence_is() -> None:
    # word columns: 0 "orchitis", 1 "pain", 2 "fever", 3 "normal"; both notes are coded a (orchitis)
    # and b (fever), but the evidence of a is the sentence with word 0, of b the one with word 2
    notes = _rows([1, 1, 1, 1], [1, 0, 1, 1])
    sents = _rows([1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1])
    layer = SupervisedLayer(lex_alpha=1.0).fit(notes, notes, [["a", "b"], ["a", "b"]],
                                               sentences=(sents, [["a"], ["b"], ["a"], ["b"], []]))
    a, b = layer.index_["a"], layer.index_["b"]
    sig = layer.scores(_rows([1, 0, 0, 0]), _rows([1, 0, 0, 0]))
    # the note-level lexicon ties "orchitis" to both codes; the sentence lexicon to a only
    assert sig["lex"][0, a] == pytest.approx(sig["lex"][0, b])
    assert sig["slex"][0, a] == pytest.approx(2 / 3) and sig["slex"][0, b] == 0.0
    sig = layer.scores(_rows([0, 0, 0, 1]), _rows([0, 0, 0, 1]))
    assert sig["slex"][0, b] == pytest.approx(1 / 3) and sig["slex"][0, a] == 0.0
    assert sig["slex_n"][0, b] == 1.0 and sig["slex_sum"][0, b] == pytest.approx(1 / 3)


def test_layer_without_evidence_gives_zero_sentence_signals() -> None:
    X = _rows([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0])
    layer = SupervisedLayer().fit(X, X, [["a"], ["b"], ["a"], ["b"]])
    sig = layer.scores(X, X)
    assert sig["lex"].any()
    assert not sig["slex"].any() and not sig["slex_sum"].any() and not sig["slex_n"].any()
    # learning adds sentences (and new codes) to the sentence lexicon
    layer.update(X[:1], X[:1], [["c"]], sentences=(X[:1], [["c"]]))
    sig = layer.scores(X[:1], X[:1])
    assert sig["slex"][0, layer.index_["c"]] > 0
    assert sig["slex"][0, layer.index_["a"]] == 0.0


def test_sentence_subset_keeps_the_chosen_documents() -> None:
    rows = sp.csr_matrix(np.arange(12, dtype=np.float32).reshape(6, 2))
    s_doc = np.array([0, 0, 1, 2, 2, 2])
    labels = [["a"], [], ["b"], [], [], ["c"]]
    got, codes = _sentence_subset(rows, s_doc, np.array([2, 0]), labels)
    assert got.toarray()[:, 0].tolist() == [0, 2, 6, 8, 10]
    assert codes == [["a"], [], [], [], ["c"]]
    got, codes = _sentence_subset(rows, s_doc, np.array([1, 3]), labels)
    assert codes == [["b"]] and got.shape == (1, 2)
    got, codes = _sentence_subset(rows, s_doc, np.array([], dtype=np.int64), labels)
    assert got.shape == (0, 2) and codes == []


def test_alignment_of_long_notes_keeps_every_pair() -> None:
    """A banded search: 400 sentences a side (one merged, one split) still align one to one elsewhere."""
    es = [f"Frase {i} del paciente con fiebre de {30 + i % 10} grados." for i in range(400)]
    en = [f"Sentence {i} of the patient with a fever of {30 + i % 10} degrees." for i in range(400)]
    en[100:102] = [en[100][:-1] + " and " + en[101]]  # two Spanish sentences translated as one
    al = align_sentences(" ".join(es), "\n".join(en))
    assert len(al.target_sentences) == 399
    source = " ".join(es)
    target = "\n".join(en)
    for i, j in ((0, 0), (99, 99), (250, 249), (399, 398)):
        s = source.index(es[i])
        (got,) = al.target_spans(s, s + 5)
        assert target[got[0]:got[1]] == en[j]
    s = source.index(es[101])
    assert [target[a:b] for a, b in al.target_spans(s, s + 5)] == [en[100]]


def test_sentence_ridge_learns_which_sentence_holds_a_code() -> None:
    from opencac.coding.supervised import SentenceRidge

    # columns: 0 "orchitis", 1 "pain", 2 "fever", 3 "normal", 4 "liver"; sentence rows are
    # evidence for a (orchitis), b (fever), or nothing ("liver normal")
    sents = _rows([1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 1],
                  [0, 1, 0, 1, 1])
    Y = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 0], [0, 0]], dtype=np.float32))
    ridge = SentenceRidge(lam=0.1).fit(sents, Y)
    # three notes: one sentence with orchitis; a fever sentence and a normal one; no sentences
    T = _rows([1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1])
    got = ridge.scores(T, np.array([0, 1, 1]), 3)
    assert got.shape == (3, 2)
    assert got[0, 0] > 0.5 > got[0, 1]
    assert got[1, 1] > 0.5 > got[1, 0]
    assert not got[2].any()  # a note without sentences scores nothing
    # a note's score is its best sentence's, and that sentence's row is given on request
    alone = ridge.scores(_rows([0, 0, 0, 1, 1]), np.array([0]), 1)
    assert got[1, 1] == pytest.approx(max(ridge.scores(_rows([0, 0, 1, 0, 0]), np.array([0]), 1)[0, 1],
                                          alone[0, 1]))
    again, arg = ridge.scores(T, np.array([0, 1, 1]), 3, with_arg=True)
    assert np.array_equal(again, got)
    assert arg[0].tolist() == [0, 0] and arg[1, 1] == 1 and arg[2].tolist() == [-1, -1]


def test_sentence_ridge_keeps_the_largest_weights_per_code() -> None:
    from opencac.coding.supervised import SentenceRidge

    rng = np.random.RandomState(0)
    T = sp.random(120, 300, density=0.05, format="csr", random_state=1, dtype=np.float32)
    Y = sp.csr_matrix((rng.rand(120, 7) < 0.1).astype(np.float32))
    full = SentenceRidge(keep=10 ** 6).fit(T, Y).W_.toarray()
    kept = SentenceRidge(keep=20).fit(T, Y).W_.toarray()
    assert ((kept != 0).sum(axis=0) <= 20).all() and (kept != 0).sum() > 0
    for j in range(7):  # the kept weights are the code's largest, unchanged
        nz = np.flatnonzero(kept[:, j])
        assert np.allclose(kept[nz, j], full[nz, j], rtol=1e-4, atol=1e-6)
        rest = np.setdiff1d(np.arange(300), nz)
        assert np.abs(full[rest, j]).max() <= np.abs(full[nz, j]).min() + 1e-6


def test_layer_sentence_ridge_from_tfidf_rows_and_updates() -> None:
    notes = _rows([1, 1, 1, 1], [1, 0, 1, 1])
    sents = _rows([1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1])
    codes = [["a"], ["b"], ["a"], ["b"], []]
    layer = SupervisedLayer().fit(notes, notes, [["a", "b"], ["a", "b"]], sentences=(sents, codes, sents))
    a, b = layer.index_["a"], layer.index_["b"]
    sig = layer.scores(notes[:1], notes[:1], sentences=(_rows([1, 0, 0, 0]), np.array([0])))
    assert sig["skr"][0, a] > sig["skr"][0, b]
    # without the notes' sentences, or from a layer fit without TF-IDF rows: zeros
    assert not layer.scores(notes[:1], notes[:1])["skr"].any()
    plain = SupervisedLayer().fit(notes, notes, [["a", "b"], ["a", "b"]], sentences=(sents, codes))
    assert plain.sentence_ridge_ is None
    # learning: the ridge stays as trained; a new code gets a column that scores 0, and the
    # sentence lexicon learns it
    before = layer.scores(notes[:1], notes[:1], sentences=(_rows([1, 1, 0, 0]), np.array([0])))["skr"]
    layer.update(notes[:1], notes[:1], [["c"]], sentences=(_rows([0, 1, 0, 0]), [["c"]]))
    sig = layer.scores(notes[:1], notes[:1], sentences=(_rows([1, 1, 0, 0]), np.array([0])))
    c = layer.index_["c"]
    assert sig["skr"].shape == (1, 3) and sig["skr"][0, c] == 0.0
    assert np.array_equal(sig["skr"][:, :2], before)
    assert sig["slex"][0, c] > 0 and layer.S_.shape[0] == 6


def test_sentence_subset_carries_the_tfidf_rows() -> None:
    binary = sp.csr_matrix(np.arange(12, dtype=np.float32).reshape(6, 2))
    tfidf = binary * 10
    s_doc = np.array([0, 0, 1, 2, 2, 2])
    labels = [["a"], [], ["b"], [], [], ["c"]]
    got_b, codes, got_t = _sentence_subset((tfidf, binary), s_doc, np.array([2, 0]), labels)
    assert got_b.toarray()[:, 0].tolist() == [0, 2, 6, 8, 10]
    assert got_t.toarray()[:, 0].tolist() == [0, 20, 60, 80, 100]
    assert codes == [["a"], [], [], [], ["c"]]


def test_sentence_ridge_folds_equal_a_ridge_fit_without_the_fold() -> None:
    from opencac.coding.supervised import SentenceRidgeFolds

    rng = np.random.RandomState(3)
    T = sp.random(90, 200, density=0.08, format="csr", random_state=4, dtype=np.float32)
    Y = sp.csr_matrix((rng.rand(90, 6) < 0.15).astype(np.float32))
    others = sp.random(5, 200, density=0.08, format="csr", random_state=5, dtype=np.float32)
    folds = SentenceRidgeFolds(lam=0.3).fit(T, Y)
    g = np.array([2, 7, 8, 30, 31, 64])
    rest = np.setdiff1d(np.arange(90), g)
    Tr, Yr = T[rest].toarray().astype(np.float64), Y[rest].toarray()
    A = np.linalg.solve(Tr @ Tr.T + 0.3 * np.eye(len(rest)), Yr)  # the ridge fit without g
    mine, theirs = folds.held_out(g, others)
    assert np.allclose(mine, T[g].toarray() @ Tr.T @ A, atol=1e-3)
    assert np.allclose(theirs, others.toarray() @ Tr.T @ A, atol=1e-3)
    assert folds.held_out(g)[1] is None
    # nothing held out: the ridge on every sentence
    _, every = folds.held_out(np.array([], dtype=np.int64), others)
    full = T.toarray().astype(np.float64)
    A = np.linalg.solve(full @ full.T + 0.3 * np.eye(90), Y.toarray())
    assert np.allclose(every, others.toarray() @ full.T @ A, atol=1e-3)


@pytest.mark.parametrize("cap", [None, 21])
def test_out_of_fold_sentence_ridge_scores_equal_a_ridge_fit_on_the_other_notes(
        cap: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import opencac.coding.supervised as supervised
    from opencac.coding.model import _RidgeFolds
    from opencac.coding.supervised import SentenceRidge, ridge_rows

    if cap is not None:  # more training sentences than the ridge takes: a sample of them, evidence first
        monkeypatch.setattr(supervised, "MAX_RIDGE_SENTENCES", cap)

    rng = np.random.RandomState(7)
    n_notes = 8
    s_doc = np.repeat(np.arange(n_notes), 5)  # five sentences a note
    T = sp.random(len(s_doc), 60, density=0.15, format="csr", random_state=8, dtype=np.float32)
    vocab = ["a", "b", "c", "d"]
    s_codes = [[c for c in vocab if rng.rand() < 0.3] for _ in s_doc]
    docs = [SimpleNamespace(codes={CM: sorted({c for i in np.flatnonzero(s_doc == n) for c in s_codes[i]} | {"d"})})
            for n in range(n_notes)]
    with_ev = np.array([n != 3 for n in range(n_notes)])  # note 3 says nothing of where its codes are
    ridge = _RidgeFolds((T, T), s_doc, s_codes, with_ev, docs, CM)
    held = np.isin(np.arange(n_notes), [1, 3, 6])
    got = ridge.note_scores(held, [1, 3, 6], ["b", "a", "d"])
    # the same from a ridge fit on the sentences of the other notes with evidence (those it takes)
    candidates = np.flatnonzero(with_ev[s_doc])
    labels = sp.csr_matrix(np.array([[c in s_codes[i] for c in vocab] for i in candidates], dtype=np.float32))
    chosen = candidates[ridge_rows(labels)]
    assert len(chosen) == (len(candidates) if cap is None else cap)
    assert np.array_equal(ridge.rows, chosen)
    train = chosen[~held[s_doc[chosen]]]
    Y = sp.csr_matrix(np.array([[c in s_codes[i] for c in ["b", "a", "d"]] for i in train], dtype=np.float32))
    expect = SentenceRidge(keep=10 ** 6).fit(T[train], Y)
    rows = np.flatnonzero(np.isin(s_doc, [1, 3, 6]))
    want = expect.scores(T[rows], np.searchsorted([1, 3, 6], s_doc[rows]), 3)
    assert got.shape == (3, 3)
    assert np.allclose(got, want, atol=1e-3)
    assert np.abs(got).max() > 0.05


def test_sentence_ridge_factorisation_over_several_blocks() -> None:
    """The Gram matrix is built and the inverse made symmetric a block of rows at a time."""
    from opencac.coding.supervised import SentenceRidge, SentenceRidgeFolds

    T = sp.random(1300, 400, density=0.05, format="csr", random_state=0, dtype=np.float32)
    Y = sp.csr_matrix((np.random.RandomState(0).rand(1300, 5) < 0.1).astype(np.float32))
    G = (T @ T.T).toarray().astype(np.float64) + 0.3 * np.eye(1300)
    folds = SentenceRidgeFolds(lam=0.3).fit(T, Y)
    assert np.allclose(folds.Ginv_, np.linalg.inv(G), atol=1e-4)
    assert np.array_equal(folds.Ginv_, folds.Ginv_.T)
    W = T.T.toarray() @ np.linalg.solve(G, Y.toarray())
    assert np.allclose(SentenceRidge(lam=0.3, keep=10 ** 6).fit(T, Y).W_.toarray(), W, atol=1e-4)


def test_ridge_rows_take_evidence_sentences_first() -> None:
    from opencac.coding.supervised import ridge_rows

    labels = sp.csr_matrix(np.array([[i % 3 == 0] for i in range(30)], dtype=np.float32))  # 10 evidence rows
    assert ridge_rows(labels, cap=100).tolist() == list(range(30))
    got = ridge_rows(labels, cap=14)
    assert len(got) == 14 and list(got) == sorted(got)
    assert {i for i in range(30) if i % 3 == 0} <= set(got.tolist())
    got = ridge_rows(labels, cap=6)
    assert len(got) == 6 and all(i % 3 == 0 for i in got)
    assert np.array_equal(ridge_rows(labels, cap=6), got)  # the same draw every time
