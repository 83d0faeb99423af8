"""The column-wise candidate features (one float64 matrix per note) equal those of the
per-candidate implementation they replaced (kept below as the reference), candidate order
and membership included; and the garbage-collector pause nests and restores."""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from opencac.codesets.config import paused_gc
from opencac.coding.candidates import (
    FEATURES, SKR_TOP_N, Candidate, _cat, _cat_signals, _children, _find, _finder, _hit_stats, _kb_memo, _memo_key,
    _prefix_arrays, _title_words, _TITLE_CACHE, _words, build_candidates, feature_matrix)
from opencac.coding.corpus import canon
from opencac.coding.supervised import HitPrecision, SupervisedLayer, TextFeaturizer, sentence_matrices


def _reference_build_candidates(
    system: str,
    hits: Sequence[Any],
    sup: Any | None,
    sig: dict[str, np.ndarray] | None,
    row: int,
    kb: Any | None,
    doc_len: int,
    top_n: int = 30,
    max_children: int = 12,
    text: str | None = None,
) -> dict[str, Candidate]:
    """The per-candidate implementation (commit 68c28ba), the reference."""
    cands: dict[str, Candidate] = {}

    def get(code: str) -> Candidate:
        c = cands.get(code)
        if c is None:
            c = cands[code] = Candidate(code, {}, [], set(), [])
        return c

    by_code: dict[str, list[Any]] = {}
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
            if (len(code) == 4 and code[0] == "b" and kb is not None and _find(kb, code + "zzz", system) is not None
                    and not all(h.attributes.get("contrast") == "given" for h in hs)):
                get(code + "zzz").via.add("parent")
            for i in prefix_index.get(code[:4] if len(code) >= 4 else code, []):
                get(codes[i]).via.add("sibling")

    # supervised candidates
    if sup is not None and sig is not None:
        for key in ("kr", "knn", "lex", "skr"):
            v = sig[key][row]
            n = min(top_n, SKR_TOP_N) if key == "skr" else top_n
            top = np.argpartition(-v, min(n, len(v) - 1))[:n] if len(v) > n else np.arange(len(v))
            for j in top[v[top] > 0].tolist():
                get(codes[j]).via.add("sup")

    if not cands:
        return cands

    # features
    cat_hits: dict[str, list[Any]] = {}
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
        for key in ("kr", "knn", "lex", "lex_sum", "lex_n", "slex", "slex_sum", "slex_n", "skr"):
            if key in sig:
                got_[key] = sig[key][row][jj].tolist()
        for key in ("kr", "knn", "lex", "skr"):
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
    cat_cache: dict[str, tuple[float, ...]] = {}
    if sig is not None and prefixes:
        needed = {code[:3] for code in cands} | {code[:4] for code in cands if len(code) >= 4}
        cat_cache.update(_cat_signals(prefixes, [p for p in needed if p in prefixes], sig, row))
    zero7 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    # hits on descendants (a candidate is a prefix of a matched code) and on ancestors
    desc_hits: dict[str, list[Any]] = {}
    for k, hs in by_code.items():
        for n in range(1, len(k)):
            desc_hits.setdefault(k[:n], []).extend(hs)
    prior = sup.prior_ if sup is not None else None
    k = -1  # position among the candidates seen in training
    kr_den, lex_den = max(kr_top, 1e-6), max(lex_top, 1e-6)
    no_sum, no_n = [0.0] * len(js), [0.0] * len(js)
    lex_sums, lex_ns = got_.get("lex_sum", no_sum), got_.get("lex_n", no_n)
    find = _finder(kb, system) if kb is not None else None
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
            for key in ("slex", "slex_sum", "slex_n", "skr"):
                f[key] = got_[key][k]
            f["skr_rank"] = got_["skr_rank"][k]
            f["kr_rel"] = kr / kr_den
            f["lex_rel"] = lx / lex_den
            f["prior_log"] = math.log1p(float(prior[j]))
            f["in_train"] = 1.0
        else:
            f["kr_rank"] = f["knn_rank"] = f["lex_rank"] = f["skr_rank"] = 1e4
        kr, kn, lx, pr, nt, sl, sk = cat_cache.get(code[:3], zero7)
        f["cat_kr_max"], f["cat_knn_sum"], f["cat_lex_max"], f["cat_prior_log"], f["cat_n_train"] = kr, kn, lx, pr, nt
        f["cat_slex_max"], f["cat_skr_max"] = sl, sk
        if len(code) >= 4:
            kr4, kn4, _, pr4, _, sl4, _ = cat_cache.get(code[:4], zero7)
            f["cat4_kr_max"], f["cat4_knn_sum"], f["cat4_prior_log"], f["cat4_slex_max"] = kr4, kn4, pr4, sl4
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
            f["title_unspecified"] = float(obj is not None and "unspecified" in obj.description.lower())
        via = c.via
        f["via_dict"] = float("dict" in via)
        f["via_parent"] = float("parent" in via)
        f["via_sibling"] = float("sibling" in via)
        f["via_sup"] = float("sup" in via)
        f["via_child"] = float("child" in via)
        if note_words is not None:
            tw = titles.get(_memo_key(code, system))
            own, extra = tw if tw is not None else _title_words(kb, code, system)
            f["desc_cov"] = len(own & note_words) / len(own) if own else math.nan
            f["desc_extra_n"] = float(len(extra))
            f["desc_extra_cov"] = len(extra & note_words) / len(extra) if extra else math.nan
        f["doc_hits"] = doc_hits
        f["doc_len"] = doc_len_f
    return cands



DOCS = [
    ("Fever and cough. Chest X-ray: right lower lobe pneumonia. Type 2 diabetes.", ["j189", "r509", "e119"]),
    ("Localized swelling of the neck; ultrasound of the neck. No fever.", ["r221", "bw40zzz"]),
    ("Acute appendicitis, laparoscopic appendectomy. Abdominal pain.", ["k358", "0dtj4zz", "r109"]),
    ("Type 2 diabetes mellitus with chronic kidney disease stage 3; anemia.", ["e1122", "n183", "d649"]),
    ("Swelling of the head after a fall; CT of the head was normal.", ["r220", "w19", "bw28zzz"]),
    ("Pneumonia of the left lung with fever; chest CT.", ["j189", "r509", "bw25zzz"]),
    ("Chronic kidney disease stage 4, renal biopsy. Hypertension.", ["n184", "i129", "0tb03zx"]),
    ("Neck mass and lump; biopsy of the neck.", ["r221", "0wbf3zx"]),
] * 2

KB_TITLES = {
    "r22": "Localized swelling, mass and lump of skin", "r220": "Localized swelling, mass and lump, head",
    "r221": "Localized swelling, mass and lump, neck", "r50": "Fever of other and unknown origin",
    "r509": "Fever, unspecified", "j18": "Pneumonia, unspecified organism", "j189": "Pneumonia, unspecified organism",
    "e11": "Type 2 diabetes mellitus", "e119": "Type 2 diabetes mellitus without complications",
    "e1122": "Type 2 diabetes mellitus with diabetic chronic kidney disease", "n18": "Chronic kidney disease (CKD)",
    "n183": "Chronic kidney disease, stage 3 (moderate)", "n184": "Chronic kidney disease, stage 4 (severe)",
    "bw40zzz": "Ultrasonography of Abdomen", "bw40": "Ultrasonography, Abdomen",
}


def _hits(doc: int) -> list[SimpleNamespace]:
    """Dictionary hits with every field the features read, varied by document."""
    rng = np.random.RandomState(doc)
    specs = [("R22", "swelling", "index"), ("R50.9", "fever", "tabular"), ("J18.9", "pneumonia", "inclusion"),
             ("E11", "type 2 diabetes", "index"), ("N18.3", "chronic kidney disease", "clinical"),
             ("BW40", "ultrasound", "imaging"), ("0DT", "appendectomy", "pcs-index"), ("R22", "lump", "neoplasm")]
    out = []
    for k in rng.choice(len(specs), size=4 + doc % 3, replace=False):
        code, phrase, source = specs[k]
        for _ in range(1 + rng.randint(2)):
            out.append(SimpleNamespace(
                code=code, phrase=phrase, source=source, system="icd10pcs" if code[0] in "B0" else "icd10cm",
                score=float(rng.choice([1.0, 0.8, 0.65])), n_tokens=1 + rng.randint(3), subsumed=bool(rng.rand() < 0.3),
                incomplete=len(code) == 3, sentence=int(rng.randint(4)),
                assertion=str(rng.choice(["affirmed", "negated", "family", "uncertain", "odd"])),
                attributes={"contrast": "given"} if rng.rand() < 0.3 else {}, specified=bool(rng.rand() < 0.2)))
    return out


@pytest.fixture(scope="module")
def setting() -> dict[str, Any]:
    texts = [t for t, _ in DOCS]
    feat = TextFeaturizer(max_word_features=300, max_char_features=300).fit(texts)
    X, B = feat.transform_and_binary(texts)
    hits = [_hits(i) for i in range(len(DOCS))]
    out = {"texts": texts, "hits": hits}
    for system in ("icd10cm", "icd10pcs"):
        pcs = system == "icd10pcs"
        codes = [[c for c in cl if (c[0] in "b0") == pcs] for _, cl in DOCS]
        # each sentence evidence for every n-th code of its note (the sentence lexicon's input)
        (T, S), s_doc, spans = sentence_matrices(feat, texts)
        s_codes = [codes[d][j::len(spans[d])] for d in range(len(texts)) for j in range(len(spans[d]))]
        layer = SupervisedLayer().fit(X, B, codes, sentences=(S, s_codes, T))
        sig = layer.scores(X, B, sentences=(T, s_doc))
        # the sentence columns are compared with values, not zeros
        assert sig["slex"].any() and sig["skr"].any()
        hs = [[h for h in hl if h.system == system] for hl in hits]
        layer.hit_precision_ = HitPrecision().fit(hs, codes)
        out[system] = (layer, sig, hs)
    objs = {k: SimpleNamespace(code=k, description=v, billable=len(k) > 3) for k, v in KB_TITLES.items()}
    out["kb"] = SimpleNamespace(
        find=lambda c, system=None: objs.get(c),
        children=lambda c: [objs[k] for k in sorted(objs) if k.startswith(c) and len(k) == len(c) + 1])
    return out


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("system", ["icd10cm", "icd10pcs"])
@pytest.mark.parametrize("supervised", [True, False])
def test_column_features_equal_the_per_candidate_reference(setting: dict[str, Any], system: str,
                                                           supervised: bool) -> None:
    layer, sig, hs = setting[system]
    kb = setting["kb"]
    compared = 0
    unspecified: set[float] = set()
    for r, text in enumerate(setting["texts"]):
        args = (system, hs[r], layer if supervised else None, sig if supervised else None, r, kb, len(text.split()))
        kw = {"top_n": 3, "text": text} if supervised else {}
        ref = _reference_build_candidates(*args, **kw)
        got = build_candidates(*args, **kw)
        assert list(got) == list(ref)  # same candidates, same order
        for code, c in got.items():
            assert c.via == ref[code].via and c.hits == ref[code].hits
            want = {k: v for k, v in ref[code].feats.items() if not (isinstance(v, float) and math.isnan(v))}
            assert c.feats == want
            for name in ("in_train", "hp_rate", "d_src_clinical", "kb_known"):
                assert c.feat(name) == want.get(name)
            unspecified.add(c.feats.get("title_unspecified", math.nan))
        if got:
            M, R = feature_matrix(list(got.values())), feature_matrix(list(ref.values()))
            assert M.dtype == R.dtype == np.float32
            assert np.array_equal(M, R, equal_nan=True)
            compared += len(got)
    assert compared > 20
    if system == "icd10cm":  # "Fever, unspecified" (R50.9) and worded codes both among the candidates
        assert {0.0, 1.0} <= unspecified


def test_feature_matrix_mixes_built_and_hand_made_candidates(setting: dict[str, Any]) -> None:
    layer, sig, hs = setting["icd10cm"]
    text = setting["texts"][0]
    built = list(build_candidates("icd10cm", hs[0], layer, sig, 0, setting["kb"], 10, top_n=3, text=text).values())
    other = list(build_candidates("icd10cm", hs[1], layer, sig, 1, setting["kb"], 10, top_n=3,
                                  text=setting["texts"][1]).values())
    hand = Candidate("x99", {"kr": 0.5, "code_len": 3.0})
    mixed = built[:2] + [hand] + other[::-1] + built[2:]
    M = feature_matrix(mixed)
    for i, c in enumerate(mixed):
        row = feature_matrix([c])[0]
        assert np.array_equal(M[i], row, equal_nan=True)
    assert M[2, FEATURES.index("kr")] == np.float32(0.5) and np.isnan(M[2, FEATURES.index("lex")])
    assert hand.feat("kr") == 0.5 and hand.feat("lex") is None


def test_paused_gc_nests_and_restores() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # off before: stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_cli_commands_leave_the_collector_as_they_found_it(tmp_path: Any) -> None:
    """`opencac code` pauses the collector and `opencac predict` freezes what it loaded; called
    in process (as tests and embedders do), both hand the collector back unchanged."""
    from typer.testing import CliRunner

    from opencac.cli.main import app

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("Patient with essential hypertension and fever.", encoding="utf-8")
    runner = CliRunner()
    frozen = gc.get_freeze_count()
    res = runner.invoke(app, ["code", str(notes / "a.txt"), "--no-rules"])
    assert res.exit_code == 0, res.output
    assert gc.isenabled()
    res = runner.invoke(app, ["predict", "--model", "none", "--input", str(notes), "--system", "icd10cm",
                              "--out", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    assert (tmp_path / "p.tsv").read_text(encoding="utf-8").startswith("a\t")


def test_rank_reads_only_the_columns_a_model_was_trained_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model trained before a FEATURES column was appended scores on the columns it knows."""
    from opencac.coding import model as M
    from opencac.coding.candidates import FEATURES, LEGACY_N_FEATURES

    widths: list[int] = []
    monkeypatch.setattr(M, "_compiled", lambda *a: None)
    monkeypatch.setattr(M, "_numpy_forests", lambda *a: None)
    monkeypatch.setattr(M, "ranker_scores", lambda rankers, X: widths.append(X.shape[1]) or np.zeros(len(X)))
    m = M.EngineModel()
    m.rankers_ = {"icd10cm": []}
    X = np.ones((4, len(FEATURES)), dtype=np.float32)
    m.manifest = {}  # a model from before the manifest recorded its width
    M._rank(m, "icd10cm", X)
    m.manifest = {"n_features": {"icd10cm": len(FEATURES)}}
    M._rank(m, "icd10cm", X)
    assert widths == [LEGACY_N_FEATURES, len(FEATURES)] and LEGACY_N_FEATURES < len(FEATURES)
    assert FEATURES[LEGACY_N_FEATURES] == "title_unspecified"  # appended after the legacy columns
