"""The rules layer: Official Guidelines conventions, pre-bill claim edits, MS-DRG impact and
compliant CDI queries, each an ``Rule`` plugin on one registry.

Public API::

    from opencac.edits import apply_rules, check_claim
    outcome = apply_rules(result, text, kb=None)   # also sets result.rules
    outcome.changes, outcome.proposed              # fixes applied (certain) / proposed to the coder
    outcome = check_claim({"context": {...}, "diagnoses": [...], "procedures": [...]})
    outcome.to_dict()

Custom rules: ``opencac.edits.rule`` (decorator) or ``Rule`` + ``default_registry().register``,
or the ``opencac.edits`` entry-point group (see ``opencac.edits.registry``).
Imports are lazy so that ``import opencac.edits`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from opencac.edits.api import apply_rules, check_claim
    from opencac.edits.model import DrgResult, Edit, EvidenceSpan, FinalCode, Query, QueryOption, RulesOutcome
    from opencac.edits.policy import DEFAULT_POLICY, AutoApplyPolicy
    from opencac.edits.registry import Rule, RuleRegistry, default_registry, rule
    from opencac.edits.state import RulesState

__all__ = [
    "apply_rules", "check_claim", "RulesOutcome", "Edit", "EvidenceSpan", "FinalCode", "Query", "QueryOption",
    "DrgResult", "Rule", "RuleRegistry", "default_registry", "rule", "RulesState", "AutoApplyPolicy", "DEFAULT_POLICY",
]

_WHERE = {
    "apply_rules": "opencac.edits.api", "check_claim": "opencac.edits.api",
    "RulesOutcome": "opencac.edits.model", "Edit": "opencac.edits.model", "EvidenceSpan": "opencac.edits.model",
    "FinalCode": "opencac.edits.model", "Query": "opencac.edits.model", "QueryOption": "opencac.edits.model",
    "DrgResult": "opencac.edits.model", "Rule": "opencac.edits.registry", "RuleRegistry": "opencac.edits.registry",
    "default_registry": "opencac.edits.registry", "rule": "opencac.edits.registry", "RulesState": "opencac.edits.state",
    "AutoApplyPolicy": "opencac.edits.policy", "DEFAULT_POLICY": "opencac.edits.policy",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'opencac.edits' has no attribute {name!r}")
