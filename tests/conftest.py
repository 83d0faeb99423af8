"""Shared fixtures: where ../shared/data is, and skips with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data beside the repo (or $OPENCAC_SHARED_DATA), if present."""
    env = os.environ.get("OPENCAC_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data is absent (set OPENCAC_SHARED_DATA to run tests that need CodiEsp / the CM index)")
    return d


@pytest.fixture(scope="session")
def codiesp_dir(shared_data: Path) -> Path:
    d = shared_data / "codiesp"
    if not (d / "train").is_dir():
        pytest.skip(f"CodiEsp corpus not found under {d}")
    return d


@pytest.fixture(scope="session")
def cm_index_dir(shared_data: Path) -> Path:
    d = shared_data / "icd10cm-2025-index"
    if not (d / "ICD10CM_2025_Index.csv").is_file():
        pytest.skip(f"ICD-10-CM index files not found under {d}")
    return d


@pytest.fixture(scope="session")
def kb() -> object:
    """The real compiled knowledge base (skips with the reason when it cannot be built here).
    Packages with their own ``kb`` fixture (tests/codesets) override it."""
    try:
        from opencac.codesets import load_knowledge

        return load_knowledge()
    except Exception as exc:  # noqa: BLE001 - any build failure means: skip with the reason
        pytest.skip(f"real knowledge base unavailable: {type(exc).__name__}: {exc}")
