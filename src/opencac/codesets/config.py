"""Where the knowledge layer keeps things: cache dir, user config (index dir, older fiscal
years) and the data dir holding user-supplied code-set files."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opencac.errors import CodeSetSourceError

CONFIG_NAME = "codesets.json"


def cache_dir(override: Path | str | None = None) -> Path:
    """Compiled-artifact directory: ``override``, ``$OPENCAC_CACHE_DIR`` or the user cache dir."""
    if override is not None:
        return Path(override)
    env = os.environ.get("OPENCAC_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("opencac"))


def write_pickle(obj: Any, path: Path) -> None:
    """Pickle ``obj`` to ``path`` atomically (a unique temporary file beside it, then a rename:
    a reader never sees a partial file); raises on failure, leaving no temporary file."""
    import pickle
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_GC_LOCK = threading.Lock()
_GC_PAUSES = [0, False]  # nested pauses, and whether the collector was on when the first began


def one_blas_thread() -> bool:
    """Limit this process's BLAS library (OpenBLAS, MKL) to one thread; True when it did.

    Coding multiplies small matrices (a batch of notes against the training notes); a second
    BLAS thread there mostly spins, about 10 % of ``opencac predict``'s CPU on two cores and
    more where batch workers already use every core. Called by the throughput paths (``opencac
    predict``, batch workers) after the engine is loaded; training keeps every thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it the BLAS keeps its threads
        return False
    threadpool_limits(1, user_api="blas")
    return True


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (nesting and threads allowed: it
    comes back on when the last pause ends, and only if it was on before the first).

    Coding a batch of notes or unpickling an artifact allocates hundreds of thousands of small
    containers, none of them in reference cycles that matter; the collector's passes over
    them cost ~17 % of ``predict``'s CPU. Cycles made meanwhile are collected after the block.
    """
    with _GC_LOCK:
        if _GC_PAUSES[0] == 0:
            _GC_PAUSES[1] = gc.isenabled()
            gc.disable()
        _GC_PAUSES[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES[0] -= 1
            if _GC_PAUSES[0] == 0 and _GC_PAUSES[1]:
                gc.enable()


def read_pickle(path: Path) -> Any:
    """Unpickle ``path`` with the cyclic garbage collector paused (loading millions of small
    objects, it would otherwise dominate the load time)."""
    import pickle

    with paused_gc(), open(path, "rb") as fh:
        return pickle.load(fh)


def config_dir() -> Path:
    """User config dir: ``$OPENCAC_CONFIG_DIR`` or platformdirs' user config dir."""
    env = os.environ.get("OPENCAC_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("opencac"))


def data_dir() -> Path:
    """Where user-supplied code-set files are copied: ``$OPENCAC_DATA_DIR`` or the user data dir."""
    env = os.environ.get("OPENCAC_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("opencac"))


def read_config() -> dict[str, Any]:
    """The stored knowledge-layer config (``{}`` when none)."""
    path = config_dir() / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CodeSetSourceError(f"cannot read config {path}: {exc}; fix or delete it") from exc
    return data if isinstance(data, dict) else {}


def write_config(data: dict[str, Any]) -> Path:
    """Write the knowledge-layer config; returns its path."""
    path = config_dir() / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def configured_index_dir() -> Path | None:
    """Index dir from ``$OPENCAC_CM_INDEX_DIR`` or the stored config (``codes import-index``)."""
    env = os.environ.get("OPENCAC_CM_INDEX_DIR")
    if env:
        return Path(env)
    value = read_config().get("index_dir")
    return Path(value) if value else None


def configured_versions() -> dict[int, Path]:
    """Older ICD-10-CM fiscal years registered with ``codes add-version``: ``{fy: tabular XML}``."""
    out: dict[int, Path] = {}
    for fy, path in (read_config().get("cm_versions") or {}).items():
        out[int(fy)] = Path(path)
    return out


def configured_pcs_versions() -> dict[int, Path]:
    """Older ICD-10-PCS fiscal years registered with ``codes add-version --system icd10pcs``."""
    return {int(fy): Path(path) for fy, path in (read_config().get("pcs_versions") or {}).items()}
