"""Fixtures for the knowledge-layer tests: one FY2026 knowledge base compiled into a temporary
cache per session, with the user's config (index dir, older versions) kept out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@contextmanager
def isolated_env(root: Path) -> Iterator[None]:
    """Point config/data dirs at ``root`` and drop $OPENCAC_CM_INDEX_DIR while inside."""
    keys = ("OPENCAC_CONFIG_DIR", "OPENCAC_DATA_DIR", "OPENCAC_CM_INDEX_DIR", "OPENCAC_CACHE_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["OPENCAC_CONFIG_DIR"] = str(root / "config")
    os.environ["OPENCAC_DATA_DIR"] = str(root / "data")
    os.environ["OPENCAC_CACHE_DIR"] = str(root / "cache")
    os.environ.pop("OPENCAC_CM_INDEX_DIR", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def kb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("opencac-kb")


@pytest.fixture(scope="session")
def kb(kb_root: Path):  # type: ignore[no-untyped-def]
    from opencac.codesets import load_knowledge

    with isolated_env(kb_root):
        return load_knowledge()


@pytest.fixture()
def kb_env(kb_root: Path, kb, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """Function-scoped: the same isolated env as ``kb`` (for CLI calls that load it again)."""
    monkeypatch.setenv("OPENCAC_CONFIG_DIR", str(kb_root / "config"))
    monkeypatch.setenv("OPENCAC_DATA_DIR", str(kb_root / "data"))
    monkeypatch.setenv("OPENCAC_CACHE_DIR", str(kb_root / "cache"))
    monkeypatch.delenv("OPENCAC_CM_INDEX_DIR", raising=False)
    return kb_root
