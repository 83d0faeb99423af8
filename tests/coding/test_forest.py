"""The compiled ranker predicts exactly what LightGBM predicts, or declines."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from opencac.coding import forest


def _booster(objective: str = "binary", rounds: int = 30) -> tuple[object, np.ndarray]:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 6)).astype(np.float32)
    X[rng.rand(600) < 0.3, 1] = np.nan  # a feature with missing values (NaN splits)
    X[:, 2] = np.round(X[:, 2])  # a discrete feature, with zeros
    y = ((np.nan_to_num(X[:, 1]) + X[:, 0] * X[:, 2] + rng.normal(scale=0.3, size=600)) > 0).astype(float)
    params = {"objective": objective, "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1, "num_threads": 1}
    if objective == "multiclass":
        params["num_class"] = 3
        y = (y + (X[:, 3] > 0)).astype(float)
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=rounds), X


@pytest.mark.skipif(not forest.compiler_available(), reason="no C compiler")
def test_compiled_equals_lightgbm(tmp_path: Path) -> None:
    booster, X = _booster()
    text = booster.model_to_string()
    assert forest.load_compiled(text, tmp_path) is None  # not built yet
    compiled = forest.load_compiled(text, tmp_path, build=True, check=booster)
    assert compiled is not None
    rng = np.random.RandomState(1)
    Q = np.vstack([X, rng.normal(size=(200, 6)).astype(np.float32)])
    Q[rng.rand(len(Q)) < 0.2, 0] = np.nan  # NaN where training had none (read as 0)
    Q[:5, 2] = np.float32(1e-36)  # below LightGBM's zero threshold (read as 0)
    Q[5:10, 2] = np.float32(-1e-36)
    assert np.array_equal(compiled.predict(Q), booster.predict(Q, num_threads=1))
    again = forest.load_compiled(text, tmp_path)  # from the cache, no compiler needed
    assert again is not None and np.array_equal(again.predict(Q), booster.predict(Q, num_threads=1))
    mean = forest.predict_mean([compiled, again], Q)
    assert np.array_equal(mean, np.mean([booster.predict(Q, num_threads=1)] * 2, axis=0))
    with pytest.raises(ValueError):
        compiled.predict(Q[:, :3])


def test_unsupported_booster_declines(tmp_path: Path) -> None:
    booster, _ = _booster("multiclass", rounds=3)
    with pytest.raises(forest.UnsupportedBooster):
        forest.generate_c(booster.model_to_string())
    assert forest.load_compiled(booster.model_to_string(), tmp_path, build=True) is None


def test_generated_code_is_exact_literals() -> None:
    booster, _ = _booster(rounds=2)
    source, n_features = forest.generate_c(booster.model_to_string())
    assert n_features == 6
    assert "0x1." in source  # hexadecimal (exact) constants
    # NaN is routed by the form of each comparison, never tested on its own: "x <= t" sends it
    # right, "!(x > t)" left (both occur here; test_compiled_equals_lightgbm checks the routes)
    assert "isnan" not in source
    assert re.search(r"\(!\(x\[\d\] > ", source) and re.search(r"\(x\[\d\] <= ", source)


def test_unusable_cache_dir_falls_back(tmp_path: Path) -> None:
    booster, _ = _booster(rounds=2)
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x", encoding="utf-8")
    assert forest.load_compiled(booster.model_to_string(), blocked, build=True) is None


def test_numpy_forest_equals_lightgbm(monkeypatch: pytest.MonkeyPatch) -> None:
    booster, X = _booster()
    rng = np.random.RandomState(1)
    Q = np.vstack([X, rng.normal(size=(200, 6)).astype(np.float32)])
    Q[rng.rand(len(Q)) < 0.2, 0] = np.nan  # NaN where training had none (read as 0)
    Q[:5, 2] = np.float32(1e-36)  # below LightGBM's zero threshold (read as 0)
    Q[5:10, 2] = np.float32(-1e-36)
    text = booster.model_to_string()
    nf = forest.NumpyForest(text)
    ref = booster.predict(Q, num_threads=1)
    assert np.array_equal(nf.predict(Q), ref)
    # rows on, just below and just above every threshold, and NaN in every feature
    P = forest._probe_rows(text, 6)
    assert np.array_equal(nf.predict(P), booster.predict(P, num_threads=1))
    # few (row, tree) pairs at a time: the same scores, in row order
    monkeypatch.setattr(forest, "_NUMPY_PAIRS", 64)
    assert np.array_equal(nf.predict(Q), ref)
    assert forest.NumpyForest(text).predict(Q[:0]).shape == (0,)
    with pytest.raises(ValueError):
        nf.predict(Q[:, :3])


def test_numpy_forest_one_leaf_trees_and_declines() -> None:
    lgb = pytest.importorskip("lightgbm")
    booster, X = _booster(rounds=5)
    # the third of five trees replaced by a one-leaf tree (the flat arrays' offsets must skip it)
    text = re.sub(r"tree_sizes=.*\n", "", booster.model_to_string())
    blocks = text.split("Tree=")
    blocks[3] = ("2\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n"
                 "left_child=\nright_child=\nleaf_value=0.25\nleaf_weight=\nleaf_count=40\ninternal_value=\n"
                 "internal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n\n\n")
    mixed = lgb.Booster(model_str="Tree=".join(blocks))
    ref = mixed.predict(X, num_threads=1)
    assert not np.array_equal(ref, booster.predict(X, num_threads=1))  # the edit took
    assert np.array_equal(forest.NumpyForest("Tree=".join(blocks)).predict(X), ref)
    multi, _ = _booster("multiclass", rounds=3)
    with pytest.raises(forest.UnsupportedBooster):
        forest.NumpyForest(multi.model_to_string())
