"""The one hook every edit uses: a registry of ``Rule`` objects under versioned names.

Built-in rules (Excludes1, combination codes, MCE edits, CDI queries, the DRG step) are
registered exactly like a payer's custom rule. A custom rule is added either in code::

    from opencac.edits import Edit, rule

    @rule("acme.no_unspecified_hf.v1", citation="ACME payer policy 12.3", order=650)
    def no_unspecified_hf(state):
        if state.has("I50.9"):
            return [Edit("ACME-HF", "warning", "ACME denies I50.9", "ACME 12.3", codes=["I50.9"])]
        return []

or from an installed package through the ``opencac.edits`` entry-point group, whose entry
points resolve to a ``Rule``, a list of ``Rule`` objects, or a callable
``register(registry: RuleRegistry) -> None``::

    [project.entry-points."opencac.edits"]
    acme = "acme_rules:register"

Rules run in ``order`` (lower first; built-ins use 100-900 in steps documented in
``opencac.edits.rules``), then by name. ``applies(ctx)`` lets a rule skip encounters
(e.g. DRG grouping only for inpatients).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opencac.errors import RuleError

if TYPE_CHECKING:
    from opencac.coding.types import EncounterContext
    from opencac.edits.model import Edit
    from opencac.edits.state import RulesState

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "opencac.edits"


def _always(ctx: EncounterContext) -> bool:  # noqa: ARG001 - protocol signature
    return True


@dataclass(frozen=True, slots=True)
class Rule:
    """One edit plugin.

    Attributes:
        name: versioned, stable name (``"opencac.excludes1.v1"``); audit records cite it.
        citation: the guideline section / convention / policy it implements.
        run: ``run(state) -> list[Edit]``; proposed fixes in the edits are applied by the
            runner in engine mode (``state.mode == "engine"``), only reported in claim mode.
        applies: ``applies(ctx) -> bool``; False skips the rule for that encounter.
        order: run order (lower first).
        description: one line for listings.
    """

    name: str
    citation: str
    run: Callable[[RulesState], Iterable[Edit] | None]
    applies: Callable[[EncounterContext], bool] = _always
    order: int = 500
    description: str = ""


@dataclass
class RuleRegistry:
    """A set of rules by name. ``default_registry()`` holds the built-ins and entry points."""

    _rules: dict[str, Rule] = field(default_factory=dict)

    def register(self, r: Rule, *, replace: bool = False) -> Rule:
        """Add a rule; a second rule under the same name is an error unless ``replace``."""
        if not isinstance(r, Rule):
            raise RuleError(f"expected a Rule, got {type(r).__name__}.")
        if r.name in self._rules and not replace:
            raise RuleError(f"a rule named {r.name!r} is already registered.", options=sorted(self._rules))
        self._rules[r.name] = r
        return r

    def unregister(self, name: str) -> None:
        """Remove a rule by name (unknown names are an error)."""
        if name not in self._rules:
            raise RuleError(f"no rule named {name!r}.", options=sorted(self._rules))
        del self._rules[name]

    def get(self, name: str) -> Rule:
        """The rule registered under ``name``."""
        if name not in self._rules:
            raise RuleError(f"no rule named {name!r}.", options=sorted(self._rules))
        return self._rules[name]

    def names(self) -> list[str]:
        """Registered names in run order."""
        return [r.name for r in self.rules()]

    def rules(self) -> list[Rule]:
        """Rules in run order."""
        return sorted(self._rules.values(), key=lambda r: (r.order, r.name))

    def copy(self) -> RuleRegistry:
        """A shallow copy (to add or drop rules for one call)."""
        return RuleRegistry(dict(self._rules))

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Load third-party rules from ``group``; returns the entry-point names loaded.

        A broken plugin is logged (its name only) and skipped so that it cannot stop coding.
        """
        from importlib.metadata import entry_points

        loaded = []
        for ep in entry_points(group=group):
            try:
                obj: Any = ep.load()
                if isinstance(obj, Rule):
                    self.register(obj, replace=True)
                elif isinstance(obj, (list, tuple)):
                    for r in obj:
                        self.register(r, replace=True)
                elif callable(obj):
                    obj(self)
                else:
                    raise RuleError(f"entry point {ep.name!r} is neither a Rule nor a callable.")
                loaded.append(ep.name)
            except Exception as exc:  # noqa: BLE001 - a plugin must not break the pipeline
                log.warning("skipping edits plugin %s: %s", ep.name, type(exc).__name__)
        return loaded


_DEFAULT: RuleRegistry | None = None


def default_registry() -> RuleRegistry:
    """The process-wide registry: built-in rules plus the ``opencac.edits`` entry points."""
    global _DEFAULT
    if _DEFAULT is None:
        reg = RuleRegistry()
        from opencac.edits import rules as _builtin

        _builtin.register_builtins(reg)
        reg.load_entry_points()
        _DEFAULT = reg
    return _DEFAULT


def rule(
    name: str,
    *,
    citation: str,
    order: int = 500,
    applies: Callable[[EncounterContext], bool] | None = None,
    description: str = "",
    registry: RuleRegistry | None = None,
) -> Callable[[Callable[[RulesState], Iterable[Edit] | None]], Rule]:
    """Decorator: turn ``run(state)`` into a ``Rule`` and register it (default registry).

    Returns the ``Rule`` (so the decorated name refers to the rule object).
    """

    def deco(fn: Callable[[RulesState], Iterable[Edit] | None]) -> Rule:
        doc = (fn.__doc__ or "").strip().splitlines()
        r = Rule(name=name, citation=citation, run=fn, applies=applies or _always, order=order,
                 description=description or (doc[0] if doc else ""))
        (registry or default_registry()).register(r, replace=True)
        return r

    return deco
