"""OpenCAC batch layer: readers, writers, local and Ray runners, checkpoints.

Public API (imported lazily, so ``import opencac.batch`` stays light)::

    from opencac.batch import BatchConfig, run_batch, open_source
    summary = run_batch(BatchConfig(input=Path("notes/"), out=Path("out/"), workers=2))
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchConfig": "opencac.batch.runner",
    "run_batch": "opencac.batch.runner",
    "BatchSummary": "opencac.batch.writers",
    "assemble": "opencac.batch.writers",
    "PROVISIONAL_AUTOMATION_THRESHOLD": "opencac.batch.writers",
    "open_source": "opencac.batch.readers",
    "DocumentSource": "opencac.batch.readers",
    "SourceDoc": "opencac.batch.readers",
    "EngineFactory": "opencac.batch.worker",
    "DocumentCoder": "opencac.batch.worker",
    "Ledger": "opencac.batch.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'opencac.batch' has no attribute {name!r}")
