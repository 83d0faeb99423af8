"""The ranker compiled to native code: LightGBM boosters turned into C once per machine.

LightGBM walks every tree node by node through arrays (~50 ns a tree per candidate, most of
the engine's time per note). Written out as nested comparisons with the thresholds in the
code, the same trees run ~5x faster. The generated code reproduces LightGBM's prediction
exactly: the same decisions (missing values included), leaf values summed in tree order in
double precision, the same sigmoid - and every build is checked against LightGBM before use.

Built libraries live in the cache directory, keyed by the booster text, so a model is
compiled once per machine (``gcc``/``cc``/``clang``, or ``$CC``; ~5-15 s per booster).
Without a C compiler, or for a booster this code does not handle (categorical splits,
linear trees, another objective), :func:`load_compiled` returns None and the engine keeps
using LightGBM.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Version of the generated code (part of the cache key).
CODEGEN_VERSION = "opencac-forest/3"
_ENTRY = "opencac_forest_predict"
_TREE_BLOCK = 16  # trees evaluated per pass over the rows (keeps their code in cache)

_LOCK = threading.Lock()
_FAILED: set[str] = set()  # keys that failed to build in this process: do not retry


class UnsupportedBooster(ValueError):
    """The booster uses something the code generator does not translate."""


def _lit(v: float) -> str:
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if math.isnan(v):
        return "NAN"
    return v.hex()  # exact


def _parse(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    cur = header
    for line in text.splitlines():
        if line.startswith("Tree="):
            cur = {}
            trees.append(cur)
        elif line.startswith("end of trees"):
            break
        elif "=" in line:
            k, v = line.split("=", 1)
            cur[k] = v
    return header, trees


def _check_supported(header: dict[str, str], trees: Sequence[dict[str, str]]) -> None:
    """Raise :class:`UnsupportedBooster` for a parsed model the translations here do not cover
    (another objective, several classes, categorical trees, linear trees; each translation
    refuses categorical and zero-as-missing splits itself)."""
    objective = header.get("objective", "").split()
    if not objective or objective[0] != "binary" or header.get("num_class", "1") != "1" \
            or header.get("num_tree_per_iteration", "1") != "1":
        raise UnsupportedBooster(f"objective {header.get('objective')!r} is not handled")
    for tree in trees:
        if tree.get("num_cat", "0") != "0" or tree.get("is_linear", "0") != "0":
            raise UnsupportedBooster("categorical splits / linear trees are not handled")


def _sigmoid(header: dict[str, str]) -> float:
    for part in header.get("objective", "").split()[1:]:
        if part.startswith("sigmoid:"):
            return float(part.split(":", 1)[1])
    return 1.0


def generate_c(text: str) -> tuple[str, int]:
    """C source of a LightGBM text model (binary objective) and its number of features.

    Raises:
        UnsupportedBooster: categorical splits, linear trees, zero-as-missing splits, several
            classes or an objective other than ``binary``.
    """
    header, trees = _parse(text)
    _check_supported(header, trees)
    sigmoid = _sigmoid(header)
    n_features = int(header["max_feature_idx"]) + 1
    out = ["#include <math.h>\n"]
    for t, tree in enumerate(trees):
        leaves = [float(v) for v in tree["leaf_value"].split()]
        if int(tree["num_leaves"]) == 1:
            out.append(f"static double t{t}(const double* x) {{ return {_lit(leaves[0])}; }}\n")
            continue
        feat = [int(v) for v in tree["split_feature"].split()]
        thr = [float(v) for v in tree["threshold"].split()]
        dec = [int(v) for v in tree["decision_type"].split()]
        left = [int(v) for v in tree["left_child"].split()]
        right = [int(v) for v in tree["right_child"].split()]
        body: list[str] = []

        def cond(i: int) -> str:
            f, d = feat[i], dec[i]
            missing, default_left = (d >> 2) & 3, (d >> 1) & 1
            if d & 1 or missing == 1:
                raise UnsupportedBooster("categorical or zero-as-missing split")
            # One comparison, no NaN test: a comparison with NaN is false, so "x <= t" sends NaN
            # right and "!(x > t)" sends it left
            nan_left = bool(default_left) if missing == 2 else 0.0 <= thr[i]  # else NaN is read as 0
            return f"(!(x[{f}] > {_lit(thr[i])}))" if nan_left else f"(x[{f}] <= {_lit(thr[i])})"

        def emit(node: int, depth: int) -> None:
            pad = " " * depth
            if node < 0:
                body.append(f"{pad}return {_lit(leaves[~node])};\n")
                return
            body.append(f"{pad}if {cond(node)} {{\n")
            emit(left[node], depth + 1)
            body.append(f"{pad}}} else {{\n")
            emit(right[node], depth + 1)
            body.append(f"{pad}}}\n")

        emit(0, 1)
        out.append(f"static double t{t}(const double* x) {{\n{''.join(body)}}}\n")
    n = len(trees)
    # Trees in blocks of _TREE_BLOCK, each block one pass over the rows that calls its trees
    # directly (each called once, so the compiler inlines them: no call through a pointer per tree)
    blocks = range((n + _TREE_BLOCK - 1) // _TREE_BLOCK)
    for b in blocks:
        calls = "".join(f"    s += t{t}(x);\n" for t in range(b * _TREE_BLOCK, min(n, (b + 1) * _TREE_BLOCK)))
        out.append(f"""
static void block{b}(const double* X, long n_rows, double* out) {{
  for (long r = 0; r < n_rows; r++) {{
    const double* x = X + r * {n_features};
    double s = out[r];
{calls}    out[r] = s;
  }}
}}
""")
    run_blocks = "".join(f"  block{b}(X, n_rows, out);\n" for b in blocks)
    out.append(f"""
void {_ENTRY}(const double* X, long n_rows, double* out) {{
  for (long r = 0; r < n_rows; r++) out[r] = 0.0;
{run_blocks}  for (long r = 0; r < n_rows; r++) out[r] = 1.0 / (1.0 + exp(-{_lit(sigmoid)} * out[r]));
}}
""")
    return "".join(out), n_features


#: LightGBM reads a value with ``|x| <= kZeroThreshold`` (1e-35f) as 0 when it takes rows in.
_K_ZERO = float(np.float32(1e-35))


def prepare(X: np.ndarray) -> np.ndarray:
    """Rows as LightGBM sees them: float64, C order, near-zero values as 0 (NaN kept)."""
    X = np.array(X, dtype=np.float64, order="C")
    X[np.abs(X) <= _K_ZERO] = 0.0
    return X


class CompiledForest:
    """A compiled booster: ``predict(X)`` equals ``Booster.predict(X)`` of the binary model."""

    def __init__(self, library: Path, n_features: int) -> None:
        self.library = library
        self.n_features = n_features
        self._lib = ctypes.CDLL(str(library))
        fn = getattr(self._lib, _ENTRY)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        fn.restype = None
        self._fn = fn

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._predict(prepare(X))

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features; got shape {X.shape}")
        out = np.empty(X.shape[0], dtype=np.float64)
        if X.shape[0]:
            self._fn(X.ctypes.data, X.shape[0], out.ctypes.data)
        return out


_NUMPY_PAIRS = 1 << 17  # (row, tree) pairs walked at once by NumpyForest (a few MB of arrays)


class NumpyForest:
    """A booster evaluated with NumPy from its text model: ``predict(X)`` equals
    ``Booster.predict(X)`` of the binary model, like :class:`CompiledForest`, with neither a
    C compiler nor LightGBM (whose import and model parsing cost a single-note run about a
    second). Every row walks every tree at once, one tree level per step; leaf values are
    summed in tree order and the sigmoid taken with :func:`math.exp`, as the compiled code
    does, so the scores are the same to the last bit. Slower than the compiled forest per row:
    meant for a few notes at a time.

    Raises:
        UnsupportedBooster: as :func:`generate_c`.
    """

    def __init__(self, text: str) -> None:
        header, trees = _parse(text)
        _check_supported(header, trees)
        self.sigmoid = _sigmoid(header)
        self.n_features = int(header["max_feature_idx"]) + 1
        split = [t for t in trees if int(t["num_leaves"]) > 1]

        def field(name: str, dtype: Any) -> np.ndarray:  # one field of every split tree, concatenated
            return np.array(" ".join(t[name] for t in split).split(), dtype=dtype)

        n_leaves = np.array([int(t["num_leaves"]) for t in trees], dtype=np.int64)
        n_inner = n_leaves - 1
        leaf_at = np.cumsum(n_leaves) - n_leaves  # each tree's first leaf / node in the flat arrays
        node_at = np.cumsum(n_inner) - n_inner
        self._leaf = np.array(" ".join(t["leaf_value"] for t in trees).split(), dtype=np.float64)
        self._feat = field("split_feature", np.int64)
        self._thr = field("threshold", np.float64)
        dec = field("decision_type", np.int64)
        if np.any(dec & 1) or np.any((dec >> 2) & 3 == 1):
            raise UnsupportedBooster("categorical or zero-as-missing split")
        # NaN goes where the compiled comparison sends it (see generate_c's cond)
        self._nan_left = np.where((dec >> 2) & 3 == 2, ((dec >> 1) & 1).astype(bool), self._thr >= 0.0)
        tree_of = np.repeat(np.arange(len(trees)), n_inner)
        children = []
        for name in ("left_child", "right_child"):
            child = field(name, np.int64)  # node index in its tree, or ~leaf index
            children.append(np.where(child >= 0, child + node_at[tree_of], ~(~child + leaf_at[tree_of])))
        self._left, self._right = children
        self._roots = np.where(n_inner > 0, node_at, ~leaf_at)  # a one-leaf tree starts at its leaf
        if len(self._feat) != int(n_inner.sum()) or len(self._leaf) != int(n_leaves.sum()):
            raise ValueError("tree arrays do not match num_leaves")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._predict(prepare(X))

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features; got shape {X.shape}")
        n, n_trees = X.shape[0], len(self._roots)
        if not n or not n_trees:
            return np.full(n, 0.5)
        step = max(1, _NUMPY_PAIRS // n_trees)
        if n > step:  # bounded memory: (row, tree) pairs of a few hundred rows at a time
            return np.concatenate([self._predict(X[i:i + step]) for i in range(0, n, step)])
        cur = np.tile(self._roots, n)  # (row, tree) pairs, row-major
        row = np.repeat(np.arange(n, dtype=np.int64), n_trees)
        flat = X.ravel()
        todo = np.flatnonzero(cur >= 0)
        while todo.size:
            node = cur[todo]
            x = flat[row[todo] * self.n_features + self._feat[node]]
            t = self._thr[node]
            go_left = np.where(self._nan_left[node], ~(x > t), x <= t)
            nxt = np.where(go_left, self._left[node], self._right[node])
            cur[todo] = nxt
            todo = todo[nxt >= 0]
        # summed in tree order (cumsum adds left to right, as the compiled loop does)
        raw = np.cumsum(self._leaf[~cur].reshape(n, n_trees), axis=1)[:, -1]
        neg = -self.sigmoid
        return np.array([1.0 / (1.0 + math.exp(neg * s)) for s in raw.tolist()], dtype=np.float64)


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compiler_available() -> bool:
    """Whether a C compiler is on the PATH (``$CC``, ``cc``, ``gcc`` or ``clang``)."""
    return _compiler() is not None


def _key(text: str) -> str:
    return hashlib.sha256((CODEGEN_VERSION + "\n" + text).encode()).hexdigest()[:32]


def _paths(text: str, cache_dir: Path) -> tuple[str, Path, Path]:
    key = _key(text)
    return key, cache_dir / f"forest-{key}.so", cache_dir / f"forest-{key}.nfeat"


def load_compiled(text: str, cache_dir: Path, build: bool = False, check: Any = None) -> CompiledForest | None:
    """The compiled form of a LightGBM text model, from the cache or (``build=True``) built now.

    Args:
        text: the booster's text model (``Booster.model_to_string()`` / its saved file).
        cache_dir: where compiled libraries are kept.
        build: compile when not cached (needs a C compiler).
        check: the LightGBM booster; a new build is used only when it predicts exactly as
            the booster on probe rows around every threshold (else it is discarded).

    Returns:
        The compiled forest, or None (not cached and not built, no compiler, unsupported
        booster, failed build or check).
    """
    key, lib, meta = _paths(text, cache_dir)
    with _LOCK:
        if lib.is_file() and meta.is_file():
            try:
                return CompiledForest(lib, int(meta.read_text().strip()))
            except (OSError, ValueError):
                pass  # a partial or foreign file: rebuild below
        if not build or key in _FAILED:
            return None
        cc = _compiler()
        if cc is None:
            _FAILED.add(key)
            return None
        try:
            source, n_features = generate_c(text)
        except (UnsupportedBooster, KeyError, ValueError):
            _FAILED.add(key)
            return None
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                src = Path(tmp) / "forest.c"
                src.write_text(source, encoding="ascii")
                built = Path(tmp) / "forest.so"
                # -O1: nearly all of -O2's speed for this code at half the compile time
                proc = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(built), str(src), "-lm"],
                                      capture_output=True, timeout=900, check=False)
                if proc.returncode != 0 or not built.is_file():
                    _FAILED.add(key)
                    return None
                forest = CompiledForest(built, n_features)
                if check is not None and not _same_as(forest, check, text, n_features):
                    _FAILED.add(key)
                    return None
                os.replace(built, lib)
            meta.write_text(str(n_features), encoding="ascii")
            return CompiledForest(lib, n_features)
        except (OSError, subprocess.SubprocessError):  # unwritable cache, compiler crash or timeout
            _FAILED.add(key)
            return None


def _probe_rows(text: str, n_features: int, seed: int = 0) -> np.ndarray:
    """Rows whose values sit on, just below and just above the model's thresholds, plus NaN."""
    _, trees = _parse(text)
    per_feature: dict[int, list[float]] = {}
    for tree in trees:
        if "split_feature" not in tree:
            continue
        for f, t in zip(tree["split_feature"].split(), tree["threshold"].split()):
            v = float(t)
            if math.isfinite(v):
                per_feature.setdefault(int(f), []).extend((v, np.nextafter(v, -np.inf), np.nextafter(v, np.inf)))
    rng = np.random.RandomState(seed)
    X = np.zeros((512, n_features), dtype=np.float64)
    for f in range(n_features):
        vals = np.array(per_feature.get(f, [0.0]) + [0.0, math.nan, -1.0, 1e4])
        X[:, f] = vals[rng.randint(0, len(vals), size=X.shape[0])]
    return X


def _same_as(forest: CompiledForest, booster: Any, text: str, n_features: int) -> bool:
    X = _probe_rows(text, n_features)
    try:
        ref = np.asarray(booster.predict(X, num_threads=1), dtype=np.float64)
    except Exception:  # noqa: BLE001 - any LightGBM failure: do not trust the build
        return False
    return bool(np.array_equal(forest.predict(X), ref))


def predict_mean(forests: Sequence[CompiledForest | NumpyForest], X: np.ndarray) -> np.ndarray:
    """Mean probability of several compiled (or NumPy) boosters (the ranker ensemble)."""
    X64 = prepare(X)
    return np.mean([f._predict(X64) for f in forests], axis=0)
