"""Fixtures for the rules-layer tests: the real knowledge base (skips when it cannot be
built here) and the fast fake one."""

from __future__ import annotations

from typing import Any

import pytest

from .fakekb import FAKE_KB


@pytest.fixture(scope="session")
def fake_kb() -> Any:
    return FAKE_KB
