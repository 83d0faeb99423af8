"""OpenCAC audit layer: scope, sample, score and defend coding audits; fairness; reports.

Modules (imported lazily; nothing heavy at import time):

* :mod:`~opencac.audit.records` -- ``EncounterRecord``, ``read_frame`` (the audit frame)
* :mod:`~opencac.audit.scope` -- ``AuditScope``
* :mod:`~opencac.audit.sample_size` -- ``attribute_sample_size`` (formula shown; AICPA/RAT-STATS exact)
* :mod:`~opencac.audit.sampling` -- random, stratified, targeted and probe samples that reproduce
* :mod:`~opencac.audit.scoring` -- ``score_encounter``, ``Finding``, ``AuditWorkbook``
* :mod:`~opencac.audit.metrics` -- precision/recall, accuracy, DRG impact with intervals; kappa
* :mod:`~opencac.audit.fairness` -- rates by patient group, disparities, tests, alerts
* :mod:`~opencac.audit.report` -- HTML / PDF / CSV reports; :mod:`~opencac.audit.model_card`
* :mod:`~opencac.audit.workfile` -- audit work files (CSV / JSON) -> scored workbook
* :mod:`~opencac.audit.chain` -- hash chain of the workbench audit trail (workbench helper)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EncounterRecord": "records", "read_frame": "records", "AuditScope": "scope",
    "attribute_sample_size": "sample_size", "SampleSizeResult": "sample_size",
    "draw_sample": "sampling", "simple_random_sample": "sampling", "stratified_sample": "sampling",
    "targeted_sample": "sampling", "probe_sample": "sampling", "full_sample_from_probe": "sampling",
    "Sample": "sampling", "TargetCriteria": "sampling",
    "score_encounter": "scoring", "CodedEncounter": "scoring", "AuditorCoding": "scoring", "Finding": "scoring",
    "AuditWorkbook": "scoring", "compute_metrics": "metrics", "cohens_kappa": "metrics",
    "wilson_interval": "metrics", "fairness_report": "fairness", "build_report": "report",
    "write_report": "report", "build_model_card": "model_card", "load_audit_file": "workfile",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'opencac.audit' has no attribute {name!r}")
    return getattr(importlib.import_module(f"opencac.audit.{mod}"), name)
