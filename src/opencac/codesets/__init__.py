"""OpenCAC code-set knowledge layer: ICD-10-CM and ICD-10-PCS codes, notes, hierarchy, index
terms and versions by date of service.

    from opencac.codesets import load_knowledge
    kb = load_knowledge()
    kb.get("E11.9").billable
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opencac.codesets.types import Code, CodeSetVersion, CodeSystem, IndexEntry, fiscal_year

if TYPE_CHECKING:
    from opencac.codesets.kb import KnowledgeBase

__all__ = ["Code", "CodeSetVersion", "CodeSystem", "IndexEntry", "KnowledgeBase", "fiscal_year",
           "load_knowledge", "clear_knowledge_cache"]

_LOCK = threading.Lock()
_INSTANCES: dict[tuple[Any, ...], KnowledgeBase] = {}
#: instances by call arguments + environment, so that repeated calls skip stat-ing the sources
_FAST: dict[tuple[Any, ...], KnowledgeBase] = {}


def __getattr__(name: str) -> Any:
    if name == "KnowledgeBase":
        from opencac.codesets.kb import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(name)


def load_knowledge(fy: int | None = None, cache_dir: Path | str | None = None,
                   index_dir: Path | str | None = None, *, rebuild: bool = False) -> KnowledgeBase:
    """Load (compiling once, then from cache) the ICD-10-CM + ICD-10-PCS knowledge base.

    A process-wide singleton per argument set: repeated calls return the same object.

    Args:
        fy: default ICD-10-CM fiscal year for lookups without a date (default: the newest loaded).
        cache_dir: artifact directory (default ``$OPENCAC_CACHE_DIR`` or the user cache dir).
        index_dir: directory with the CMS ICD-10-CM index files (CSV or XML); default
            ``$OPENCAC_CM_INDEX_DIR`` or the dir stored by ``opencac codes import-index``.
        rebuild: recompile even when a cached artifact exists.

    Raises:
        CodeSetSourceError: a source file is missing or unreadable.
        CodeSetVersionError: ``fy`` is not a loaded fiscal year.
    """
    import os

    from opencac.codesets import config

    try:
        cfg_mtime = (config.config_dir() / config.CONFIG_NAME).stat().st_mtime_ns
    except OSError:
        cfg_mtime = 0
    fast = (fy, str(cache_dir), str(index_dir), cfg_mtime,
            *(os.environ.get(k) for k in ("OPENCAC_CACHE_DIR", "OPENCAC_CONFIG_DIR", "OPENCAC_CM_INDEX_DIR")))
    if not rebuild:
        hit = _FAST.get(fast)
        if hit is not None:
            return hit
    from opencac.codesets.build import artifact_paths, compile_artifacts, default_sources
    from opencac.codesets.kb import KnowledgeBase

    idx = Path(index_dir) if index_dir is not None else config.configured_index_dir()
    cdir = config.cache_dir(cache_dir) / "codesets"
    src = default_sources(idx, config.configured_versions(), config.configured_pcs_versions())
    key = src.key()
    ident = (fy, str(cdir), key)
    with _LOCK:
        if not rebuild and ident in _INSTANCES:
            _FAST[fast] = _INSTANCES[ident]
            return _INSTANCES[ident]
        paths = artifact_paths(cdir, key)
        if rebuild or not all(p.is_file() for p in paths.values()):
            if idx is not None and not idx.is_dir():
                from opencac.errors import CodeSetSourceError

                raise CodeSetSourceError(f"ICD-10-CM index directory not found: {idx}")
            paths = compile_artifacts(src, cdir)
        kb = KnowledgeBase(paths, fy=fy)
        _INSTANCES[ident] = kb
        _FAST[fast] = kb
        return kb


def clear_knowledge_cache() -> None:
    """Forget the process-wide knowledge-base instances (tests, after ``add-version``)."""
    with _LOCK:
        _INSTANCES.clear()
        _FAST.clear()
